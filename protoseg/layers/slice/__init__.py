"""Slice (slice_layer.cpp; caffe-semantics.md §2.9): split along `axis` (legacy `slice_dim`) at
`slice_point`s, or into equal parts."""
from __future__ import annotations

from ..spec import LayerSpec, free, local, same_axes
from ..concat import join_axis


def slice_sizes(ctx, bottoms) -> tuple[int, tuple]:
    """(the slice axis, the size of each top along it)."""
    b = bottoms[0]
    a = join_axis(ctx, len(b), "slice_dim")
    n = len(ctx.layer.tops)
    d = b[a]
    points = list(ctx.p.get("slice_point"))
    if points:
        if len(points) != n - 1:
            ctx.fail(f"{len(points)} slice points for {n} tops: need {n - 1}", "slice_point")
        if any(q <= p for p, q in zip([0] + points, points + [d])):
            ctx.fail(f"slice points {points} must be increasing and inside (0, {d}) on axis {a}",
                     "slice_point")
        sizes = [q - p for p, q in zip([0] + points, points + [d])]
    else:
        if d % n:
            ctx.fail(f"axis {a} has size {d}, which does not divide into {n} equal tops")
        sizes = [d // n] * n
    return a, tuple(sizes)


def slice_shape(ctx, bottoms):
    b = bottoms[0]
    a, sizes = ctx.conf
    ctx.note(f"axis {a} ({b[a]}) -> " + ", ".join(map(str, sizes)))
    return [tuple(b[:a]) + (s,) + tuple(b[a + 1:]) for s in sizes]


def slice_lower(ctx):
    """CaffeSlice: torch.tensor_split at the slice points (or into equal parts): views."""
    a, sizes = ctx.conf
    points = list(ctx.p.get("slice_point"))
    if points:
        return ctx.module(local(__name__, "CaffeSlice"), axis=a, slice_point=points, fresh=False)
    return ctx.module(local(__name__, "CaffeSlice"), axis=a, sections=len(sizes), fresh=False)


def slice_axes(ctx) -> dict:
    """Every axis but the slice axis passes through to every top."""
    rules = same_axes(ctx)
    del rules[ctx.conf[0]]
    return rules


SPECS = [LayerSpec("Slice", slice_shape, param="slice_param", conf=slice_sizes, tops=(1, None),
                   in_place=False, lower=slice_lower, cost=free, axes=slice_axes)]
