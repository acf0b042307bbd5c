"""Pooling (pooling_layer.cpp; caffe-semantics.md §2.4, §3.3).

CEIL (default): out = ceil((in + 2*pad - kernel) / stride) + 1, the quotient in float32;
FLOOR: floor instead. Then, only when pad > 0: if (out - 1)*stride >= in + pad, out -= 1
(the last window must start inside the image or its left padding). With pad 0 Caffe keeps a
window that starts past the end (torch drops it). Forks' `ceil_mode: false` = round_mode FLOOR.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ..geometry import collapse, f32_div
from ..spec import AxisRule, LayerSpec, free, local, nn


@dataclass(frozen=True)
class PoolGeometry:
    """A pooling layer's parameters: kernel, stride and pad as (h, w), the rounding, the method."""

    kernel: tuple
    stride: tuple
    pad: tuple
    ceil: bool
    pool: str                   # MAX, AVE or STOCHASTIC
    global_pooling: bool

    @property
    def clip(self) -> bool:
        """Caffe's clip rule applies (pooling_layer.cpp tests `pad_h_ || pad_w_`, then clips
        both axes)."""
        return any(self.pad)


def pool_geometry(ctx, bottoms) -> PoolGeometry:
    p = ctx.p
    bottom = bottoms[0]
    if len(bottom) != 4:
        ctx.fail(f"Pooling needs a 4-axis (N, C, H, W) bottom, got {tuple(bottom)}")
    H, W = bottom[2], bottom[3]
    has_k = p.has("kernel_size")
    has_khw = p.has("kernel_h") and p.has("kernel_w")
    if p.get("global_pooling"):
        if has_k or p.has("kernel_h") or p.has("kernel_w"):
            ctx.fail("with global_pooling the kernel is the whole input: do not give a kernel size",
                     "global_pooling")
        kernel = [H, W]
    else:
        if has_k == has_khw:
            ctx.fail("give kernel_size, or kernel_h and kernel_w (one of the two, not both)",
                     "kernel_size" if has_k else None)
        kernel = [p.get("kernel_size")] * 2 if has_k else [p.get("kernel_h"), p.get("kernel_w")]
    if p.has("pad") and (p.has("pad_h") or p.has("pad_w")) or (p.has("pad_h") != p.has("pad_w")):
        ctx.fail("give pad, or pad_h and pad_w (one of the two, not both)", "pad_h")
    if p.has("stride") and (p.has("stride_h") or p.has("stride_w")) or (p.has("stride_h") != p.has("stride_w")):
        ctx.fail("give stride, or stride_h and stride_w (one of the two, not both)", "stride_h")
    pad = [p.get("pad_h"), p.get("pad_w")] if p.has("pad_h") else [p.get("pad")] * 2
    stride = [p.get("stride_h"), p.get("stride_w")] if p.has("stride_h") else [p.get("stride")] * 2
    if any(k <= 0 for k in kernel):
        ctx.fail(f"kernel size must be > 0, got {kernel}", "kernel_size")
    if any(s <= 0 for s in stride):
        ctx.fail(f"stride must be > 0, got {stride}", "stride")
    if p.get("global_pooling") and (any(pad) or any(s != 1 for s in stride)):
        ctx.fail("global_pooling needs pad 0 and stride 1", "global_pooling")
    if any(pad):
        if p.get("pool") not in ("MAX", "AVE"):
            ctx.fail(f"padding is only implemented for MAX and AVE pooling, not {p.get('pool')}", "pool")
        if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
            ctx.fail(f"pad {pad} must be smaller than the kernel {kernel}", "pad")
    ceil = True
    if p.has("ceil_mode"):                 # fork spelling (OpenCV's proto, BVLC PR #3057)
        if p.has("round_mode"):
            ctx.fail("give round_mode or the fork's ceil_mode, not both", "ceil_mode")
        ceil = p.get("ceil_mode")
    elif p.has("round_mode"):
        ceil = p.get("round_mode") == "CEIL"
    if len(ctx.layer.tops) == 2 and p.get("pool") != "MAX":
        ctx.fail("a second top (the argmax mask) exists only for MAX pooling", "pool")
    return PoolGeometry(tuple(kernel), tuple(stride), tuple(pad), ceil, p.get("pool"),
                        p.get("global_pooling"))


def pooled(size: int, k: int, s: int, p: int, ceil: bool, clip: bool) -> tuple[int, float, bool]:
    """Caffe's pooled size along one axis: (size, the float32 quotient it was rounded from,
    whether the clip rule fired). `clip`: the layer has padding on any axis."""
    q = f32_div(size + 2 * p - k, s)
    out = int(math.ceil(q) if ceil else math.floor(q)) + 1
    fired = clip and (out - 1) * s >= size + p
    return out - fired, q, fired


