"""Tile (tile_layer.cpp): repeat the blob `tiles` times along `axis` (default 1)."""
from __future__ import annotations

from ..spec import LayerSpec, free, local
from ..geometry import canonical_axis


def tile_shape(ctx, bottoms):
    b = list(bottoms[0])
    a = canonical_axis(ctx.p.get("axis"), len(b))
    tiles = ctx.p.get("tiles")
    if not ctx.p.has("tiles") or tiles < 1:
        ctx.fail("tiles must be given and >= 1", "tiles")
    b[a] *= tiles
    return [tuple(b)]


def tile_lower(ctx):
    a = canonical_axis(ctx.p.get("axis"), len(ctx.bottoms[0]))
    return ctx.module(local(__name__, "CaffeTile"), axis=a, tiles=ctx.p.get("tiles"))


SPECS = [LayerSpec("Tile", tile_shape, param="tile_param", in_place=False, lower=tile_lower,
                   cost=free)]
