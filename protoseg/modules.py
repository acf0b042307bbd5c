"""Small torch modules for the places where Caffe's arithmetic differs from torch's own modules.

`protoseg compile` uses torch's modules (nn.Conv2d, nn.MaxPool2d, nn.ReLU, ...) wherever they
compute exactly what Caffe computes, and one of these `Caffe<Type>` classes everywhere else
(caffe-semantics.md §3 gives the rules each one follows).

Every class here is self-contained: it uses only `math`, `torch`, `nn` and `F`, no helper
function and no module-level constant, because `protoseg compile -o` copies the source of the
classes a net uses (inspect.getsource) into a standalone file that needs only torch. Everything
that can be decided when the net is built is decided in `__init__` (or cached per input size on
first use), so `forward` does the arithmetic and nothing else.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CaffePooling", "CaffeInnerProduct", "CaffeAbsVal", "CaffePower", "CaffeExp", "CaffeLog",
    "CaffeThreshold", "CaffeSwish", "CaffeDropout", "CaffeLRNWithinChannel", "CaffeMVN",
    "CaffeScale", "CaffeBias", "CaffeEltwise", "CaffeConcat", "CaffeSlice", "CaffeSplit",
    "CaffeCrop", "CaffeReshape", "CaffePermute", "CaffeReduction", "CaffeArgMax", "CaffeTile",
    "CaffeEmbed", "CaffeInterp", "CaffeUpsample", "CaffeNormalize", "CaffePriorBox",
]


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

    def output_size(self, size, k, s, p):
        """Caffe's pooled size along one axis (integer arithmetic: equal to Caffe's float32
        ceil/floor for every size a blob can have)."""
        num = size + 2 * p - k
        out = (-(-num // s) if self.ceil_mode else num // s) + 1
        if any(self.padding) and (out - 1) * s >= size + p:
            out -= 1
        return out

    def plan(self, height, width, device=None):
        """(pads for F.pad, output size, AVE divisor or None) for one input size, cached."""
        key = (height, width, str(device))
        plan = self._plans.get(key)
        if plan is None:
            pads, outs, sizes = [], [], []
            for size, k, s, p in zip((height, width), self.kernel_size, self.stride, self.padding):
                out = self.output_size(size, k, s, p)
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


class CaffeInnerProduct(nn.Linear):
    """InnerProduct (inner_product_layer.cpp): flatten every axis from `axis` on (C order), then
    y = x W^T + b. Caffe returns bottom.shape[:axis] + (num_output,)."""

    def __init__(self, in_features, out_features, bias=True, axis=1):
        super().__init__(in_features, out_features, bias)
        self.axis = axis

    def extra_repr(self):
        return super().extra_repr() + f", axis={self.axis}"

    def forward(self, x):
        return F.linear(x.flatten(self.axis), self.weight, self.bias)


class CaffeAbsVal(nn.Module):
    """AbsVal (absval_layer.cpp): |x|."""

    def forward(self, x):
        return torch.abs(x)


class CaffePower(nn.Module):
    """Power (power_layer.cpp): y = (shift + scale * x) ** power. When power * scale == 0 the
    output is the constant 1 (power 0) or shift ** power, whatever x holds (even NaN)."""

    def __init__(self, power=1.0, scale=1.0, shift=0.0):
        super().__init__()
        self.power, self.scale, self.shift = power, scale, shift
        self.constant = None
        if power * scale == 0:
            self.constant = 1.0 if power == 0 else shift ** power

    def extra_repr(self):
        return f"power={self.power}, scale={self.scale}, shift={self.shift}"

    def forward(self, x):
        if self.constant is not None:
            return torch.full_like(x, self.constant)
        if self.scale != 1:
            x = x * self.scale
        if self.shift != 0:
            x = x + self.shift
        if self.power != 1:
            x = x.pow(self.power)
        return x


class CaffeExp(nn.Module):
    """Exp (exp_layer.cpp): y = base ** (shift + scale * x), base -1 meaning e; computed as Caffe
    does, exp(log(base) * scale * x) * base ** shift."""

    def __init__(self, base=-1.0, scale=1.0, shift=0.0):
        super().__init__()
        self.base, self.scale, self.shift = base, scale, shift
        log_base = 1.0 if base == -1 else math.log(base)
        self.inner_scale = log_base * scale
        if shift == 0:
            self.outer_scale = 1.0
        else:
            self.outer_scale = math.exp(shift) if base == -1 else base ** shift

    def extra_repr(self):
        return f"base={self.base}, scale={self.scale}, shift={self.shift}"

    def forward(self, x):
        if self.inner_scale != 1:
            x = x * self.inner_scale
        y = torch.exp(x)
        if self.outer_scale != 1:
            y = y * self.outer_scale
        return y


class CaffeLog(nn.Module):
    """Log (log_layer.cpp): y = log_base(shift + scale * x), base -1 meaning e."""

    def __init__(self, base=-1.0, scale=1.0, shift=0.0):
        super().__init__()
        self.base, self.scale, self.shift = base, scale, shift
        self.base_scale = 1.0 if base == -1 else 1.0 / math.log(base)

    def extra_repr(self):
        return f"base={self.base}, scale={self.scale}, shift={self.shift}"

    def forward(self, x):
        if self.scale != 1:
            x = x * self.scale
        if self.shift != 0:
            x = x + self.shift
        y = torch.log(x)
        if self.base_scale != 1:
            y = y * self.base_scale
        return y


class CaffeThreshold(nn.Module):
    """Threshold (threshold_layer.cpp): 1 where x > threshold (strictly), else 0. Not
    nn.Threshold, which passes x through above the threshold."""

    def __init__(self, threshold=0.0):
        super().__init__()
        self.threshold = threshold

    def extra_repr(self):
        return f"threshold={self.threshold}"

    def forward(self, x):
        return (x > self.threshold).to(x.dtype)


class CaffeSwish(nn.Module):
    """Swish (swish_layer.cpp): y = x * sigmoid(beta * x) (beta 1 is nn.SiLU)."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def extra_repr(self):
        return f"beta={self.beta}"

    def forward(self, x):
        return x * torch.sigmoid(self.beta * x)


