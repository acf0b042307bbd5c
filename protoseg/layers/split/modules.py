"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


class CaffeSplit(nn.Module):
    """Split (split_layer.cpp): every top is the bottom itself (Caffe shares the data too)."""

    def forward(self, x):
        return x
