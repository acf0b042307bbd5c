"""The torch module of this layer type (see the package docstring)."""

import math
import torch
from torch import nn


def _legacy_hw(t):
    """Blob::height(), width(): axes 2 and 3, 1 past the last axis."""
    return tuple(t.shape[a] if a < t.dim() else 1 for a in (2, 3))


def _c_div(a: float, b: float) -> float:
    """a / b in IEEE arithmetic, as C computes it (x/0 is infinite, 0/0 NaN)."""
    if b:
        return a / b
    return math.copysign(math.inf, a) * math.copysign(1.0, b) if a else math.nan


def _c_sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


class CaffePriorBox(nn.Module):
    """PriorBox (SSD fork, prior_box_layer.cpp): the default boxes of a feature map, from the
    shapes of its inputs only. For each cell (row-major), centred at ((w + offset) * step_w,
    (h + offset) * step_h), and each min_size s (truncated to int, as Caffe does): an s x s box;
    a sqrt(s * max_size) square when max sizes are given; a box s*sqrt(ar) x s/sqrt(ar) per
    aspect ratio other than 1. Corners divided by the image size, optionally clipped to [0, 1].
    Output (1, 2, cells * priors * 4): channel 0 the boxes, channel 1 the variances."""

    def __init__(self, min_size, max_size=(), aspect_ratio=(1.0,), clip=False,
                 variance=(0.1,), img_size=None, step=None, offset=0.5):
        super().__init__()
        self.min_size, self.max_size = tuple(min_size), tuple(max_size)
        self.aspect_ratio, self.clip = tuple(aspect_ratio), clip
        self.variance = tuple(variance)
        self.img_size = tuple(img_size) if img_size is not None else None
        self.step = tuple(step) if step is not None else None
        self.offset = offset
        self._cache = {}

    def extra_repr(self):
        return (f"min_size={self.min_size}, max_size={self.max_size}, "
                f"aspect_ratio={self.aspect_ratio}, clip={self.clip}, variance={self.variance}, "
                f"img_size={self.img_size}, step={self.step}, offset={self.offset}")

    def boxes(self, layer_h, layer_w, img_h, img_w):
        step_h, step_w = self.step if self.step is not None else (_c_div(img_h, layer_h),
                                                                   _c_div(img_w, layer_w))
        out = []
        for h in range(layer_h):
            for w in range(layer_w):
                cx, cy = (w + self.offset) * step_w, (h + self.offset) * step_h
                for i, size in enumerate(self.min_size):
                    s = int(size)
                    shapes = [(s, s)]
                    if self.max_size:
                        side = math.sqrt(s * int(self.max_size[i]))
                        shapes.append((side, side))
                    for ar in self.aspect_ratio:
                        if abs(ar - 1.0) >= 1e-6:
                            shapes.append((s * _c_sqrt(ar), _c_div(s, _c_sqrt(ar))))
                    for bw, bh in shapes:
                        out += [_c_div(cx - bw / 2.0, img_w), _c_div(cy - bh / 2.0, img_h),
                                _c_div(cx + bw / 2.0, img_w), _c_div(cy + bh / 2.0, img_h)]
        return out

    def forward(self, feature, image):
        layer_h, layer_w = _legacy_hw(feature)
        img_h, img_w = self.img_size if self.img_size is not None else _legacy_hw(image)
        key = (layer_h, layer_w, img_h, img_w, str(feature.device))
        y = self._cache.get(key)
        if y is None:
            boxes = torch.tensor(self.boxes(layer_h, layer_w, img_h, img_w), dtype=torch.float64)
            if self.clip:
                boxes = boxes.clamp(0.0, 1.0)
            variance = torch.tensor(self.variance, dtype=torch.float64)
            variance = variance.repeat(boxes.numel() // variance.numel())
            y = torch.stack((boxes, variance)).to(torch.float32).unsqueeze(0).to(feature.device)
            self._cache[key] = y
        return y
