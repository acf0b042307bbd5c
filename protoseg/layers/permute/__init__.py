"""Permute (SSD fork: permute_layer.cpp): top.shape[i] = bottom.shape[order[i]]; axes not listed
follow in increasing order."""
from __future__ import annotations

from ..spec import LayerSpec, free, local


def permute_order(ctx, ndim: int) -> list:
    order = []
    for o in ctx.p.get("order"):
        if o >= ndim:
            ctx.fail(f"order value {o} is out of range for a {ndim}-axis blob", "order")
        if o in order:
            ctx.fail(f"order lists axis {o} twice", "order")
        order.append(o)
    return order + [i for i in range(ndim) if i not in order]


def permute_shape(ctx, bottoms):
    b = bottoms[0]
    order = permute_order(ctx, len(b))
    return [tuple(b[i] for i in order)]


def permute_lower(ctx):
    return ctx.module(local(__name__, "CaffePermute"), order=permute_order(ctx, len(ctx.bottoms[0])), fresh=False)


SPECS = [LayerSpec("Permute", permute_shape, param="permute_param", in_place=False,
                   lower=permute_lower, cost=free)]
