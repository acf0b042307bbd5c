"""`protoseg port`: a caffemodel's weights as safetensors (or a torch state_dict) for the module
`protoseg compile` builds."""
from __future__ import annotations

from .options import add_net_options, input_shapes, net_state


def register(sub):
    p = sub.add_parser("port", help="port a .caffemodel's weights to safetensors (or a .pt "
                                    "state_dict) for the module `protoseg compile` builds")
    p.add_argument("caffemodel")
    add_net_options(p, prototxt="option")
    p.add_argument("-o", "--output", required=True, help="output file (.safetensors, or .pt)")
    p.add_argument("--format", choices=["safetensors", "pt"], default=None,
                   help="default: from the output's extension, safetensors otherwise")
    p.add_argument("--no-strict", action="store_true",
                   help="ignore caffemodel layers the prototxt lacks and learnable layers the "
                        "caffemodel lacks (Caffe's own behaviour); shape mismatches stay errors")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    from ..weights import port
    state = port(args.caffemodel, args.prototxt, args.output, inputs=input_shapes(args),
                 fmt=args.format, strict=not args.no_strict, **net_state(args),
                 progress=False if args.quiet else None)
    n = sum(v.size for v in state.values())
    layers = len({k.rsplit(".", 1)[0] for k in state})
    print(f"wrote {args.output}: {len(state)} tensors of {layers} layers, {n:,} parameters "
          f"({n * 4 / 1e6:.1f} MB float32)")
    return 0
