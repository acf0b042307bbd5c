"""`protoseg upgrade`: a V0 or V1 prototxt written as a V2 net, as Caffe's upgrade_net_proto_text
does (net.upgrade_net), in canonical form with its comments. Imports no torch."""
from __future__ import annotations

from .fmt import add_output_options, write_result


def register(sub):
    p = sub.add_parser("upgrade", help="write a legacy (V0, V1) prototxt as a current (V2) one",
                       description="Write a net as Caffe's upgrade_net_proto_text does: V0 and V1 "
                                   "`layers` become `layer {}` with type strings, blobs_lr and "
                                   "weight_decay become `param { lr_mult decay_mult }`, V0 padding "
                                   "layers fold into their consumer, `input:` with `input_dim` or "
                                   "`input_shape` becomes an Input layer; comments are kept. A V2 "
                                   "net is written unchanged in meaning. The output is in the "
                                   "canonical form of `protoseg fmt`.")
    add_output_options(p)
    return p


def run(args) -> int:
    from ..textwriter import _formatted
    fmt, text = _formatted(args.prototxt, None, None, True, "upgrade")
    path = write_result(args, text)
    if path is not None:
        layers = sum(line.startswith("layer {") for line in text.splitlines())
        print(f"wrote {path}: {fmt} -> V2, {layers} layers")
    return 0
