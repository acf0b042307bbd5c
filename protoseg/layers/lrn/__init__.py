"""LRN (lrn_layer.cpp; caffe-semantics.md §2.15, §3.5). ACROSS_CHANNELS:
y = x * (k + alpha/n * sum of x^2 over n channels)^-beta; WITHIN_CHANNEL: y = x * (1 + alpha/n^2 *
sum over an n x n window)^-beta (k ignored). 4-D bottom, odd local_size."""
from __future__ import annotations

from fractions import Fraction

from ..geometry import count
from ..spec import AxisRule, Cost, LayerSpec, equal_size, local, nn, same_axes


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


def lrn_cost(ctx) -> Cost:
    """The sum of squares: local_size multiply-adds per value across channels (as Netscope
    counts), local_size^2 within a channel (its window is local_size x local_size)."""
    n = ctx.p.get("local_size")
    within = ctx.p.get("norm_region") == "WITHIN_CHANNEL"
    return Cost(macs=count(ctx.tops[0]) * (n * n if within else n))


def lrn_axes(ctx) -> dict:
    """ACROSS_CHANNELS passes H and W through; WITHIN_CHANNEL is a local_size window of stride 1
    padded by (local_size - 1)/2 on H and W: same size, same centres, reach local_size - 1."""
    rules = same_axes(ctx)
    if ctx.p.get("norm_region") == "WITHIN_CHANNEL":
        for a in (2, 3):
            rules[a] = AxisRule(equal_size, reach=Fraction(ctx.p.get("local_size") - 1))
    return rules


SPECS = [LayerSpec("LRN", lrn_shape, param="lrn_param", lower=lrn_lower, cost=lrn_cost,
                   axes=lrn_axes)]
