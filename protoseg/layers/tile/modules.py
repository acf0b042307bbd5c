"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


class CaffeTile(nn.Module):
    """Tile (tile_layer.cpp): the whole block of axes from `axis` on, repeated `tiles` times."""

    def __init__(self, axis=1, tiles=1):
        super().__init__()
        self.axis, self.tiles = axis, tiles

    def extra_repr(self):
        return f"axis={self.axis}, tiles={self.tiles}"

    def forward(self, x):
        repeats = [1] * x.dim()
        repeats[self.axis] = self.tiles
        return x.repeat(repeats)