class CaffeDropout(nn.Module):
    """Dropout where a Caffe fork's test-time behaviour is not the identity (dropout_layer.cpp).

    scale_train=False (caffe-fast-rcnn): training keeps x * mask without rescaling, so testing
    scales by (1 - p). sample=True: the layer drops out at test time too (a layer whose own
    phase is TRAIN, or Bayesian SegNet's sample_weights_test), as in training.
    """

    def __init__(self, p=0.5, scale_train=True, sample=False):
        super().__init__()
        self.p, self.scale_train, self.sample = p, scale_train, sample

    def extra_repr(self):
        return f"p={self.p}, scale_train={self.scale_train}, sample={self.sample}"

    def forward(self, x):
        if self.sample or self.training:
            if self.scale_train:
                return F.dropout(x, self.p, True)
            return x * torch.bernoulli(torch.full_like(x, 1.0 - self.p))
        if self.scale_train:
            return x
        return x * (1.0 - self.p)


class CaffeLRNWithinChannel(nn.Module):
    """LRN with norm_region WITHIN_CHANNEL (lrn_layer.cpp): y = x * (1 + alpha/n^2 * S)^-beta,
    S the sum of x^2 over the n x n window centred on each position (zero padded). Caffe builds
    it from AVE pooling (kernel n, stride 1, pad (n-1)/2, divisor always n^2); `k` is ignored."""

    def __init__(self, size=5, alpha=1.0, beta=0.75):
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}"

    def forward(self, x):
        mean = F.avg_pool2d(x * x, self.size, 1, (self.size - 1) // 2, count_include_pad=True)
        return x * (1 + self.alpha * mean).pow(-self.beta)


class CaffeMVN(nn.Module):
    """MVN (mvn_layer.cpp): subtract the mean over each (item, channel) -- or each item when
    across_channels -- and, with normalize_variance, divide by sqrt(E[(x - mean)^2]) + eps
    (eps added after the square root, as Caffe does)."""

    def __init__(self, normalize_variance=True, across_channels=False, eps=1e-9):
        super().__init__()
        self.normalize_variance = normalize_variance
        self.across_channels = across_channels
        self.eps = eps

    def extra_repr(self):
        return (f"normalize_variance={self.normalize_variance}, "
                f"across_channels={self.across_channels}, eps={self.eps}")

    def forward(self, x):
        rows = x.shape[0] if self.across_channels else x.shape[0] * x.shape[1]
        flat = x.reshape(rows, -1)
        centred = flat - flat.mean(dim=1, keepdim=True)
        if self.normalize_variance:
            std = centred.pow(2).mean(dim=1, keepdim=True).sqrt()
            centred = centred / (std + self.eps)
        return centred.reshape(x.shape)


class CaffeScale(nn.Module):
    """Scale (scale_layer.cpp): y = x * s (+ b), s broadcast along the axes [axis, axis + s.ndim)
    of x. s is the learned `weight` of shape `shape`, or the second input when learned=False
    (then `shape` is that input's shape, used for the bias). `trailing` = the number of axes of
    x after the scaled ones, so s.view(shape + (1,) * trailing) broadcasts from the right."""

    def __init__(self, shape, trailing=0, learned=True, bias_term=False, init=1.0, bias_init=0.0):
        super().__init__()
        self.shape = tuple(shape)
        self.trailing = (1,) * trailing
        self.view = self.shape + self.trailing
        self.learned = learned
        self.weight = nn.Parameter(torch.full(self.shape, float(init))) if learned else None
        self.bias = nn.Parameter(torch.full(self.shape, float(bias_init))) if bias_term else None

    def extra_repr(self):
        return (f"shape={self.shape}, trailing={len(self.trailing)}, learned={self.learned}, "
                f"bias_term={self.bias is not None}")

    def forward(self, x, scale=None):
        if scale is None:
            y = x * self.weight.view(self.view)
        else:
            y = x * scale.reshape(scale.shape + self.trailing)
        if self.bias is not None:
            y = y + self.bias.view(self.view)
        return y


class CaffeBias(nn.Module):
    """Bias (bias_layer.cpp): y = x + b, b broadcast along the axes [axis, axis + b.ndim) of x;
    b is the learned `bias` of shape `shape`, or the second input when learned=False."""

    def __init__(self, shape, trailing=0, learned=True, init=0.0):
        super().__init__()
        self.shape = tuple(shape)
        self.trailing = (1,) * trailing
        self.view = self.shape + self.trailing
        self.learned = learned
        self.bias = nn.Parameter(torch.full(self.shape, float(init))) if learned else None

    def extra_repr(self):
        return f"shape={self.shape}, trailing={len(self.trailing)}, learned={self.learned}"

    def forward(self, x, bias=None):
        if bias is None:
            return x + self.bias.view(self.view)
        return x + bias.reshape(bias.shape + self.trailing)


class CaffeEltwise(nn.Module):
    """Eltwise (eltwise_layer.cpp): SUM (sum of coeff_i * x_i, coefficients 1 by default), PROD
    or MAX of inputs of identical shape (the shapes were checked when the net was built)."""

    def __init__(self, operation="SUM", coeff=None):
        super().__init__()
        if operation not in ("SUM", "PROD", "MAX"):
            raise ValueError(f"operation must be SUM, PROD or MAX, not {operation!r}")
        self.operation = operation
        self.coeff = None if coeff is None or all(c == 1 for c in coeff) else tuple(coeff)

    def extra_repr(self):
        return f"{self.operation}" + (f", coeff={self.coeff}" if self.coeff else "")

    def forward(self, *xs):
        if self.operation == "SUM":
            if self.coeff is None:
                y = xs[0] + xs[1]
                for x in xs[2:]:
                    y = y + x
                return y
            y = xs[0] * self.coeff[0]
            for x, c in zip(xs[1:], self.coeff[1:]):
                y = torch.add(y, x, alpha=c)
            return y
        if self.operation == "PROD":
            y = xs[0] * xs[1]
            for x in xs[2:]:
                y = y * x
            return y
        y = torch.maximum(xs[0], xs[1])
        for x in xs[2:]:
            y = torch.maximum(y, x)
        return y


class CaffeConcat(nn.Module):
    """Concat (concat_layer.cpp): join along `axis`; one input is passed through."""

    def __init__(self, axis=1):
        super().__init__()
        self.axis = axis

    def extra_repr(self):
        return f"axis={self.axis}"

    def forward(self, *xs):
        if len(xs) == 1:
            return xs[0]
        return torch.cat(xs, dim=self.axis)


class CaffeSlice(nn.Module):
    """Slice (slice_layer.cpp): cut along `axis` at the slice points, or into `sections` equal
    parts. Returns views of the input (no copy)."""

    def __init__(self, axis=1, slice_point=None, sections=None):
        super().__init__()
        self.axis = axis
        self.split = list(slice_point) if slice_point else int(sections)

    def extra_repr(self):
        what = "slice_point" if isinstance(self.split, list) else "sections"
        return f"axis={self.axis}, {what}={self.split}"

    def forward(self, x):
        return torch.tensor_split(x, self.split, dim=self.axis)


class CaffeSplit(nn.Module):
    """Split (split_layer.cpp): every top is the bottom itself (Caffe shares the data too)."""

    def forward(self, x):
        return x


class CaffeCrop(nn.Module):
    """Crop (crop_layer.cpp): x cropped to ref's size on every axis from `axis` on, starting at
    `offset` (one per cropped axis). One-sided: what lies past offset + size is dropped.
    Returns a view of x (no copy)."""

    def __init__(self, axis=2, offset=(0, 0)):
        super().__init__()
        self.axis = axis
        self.offset = tuple(offset)
        self.lead = (slice(None),) * axis

    def extra_repr(self):
        return f"axis={self.axis}, offset={self.offset}"

    def forward(self, x, ref):
        sizes = ref.shape[self.axis:]
        return x[self.lead + tuple(slice(o, o + n) for o, n in zip(self.offset, sizes))]


class CaffeReshape(nn.Module):
    """Reshape (reshape_layer.cpp): axes [start, end) of x are replaced by `shape`, where 0 copies
    the input's axis and -1 is inferred; start = axis, or ndim + axis + 1 when axis < 0 (-1
    means after the last axis); end = ndim when num_axes is -1, else start + num_axes."""

    def __init__(self, shape, axis=0, num_axes=-1):
        super().__init__()
        self.shape = tuple(shape)
        self.axis = axis
        self.num_axes = num_axes
        self.simple = axis == 0 and num_axes == -1 and 0 not in self.shape

    def extra_repr(self):
        return f"shape={self.shape}, axis={self.axis}, num_axes={self.num_axes}"

    def forward(self, x):
        if self.simple:
            return x.reshape(self.shape)
        n = x.dim()
        start = self.axis if self.axis >= 0 else n + self.axis + 1
        end = n if self.num_axes == -1 else start + self.num_axes
        middle = [x.shape[start + j] if d == 0 else d for j, d in enumerate(self.shape)]
        return x.reshape(list(x.shape[:start]) + middle + list(x.shape[end:]))


class CaffePermute(nn.Module):
    """Permute (SSD fork, permute_layer.cpp): top axis i is bottom axis order[i]."""

    def __init__(self, order):
        super().__init__()
        self.order = tuple(order)

    def extra_repr(self):
        return f"order={self.order}"

    def forward(self, x):
        return x.permute(self.order)


class CaffeReduction(nn.Module):
    """Reduction (reduction_layer.cpp): SUM, ASUM (sum of |x|), SUMSQ (sum of x^2) or MEAN over
    every axis from `axis` on, times coeff; the top has the axes before `axis` (a 0-axis
    scalar for axis 0)."""

    def __init__(self, operation="SUM", axis=0, coeff=1.0):
        super().__init__()
        if operation not in ("SUM", "ASUM", "SUMSQ", "MEAN"):
            raise ValueError(f"operation must be SUM, ASUM, SUMSQ or MEAN, not {operation!r}")
        self.operation, self.axis, self.coeff = operation, axis, coeff

    def extra_repr(self):
        return f"{self.operation}, axis={self.axis}, coeff={self.coeff}"

    def forward(self, x):
        flat = x.reshape(tuple(x.shape[:self.axis]) + (-1,))
        if self.operation == "ASUM":
            flat = flat.abs()
        elif self.operation == "SUMSQ":
            flat = flat * flat
        y = flat.sum(dim=-1)
        coeff = self.coeff / flat.shape[-1] if self.operation == "MEAN" else self.coeff
        return y * coeff if coeff != 1 else y


class CaffeArgMax(nn.Module):
    """ArgMax (argmax_layer.cpp): the top_k largest values' indices (or, with out_max_val, the
    values) along `axis`, as floats; equal values rank the larger index first. Without an axis
    every item is flattened; the top is (N, 1, top_k, ...) or, with out_max_val, (N, 2, top_k,
    ...) holding the indices then the values, with at least 3 axes."""

    def __init__(self, top_k=1, out_max_val=False, axis=None):
        super().__init__()
        self.top_k, self.out_max_val, self.axis = top_k, out_max_val, axis

    def extra_repr(self):
        return f"top_k={self.top_k}, out_max_val={self.out_max_val}, axis={self.axis}"

    def ranked(self, x, dim):
        # Reversing the axis makes "first occurrence" (torch's rule for argmax and a stable
        # sort) mean "largest index" (Caffe's rule).
        n = x.shape[dim]
        reverse = x.flip(dim)
        if self.top_k == 1:
            index = reverse.argmax(dim=dim, keepdim=True)
            values = reverse.gather(dim, index)
        else:
            values, index = torch.sort(reverse, dim=dim, descending=True, stable=True)
            values, index = values.narrow(dim, 0, self.top_k), index.narrow(dim, 0, self.top_k)
        return values, (n - 1 - index).to(x.dtype)

    def forward(self, x):
        if self.axis is not None:
            values, index = self.ranked(x, self.axis)
            return values if self.out_max_val else index
        values, index = self.ranked(x.reshape(x.shape[0], 1, -1), 2)
        y = torch.cat((index, values), dim=1) if self.out_max_val else index
        return y.reshape(tuple(y.shape) + (1,) * (x.dim() - 3))


class CaffeTile(nn.Module):
    """Tile (tile_layer.cpp): the whole block of axes from `axis` on, repeated `tiles` times."""

    def __init__(self, axis=1, tiles=1):
        super().__init__()
        self.axis, self.tiles = axis, tiles

    def extra_repr(self):
        return f"axis={self.axis}, tiles={self.tiles}"

    def forward(self, x):
        repeats = [1] * x.dim()
        repeats[self.axis] = self.tiles
        return x.repeat(repeats)


class CaffeEmbed(nn.Module):
    """Embed (embed_layer.cpp): rows of a (input_dim, num_output) table picked by the inputs (float
    values truncated to integers), plus a bias; top = bottom.shape + (num_output,)."""

    def __init__(self, input_dim, num_output, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(input_dim, num_output).normal_(0, 0.01))
        self.bias = nn.Parameter(torch.zeros(num_output)) if bias else None

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, bias={self.bias is not None}"

    def forward(self, x):
        y = F.embedding(x.long(), self.weight)
        return y + self.bias if self.bias is not None else y


class CaffeInterp(nn.Module):
    """Interp (DeepLab / PSPNet forks, interp_layer.cpp): crop by pad_beg/pad_end (both <= 0; the
    window starts at -pad_beg), then resize bilinearly with align_corners=True. Output size:
    `height` x `width` when given, else the cropped size shrunk ((h - 1) // shrink + 1) and/or
    zoomed (h + (h - 1) * (zoom - 1)), or the size of a second input. Equal sizes: no resize."""

    def __init__(self, pad_beg=0, pad_end=0, zoom_factor=None, shrink_factor=None, height=None,
                 width=None):
        super().__init__()
        self.pad_beg, self.pad_end = pad_beg, pad_end
        self.zoom_factor, self.shrink_factor = zoom_factor, shrink_factor
        self.height, self.width = height, width

    def extra_repr(self):
        parts = [f"pad_beg={self.pad_beg}, pad_end={self.pad_end}"]
        for name in ("zoom_factor", "shrink_factor", "height", "width"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)}")
        return ", ".join(parts)

    def forward(self, x, ref=None):
        height, width = x.shape[-2:]
        if self.pad_beg or self.pad_end:
            height, width = height + self.pad_beg + self.pad_end, width + self.pad_beg + self.pad_end
            x = x[..., -self.pad_beg:height - self.pad_beg, -self.pad_beg:width - self.pad_beg]
        if ref is not None:
            size = tuple(ref.shape[-2:])
        elif self.height is not None:
            size = (self.height, self.width)
        else:
            h, w = height, width
            if self.shrink_factor is not None:
                h, w = (h - 1) // self.shrink_factor + 1, (w - 1) // self.shrink_factor + 1
            if self.zoom_factor is not None:
                h, w = h + (h - 1) * (self.zoom_factor - 1), w + (w - 1) * (self.zoom_factor - 1)
            size = (h, w)
        if size == (height, width):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class CaffeUpsample(nn.Module):
    """Upsample (SegNet fork, upsample_layer.cpp): max-unpooling. Each input value is written at
    the position its mask (the argmax top of a MAX Pooling, h * W + w as a float) names in an
    output of zeros. Size: `size` when given (upsample_h, upsample_w), else in * scale - pad_out."""

    def __init__(self, scale=(2, 2), pad_out=(0, 0), size=None):
        super().__init__()
        self.scale, self.pad_out = tuple(scale), tuple(pad_out)
        self.size = tuple(size) if size is not None else None

    def extra_repr(self):
        if self.size is not None:
            return f"size={self.size}"
        return f"scale={self.scale}, pad_out={self.pad_out}"

    def forward(self, x, mask):
        n, c, h, w = x.shape
        if self.size is not None:
            oh, ow = self.size
        else:
            oh, ow = h * self.scale[0] - self.pad_out[0], w * self.scale[1] - self.pad_out[1]
        y = x.new_zeros((n, c, oh * ow))
        y.scatter_(2, mask.reshape(n, c, h * w).long(), x.reshape(n, c, h * w))
        return y.view(n, c, oh, ow)


