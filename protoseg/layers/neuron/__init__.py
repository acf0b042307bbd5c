"""Element-wise neuron layers (neuron_layer.cpp and the *_layer.cpp of each; caffe-semantics.md
§2.0, §3.9, §3.10): the top has the bottom's shape.

ReLU (negative_slope), ELU (alpha), Sigmoid, TanH, AbsVal, BNLL, Power (power, scale, shift),
Exp / Log (base, scale, shift), Threshold (strict >, outputs 0/1), Clip (min, max),
Swish (beta), Dropout (identity at TEST; the caffe-fast-rcnn fork's scale_train: false scales by
1 - ratio).
"""
from __future__ import annotations

from ..spec import LayerSpec, free, local, nn, same_axes, same_shape


def _exp_log_shape(ctx, bottoms):
    base = ctx.p.get("base")
    if base != -1 and base <= 0:
        ctx.fail(f"base must be > 0 (or -1 for e), got {base}", "base")
    return [bottoms[0]]


def _inplace(ctx) -> dict:
    return {"inplace": True} if ctx.inplace else {}


def relu_lower(ctx):
    """nn.ReLU, or nn.LeakyReLU(negative_slope) (= max(x, 0) + slope * min(x, 0) for any slope).
    In place where Caffe overwrote its bottom and nothing else reads it."""
    slope = ctx.p.get("negative_slope")
    if slope == 0:
        return ctx.module(nn("ReLU"), **_inplace(ctx))
    return ctx.module(nn("LeakyReLU"), slope, **_inplace(ctx))


def elu_lower(ctx):
    alpha = ctx.p.get("alpha")
    return ctx.module(nn("ELU"), **({"alpha": alpha} if alpha != 1 else {}))


def _power_lower(ctx):
    p = ctx.p
    power, scale, shift = p.get("power"), p.get("scale"), p.get("shift")
    kw = {k: v for k, v, d in (("power", power, 1.0), ("scale", scale, 1.0), ("shift", shift, 0.0))
          if v != d}
    identity = power == 1 and scale == 1 and shift == 0
    return ctx.module(local(__name__, "CaffePower"), fresh=not identity, **kw)


def _exp_log_lower(ctx):
    p = ctx.p
    kw = {k: p.get(k) for k, d in (("base", -1.0), ("scale", 1.0), ("shift", 0.0)) if p.get(k) != d}
    return ctx.module(local(__name__, "CaffeExp" if ctx.layer.type == "Exp" else "CaffeLog"), **kw)


def _clip_lower(ctx):
    """Caffe's max(min, min(x, max)) is nn.Hardtanh(min, max)."""
    return ctx.module(nn("Hardtanh"), ctx.p.get("min"), ctx.p.get("max"))


def _swish_lower(ctx):
    beta = ctx.p.get("beta")
    return ctx.module(nn("SiLU")) if beta == 1 else ctx.module(local(__name__, "CaffeSwish"), beta)


def dropout_lower(ctx):
    """nn.Dropout (identity in eval mode, without a copy). The caffe-fast-rcnn fork's
    `scale_train: false` scales by 1 - ratio at test; a layer whose own phase is TRAIN, or
    Bayesian SegNet's `sample_weights_test: true`, keeps dropping out: CaffeDropout."""
    p = ctx.p
    ratio = p.get("dropout_ratio")
    scale_train = p.get("scale_train") if p.has("scale_train") else True
    sample = bool(p.has("sample_weights_test") and p.get("sample_weights_test")) or ctx.phase == "TRAIN"
    if sample and not 0 <= ratio <= 1:
        ctx.fail(f"dropout_ratio {ratio} is not in [0, 1]: this layer drops out at test, and Caffe "
                 f"then stops (caffe_rng_bernoulli checks 1 - dropout_ratio)", "dropout_ratio")
    if scale_train and not sample and 0 <= ratio <= 1:   # (Caffe's TEST ignores other ratios)
        return ctx.module(nn("Dropout"), p=ratio, fresh=False)
    kw = {}
    if not scale_train:
        kw["scale_train"] = False
    if sample:
        kw["sample"] = True
    return ctx.module(local(__name__, "CaffeDropout"), ratio, **kw)


def _simple(ref):
    def lower(ctx):
        return ctx.module(ref)
    lower.__doc__ = f"{ref.code}()"
    return lower


# Every neuron layer is element-wise: no blobs, no multiply-accumulates (docs/analysis.md), every
# axis passes through.
SPECS = [
    LayerSpec(type_, shape, param=param, in_place=in_place, lower=lower, cost=free,
              axes=same_axes)
    for type_, shape, param, in_place, lower in (
        ("ReLU", same_shape, "relu_param", True, relu_lower),
        ("ELU", same_shape, "elu_param", True, elu_lower),
        ("Sigmoid", same_shape, "sigmoid_param", True, _simple(nn("Sigmoid"))),
        ("TanH", same_shape, "tanh_param", True, _simple(nn("Tanh"))),
        ("AbsVal", same_shape, None, False, _simple(local(__name__, "CaffeAbsVal"))),
        # BNLL: x + log(1 + e^-x) for x > 0, else log(1 + e^x); Softplus agrees (above its
        # threshold 20 it returns x, which is what the float32 sum rounds to).
        ("BNLL", same_shape, None, True, _simple(nn("Softplus"))),
        ("Power", same_shape, "power_param", True, _power_lower),
        ("Exp", _exp_log_shape, "exp_param", True, _exp_log_lower),
        ("Log", _exp_log_shape, "log_param", True, _exp_log_lower),
        ("Threshold", same_shape, "threshold_param", True,
         lambda ctx: ctx.module(local(__name__, "CaffeThreshold"), threshold=ctx.p.get("threshold"))),
        ("Clip", same_shape, "clip_param", True, _clip_lower),
        ("Swish", same_shape, "swish_param", True, _swish_lower),
        ("Dropout", same_shape, "dropout_param", True, dropout_lower),
    )
]
