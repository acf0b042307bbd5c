"""Element-wise neuron layers (neuron_layer.cpp and the *_layer.cpp of each; caffe-semantics.md
§2.0, §3.9, §3.10): the top has the bottom's shape.

ReLU (negative_slope), ELU (alpha), Sigmoid, TanH, AbsVal, BNLL, Power (power, scale, shift),
Exp / Log (base, scale, shift), Threshold (strict >, outputs 0/1), Clip (min, max),
Swish (beta), Dropout (identity at TEST; the caffe-fast-rcnn fork's scale_train: false scales by
1 - ratio).
"""
from __future__ import annotations

from . import LayerSpec, same_shape


def _exp_log_shape(ctx, bottoms):
    base = ctx.p.get("base")
    if base != -1 and base <= 0:
        ctx.fail(f"base must be > 0 (or -1 for e), got {base}", "base")
    return [bottoms[0]]


SPECS = [
    LayerSpec("ReLU", same_shape, param="relu_param"),
    LayerSpec("ELU", same_shape, param="elu_param"),
    LayerSpec("Sigmoid", same_shape, param="sigmoid_param"),
    LayerSpec("TanH", same_shape, param="tanh_param"),
    LayerSpec("AbsVal", same_shape, in_place=False),
    LayerSpec("BNLL", same_shape),
    LayerSpec("Power", same_shape, param="power_param"),
    LayerSpec("Exp", _exp_log_shape, param="exp_param"),
    LayerSpec("Log", _exp_log_shape, param="log_param"),
    LayerSpec("Threshold", same_shape, param="threshold_param"),
    LayerSpec("Clip", same_shape, param="clip_param"),
    LayerSpec("Swish", same_shape, param="swish_param"),
    LayerSpec("Dropout", same_shape, param="dropout_param"),
]
