"""Embed (embed_layer.cpp): look up rows of a (input_dim, num_output) table by integer index;
top = bottom shape + (num_output,)."""
from __future__ import annotations

from . import LayerSpec


def embed_shape(ctx, bottoms):
    p = ctx.p
    if p.get("num_output") <= 0 or p.get("input_dim") <= 0:
        ctx.fail("num_output and input_dim must be given and > 0", "num_output")
    return [tuple(bottoms[0]) + (p.get("num_output"),)]


SPECS = [LayerSpec("Embed", embed_shape, param="embed_param", in_place=False)]
