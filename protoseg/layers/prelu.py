"""PReLU (prelu_layer.cpp; caffe-semantics.md §2.15, §3.9): y = max(x, 0) + a_c * min(x, 0),
c the channel (axis 1). Blob 0: slopes (C,), or a 0-axis scalar with channel_shared."""
from __future__ import annotations

from . import LayerSpec


def prelu_shape(ctx, bottoms):
    b = bottoms[0]
    if len(b) < 2:
        ctx.fail(f"PReLU needs a bottom with at least 2 axes, got {tuple(b)}")
    return [b]


SPECS = [LayerSpec("PReLU", prelu_shape, param="prelu_param")]
