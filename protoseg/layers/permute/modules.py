"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


class CaffePermute(nn.Module):
    """Permute (SSD fork, permute_layer.cpp): top axis i is bottom axis order[i]."""

    def __init__(self, order):
        super().__init__()
        self.order = tuple(order)

    def extra_repr(self):
        return f"order={self.order}"

    def forward(self, x):
        return x.permute(self.order)
