"""MVN (mvn_layer.cpp): subtract the mean (and divide by the standard deviation when
normalize_variance) over each channel's spatial positions, or across channels too."""
from __future__ import annotations

from ..spec import LayerSpec, local, same_shape


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


SPECS = [LayerSpec("MVN", same_shape, param="mvn_param", lower=mvn_lower)]
