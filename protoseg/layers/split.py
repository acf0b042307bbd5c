"""Split (split_layer.cpp): every top shares the bottom; Silence (silence_layer.cpp): a sink."""
from __future__ import annotations

from . import LayerSpec, no_tops, same_shape

SPECS = [
    LayerSpec("Split", same_shape, tops=(1, None), in_place=False),
    LayerSpec("Silence", no_tops, bottoms=(1, None), tops=(0, 0), inference=False),
]
