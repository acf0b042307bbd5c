"""Concat (concat_layer.cpp; caffe-semantics.md §2.8): join along `axis` (default 1; legacy
`concat_dim`, non-negative only); every other axis must match."""
from __future__ import annotations

from ..spec import AxisRule, LayerSpec, free, local, same_axes
from ..geometry import canonical_axis


def join_axis(ctx, ndim: int, legacy: str) -> int:
    p = ctx.p
    if p.has(legacy):
        if p.has("axis"):
            ctx.fail(f"give axis or the legacy {legacy}, not both", legacy)
        a = p.get(legacy)
        if a >= ndim:
            ctx.fail(f"{legacy} {a} is out of range for a {ndim}-axis blob", legacy)
        return a
    return canonical_axis(p.get("axis"), ndim)


def concat_axis(ctx, bottoms) -> int:
    return join_axis(ctx, len(bottoms[0]), "concat_dim")


def concat_shape(ctx, bottoms):
    b0 = bottoms[0]
    a = ctx.conf
    total = 0
    for i, b in enumerate(bottoms):
        if len(b) != len(b0) or any(x != y for j, (x, y) in enumerate(zip(b, b0)) if j != a):
            ctx.fail(f"bottom {i} '{ctx.layer.bottoms[i]}' {tuple(b)} does not match bottom 0 "
                     f"{tuple(b0)} on the axes other than the concat axis {a}")
        total += b[a]
    ctx.note(f"axis {a}: " + " + ".join(str(b[a]) for b in bottoms) + f" = {total}")
    out = list(b0)
    out[a] = total
    return [tuple(out)]


def concat_lower(ctx):
    return ctx.module(local(__name__, "CaffeConcat"), axis=ctx.conf, fresh=len(ctx.bottoms) > 1)


def concat_axes(ctx) -> dict:
    """Every axis but the concat axis passes through (the bottoms must agree there); along the
    concat axis the sizes add up and no coordinate map exists."""
    rules = same_axes(ctx)
    rules[ctx.conf] = AxisRule(lambda *sizes: sum(sizes), scale=None)
    return rules


SPECS = [LayerSpec("Concat", concat_shape, param="concat_param", conf=concat_axis,
                   bottoms=(1, None), in_place=False, lower=concat_lower, cost=free,
                   axes=concat_axes)]
