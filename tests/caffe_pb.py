"""Caffe's protobuf messages, built at test time without protoc or a .proto file.

A ``FileDescriptorProto`` with caffe.proto's field numbers (only the fields the tests need, plus a few
that forks add) is assembled in code and turned into message classes with
``message_factory.GetMessageClassesForFiles``. Two schemas are built:

* ``PACKED``: as caffe.proto, ``BlobProto.data/diff/double_data/double_diff`` and ``BlobShape.dim``
  are ``[packed = true]`` -- what current Caffe writes;
* ``UNPACKED``: the same fields without the option -- every value is its own field, as old files have.

The raw-wire helpers at the end write fields by hand, for unknown fields and broken files.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
OPT, REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
STRING, INT32, INT64, UINT32, FLOAT, DOUBLE, BOOL, MESSAGE = (
    _F.TYPE_STRING, _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32, _F.TYPE_FLOAT, _F.TYPE_DOUBLE,
    _F.TYPE_BOOL, _F.TYPE_MESSAGE)

# V1LayerParameter.LayerType values (a few; field 5 is declared int32 here so tests can also write
# numbers no enum knows -- the wire encoding of an enum and an int32 is the same varint).
V1 = SimpleNamespace(NONE=0, ACCURACY=1, CONVOLUTION=4, DATA=5, DROPOUT=6, INNER_PRODUCT=14, LRN=15,
                     POOLING=17, RELU=18, SOFTMAX=20, SOFTMAX_LOSS=21, ELTWISE=25, DECONVOLUTION=39,
                     INTERP_DEEPLAB_V1=41)

# message name -> [(number, name, label, type, message type or None, packed)]
_SCHEMA: dict[str, list[tuple]] = {
    "BlobShape": [(1, "dim", REP, INT64, None, True)],
    "BlobProto": [
        (1, "num", OPT, INT32, None, False), (2, "channels", OPT, INT32, None, False),
        (3, "height", OPT, INT32, None, False), (4, "width", OPT, INT32, None, False),
        (5, "data", REP, FLOAT, None, True), (6, "diff", REP, FLOAT, None, True),
        (7, "shape", OPT, MESSAGE, "BlobShape", False),
        (8, "double_data", REP, DOUBLE, None, True), (9, "double_diff", REP, DOUBLE, None, True),
    ],
    "ParamSpec": [(1, "name", OPT, STRING, None, False), (3, "lr_mult", OPT, FLOAT, None, False),
                  (4, "decay_mult", OPT, FLOAT, None, False)],
    "ConvolutionParameter": [(1, "num_output", OPT, UINT32, None, False),
                             (2, "bias_term", OPT, BOOL, None, False),
                             (3, "pad", REP, UINT32, None, False),
                             (4, "kernel_size", REP, UINT32, None, False),
                             (5, "group", OPT, UINT32, None, False),
                             (6, "stride", REP, UINT32, None, False),
                             (17, "hole", OPT, UINT32, None, False)],  # DeepLab v1 fork number
    # Fork-only parameter messages (caffe-semantics §1.10).
    "InterpParameter": [(1, "height", OPT, INT32, None, False), (2, "width", OPT, INT32, None, False),
                        (3, "zoom_factor", OPT, INT32, None, False),
                        (4, "shrink_factor", OPT, INT32, None, False)],
    "NormalizeParameter": [(1, "across_spatial", OPT, BOOL, None, False),
                           (3, "channel_shared", OPT, BOOL, None, False),
                           (4, "eps", OPT, FLOAT, None, False)],
    "PermuteParameter": [(1, "order", REP, UINT32, None, False)],
    "PriorBoxParameter": [(1, "min_size", REP, FLOAT, None, False),
                          (3, "aspect_ratio", REP, FLOAT, None, False),
                          (6, "variance", REP, FLOAT, None, False),
                          (10, "step", OPT, FLOAT, None, False),
                          (13, "offset", OPT, FLOAT, None, False)],
    "BNParameter": [(3, "momentum", OPT, FLOAT, None, False), (4, "eps", OPT, FLOAT, None, False)],
    "LayerParameter": [
        (1, "name", OPT, STRING, None, False), (2, "type", OPT, STRING, None, False),
        (3, "bottom", REP, STRING, None, False), (4, "top", REP, STRING, None, False),
        (5, "loss_weight", REP, FLOAT, None, False), (6, "param", REP, MESSAGE, "ParamSpec", False),
        (7, "blobs", REP, MESSAGE, "BlobProto", False),
        (106, "convolution_param", OPT, MESSAGE, "ConvolutionParameter", False),
        (143, "interp_param", OPT, MESSAGE, "InterpParameter", False),   # DeepLab v2 / PSPNet
        (152, "bn_param", OPT, MESSAGE, "BNParameter", False),           # PSPNet
        (202, "permute_param", OPT, MESSAGE, "PermuteParameter", False),  # SSD
        (203, "prior_box_param", OPT, MESSAGE, "PriorBoxParameter", False),  # SSD
        (206, "norm_param", OPT, MESSAGE, "NormalizeParameter", False),   # SSD
    ],
    "V0LayerParameter": [
        (1, "name", OPT, STRING, None, False), (2, "type", OPT, STRING, None, False),
        (3, "num_output", OPT, UINT32, None, False), (8, "kernelsize", OPT, UINT32, None, False),
        (50, "blobs", REP, MESSAGE, "BlobProto", False), (51, "blobs_lr", REP, FLOAT, None, False),
    ],
    "V1LayerParameter": [
        (1, "layer", OPT, MESSAGE, "V0LayerParameter", False),
        (2, "bottom", REP, STRING, None, False), (3, "top", REP, STRING, None, False),
        (4, "name", OPT, STRING, None, False), (5, "type", OPT, INT32, None, False),
        (6, "blobs", REP, MESSAGE, "BlobProto", False), (7, "blobs_lr", REP, FLOAT, None, False),
        (8, "weight_decay", REP, FLOAT, None, False),
        (10, "convolution_param", OPT, MESSAGE, "ConvolutionParameter", False),
        (43, "interp_param", OPT, MESSAGE, "InterpParameter", False),  # DeepLab v1 fork
    ],
    "NetParameter": [
        (1, "name", OPT, STRING, None, False),
        (2, "layers", REP, MESSAGE, "V1LayerParameter", False),
        (3, "input", REP, STRING, None, False), (4, "input_dim", REP, INT32, None, False),
        (8, "input_shape", REP, MESSAGE, "BlobShape", False),
        (100, "layer", REP, MESSAGE, "LayerParameter", False),
    ],
}


def _build(package: str, packed: bool) -> SimpleNamespace:
    fdp = descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package, syntax="proto2")
    for message, fields in _SCHEMA.items():
        m = fdp.message_type.add(name=message)
        for number, name, label, type_, type_name, is_packed in fields:
            f = m.field.add(name=name, number=number, label=label, type=type_)
            if type_name is not None:
                f.type_name = f".{package}.{type_name}"
            if is_packed and packed:
                f.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    classes = message_factory.GetMessageClassesForFiles([fdp.name], pool)
    return SimpleNamespace(packed=packed, **{m: classes[f"{package}.{m}"] for m in _SCHEMA})


PACKED = _build("caffe_packed", packed=True)
UNPACKED = _build("caffe_unpacked", packed=False)


def blob(pb: SimpleNamespace, array, *, legacy: bool = False, double: bool = False,
         with_diff: bool = False):
    """A BlobProto holding ``array``: shape in ``shape.dim`` (or num/channels/height/width when
    ``legacy``; the array must then have 4 axes), values in ``data`` (or ``double_data``)."""
    array = np.asarray(array)
    b = pb.BlobProto()
    if legacy:
        b.num, b.channels, b.height, b.width = array.shape
    else:
        b.shape.SetInParent()
        b.shape.dim.extend(array.shape)
    values = array.ravel().tolist()
    if double:
        b.double_data.extend(values)
    else:
        b.data.extend(values)
    if with_diff:
        b.diff.extend([float(i) for i in range(array.size)])
    return b


# -- raw wire helpers -----------------------------------------------------------------------------
def varint(n: int) -> bytes:
    """Base-128 varint (negative numbers as 64-bit two's complement, as protobuf does)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def field_len(field: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return tag(field, 2) + varint(len(payload)) + payload


def field_varint(field: int, value: int) -> bytes:
    return tag(field, 0) + varint(value)


def field_fixed32(field: int, payload4: bytes) -> bytes:
    assert len(payload4) == 4
    return tag(field, 5) + payload4


def field_fixed64(field: int, payload8: bytes) -> bytes:
    assert len(payload8) == 8
    return tag(field, 1) + payload8


def unknown_fields(base: int) -> bytes:
    """One unknown field of every wire type caffe files may contain, numbered from ``base``."""
    return (field_varint(base, 300) + field_fixed64(base + 1, b"\x01" * 8)
            + field_len(base + 2, field_varint(1, 7) + field_len(2, b"nested")) +
            field_fixed32(base + 3, b"\x02" * 4))


def with_raw(message, raw: bytes):
    """Append raw wire bytes to a message (kept as unknown fields, written back on serialize)."""
    message.MergeFromString(raw)
    return message
