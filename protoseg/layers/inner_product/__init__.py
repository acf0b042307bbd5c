"""InnerProduct (inner_product_layer.cpp; caffe-semantics.md §2.5, §3.4).

K = prod(bottom[axis:]); top = bottom[:axis] + (num_output,). Weight blob (N, K), or (K, N) with
`transpose: true`; legacy files store (1, 1, N, K).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..geometry import canonical_axis, count
from ..spec import Cost, LayerSpec, local, nn


@dataclass(frozen=True)
class InnerProductConf:
    axis: int                   # the first flattened axis
    inputs: int                 # K = prod(bottom[axis:])
    num_output: int             # N
    bias: bool
    transpose: bool             # the weight blob is stored (K, N)

    def blob_shapes(self) -> list:
        """The weight (N, K), or (K, N) with `transpose: true`; the bias (N,)."""
        return ([(self.inputs, self.num_output) if self.transpose else (self.num_output, self.inputs)]
                + [(self.num_output,)] * self.bias)


def ip_conf(ctx, bottoms) -> InnerProductConf:
    p = ctx.p
    b = bottoms[0]
    if not p.has("num_output") or p.get("num_output") <= 0:
        ctx.fail("num_output must be given and > 0", "num_output")
    a = canonical_axis(p.get("axis"), len(b))
    return InnerProductConf(a, count(b[a:]), p.get("num_output"), p.get("bias_term"),
                            p.get("transpose"))


def ip_shape(ctx, bottoms):
    c: InnerProductConf = ctx.conf
    b = bottoms[0]
    ctx.note(f"K = prod{tuple(b[c.axis:])} = {c.inputs}; top = {tuple(b[:c.axis])} + ({c.num_output},)")
    return [tuple(b[:c.axis]) + (c.num_output,)]


def ip_lower(ctx):
    """nn.Linear when the bottom ends at `axis` (nothing to flatten); else CaffeInnerProduct,
    an nn.Linear that flattens the axes from `axis` on first (NCHW order)."""
    c: InnerProductConf = ctx.conf
    kw = {} if c.bias else {"bias": False}
    if len(ctx.bottoms[0]) == c.axis + 1:
        return ctx.module(nn("Linear"), c.inputs, c.num_output, **kw)
    return ctx.module(local(__name__, "CaffeInnerProduct"), c.inputs, c.num_output, **kw,
                      axis=c.axis)


def ip_weights(ctx, blobs):
    """Blob 0 (N, K) = Linear's weight; with `transpose: true` it is stored (K, N) and
    transposed here. Blob 1 the bias (N,)."""
    c: InnerProductConf = ctx.conf
    arrays = ctx.expect_blobs(blobs, c.blob_shapes())
    if c.transpose:
        arrays[0] = arrays[0].T.copy()
    return dict(zip(("weight", "bias"), arrays))


def ip_cost(ctx) -> Cost:
    """M * K * N multiply-adds, M = prod(bottom[:axis]) rows. K is fixed by the weights: a net
    takes only inputs that give the K it was made for."""
    c: InnerProductConf = ctx.conf
    rows = count(ctx.bottoms[0][:c.axis])
    return Cost(tuple(c.blob_shapes()), rows * c.inputs * c.num_output)


SPECS = [LayerSpec("InnerProduct", ip_shape, param="inner_product_param", conf=ip_conf,
                   in_place=False, lower=ip_lower, weights=ip_weights, cost=ip_cost)]
