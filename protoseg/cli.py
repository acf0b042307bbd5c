"""The `protoseg` command line. Errors on bad input: stderr and exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import json
import sys

from .errors import ProtosegError


def _shape(s) -> str:
    return "x".join(str(d) for d in s) if s else "scalar"


def _add_net_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("prototxt", help="the net definition (.prototxt)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=N,C,H,W",
                   help="set or override the shape of a net input or data-layer top (repeatable)")
    p.add_argument("--phase", default="test", choices=["test", "train"], type=str.lower,
                   help="which phase's layers to keep (default: test)")
    p.add_argument("--stage", action="append", default=[], help="add a net state stage (repeatable)")
    p.add_argument("--level", type=int, default=0, help="net state level (default 0)")


def _load(args):
    from .net import load_net
    from .shapes import infer_shapes, parse_input_spec
    inputs = dict(parse_input_spec(s) for s in args.input)
    net = load_net(args.prototxt, phase=args.phase, level=args.level, stages=args.stage)
    return net, infer_shapes(net, inputs)


def shapes_json(shapes) -> dict:
    net = shapes.net
    return {
        "name": net.name,
        "phase": net.phase,
        "format": net.format,
        "inputs": {k: list(v) for k, v in shapes.inputs.items()},
        "layers": [{"name": ls.layer.name, "type": ls.layer.type, "bottoms": list(ls.layer.bottoms),
                    "tops": list(ls.layer.tops), "bottom_shapes": [list(b) for b in ls.bottoms],
                    "top_shapes": [list(t) for t in ls.tops], "line": ls.layer.span.line if ls.layer.span else None}
                   for ls in shapes.layers],
        "blobs": {k: list(v) for k, v in shapes.blobs.items()},
        "dropped": [{"name": n, "type": t, "reason": r} for n, t, r in net.dropped],
    }


def format_table(shapes, markdown: bool = False) -> str:
    rows = []
    for ls in shapes.layers:
        l = ls.layer
        flow = ", ".join(l.bottoms) + " -> " + ", ".join(l.tops) if l.bottoms else "-> " + ", ".join(l.tops)
        tops = ", ".join(_shape(t) for t in ls.tops) or "-"
        rows.append((l.name, l.type, flow, tops))
    head = ("layer", "type", "bottoms -> tops", "top shape")
    if markdown:
        out = [f"# {shapes.net.name or 'net'}", "", "| " + " | ".join(head) + " |",
               "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:3], widths)) + "  " + head[3]]
    lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(head[3]))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]
    return "\n".join(lines)


def format_explain(shapes) -> str:
    out = [f"net {shapes.net.name or '(unnamed)'}: {len(shapes.layers)} layers, phase {shapes.net.phase}"]
    for ls in shapes.layers:
        l = ls.layer
        ins = ", ".join(f"{b} {_shape(s)}" for b, s in zip(l.bottoms, ls.bottoms))
        outs = ", ".join(f"{t} {_shape(s)}" for t, s in zip(l.tops, ls.tops))
        out.append(f"\n{l.name} ({l.type}){'  [in place]' if any(l.in_place) else ''}")
        if ins:
            out.append(f"  in : {ins}")
        for n in ls.notes:
            out.append(f"  {n}")
        out.append(f"  out: {outs or '(no tops)'}")
    if shapes.net.dropped:
        out.append(f"\nnot in phase {shapes.net.phase}: " + ", ".join(n for n, _, _ in shapes.net.dropped))
    return "\n".join(out)


def cmd_shapes(args) -> int:
    net, shapes = _load(args)
    if args.format == "json":
        print(json.dumps(shapes_json(shapes), indent=1 if args.pretty else None))
    elif args.explain:
        print(format_explain(shapes))
    else:
        print(format_table(shapes, markdown=args.format == "markdown"))
    return 0


def cmd_inspect(args) -> int:
    from .caffemodel import format_inspect, read_caffemodel
    print(format_inspect(read_caffemodel(args.caffemodel, progress=None if not args.quiet else False)))
    return 0


def cmd_port(args) -> int:
    from .port import port
    from .shapes import parse_input_spec
    inputs = dict(parse_input_spec(s) for s in args.input)
    state = port(args.caffemodel, args.prototxt, args.output, inputs=inputs, fmt=args.format,
                 strict=not args.no_strict, phase=args.phase, progress=False if args.quiet else None)
    n = sum(v.size for v in state.values())
    layers = len({k.rsplit(".", 1)[0] for k in state})
    print(f"wrote {args.output}: {len(state)} tensors of {layers} layers, {n:,} parameters "
          f"({n * 4 / 1e6:.1f} MB float32)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="protoseg", description="Read Caffe nets without Caffe: "
                                     "shapes, PyTorch compilation and weight porting.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("shapes", help="compute every blob's shape as Caffe does")
    _add_net_args(p)
    p.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    p.add_argument("--explain", action="store_true", help="show the arithmetic of every layer")
    p.add_argument("--pretty", action="store_true", help="indent JSON output")
    p.set_defaults(func=cmd_shapes)

    p = sub.add_parser("inspect", help="list a .caffemodel's layers, blob shapes, dtypes and parameter counts")
    p.add_argument("caffemodel")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("port", help="port a .caffemodel's weights to safetensors (or a .pt state_dict) "
                                    "for the module `protoseg compile` builds")
    p.add_argument("caffemodel")
    p.add_argument("--prototxt", required=True, help="the net the weights belong to")
    p.add_argument("-o", "--output", required=True, help="output file (.safetensors, or .pt)")
    p.add_argument("--format", choices=["safetensors", "pt"], default=None,
                   help="default: from the output's extension, safetensors otherwise")
    p.add_argument("--no-strict", action="store_true",
                   help="ignore caffemodel layers the prototxt lacks and learnable layers the "
                        "caffemodel lacks (Caffe's own behaviour); shape mismatches stay errors")
    p.add_argument("--input", action="append", default=[], metavar="NAME=N,C,H,W")
    p.add_argument("--phase", default="test", choices=["test", "train"], type=str.lower)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_port)

    from .cli_compile import add_compile_parser
    add_compile_parser(sub)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ProtosegError as e:
        print(f"protoseg: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:     # output piped into `head`
        return 0
    except OSError as e:        # a file the user named cannot be read or written: bad input, not a bug
        where = f"{e.filename}: " if e.filename else ""
        print(f"protoseg: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
