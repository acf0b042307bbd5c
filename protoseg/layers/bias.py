"""Bias (bias_layer.cpp; caffe-semantics.md §3.7): y = x + b, b broadcast like Scale's operand
(learned blob 0 with one bottom, bottom 1 with two)."""
from __future__ import annotations

from . import LayerSpec
from .scale import broadcast_shape


def bias_shape(ctx, bottoms):
    broadcast_shape(ctx, bottoms, "bias")
    return [bottoms[0]]


SPECS = [LayerSpec("Bias", bias_shape, param="bias_param", bottoms=(1, 2))]
