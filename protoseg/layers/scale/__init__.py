"""Scale and Bias (scale_layer.cpp, bias_layer.cpp; caffe-semantics.md §2.15, §3.7). Caffe's
Scale wraps a Bias layer for its bias_term; here both share the operand rule and the module.

Scale: y = x * s (+ b); Bias: y = x + b. The operand is broadcast along axes [axis, axis +
operand.ndim) of x. With one bottom it is the learned blob 0, of shape bottom[axis : axis +
num_axes] (num_axes -1: to the end); with two, it is bottom 1, whose shape must equal
bottom0[axis : axis + bottom1.ndim].
"""
from __future__ import annotations

from dataclasses import dataclass

from ..geometry import canonical_axis, count
from ..spec import AxisRule, Cost, LayerSpec, local

SCALE_MODULE = local(__name__, "CaffeScale")
BIAS_MODULE = local(__name__, "CaffeBias")


@dataclass(frozen=True)
class Operand:
    """The scale or bias operand: its shape, the number of axes of x after it, and whether it is
    a learned blob (one bottom) or bottom 1."""

    shape: tuple
    trailing: int
    learned: bool

    def covers(self, ndim: int) -> range:
        """The axes of x the operand runs along."""
        return range(ndim - self.trailing - len(self.shape), ndim - self.trailing)


def operand(ctx, bottoms) -> Operand:
    what = "scale" if ctx.layer.type == "Scale" else "bias"
    b = bottoms[0]
    p = ctx.p
    if len(bottoms) == 2:
        s = bottoms[1]
        if len(s) == 0:
            return Operand((), 0, False)
        a = canonical_axis(p.get("axis"), len(b))
        if tuple(b[a:a + len(s)]) != tuple(s):
            ctx.fail(f"the {what} bottom {tuple(s)} must equal bottom 0's axes {a}..{a + len(s) - 1}: "
                     f"{tuple(b[a:a + len(s)])} of {tuple(b)}", "axis")
        return Operand(tuple(s), len(b) - a - len(s), False)
    num_axes = p.get("num_axes")
    if num_axes < -1:
        ctx.fail(f"num_axes must be -1 (to the end) or >= 0, got {num_axes}", "num_axes")
    a = canonical_axis(p.get("axis"), len(b)) if len(b) or p.get("axis") else 0
    end = len(b) if num_axes == -1 else a + num_axes
    if end > len(b):
        ctx.fail(f"axis {a} + num_axes {num_axes} runs past the {len(b)} axes of {tuple(b)}", "num_axes")
    ctx.note(f"{what} blob shape {tuple(b[a:end])} (axes {a}..{end - 1} of {tuple(b)})")
    return Operand(tuple(b[a:end]), len(b) - end, True)


def broadcast_shape(ctx, bottoms):
    return [bottoms[0]]


def _operand_kwargs(op: Operand) -> dict:
    kw = {}
    if op.trailing:
        kw["trailing"] = op.trailing
    if not op.learned:
        kw["learned"] = False
    return kw


def scale_lower(ctx):
    """CaffeScale: the operand reshaped to shape + (1,) * trailing, so torch's right-aligned
    broadcasting applies it from `axis` as Caffe does. Initial values from constant fillers
    (unset: scale 1, bias 0)."""
    op: Operand = ctx.conf
    kw = _operand_kwargs(op)
    if ctx.p.get("bias_term"):
        kw["bias_term"] = True
    init = ctx.constant_filler("filler", 1.0)
    if op.learned and init != 1.0:
        kw["init"] = init
    bias_init = ctx.constant_filler("bias_filler", 0.0)
    if ctx.p.get("bias_term") and bias_init != 0.0:
        kw["bias_init"] = bias_init
    return ctx.module(SCALE_MODULE, op.shape, **kw)


def bias_lower(ctx):
    """CaffeBias, broadcast as Scale's operand; initial value from a constant filler (unset: 0)."""
    op: Operand = ctx.conf
    kw = _operand_kwargs(op)
    init = ctx.constant_filler("filler", 0.0)
    if op.learned and init != 0.0:
        kw["init"] = init
    return ctx.module(BIAS_MODULE, op.shape, **kw)


def scale_weights(ctx, blobs):
    """One bottom: blob 0 the scale, blob 1 the bias (bias_term). Two bottoms: the scale is
    bottom 1, and blob 0 is the bias."""
    names = _scale_blob_names(ctx)
    return dict(zip(names, ctx.expect_blobs(blobs, [ctx.conf.shape] * len(names))))


def _scale_blob_names(ctx) -> list:
    return (["weight"] if ctx.conf.learned else []) + (["bias"] if ctx.p.get("bias_term") else [])


def bias_weights(ctx, blobs):
    """One bottom: blob 0 the bias. Two bottoms: no blobs."""
    op: Operand = ctx.conf
    arrays = ctx.expect_blobs(blobs, [op.shape] if op.learned else [])
    return {"bias": arrays[0]} if op.learned else {}


def scale_cost(ctx) -> Cost:
    """One multiplication (a multiply-add with bias_term) per value, as Netscope counts it."""
    return Cost((ctx.conf.shape,) * len(_scale_blob_names(ctx)), count(ctx.tops[0]))


def bias_cost(ctx) -> Cost:
    """Additions only."""
    return Cost((ctx.conf.shape,) if ctx.conf.learned else ())


def operand_axes(ctx) -> dict:
    """The axes the operand does not run along pass through (bottom 0 only is mapped); along the
    others the operand fixes the size."""
    covered = ctx.conf.covers(len(ctx.bottoms[0]))
    return {a: AxisRule(lambda n, *operand: n, mapped=(0,))
            for a in range(len(ctx.bottoms[0])) if a not in covered}


SPECS = [
    LayerSpec("Scale", broadcast_shape, param="scale_param", conf=operand, bottoms=(1, 2),
              lower=scale_lower, weights=scale_weights, cost=scale_cost, axes=operand_axes),
    LayerSpec("Bias", broadcast_shape, param="bias_param", conf=operand, bottoms=(1, 2),
              lower=bias_lower, weights=bias_weights, cost=bias_cost, axes=operand_axes),
]
