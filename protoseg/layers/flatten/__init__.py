"""Flatten (flatten_layer.cpp; caffe-semantics.md §2.12): merge axes axis..end_axis."""
from __future__ import annotations

from ..spec import LayerSpec, nn, sharing
from ..geometry import canonical_axis, count


def flatten_shape(ctx, bottoms):
    b = bottoms[0]
    s = canonical_axis(ctx.p.get("axis"), len(b))
    e = canonical_axis(ctx.p.get("end_axis"), len(b), "end_axis")
    if e < s - 1:      # Blob::count(s, e + 1) needs s <= e + 1; e == s - 1 inserts an axis of 1
        ctx.fail(f"end_axis {e} comes before axis {s}", "end_axis")
    return [tuple(b[:s]) + (count(b[s:e + 1]),) + tuple(b[e + 1:])]


def flatten_lower(ctx):
    b = ctx.bottoms[0]
    s = canonical_axis(ctx.p.get("axis"), len(b))
    e = canonical_axis(ctx.p.get("end_axis"), len(b), "end_axis")
    kw = {}
    if s != 1:
        kw["start_dim"] = s
    if e != len(b) - 1:
        kw["end_dim"] = e
    return ctx.module(nn("Flatten"), fresh=False, **kw)


SPECS = [LayerSpec("Flatten", flatten_shape, param="flatten_param", in_place=False,
                   lower=flatten_lower, cost=sharing)]
