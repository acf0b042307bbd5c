"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


class CaffeReduction(nn.Module):
    """Reduction (reduction_layer.cpp): SUM, ASUM (sum of |x|), SUMSQ (sum of x^2) or MEAN over
    every axis from `axis` on, times coeff; the top has the axes before `axis` (a 0-axis
    scalar for axis 0)."""

    def __init__(self, operation="SUM", axis=0, coeff=1.0):
        super().__init__()
        if operation not in ("SUM", "ASUM", "SUMSQ", "MEAN"):
            raise ValueError(f"operation must be SUM, ASUM, SUMSQ or MEAN, not {operation!r}")
        self.operation, self.axis, self.coeff = operation, axis, coeff

    def extra_repr(self):
        return f"{self.operation}, axis={self.axis}, coeff={self.coeff}"

    def forward(self, x):
        flat = x.reshape(tuple(x.shape[:self.axis]) + (-1,))
        if self.operation == "ASUM":
            flat = flat.abs()
        elif self.operation == "SUMSQ":
            flat = flat * flat
        y = flat.sum(dim=-1)
        coeff = self.coeff / flat.shape[-1] if self.operation == "MEAN" else self.coeff
        return y * coeff if coeff != 1 else y
