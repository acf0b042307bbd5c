"""PReLU (prelu_layer.cpp; caffe-semantics.md §2.15, §3.9): y = max(x, 0) + a_c * min(x, 0),
c the channel (axis 1). Blob 0: slopes (C,), or a 0-axis scalar with channel_shared."""
from __future__ import annotations

from ..spec import Cost, LayerSpec, nn, spatial_axes


def prelu_shape(ctx, bottoms):
    b = bottoms[0]
    if len(b) < 2:
        ctx.fail(f"PReLU needs a bottom with at least 2 axes, got {tuple(b)}")
    return [b]


def prelu_lower(ctx):
    """nn.PReLU: one slope per channel (axis 1), or one for all with channel_shared. Initial
    slopes as Caffe's filler: 0.25 when unset, or a constant filler's value."""
    kw = {}
    if not ctx.p.get("channel_shared"):
        kw["num_parameters"] = ctx.bottoms[0][1]
    init = ctx.constant_filler("filler", 0.25)
    if init != 0.25:
        kw["init"] = init
    return ctx.module(nn("PReLU"), **kw)


def prelu_blobs(ctx) -> list:
    """Blob 0: (C,) slopes, or a 0-axis scalar with channel_shared."""
    return [() if ctx.p.get("channel_shared") else (ctx.bottoms[0][1],)]


def prelu_weights(ctx, blobs):
    """The slopes as PReLU's weight ((1,) when shared)."""
    (slopes,) = ctx.expect_blobs(blobs, prelu_blobs(ctx))
    return {"weight": slopes.reshape(-1)}


SPECS = [LayerSpec("PReLU", prelu_shape, param="prelu_param", lower=prelu_lower,
                   weights=prelu_weights, cost=lambda ctx: Cost(tuple(prelu_blobs(ctx))),
                   axes=spatial_axes)]
