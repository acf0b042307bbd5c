"""Softmax (softmax_layer.cpp; caffe-semantics.md §2.13, §3.11): along canonical(axis), default 1."""
from __future__ import annotations

from ..spec import LayerSpec, free, nn, whole_axes
from ..geometry import canonical_axis


def softmax_shape(ctx, bottoms):
    canonical_axis(ctx.p.get("axis"), len(bottoms[0]))
    return [bottoms[0]]


def softmax_lower(ctx):
    """Max-subtracted exponentials normalised along the axis: nn.Softmax(dim)."""
    return ctx.module(nn("Softmax"), dim=canonical_axis(ctx.p.get("axis"), len(ctx.bottoms[0])))


def softmax_axes(ctx) -> dict:
    """Same sizes; every value depends on the whole softmax axis."""
    return whole_axes(ctx, [canonical_axis(ctx.p.get("axis"), len(ctx.bottoms[0]))])


SPECS = [LayerSpec("Softmax", softmax_shape, param="softmax_param", lower=softmax_lower,
                   cost=free, axes=softmax_axes)]
