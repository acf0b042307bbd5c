"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


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
