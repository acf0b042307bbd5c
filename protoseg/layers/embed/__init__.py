"""Embed (embed_layer.cpp): look up rows of a (input_dim, num_output) table by integer index;
top = bottom shape + (num_output,)."""
from __future__ import annotations

from ..spec import Cost, LayerSpec, local


def embed_shape(ctx, bottoms):
    p = ctx.p
    if p.get("num_output") <= 0 or p.get("input_dim") <= 0:
        ctx.fail("num_output and input_dim must be given and > 0", "num_output")
    return [tuple(bottoms[0]) + (p.get("num_output"),)]


def embed_lower(ctx):
    p = ctx.p
    kw = {} if p.get("bias_term") else {"bias": False}
    return ctx.module(local(__name__, "CaffeEmbed"), p.get("input_dim"), p.get("num_output"), **kw)


def embed_blobs(ctx) -> list:
    """Blob 0 the (input_dim, num_output) table, blob 1 the bias (num_output,)."""
    p = ctx.p
    return [(p.get("input_dim"), p.get("num_output"))] + [(p.get("num_output"),)] * p.get("bias_term")


def embed_weights(ctx, blobs):
    return dict(zip(("weight", "bias"), ctx.expect_blobs(blobs, embed_blobs(ctx))))


SPECS = [LayerSpec("Embed", embed_shape, param="embed_param", in_place=False, lower=embed_lower,
                   weights=embed_weights, cost=lambda ctx: Cost(tuple(embed_blobs(ctx))))]
