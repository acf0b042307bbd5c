"""The torch module of this layer type (see the package docstring)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import pooled


class CaffePooling(nn.Module):
    """2-D MAX/AVE pooling with Caffe's output size (pooling_layer.cpp), for the cases torch's
    MaxPool2d/AvgPool2d cannot express: pad > kernel/2, a second top (the argmax mask), or
    ceil rounding without padding and stride > kernel, where Caffe keeps a last window that
    starts past the end of the input (torch drops it).

    Size: out = ceil((in + 2*pad - kernel) / stride) + 1 (floor with ceil_mode=False); only
    when the layer has padding (on either axis), a last window starting at or past in + pad is
    dropped, on both axes. The input is padded
    explicitly (-inf for MAX, 0 for AVE) by `pad` before and by whatever the last window needs
    after, then pooled without padding. MAX: padding never wins; an empty window gives
    -FLT_MAX (Caffe's initial value), and so does a window of -inf values. AVE: the sum is
    divided by Caffe's pool_size = (min(start + k, in + pad) - start) per axis, which counts
    padding but not the ceil overhang; an empty window (pad 0) divides 0 by a size <= 0 per
    axis, giving NaN (0/0) or -0 exactly like Caffe's CPU loop. The mask holds the argmax
    position h * W + w in the unpadded input as a float (-1 for an empty window).
    """

    def __init__(self, pool, kernel_size, stride, padding=0, ceil_mode=True, mask=False):
        super().__init__()
        if pool not in ("MAX", "AVE"):
            raise ValueError(f"pool must be MAX or AVE, not {pool!r}")
        self.pool = pool
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        self.ceil_mode = ceil_mode
        self.mask = mask
        self._plans = {}

    def extra_repr(self):
        return (f"{self.pool}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}, mask={self.mask}")

    def prepare(self, shape):
        """Called once with the inferred input shape when the net is built: the plan for that
        size is made then, not during the first forward."""
        self.plan(shape[-2], shape[-1], torch.device("cpu"))

    def plan(self, height, width, device=None):
        """(pads for F.pad, output size, AVE divisor or None) for one input size, cached."""
        key = (height, width, str(device))
        plan = self._plans.get(key)
        if plan is None:
            pads, outs, sizes = [], [], []
            for size, k, s, p in zip((height, width), self.kernel_size, self.stride, self.padding):
                out = pooled(size, k, s, p, self.ceil_mode, any(self.padding))[0]
                after = max(0, (out - 1) * s - p + k - size)
                pads.append((p, after))
                outs.append(out)
                sizes.append([min(o * s - p + k, size + p) - (o * s - p) for o in range(out)])
            divisor = None
            if self.pool == "AVE":
                dh = torch.tensor(sizes[0], dtype=torch.float32, device=device)
                dw = torch.tensor(sizes[1], dtype=torch.float32, device=device)
                divisor = dh[:, None] * dw[None, :]
            plan = ((pads[1][0], pads[1][1], pads[0][0], pads[0][1]), tuple(outs), divisor)
            self._plans[key] = plan
        return plan

    def forward(self, x):
        height, width = x.shape[-2:]
        pads, (oh, ow), divisor = self.plan(height, width, x.device)
        if self.pool == "AVE":
            x = F.pad(x, pads)
            y = F.avg_pool2d(x, self.kernel_size, self.stride, divisor_override=1)
            return y[..., :oh, :ow] / divisor.to(y.dtype)
        x = F.pad(x, pads, value=-math.inf)
        if not self.mask:
            y = F.max_pool2d(x, self.kernel_size, self.stride)[..., :oh, :ow]
            return y.clamp_min(-3.4028234663852886e38)
        y, index = F.max_pool2d(x, self.kernel_size, self.stride, return_indices=True)
        y, index = y[..., :oh, :ow], index[..., :oh, :ow]
        padded_width = width + pads[0] + pads[1]
        row, col = index // padded_width - pads[2], index % padded_width - pads[0]
        index = (row * width + col).to(y.dtype).masked_fill(y == -math.inf, -1.0)
        return y.clamp_min(-3.4028234663852886e38), index


class CaffeStochasticPooling(nn.Module):
    """STOCHASTIC pooling at TEST (pooling_layer.cu, StoPoolForwardTest; no padding): each
    output is the window's sum of x * x over its sum of x, both accumulated in float32 in
    row-major order, the sum starting at FLT_MIN (so an empty or all-zero window gives 0), the
    squares added as fused multiply-adds as nvcc compiles the kernel. Windows start at
    o * stride and end at the input's edge; the output size is Caffe's (ceil, or floor)."""

    def __init__(self, kernel_size, stride, ceil_mode=True):
        super().__init__()
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        self.kernel_size, self.stride, self.ceil_mode = pair(kernel_size), pair(stride), ceil_mode

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, ceil_mode={self.ceil_mode}"

    def forward(self, x):
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh = pooled(x.shape[-2], kh, sh, 0, self.ceil_mode, False)[0]
        ow = pooled(x.shape[-1], kw, sw, 0, self.ceil_mode, False)[0]
        x = F.pad(x, (0, max(0, (ow - 1) * sw + kw - x.shape[-1]), 0, max(0, (oh - 1) * sh + kh - x.shape[-2])))
        total = torch.full(x.shape[:-2] + (oh, ow), 1.1754943508222875e-38, dtype=x.dtype, device=x.device)
        squares = torch.zeros_like(total)
        for dh in range(kh):
            for dw in range(kw):
                v = x[..., dh:dh + (oh - 1) * sh + 1:sh, dw:dw + (ow - 1) * sw + 1:sw]
                total = total + v
                squares = (v.double() * v.double() + squares.double()).to(x.dtype)
        return squares / total