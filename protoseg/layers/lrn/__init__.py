"""LRN (lrn_layer.cpp; caffe-semantics.md §2.15, §3.5). ACROSS_CHANNELS:
y = x * (k + alpha/n * sum of x^2 over n channels)^-beta; WITHIN_CHANNEL: y = x * (1 + alpha/n^2 *
sum over an n x n window)^-beta (k ignored). 4-D bottom, odd local_size."""
from __future__ import annotations

from ..spec import LayerSpec, local, nn


def lrn_shape(ctx, bottoms):
    b = bottoms[0]
    if len(b) != 4:
        ctx.fail(f"LRN needs a 4-axis bottom, got {tuple(b)}")
    if ctx.p.get("local_size") % 2 == 0:
        ctx.fail(f"local_size must be odd, got {ctx.p.get('local_size')}", "local_size")
    return [b]


def lrn_lower(ctx):
    """ACROSS_CHANNELS is exactly nn.LocalResponseNorm(size, alpha, beta, k) (alpha divided by
    n there too); WITHIN_CHANNEL is CaffeLRNWithinChannel (alpha / n^2, k ignored)."""
    p = ctx.p
    if p.get("norm_region") == "WITHIN_CHANNEL":
        return ctx.module(local(__name__, "CaffeLRNWithinChannel"), p.get("local_size"), alpha=p.get("alpha"),
                          beta=p.get("beta"))
    return ctx.module(nn("LocalResponseNorm"), p.get("local_size"), alpha=p.get("alpha"),
                      beta=p.get("beta"), k=p.get("k"))


SPECS = [LayerSpec("LRN", lrn_shape, param="lrn_param", lower=lrn_lower)]
