"""Normalize (SSD fork: normalize_layer.cpp; caffe-semantics.md §3.15): L2-normalise across
channels (per pixel) or across the whole item, then scale by a learned scalar or per-channel blob."""
from __future__ import annotations

from ..geometry import count
from ..spec import Cost, LayerSpec, local, spatial_axes, whole_axes


def normalize_shape(ctx, bottoms):
    if len(bottoms[0]) < 2:
        ctx.fail(f"Normalize needs at least 2 axes, got {tuple(bottoms[0])}")
    return [bottoms[0]]


def normalize_lower(ctx):
    p = ctx.p
    kw = {}
    if not p.get("across_spatial"):
        kw["across_spatial"] = False
    if not p.get("channel_shared"):
        kw["channel_shared"] = False
    if p.get("eps") != 1e-10:
        kw["eps"] = p.get("eps")
    init = ctx.constant_filler("scale_filler", 1.0)
    if init != 1.0:
        kw["init"] = init
    return ctx.module(local(__name__, "CaffeNormalize"), ctx.bottoms[0][1], **kw)


def normalize_blobs(ctx) -> list:
    """Blob 0: the scale, a 0-axis scalar (channel_shared) or (C,)."""
    return [() if ctx.p.get("channel_shared") else (ctx.bottoms[0][1],)]


def normalize_weights(ctx, blobs):
    (scale,) = ctx.expect_blobs(blobs, normalize_blobs(ctx))
    return {"weight": scale.reshape(-1)}


def normalize_cost(ctx) -> Cost:
    """The sum of squares: one multiply-add per value (Netscope counts it as an LRN of size 1)."""
    return Cost(tuple(normalize_blobs(ctx)), count(ctx.tops[0]))


def normalize_axes(ctx) -> dict:
    """Same sizes; across_spatial: every value depends on the whole item (its norm). The channel
    axis, which the scale blob is as long as, keeps no rule."""
    if ctx.p.get("across_spatial"):
        rules = whole_axes(ctx, range(1, len(ctx.bottoms[0])))
        del rules[1]
        return rules
    return spatial_axes(ctx)


SPECS = [LayerSpec("Normalize", normalize_shape, param="norm_param", lower=normalize_lower,
                   weights=normalize_weights, cost=normalize_cost, axes=normalize_axes)]
