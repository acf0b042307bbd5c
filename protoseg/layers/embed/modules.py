"""The torch module of this layer type (see the package docstring)."""

import torch
import torch.nn.functional as F
from torch import nn


class CaffeEmbed(nn.Module):
    """Embed (embed_layer.cpp): rows of a (input_dim, num_output) table picked by the inputs (float
    values truncated to integers), plus a bias; top = bottom.shape + (num_output,)."""

    def __init__(self, input_dim, num_output, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(input_dim, num_output).normal_(0, 0.01))
        self.bias = nn.Parameter(torch.zeros(num_output)) if bias else None

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, bias={self.bias is not None}"

    def forward(self, x):
        y = F.embedding(x.long(), self.weight)
        return y + self.bias if self.bias is not None else y
