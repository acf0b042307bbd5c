"""Eltwise (eltwise_layer.cpp; caffe-semantics.md §2.7, §3.8): SUM (with coeff), PROD or MAX of
bottoms of identical shape (no broadcasting: equal counts are not enough)."""
from __future__ import annotations

from ..geometry import count
from ..spec import Cost, LayerSpec, local, same_axes


def eltwise_shape(ctx, bottoms):
    p = ctx.p
    for i, b in enumerate(bottoms[1:], 1):
        if tuple(b) != tuple(bottoms[0]):
            ctx.fail(f"all bottoms must have the same shape: bottom 0 '{ctx.layer.bottoms[0]}' is "
                     f"{tuple(bottoms[0])}, bottom {i} '{ctx.layer.bottoms[i]}' is {tuple(b)}")
    coeff = p.get("coeff")
    if coeff and len(coeff) != len(bottoms):
        ctx.fail(f"{len(coeff)} coeff values for {len(bottoms)} bottoms: give none or one per bottom",
                 "coeff")
    if coeff and p.get("operation") == "PROD":
        ctx.fail("coeff applies to SUM only, not PROD", "coeff")
    ctx.note(f"{p.get('operation')} of {len(bottoms)} bottoms of shape {tuple(bottoms[0])}")
    return [bottoms[0]]


def eltwise_lower(ctx):
    p = ctx.p
    kw = {"coeff": list(p.get("coeff"))} if p.get("coeff") and p.get("operation") == "SUM" else {}
    return ctx.module(local(__name__, "CaffeEltwise"), p.get("operation"), **kw)


def eltwise_cost(ctx) -> Cost:
    """PROD: one multiplication per element and extra bottom; SUM with coefficients: one
    multiply-add per element and bottom; plain SUM and MAX: none (additions, comparisons)."""
    p, n = ctx.p, len(ctx.bottoms)
    if p.get("operation") == "PROD":
        return Cost(macs=count(ctx.tops[0]) * (n - 1))
    if p.get("operation") == "SUM" and any(c != 1 for c in p.get("coeff")):
        return Cost(macs=count(ctx.tops[0]) * n)
    return Cost()


SPECS = [LayerSpec("Eltwise", eltwise_shape, param="eltwise_param", bottoms=(2, None),
                   lower=eltwise_lower, cost=eltwise_cost, axes=same_axes)]
