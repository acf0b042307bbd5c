"""MVN (mvn_layer.cpp): subtract the mean (and divide by the standard deviation when
normalize_variance) over each channel's spatial positions, or across channels too."""
from __future__ import annotations

from ..spec import LayerSpec, free, local, same_shape, whole_axes


def mvn_lower(ctx):
    p = ctx.p
    kw = {}
    if not p.get("normalize_variance"):
        kw["normalize_variance"] = False
    if p.get("across_channels"):
        kw["across_channels"] = True
    if p.has("eps"):
        kw["eps"] = p.get("eps")
    return ctx.module(local(__name__, "CaffeMVN"), **kw)


def mvn_axes(ctx) -> dict:
    """Same sizes; every value depends on the mean (and variance) of its whole channel: the
    spatial axes, and the channels too with across_channels."""
    n = len(ctx.bottoms[0])
    return whole_axes(ctx, range(1 if ctx.p.get("across_channels") else 2, n))


SPECS = [LayerSpec("MVN", same_shape, param="mvn_param", lower=mvn_lower, cost=free,
                   axes=mvn_axes)]
