"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


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
