"""The torch module of this layer type (see the package docstring)."""

import torch
import torch.nn.functional as F
from torch import nn


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
