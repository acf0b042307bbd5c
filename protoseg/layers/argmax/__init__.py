"""ArgMax (argmax_layer.cpp; caffe-semantics.md §2.14, §3.12).

With `axis`: that axis becomes top_k. Without (flattened mode): (N, 1 or 2, top_k, 1...) with at
least 3 axes. Outputs are float indices (or values); ties go to the larger index.
"""
from __future__ import annotations

from ..spec import LayerSpec, free, local, same_axes
from ..geometry import canonical_axis, count


def argmax_shape(ctx, bottoms):
    b = bottoms[0]
    p = ctx.p
    k = p.get("top_k")
    if k < 1:
        ctx.fail(f"top_k must be >= 1, got {k}", "top_k")
    if p.has("axis"):
        a = canonical_axis(p.get("axis"), len(b))
        if k > b[a]:
            ctx.fail(f"top_k {k} is larger than axis {a} ({b[a]})", "top_k")
        out = list(b)
        out[a] = k
        return [tuple(out)]
    if k > count(b[1:]):
        ctx.fail(f"top_k {k} is larger than the {count(b[1:])} values per item", "top_k")
    out = [1] * max(len(b), 3)
    out[0] = b[0]
    out[2] = k
    if p.get("out_max_val"):
        out[1] = 2
    return [tuple(out)]


def argmax_lower(ctx):
    p = ctx.p
    kw = {}
    if p.get("top_k") != 1:
        kw["top_k"] = p.get("top_k")
    if p.get("out_max_val"):
        kw["out_max_val"] = True
    if p.has("axis"):
        kw["axis"] = canonical_axis(p.get("axis"), len(ctx.bottoms[0]))
    return ctx.module(local(__name__, "CaffeArgMax"), **kw)


def argmax_axes(ctx) -> dict:
    """With `axis`: the other axes pass through (that one becomes top_k long). Without: the item
    is flattened, no axis follows."""
    if not ctx.p.has("axis"):
        return {}
    rules = same_axes(ctx)
    del rules[canonical_axis(ctx.p.get("axis"), len(ctx.bottoms[0]))]
    return rules


SPECS = [LayerSpec("ArgMax", argmax_shape, param="argmax_param", in_place=False,
                   lower=argmax_lower, cost=free, axes=argmax_axes)]
