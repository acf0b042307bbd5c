"""Scale (scale_layer.cpp; caffe-semantics.md §2.15, §3.7).

y = x * s (+ b), s broadcast along axes [axis, axis + s.ndim) of x. With one bottom s is the
learned blob 0 of shape bottom[axis : axis + num_axes] (num_axes -1: to the end); with two,
s is bottom 1, whose shape must equal bottom0[axis : axis + bottom1.ndim].
"""
from __future__ import annotations

from . import LayerSpec
from .geometry import canonical_axis


def broadcast_shape(ctx, bottoms, what: str) -> tuple:
    """The shape of the scale/bias operand, checked against bottom 0."""
    b = bottoms[0]
    p = ctx.p
    if len(bottoms) == 2:
        s = bottoms[1]
        if len(s) == 0:
            return ()
        a = canonical_axis(p.get("axis"), len(b))
        if tuple(b[a:a + len(s)]) != tuple(s):
            ctx.fail(f"the {what} bottom {tuple(s)} must equal bottom 0's axes {a}..{a + len(s) - 1}: "
                     f"{tuple(b[a:a + len(s)])} of {tuple(b)}", "axis")
        return tuple(s)
    num_axes = p.get("num_axes")
    if num_axes < -1:
        ctx.fail(f"num_axes must be -1 (to the end) or >= 0, got {num_axes}", "num_axes")
    a = canonical_axis(p.get("axis"), len(b)) if len(b) or p.get("axis") else 0
    end = len(b) if num_axes == -1 else a + num_axes
    if end > len(b):
        ctx.fail(f"axis {a} + num_axes {num_axes} runs past the {len(b)} axes of {tuple(b)}", "num_axes")
    shape = tuple(b[a:end])
    ctx.note(f"{what} blob shape {shape} (axes {a}..{end - 1} of {tuple(b)})")
    return shape


def scale_shape(ctx, bottoms):
    broadcast_shape(ctx, bottoms, "scale")
    return [bottoms[0]]


SPECS = [LayerSpec("Scale", scale_shape, param="scale_param", bottoms=(1, 2))]
