"""Normalize (SSD fork: normalize_layer.cpp; caffe-semantics.md §3.15): L2-normalise across
channels (per pixel) or across the whole item, then scale by a learned scalar or per-channel blob."""
from __future__ import annotations

from ..spec import LayerSpec, local


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


def normalize_weights(ctx, blobs):
    """Blob 0: the scale, a 0-axis scalar (channel_shared) or (C,)."""
    shared = ctx.p.get("channel_shared")
    (scale,) = ctx.expect_blobs(blobs, [() if shared else (ctx.bottoms[0][1],)])
    return {"weight": scale.reshape(-1)}


SPECS = [LayerSpec("Normalize", normalize_shape, param="norm_param", lower=normalize_lower,
                   weights=normalize_weights)]
