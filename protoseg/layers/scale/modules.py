"""The torch modules of Scale and Bias: one broadcasting rule, shared."""

import torch
from torch import nn


class _Broadcast(nn.Module):
    """An operand of shape `shape` applied along the axes [axis, axis + len(shape)) of x: viewed
    as shape + (1,) * trailing, torch's right-aligned broadcasting puts it where Caffe does.
    `trailing` = the number of axes of x after the operand's."""

    def __init__(self, shape, trailing=0, learned=True):
        super().__init__()
        self.shape = tuple(shape)
        self.trailing = (1,) * trailing
        self.view = self.shape + self.trailing
        self.learned = learned

    def extra_repr(self):
        return f"shape={self.shape}, trailing={len(self.trailing)}, learned={self.learned}"

    def operand(self, learned, given):
        """The learned parameter, or the operand given as the second input, ready to broadcast."""
        if given is None:
            return learned.view(self.view)
        return given.reshape(given.shape + self.trailing)


class CaffeBias(_Broadcast):
    """Bias (bias_layer.cpp): y = x + b, b broadcast along the axes [axis, axis + b.ndim) of x;
    b is the learned `bias` of shape `shape`, or the second input when learned=False."""

    def __init__(self, shape, trailing=0, learned=True, init=0.0):
        super().__init__(shape, trailing, learned)
        self.bias = nn.Parameter(torch.full(self.shape, float(init))) if learned else None

    def forward(self, x, bias=None):
        return x + self.operand(self.bias, bias)


class CaffeScale(_Broadcast):
    """Scale (scale_layer.cpp): y = x * s (+ b), s broadcast along the axes [axis, axis + s.ndim)
    of x. s is the learned `weight` of shape `shape`, or the second input when learned=False
    (then `shape` is that input's shape, used for the bias)."""

    def __init__(self, shape, trailing=0, learned=True, bias_term=False, init=1.0, bias_init=0.0):
        super().__init__(shape, trailing, learned)
        self.weight = nn.Parameter(torch.full(self.shape, float(init))) if learned else None
        self.bias = nn.Parameter(torch.full(self.shape, float(bias_init))) if bias_term else None

    def extra_repr(self):
        return super().extra_repr() + f", bias_term={self.bias is not None}"

    def forward(self, x, scale=None):
        y = x * self.operand(self.weight, scale)
        if self.bias is not None:
            y = y + self.bias.view(self.view)
        return y
