"""The torch modules of this layer type (see the package docstring)."""

import math
import torch
import torch.nn.functional as F
from torch import nn


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
