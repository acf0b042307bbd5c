"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


class CaffeEltwise(nn.Module):
    """Eltwise (eltwise_layer.cpp): SUM (sum of coeff_i * x_i, coefficients 1 by default), PROD
    or MAX of inputs of identical shape (the shapes were checked when the net was built)."""

    def __init__(self, operation="SUM", coeff=None):
        super().__init__()
        if operation not in ("SUM", "PROD", "MAX"):
            raise ValueError(f"operation must be SUM, PROD or MAX, not {operation!r}")
        self.operation = operation
        self.coeff = None if coeff is None or all(c == 1 for c in coeff) else tuple(coeff)

    def extra_repr(self):
        return f"{self.operation}" + (f", coeff={self.coeff}" if self.coeff else "")

    def forward(self, *xs):
        if self.operation == "SUM":
            if self.coeff is None:
                y = xs[0] + xs[1]
                for x in xs[2:]:
                    y = y + x
                return y
            y = xs[0] * self.coeff[0]
            for x, c in zip(xs[1:], self.coeff[1:]):
                y = torch.add(y, x, alpha=c)
            return y
        if self.operation == "PROD":
            y = xs[0] * xs[1]
            for x in xs[2:]:
                y = y * x
            return y
        y = torch.maximum(xs[0], xs[1])
        for x in xs[2:]:
            y = torch.maximum(y, x)
        return y
