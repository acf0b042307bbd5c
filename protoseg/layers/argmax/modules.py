"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


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
