"""Arithmetic shared by several layer rules: C integer division, axis canonicalisation and the
kernel/stride/pad/dilation expansion of Convolution, Deconvolution and Pooling
(caffe-semantics.md §0.2, §2.2-2.4)."""
from __future__ import annotations

import math
import struct

from ..errors import ShapeError


INT_MAX = 2**31 - 1      # Caffe's blob dimensions and element counts are C ints (Blob::Reshape)


def cdiv(a: int, b: int) -> int:
    """C++ int division: truncates toward zero (-1 / 2 == 0, unlike Python's -1 // 2 == -1)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def legacy_dim(shape, axis: int, bottom: int = 0) -> int:
    """Blob::LegacyShape, what num(), channels(), height(), width() (axis 0-3) read: the size of
    `axis` of a blob of at most 4 axes, 1 past its last axis."""
    if len(shape) > 4:
        raise ShapeError(f"bottom {bottom} {tuple(shape)} has {len(shape)} axes: this layer reads it "
                         f"with Caffe's legacy num/channels/height/width accessors, which take "
                         f"at most 4 (\"Cannot use legacy accessors on Blobs with > 4 axes\")")
    return shape[axis] if axis < len(shape) else 1


def count(shape) -> int:
    return math.prod(shape)


def canonical_axis(axis: int, num_axes: int, what: str = "axis") -> int:
    """Caffe's CanonicalAxisIndex: -n <= axis < n, negative counts from the end. `what`: the
    parameter that gave it (the error points there)."""
    if not -num_axes <= axis < num_axes:
        raise ShapeError(f"{what} {axis} is out of range for a {num_axes}-axis blob "
                         f"(valid: {-num_axes} to {num_axes - 1})", field=what)
    return axis + num_axes if axis < 0 else axis


def per_axis(p, name: str, h_name: str, w_name: str, n_spatial: int, default: int | None,
             *, missing_ok: bool = False) -> list[int]:
    """Expand a repeated field (`kernel_size`) or its `_h`/`_w` pair to one value per spatial axis
    (ConvolutionParameter rules, BaseConvolutionLayer::LayerSetUp)."""
    if p.has(h_name) or p.has(w_name):
        given = h_name if p.has(h_name) else w_name
        if n_spatial != 2:
            raise ShapeError(f"{h_name}/{w_name} can only be used for 2-D convolution "
                             f"(this one has {n_spatial} spatial axes)", field=given)
        if p.get(name):
            raise ShapeError(f"give either {name} or {h_name}/{w_name}, not both", field=given)
        h, w = p.get(h_name), p.get(w_name)
        if not missing_ok and not (p.has(h_name) and p.has(w_name)):
            raise ShapeError(f"{h_name} and {w_name} must be given together", field=given)
        return [h, w]
    values = list(p.get(name))
    if not values:
        if default is None:
            raise ShapeError(f"{name} is required (or {h_name} and {w_name})")
        return [default] * n_spatial
    if len(values) == 1:
        return values * n_spatial
    if len(values) != n_spatial:
        raise ShapeError(f"{name} has {len(values)} values; it needs 1 or {n_spatial} "
                         f"(one per spatial axis)", field=name)
    return values


def f32(x: float) -> float:
    """Round to the nearest float32 (Caffe computes the pooling quotient in single precision)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def f32_div(a: int, b: int) -> float:
    """a / b as a float32 division (double division then rounding to float32 is exact here)."""
    return f32(f32(a) / f32(b))


def collapse(values):
    """[3, 3] -> 3, [3, 5] -> (3, 5): the short form torch's constructors accept (lowering)."""
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values
