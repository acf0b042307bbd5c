"""The torch module of this layer type (see the package docstring)."""

import torch
import torch.nn.functional as F
from torch import nn


class CaffeInterp(nn.Module):
    """Interp (DeepLab / PSPNet forks, interp_layer.cpp): crop by pad_beg/pad_end (both <= 0; the
    window starts at -pad_beg), then resize bilinearly with align_corners=True. Output size:
    `height` x `width` when given, else the cropped size shrunk ((h - 1) // shrink + 1) and/or
    zoomed (h + (h - 1) * (zoom - 1)), or the size of a second input. Equal sizes: no resize."""

    def __init__(self, pad_beg=0, pad_end=0, zoom_factor=None, shrink_factor=None, height=None,
                 width=None):
        super().__init__()
        self.pad_beg, self.pad_end = pad_beg, pad_end
        self.zoom_factor, self.shrink_factor = zoom_factor, shrink_factor
        self.height, self.width = height, width

    def extra_repr(self):
        parts = [f"pad_beg={self.pad_beg}, pad_end={self.pad_end}"]
        for name in ("zoom_factor", "shrink_factor", "height", "width"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)}")
        return ", ".join(parts)

    def forward(self, x, ref=None):
        height, width = x.shape[-2:]
        if self.pad_beg or self.pad_end:
            height, width = height + self.pad_beg + self.pad_end, width + self.pad_beg + self.pad_end
            x = x[..., -self.pad_beg:height - self.pad_beg, -self.pad_beg:width - self.pad_beg]
        if ref is not None:
            size = tuple(ref.shape[-2:])
        elif self.height is not None:
            size = (self.height, self.width)
        else:
            h, w = height, width
            if self.shrink_factor is not None:
                h, w = (h - 1) // self.shrink_factor + 1, (w - 1) // self.shrink_factor + 1
            if self.zoom_factor is not None:
                h, w = h + (h - 1) * (self.zoom_factor - 1), w + (w - 1) * (self.zoom_factor - 1)
            size = (h, w)
        if size == (height, width):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
