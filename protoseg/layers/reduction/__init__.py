"""Reduction (reduction_layer.cpp): SUM / ASUM / SUMSQ / MEAN over all axes from `axis`
(default 0), times coeff; top = bottom[:axis] (a 0-axis scalar for axis 0)."""
from __future__ import annotations

from ..spec import LayerSpec, free, local
from ..geometry import canonical_axis


def reduction_shape(ctx, bottoms):
    b = bottoms[0]
    a = canonical_axis(ctx.p.get("axis"), len(b))
    ctx.note(f"{ctx.p.get('operation')} over axes {a}..{len(b) - 1}")
    return [tuple(b[:a])]


def reduction_lower(ctx):
    p = ctx.p
    kw = {"axis": canonical_axis(p.get("axis"), len(ctx.bottoms[0]))}
    if p.get("coeff") != 1:
        kw["coeff"] = p.get("coeff")
    return ctx.module(local(__name__, "CaffeReduction"), p.get("operation"), **kw)


SPECS = [LayerSpec("Reduction", reduction_shape, param="reduction_param", in_place=False,
                   lower=reduction_lower, cost=free)]
