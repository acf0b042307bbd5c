"""PriorBox (SSD fork: prior_box_layer.cpp; caffe-semantics.md §2.17, §3.15).

top = (1, 2, H_f * W_f * num_priors * 4): channel 0 the boxes, channel 1 their variances.
num_priors = len(aspect ratios) * len(min_size) + len(max_size), where the aspect ratios are 1,
then each distinct given ratio and, with flip, its reciprocal.
"""
from __future__ import annotations

from ..spec import LayerSpec, free, local


def aspect_ratios(p) -> list:
    ars = [1.0]
    for ar in p.get("aspect_ratio"):
        if any(abs(ar - a) < 1e-6 for a in ars):
            continue
        ars.append(ar)
        if p.get("flip"):
            ars.append(1.0 / ar)
    return ars


def prior_box_shape(ctx, bottoms):
    p = ctx.p
    feat = bottoms[0]
    mins, maxs = p.get("min_size"), p.get("max_size")
    if not mins:
        ctx.fail("min_size is required", "min_size")
    if maxs and len(maxs) != len(mins):
        ctx.fail(f"{len(maxs)} max_size values for {len(mins)} min_size values", "max_size")
    ars = aspect_ratios(p)
    n = len(ars) * len(mins) + len(maxs)
    h, w = feat[2], feat[3]
    ctx.note(f"{h}x{w} cells x {n} priors x 4 = {h * w * n * 4} (aspect ratios {ars})")
    return [(1, 2, h * w * n * 4)]


def prior_box_lower(ctx):
    """CaffePriorBox: computed from the two bottoms' shapes only (cached per size)."""
    p = ctx.p
    kw = {"min_size": list(p.get("min_size"))}
    if p.get("max_size"):
        kw["max_size"] = list(p.get("max_size"))
    ars = aspect_ratios(p)
    if ars != [1.0]:
        kw["aspect_ratio"] = ars
    if p.get("clip"):
        kw["clip"] = True
    if p.get("variance"):
        kw["variance"] = list(p.get("variance"))
    if p.has("img_h") or p.has("img_w"):
        kw["img_size"] = (p.get("img_h"), p.get("img_w"))
    elif p.has("img_size"):
        kw["img_size"] = (p.get("img_size"), p.get("img_size"))
    if p.has("step_h") or p.has("step_w"):
        kw["step"] = (p.get("step_h"), p.get("step_w"))
    elif p.has("step"):
        kw["step"] = (p.get("step"), p.get("step"))
    if p.get("offset") != 0.5:
        kw["offset"] = p.get("offset")
    return ctx.module(local(__name__, "CaffePriorBox"), fresh=False, **kw)


SPECS = [LayerSpec("PriorBox", prior_box_shape, param="prior_box_param", bottoms=(2, 2), in_place=False,
                   lower=prior_box_lower, cost=free)]
