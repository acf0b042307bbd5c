"""BatchNorm (batch_norm_layer.cpp; caffe-semantics.md §2.15, §3.6).

Blobs: mean_sum (C,), var_sum (C,), factor (1,). mean = mean_sum / factor, var = var_sum / factor
(factor 0 gives 0). y = (x - mean) / sqrt(var + eps). `use_global_stats` unset means
"layer phase is TEST". No scale or shift: Caffe nets follow it with a Scale layer.
"""
from __future__ import annotations

from . import LayerSpec


def bn_shape(ctx, bottoms):
    b = bottoms[0]
    if len(b) < 1:
        ctx.fail("BatchNorm needs a bottom with at least 1 axis")
    return [b]


SPECS = [LayerSpec("BatchNorm", bn_shape, param="batch_norm_param")]
