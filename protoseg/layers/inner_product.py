"""InnerProduct (inner_product_layer.cpp; caffe-semantics.md §2.5, §3.4).

K = prod(bottom[axis:]); top = bottom[:axis] + (num_output,). Weight blob (N, K), or (K, N) with
`transpose: true`; legacy files store (1, 1, N, K).
"""
from __future__ import annotations

from . import LayerSpec
from .geometry import canonical_axis, count


def ip_shape(ctx, bottoms):
    p = ctx.p
    b = bottoms[0]
    if not p.has("num_output") or p.get("num_output") <= 0:
        ctx.fail("num_output must be given and > 0", "num_output")
    a = canonical_axis(p.get("axis"), len(b))
    k = count(b[a:])
    n = p.get("num_output")
    ctx.note(f"K = prod{tuple(b[a:])} = {k}; top = {tuple(b[:a])} + ({n},)")
    return [tuple(b[:a]) + (n,)]


SPECS = [LayerSpec("InnerProduct", ip_shape, param="inner_product_param", in_place=False)]