def pool_shape(ctx, bottoms):
    b = bottoms[0]
    g: PoolGeometry = ctx.conf
    if g.global_pooling:
        ctx.note(f"global {g.pool} pooling over {b[2]}x{b[3]} -> 1x1")
        return [(b[0], b[1], 1, 1)] * len(ctx.layer.tops)
    out = [b[0], b[1]]
    how = "ceil" if g.ceil else "floor"
    for i, axis in enumerate(("H", "W")):
        size, k, s, p = b[2 + i], g.kernel[i], g.stride[i], g.pad[i]
        o, q, fired = pooled(size, k, s, p, g.ceil, g.clip)
        text = f"{how}(({size} + 2*{p} - {k}) / {s}) + 1 = {how}({q:g}) + 1 = {o + fired}"
        if fired:
            text += f"; clip rule fired: ({o + 1} - 1)*{s} >= {size} + {p}, so {o}"
        elif g.clip:
            text += "; clip rule checked (the layer has padding), did not fire"
        else:
            text += "; no clip rule (pad 0)"
        ctx.note(f"{axis}: {text}")
        out.append(o)
    return [tuple(out)] * len(ctx.layer.tops)


def pool_axes(ctx) -> dict:
    """H and W: x_top = x/stride + (pad - (kernel - 1)/2)/stride (coord_map.py; the rounding does not
    move the windows). Global pooling is one window over the whole axis (kernel = the bottom's
    size, stride 1, pad 0), whatever the size."""
    g: PoolGeometry = ctx.conf
    rules = {}
    for i in range(2):
        if g.global_pooling:
            n = ctx.bottoms[0][2 + i]
            rules[2 + i] = AxisRule(lambda size: 1, Fraction(1), -Fraction(n - 1, 2), Fraction(n - 1))
            continue
        k, s, p = g.kernel[i], g.stride[i], g.pad[i]
        rules[2 + i] = AxisRule(lambda size, k=k, s=s, p=p: pooled(size, k, s, p, g.ceil, g.clip)[0],
                                Fraction(1, s), (p - Fraction(k - 1, 2)) / s, Fraction(k - 1))
    return rules


def _torch_pooled_size(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    """torch's MaxPool2d/AvgPool2d output size (ATen pooling_output_shape): in ceil mode the
    last window is dropped when it starts past in + pad, whatever the padding."""
    num = size + 2 * p - k + (s - 1 if ceil else 0)
    out = num // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_lower(ctx):
    """nn.MaxPool2d / nn.AvgPool2d (count_include_pad, whose divisor is Caffe's: padding counts,
    the ceil overhang does not) when torch gives Caffe's size for every input size: pad <=
    kernel/2, and padding, floor mode or stride <= kernel (else torch drops a last window
    Caffe keeps). Otherwise, and for the argmax mask top, CaffePooling. Global pooling is
    nn.AdaptiveMaxPool2d(1) / nn.AdaptiveAvgPool2d(1). STOCHASTIC at TEST: CaffeStochasticPooling
    (pooling_layer.cu's StoPoolForwardTest; Caffe's CPU forward has no STOCHASTIC branch and
    stops with "Not Implemented Yet"); at TRAIN Caffe's GPU code samples one value per window,
    which is refused."""
    b = ctx.bottoms[0]
    g: PoolGeometry = ctx.conf
    mask = len(ctx.layer.tops) == 2
    if g.pool == "STOCHASTIC":
        if ctx.phase == "TRAIN":
            ctx.unsupported("STOCHASTIC pooling in the TRAIN phase samples a value per window at "
                            "random (Caffe's GPU code); protoseg compiles its TEST-phase average")
        kw = {} if g.ceil else {"ceil_mode": False}
        return ctx.module(local(__name__, "CaffeStochasticPooling"), collapse(g.kernel),
                          collapse(g.stride), **kw)
    if g.global_pooling and not mask:
        return ctx.module(nn("AdaptiveMaxPool2d" if g.pool == "MAX" else "AdaptiveAvgPool2d"), 1)
    same = not mask and all(
        p <= k // 2 and (not g.ceil or any(g.pad) or s <= k)
        and _torch_pooled_size(size, k, s, p, g.ceil) == out
        for size, k, s, p, out in zip(b[2:], g.kernel, g.stride, g.pad, ctx.tops[0][2:]))
    kw = {"kernel_size": collapse(g.kernel), "stride": collapse(g.stride)}
    if any(g.pad):
        kw["padding"] = collapse(g.pad)
    if same:
        if g.ceil:
            kw["ceil_mode"] = True
        return ctx.module(nn("MaxPool2d" if g.pool == "MAX" else "AvgPool2d"), **kw)
    if not g.ceil:
        kw["ceil_mode"] = False
    if mask:
        kw["mask"] = True
    return ctx.module(local(__name__, "CaffePooling"), g.pool, **kw)


SPECS = [LayerSpec("Pooling", pool_shape, param="pooling_param", conf=pool_geometry, tops=(1, 2),
                   in_place=False, lower=pool_lower, cost=free, axes=pool_axes)]
