"""`protoseg shapes`: every blob's shape, as Caffe computes it. Imports no torch and no numpy."""
from __future__ import annotations

from ..text import dims
from .options import add_net_options, load_shapes
from .output import markdown_table, table, to_json


def register(sub):
    p = sub.add_parser("shapes", help="compute every blob's shape as Caffe does",
                       description="Compute every blob's shape as Caffe does, layer by layer.")
    add_net_options(p)
    p.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    p.add_argument("--explain", action="store_true", help="show the arithmetic of every layer")
    p.add_argument("--pretty", action="store_true", help="indent JSON output")
    return p


def run(args) -> int:
    shapes = load_shapes(args)
    if args.format == "json":
        print(to_json(shapes_json(shapes), args.pretty))
    elif args.explain:
        print(explain(shapes))
    else:
        head = ("layer", "type", "bottoms -> tops", "top shape")
        rows = [(ls.layer.name, ls.layer.type, _flow(ls.layer),
                 ", ".join(dims(t) for t in ls.tops) or "-") for ls in shapes.layers]
        if args.format == "markdown":
            print(markdown_table(head, rows, title=shapes.net.name or "net"))
        else:
            print(table(head, rows))
    return 0


def _flow(layer) -> str:
    tops = ", ".join(layer.tops)
    return f"{', '.join(layer.bottoms)} -> {tops}" if layer.bottoms else f"-> {tops}"


def shapes_json(shapes) -> dict:
    net = shapes.net
    return {
        "name": net.name,
        "phase": net.phase,
        "format": net.format,
        "inputs": {k: list(v) for k, v in shapes.inputs.items()},
        "layers": [{"name": ls.layer.name, "type": ls.layer.type, "bottoms": list(ls.layer.bottoms),
                    "tops": list(ls.layer.tops), "bottom_shapes": [list(b) for b in ls.bottoms],
                    "top_shapes": [list(t) for t in ls.tops],
                    "line": ls.layer.span.line if ls.layer.span else None}
                   for ls in shapes.layers],
        "blobs": {k: list(v) for k, v in shapes.blobs.items()},
        "dropped": [{"name": n, "type": t, "reason": r} for n, t, r in net.dropped],
    }


def explain(shapes) -> str:
    out = [f"net {shapes.net.name or '(unnamed)'}: {len(shapes.layers)} layers, phase {shapes.net.phase}"]
    for ls in shapes.layers:
        l = ls.layer
        ins = ", ".join(f"{b} {dims(s)}" for b, s in zip(l.bottoms, ls.bottoms))
        outs = ", ".join(f"{t} {dims(s)}" for t, s in zip(l.tops, ls.tops))
        out.append(f"\n{l.name} ({l.type}){'  [in place]' if any(l.in_place) else ''}")
        if ins:
            out.append(f"  in : {ins}")
        for n in ls.notes:
            out.append(f"  {n}")
        out.append(f"  out: {outs or '(no tops)'}")
    if shapes.net.dropped:
        out.append(f"\nnot in phase {shapes.net.phase}: " + ", ".join(n for n, _, _ in shapes.net.dropped))
    return "\n".join(out)
