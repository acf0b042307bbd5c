"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


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
