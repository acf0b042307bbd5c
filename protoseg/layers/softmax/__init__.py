"""Softmax (softmax_layer.cpp; caffe-semantics.md §2.13, §3.11): along canonical(axis), default 1."""
from __future__ import annotations

from ..spec import LayerSpec, nn
from ..geometry import canonical_axis


def softmax_shape(ctx, bottoms):
    canonical_axis(ctx.p.get("axis"), len(bottoms[0]))
    return [bottoms[0]]


def softmax_lower(ctx):
    """Max-subtracted exponentials normalised along the axis: nn.Softmax(dim)."""
    return ctx.module(nn("Softmax"), dim=canonical_axis(ctx.p.get("axis"), len(ctx.bottoms[0])))


SPECS = [LayerSpec("Softmax", softmax_shape, param="softmax_param", lower=softmax_lower)]
