"""`protoseg shapes`: every blob's shape, as Caffe computes it; with --cost and --rf (and always in
JSON) each layer's cost and each top's coordinate map (protoseg.analysis). Imports no torch and
no numpy."""
from __future__ import annotations

from ..analysis import axis_name, coord_maps, costs
from ..text import dims, fmt_number, human_bytes, si
from .options import add_net_options, load_shapes
from .output import json_number, markdown_table, table, to_json


def register(sub):
    p = sub.add_parser("shapes", help="compute every blob's shape as Caffe does",
                       description="Compute every blob's shape as Caffe does, layer by layer.")
    add_net_options(p)
    p.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    p.add_argument("--explain", action="store_true", help="show the arithmetic of every layer")
    p.add_argument("--cost", action="store_true",
                   help="add each layer's parameters, multiply-accumulates and activation memory")
    p.add_argument("--rf", action="store_true",
                   help="add the stride, offset and receptive field of each layer's first top")
    p.add_argument("--pretty", action="store_true", help="indent JSON output")
    return p


def run(args) -> int:
    shapes = load_shapes(args)
    if args.format == "json":
        print(to_json(shapes_json(shapes), args.pretty))
    elif args.explain:
        print(explain(shapes))
    else:
        head = ["layer", "type", "bottoms -> tops", "top shape"]
        rows = [[ls.layer.name, ls.layer.type, _flow(ls.layer),
                 ", ".join(dims(t) for t in ls.tops) or "-"] for ls in shapes.layers]
        right = set()
        if args.cost:
            total = costs(shapes)
            right |= {len(head), len(head) + 1, len(head) + 2}
            head += ["params", "MACs", "activation"]
            for row, c in zip(rows, total.layers):
                row += ["?" if c.params is None else f"{c.params:,}",
                        "?" if c.macs is None else si(c.macs), human_bytes(c.activation_bytes)]
            rows.append(["total", "", "", ""] + [f"{total.params:,}", si(total.macs),
                                                   human_bytes(total.activation_bytes)]
                        + [""] * 3 * args.rf)
        if args.rf:
            maps = coord_maps(shapes)
            several = len(maps.inputs) > 1
            head += ["of"] * several + ["stride", "offset", "rf"]
            for row, ls in zip(rows, shapes.layers):
                row += _rf_cells(maps, ls, several)
        if args.format == "markdown":
            print(markdown_table(head, rows, title=shapes.net.name or "net"))
        else:
            print(table(head, rows, right=right))
        if args.cost and total.unknown:
            print(f"\nno cost rule (counted as 0 in the total): {', '.join(total.unknown)}")
        if args.rf and maps.misaligned:
            names = dict.fromkeys(f"'{m.layer.name}' (line {m.layer.span.line})"
                                  for m in maps.misaligned)
            print(f"\nbottoms that do not line up (the row shows bottom 0's map; `protoseg check` "
                  f"says how): {', '.join(names)}")
    return 0


def _rf_cells(maps, ls, several: bool) -> list:
    """The map of the layer's first top relative to the first input that reaches it: stride,
    offset and rf, one value when H and W agree, HxW when not."""
    per_input = maps.of(ls.layer.top_values[0]) if ls.layer.top_values else {}
    if not per_input:
        return ["-"] * several + ["-", "-", "-"]
    name, axes = next(iter(per_input.items()))
    cells = []
    for what in ("stride", "offset", "rf"):
        values = [fmt_number(getattr(m, what)) for m in axes.values()]
        cells.append(values[0] if len(set(values)) == 1 else "x".join(values))
    return [name] * several + cells


def _flow(layer) -> str:
    tops = ", ".join(layer.tops)
    return f"{', '.join(layer.bottoms)} -> {tops}" if layer.bottoms else f"-> {tops}"


def shapes_json(shapes) -> dict:
    net = shapes.net
    total = costs(shapes)
    maps = coord_maps(shapes)
    return {
        "name": net.name,
        "phase": net.phase,
        "format": net.format,
        "inputs": {k: list(v) for k, v in shapes.inputs.items()},
        "layers": [{"name": ls.layer.name, "type": ls.layer.type, "bottoms": list(ls.layer.bottoms),
                    "tops": list(ls.layer.tops), "bottom_shapes": [list(b) for b in ls.bottoms],
                    "top_shapes": [list(t) for t in ls.tops],
                    "line": ls.layer.span.line if ls.layer.span else None,
                    "cost": {"params": c.params, "macs": c.macs,
                             "activation_bytes": c.activation_bytes,
                             "blobs": [list(b) for b in c.blobs]},
                    "maps": {t: _maps_json(maps.of(v), len(s))
                             for t, v, s in zip(ls.layer.tops, ls.layer.top_values, ls.tops)}}
                   for ls, c in zip(shapes.layers, total.layers)],
        "blobs": {k: list(v) for k, v in shapes.blobs.items()},
        "totals": {"params": total.params, "macs": total.macs,
                   "activation_bytes": total.activation_bytes, "unknown": total.unknown},
        "misaligned": [{"layer": m.layer.name, "line": m.layer.span.line if m.layer.span else None,
                        "input": m.input, "axis": axis_name(m.axis, len(maps.inputs[m.input]) + 2),
                        "bottoms": {b: _map_json(bm) for b, bm in m.maps}}
                       for m in maps.misaligned],
        "dropped": [{"name": n, "type": t, "reason": r} for n, t, r in net.dropped],
    }


def _maps_json(per_input: dict, ndim: int) -> dict:
    return {name: {axis_name(a, ndim): _map_json(m) for a, m in axes.items()}
            for name, axes in per_input.items()}


def _map_json(m) -> dict:
    return {"stride": json_number(m.stride), "offset": json_number(m.offset),
            "rf": json_number(m.rf)}


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
