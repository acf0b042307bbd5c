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


def operand(ctx, what: str) -> tuple[tuple, int, bool]:
    """(shape of the scale/bias operand, number of axes of x after it, learned?)."""
    b = ctx.bottoms[0]
    shape = broadcast_shape(ctx, ctx.bottoms, what)
    if len(ctx.bottoms) == 2 and len(shape) == 0:
        return (), 0, False
    a = canonical_axis(ctx.p.get("axis"), len(b)) if len(b) else 0
    return shape, len(b) - a - len(shape), len(ctx.bottoms) == 1


def scale_lower(ctx):
    """CaffeScale: the operand reshaped to shape + (1,) * trailing, so torch's right-aligned
    broadcasting applies it from `axis` as Caffe does. Initial values from constant fillers
    (unset: scale 1, bias 0)."""
    shape, trailing, learned = operand(ctx, "scale")
    kw = {}
    if trailing:
        kw["trailing"] = trailing
    if not learned:
        kw["learned"] = False
    if ctx.p.get("bias_term"):
        kw["bias_term"] = True
    init = ctx.constant_filler("filler", 1.0)
    if learned and init != 1.0:
        kw["init"] = init
    bias_init = ctx.constant_filler("bias_filler", 0.0)
    if ctx.p.get("bias_term") and bias_init != 0.0:
        kw["bias_init"] = bias_init
    return ctx.module("CaffeScale", shape, **kw)


def scale_weights(ctx, blobs):
    """One bottom: blob 0 the scale, blob 1 the bias (bias_term). Two bottoms: the scale is
    bottom 1, and blob 0 is the bias."""
    shape, _, learned = operand(ctx, "scale")
    names = (["weight"] if learned else []) + (["bias"] if ctx.p.get("bias_term") else [])
    arrays = ctx.expect_blobs(blobs, [shape] * len(names))
    return dict(zip(names, arrays))


SPECS = [LayerSpec("Scale", scale_shape, param="scale_param", bottoms=(1, 2), lower=scale_lower,
                   weights=scale_weights)]
