"""Split (split_layer.cpp): every top shares the bottom; Silence (silence_layer.cpp): a sink."""
from __future__ import annotations

from ..spec import LayerSpec, free, local, no_tops, same_axes, same_shape, sharing


def split_lower(ctx):
    """Every top is the bottom itself: one call, no copy."""
    return ctx.module(local(__name__, "CaffeSplit"), call="alias", fresh=False)


SPECS = [
    LayerSpec("Split", same_shape, tops=(1, None), in_place=False, lower=split_lower,
              cost=sharing, axes=same_axes),
    LayerSpec("Silence", no_tops, bottoms=(1, None), tops=(0, 0), inference=False, cost=free),
]
