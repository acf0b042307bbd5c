"""Normalize (SSD fork: normalize_layer.cpp; caffe-semantics.md §3.15): L2-normalise across
channels (per pixel) or across the whole item, then scale by a learned scalar or per-channel blob."""
from __future__ import annotations

from . import LayerSpec


def normalize_shape(ctx, bottoms):
    if len(bottoms[0]) < 2:
        ctx.fail(f"Normalize needs at least 2 axes, got {tuple(bottoms[0])}")
    return [bottoms[0]]


SPECS = [LayerSpec("Normalize", normalize_shape, param="norm_param")]
