"""`protoseg export`: a Caffe net -> an ONNX file (opset 18), checked by onnx.checker, values named
after the Caffe blobs, height and width dynamic where the net allows it."""
from __future__ import annotations

from .options import add_net_options, add_outputs_option, input_shapes, net_state, output_names


def register(sub):
    p = sub.add_parser("export", help="export a net as ONNX",
                       description="Export a Caffe net as an ONNX model (opset 18) through its "
                                   "compiled PyTorch module, in the inference mode (BatchNorm and "
                                   "Scale folded into the convolutions) unless --no-optimize. "
                                   "Needs the onnx extra: pip install 'protoseg[onnx]'.")
    add_net_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument("--weights", metavar="CAFFEMODEL", help="the weights the model holds")
    p.add_argument("--no-strict", action="store_true",
                   help="with --weights: ignore layers missing on either side (Caffe's behaviour)")
    add_outputs_option(p, "model")
    p.add_argument("--static", action="store_true",
                   help="fixed input sizes, even where the net allows dynamic height and width")
    p.add_argument("--no-optimize", action="store_true",
                   help="export every layer as it is (no folding)")
    return p


def run(args) -> int:
    from ..export import export_onnx

    result = export_onnx(args.prototxt, args.output, args.weights, input_shapes(args), output_names(args),
                         strict=not args.no_strict, optimize=not args.no_optimize,
                         dynamic=not args.static, **net_state(args))
    graph = result.model.graph
    print(f"wrote {args.output} (opset {result.model.opset_import[0].version}, "
          f"{len(graph.node)} nodes; inputs {', '.join(i.name for i in graph.input)}; outputs "
          f"{', '.join(o.name for o in graph.output)})")
    if result.dynamic:
        print(f"dynamic height and width: {', '.join(result.dynamic)}")
    else:
        print("fixed input sizes: " + "; ".join(result.fixed_by))
    return 0
