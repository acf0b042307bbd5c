"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn


class CaffeUpsample(nn.Module):
    """Upsample (SegNet fork, upsample_layer.cpp): max-unpooling. Each input value is written at
    the position its mask (the argmax top of a MAX Pooling, h * W + w as a float) names in an
    output of zeros. Size: `size` when given (upsample_h, upsample_w), else in * scale - pad_out."""

    def __init__(self, scale=(2, 2), pad_out=(0, 0), size=None):
        super().__init__()
        self.scale, self.pad_out = tuple(scale), tuple(pad_out)
        self.size = tuple(size) if size is not None else None

    def extra_repr(self):
        if self.size is not None:
            return f"size={self.size}"
        return f"scale={self.scale}, pad_out={self.pad_out}"

    def forward(self, x, mask):
        n, c, h, w = x.shape
        if self.size is not None:
            oh, ow = self.size
        else:
            oh, ow = h * self.scale[0] - self.pad_out[0], w * self.scale[1] - self.pad_out[1]
        y = x.new_zeros((n, c, oh * ow))
        y.scatter_(2, mask.reshape(n, c, h * w).long(), x.reshape(n, c, h * w))
        return y.view(n, c, oh, ow)
