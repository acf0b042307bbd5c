"""The torch module of this layer type (see the package docstring)."""

import torch
import torch.nn.functional as F
from torch import nn


class CaffeInnerProduct(nn.Linear):
    """InnerProduct (inner_product_layer.cpp): flatten every axis from `axis` on (C order), then
    y = x W^T + b. Caffe returns bottom.shape[:axis] + (num_output,)."""

    def __init__(self, in_features, out_features, bias=True, axis=1):
        super().__init__(in_features, out_features, bias)
        self.axis = axis

    def extra_repr(self):
        return super().extra_repr() + f", axis={self.axis}"

    def forward(self, x):
        return F.linear(x.flatten(self.axis), self.weight, self.bias)
