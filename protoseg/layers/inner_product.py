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


def ip_lower(ctx):
    """nn.Linear when the bottom ends at `axis` (nothing to flatten); else CaffeInnerProduct,
    an nn.Linear that flattens the axes from `axis` on first (NCHW order)."""
    p = ctx.p
    b = ctx.bottoms[0]
    a = canonical_axis(p.get("axis"), len(b))
    kw = {} if p.get("bias_term") else {"bias": False}
    if len(b) == a + 1:
        return ctx.module("nn.Linear", b[a], p.get("num_output"), **kw)
    return ctx.module("CaffeInnerProduct", count(b[a:]), p.get("num_output"), **kw, axis=a)


def ip_weights(ctx, blobs):
    """Blob 0 (N, K) = Linear's weight; with `transpose: true` it is stored (K, N) and
    transposed here. Blob 1 the bias (N,)."""
    p = ctx.p
    b = ctx.bottoms[0]
    n, k = p.get("num_output"), count(b[canonical_axis(p.get("axis"), len(b)):])
    shapes = [(k, n) if p.get("transpose") else (n, k)]
    if p.get("bias_term"):
        shapes.append((n,))
    arrays = ctx.expect_blobs(blobs, shapes)
    if p.get("transpose"):
        arrays[0] = arrays[0].T.copy()
    return dict(zip(("weight", "bias"), arrays))


SPECS = [LayerSpec("InnerProduct", ip_shape, param="inner_product_param", in_place=False,
                   lower=ip_lower, weights=ip_weights)]
