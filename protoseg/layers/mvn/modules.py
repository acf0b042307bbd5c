"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


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
