"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


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