class CaffeNormalize(nn.Module):
    """Normalize (SSD fork, normalize_layer.cpp): x / sqrt(sum of x^2 + eps) -- the sum over the
    whole item (across_spatial) or over the channels of each position -- times a learned scale,
    one value (channel_shared) or one per channel. eps is inside the square root."""

    def __init__(self, channels, across_spatial=True, channel_shared=True, eps=1e-10, init=1.0):
        super().__init__()
        self.across_spatial, self.channel_shared, self.eps = across_spatial, channel_shared, eps
        self.weight = nn.Parameter(torch.full((1 if channel_shared else channels,), float(init)))

    def extra_repr(self):
        return (f"{self.weight.numel()}, across_spatial={self.across_spatial}, "
                f"channel_shared={self.channel_shared}, eps={self.eps}")

    def forward(self, x):
        squares = x * x
        if self.across_spatial:
            norm = (squares.reshape(x.shape[0], -1).sum(dim=1) + self.eps).sqrt()
            y = x * norm.reciprocal().view((-1,) + (1,) * (x.dim() - 1))
        else:
            y = x / (squares.sum(dim=1, keepdim=True) + self.eps).sqrt()
        if self.channel_shared:
            return y * self.weight
        return y * self.weight.view((-1,) + (1,) * (x.dim() - 2))


