"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


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
