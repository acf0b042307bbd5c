"""Bias (bias_layer.cpp; caffe-semantics.md §3.7): y = x + b, b broadcast like Scale's operand
(learned blob 0 with one bottom, bottom 1 with two)."""
from __future__ import annotations

from . import LayerSpec
from .scale import broadcast_shape


def bias_shape(ctx, bottoms):
    broadcast_shape(ctx, bottoms, "bias")
    return [bottoms[0]]


def bias_lower(ctx):
    """CaffeBias, broadcast as Scale's operand; initial value from a constant filler (unset: 0)."""
    from .scale import operand
    shape, trailing, learned = operand(ctx, "bias")
    kw = {}
    if trailing:
        kw["trailing"] = trailing
    if not learned:
        kw["learned"] = False
    init = ctx.constant_filler("filler", 0.0)
    if learned and init != 0.0:
        kw["init"] = init
    return ctx.module("CaffeBias", shape, **kw)


def bias_weights(ctx, blobs):
    """One bottom: blob 0 the bias. Two bottoms: no blobs."""
    from .scale import operand
    shape, _, learned = operand(ctx, "bias")
    arrays = ctx.expect_blobs(blobs, [shape] if learned else [])
    return {"bias": arrays[0]} if learned else {}


SPECS = [LayerSpec("Bias", bias_shape, param="bias_param", bottoms=(1, 2), lower=bias_lower,
                   weights=bias_weights)]