class CaffePriorBox(nn.Module):
    """PriorBox (SSD fork, prior_box_layer.cpp): the default boxes of a feature map, from the
    shapes of its inputs only. For each cell (row-major), centred at ((w + offset) * step_w,
    (h + offset) * step_h), and each min_size s (truncated to int, as Caffe does): an s x s box;
    a sqrt(s * max_size) square when max sizes are given; a box s*sqrt(ar) x s/sqrt(ar) per
    aspect ratio other than 1. Corners divided by the image size, optionally clipped to [0, 1].
    Output (1, 2, cells * priors * 4): channel 0 the boxes, channel 1 the variances."""

    def __init__(self, min_size, max_size=(), aspect_ratio=(1.0,), clip=False,
                 variance=(0.1,), img_size=None, step=None, offset=0.5):
        super().__init__()
        self.min_size, self.max_size = tuple(min_size), tuple(max_size)
        self.aspect_ratio, self.clip = tuple(aspect_ratio), clip
        self.variance = tuple(variance)
        self.img_size = tuple(img_size) if img_size is not None else None
        self.step = tuple(step) if step is not None else None
        self.offset = offset
        self._cache = {}

    def extra_repr(self):
        return (f"min_size={self.min_size}, max_size={self.max_size}, "
                f"aspect_ratio={self.aspect_ratio}, clip={self.clip}, variance={self.variance}, "
                f"img_size={self.img_size}, step={self.step}, offset={self.offset}")

    def boxes(self, layer_h, layer_w, img_h, img_w):
        step_h, step_w = self.step if self.step is not None else (img_h / layer_h, img_w / layer_w)
        out = []
        for h in range(layer_h):
            for w in range(layer_w):
                cx, cy = (w + self.offset) * step_w, (h + self.offset) * step_h
                for i, size in enumerate(self.min_size):
                    s = int(size)
                    shapes = [(s, s)]
                    if self.max_size:
                        side = math.sqrt(s * int(self.max_size[i]))
                        shapes.append((side, side))
                    for ar in self.aspect_ratio:
                        if abs(ar - 1.0) >= 1e-6:
                            shapes.append((s * math.sqrt(ar), s / math.sqrt(ar)))
                    for bw, bh in shapes:
                        out += [(cx - bw / 2.0) / img_w, (cy - bh / 2.0) / img_h,
                                (cx + bw / 2.0) / img_w, (cy + bh / 2.0) / img_h]
        return out

    def forward(self, feature, image):
        layer_h, layer_w = feature.shape[-2:]
        img_h, img_w = self.img_size if self.img_size is not None else image.shape[-2:]
        key = (layer_h, layer_w, img_h, img_w, str(feature.device))
        y = self._cache.get(key)
        if y is None:
            boxes = torch.tensor(self.boxes(layer_h, layer_w, img_h, img_w), dtype=torch.float64)
            if self.clip:
                boxes = boxes.clamp(0.0, 1.0)
            variance = torch.tensor(self.variance, dtype=torch.float64)
            variance = variance.repeat(boxes.numel() // variance.numel())
            y = torch.stack((boxes, variance)).to(torch.float32).unsqueeze(0).to(feature.device)
            self._cache[key] = y
        return y
