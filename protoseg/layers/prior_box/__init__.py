"""PriorBox (SSD fork: prior_box_layer.cpp; caffe-semantics.md §2.17, §3.15).

top = (1, 2, H_f * W_f * num_priors * 4): channel 0 the boxes, channel 1 their variances.
num_priors = len(aspect ratios) * len(min_size) + len(max_size), where the aspect ratios are 1,
then each distinct given ratio and, with flip, its reciprocal.
"""
from __future__ import annotations

import math

from ..geometry import legacy_dim
from ..spec import LayerSpec, free, local


def aspect_ratios(p) -> list:
    """1, then each given ratio not within 1e-6 of one already there and, with flip, its
    reciprocal (a C division: 1/0 is infinite)."""
    ars = [1.0]
    for ar in p.get("aspect_ratio"):
        if any(abs(ar - a) < 1e-6 for a in ars):
            continue
        ars.append(ar)
        if p.get("flip"):
            ars.append(1.0 / ar if ar else math.copysign(math.inf, ar))
    return ars


def _check(ctx, p) -> None:
    """PriorBoxLayer::LayerSetUp's checks."""
    mins, maxs = p.get("min_size"), p.get("max_size")
    if not mins:
        ctx.fail("min_size is required", "min_size")
    if not all(m > 0 for m in mins):
        ctx.fail(f"min_size must be positive, got {list(mins)}", "min_size")
    if maxs and len(maxs) != len(mins):
        ctx.fail(f"{len(maxs)} max_size values for {len(mins)} min_size values", "max_size")
    if not all(hi > lo for lo, hi in zip(mins, maxs)):
        ctx.fail(f"each max_size must be greater than its min_size, got min {list(mins)}, max "
                 f"{list(maxs)}", "max_size")
    variance = p.get("variance")
    if len(variance) not in (0, 1, 4):
        ctx.fail(f"variance takes 1 or 4 values, got {len(variance)}", "variance")
    if not all(v > 0 for v in variance):
        ctx.fail(f"variance must be positive, got {list(variance)}", "variance")
    for pair, single in ((("img_h", "img_w"), "img_size"), (("step_h", "step_w"), "step")):
        given = [f for f in pair if p.has(f)]
        if given and p.has(single):
            ctx.fail(f"give either {single} or {pair[0]}/{pair[1]}, not both", single)
        # with either of the pair given Caffe reads both (an unset one is 0); else the single one
        checked = pair if given else [single] if p.has(single) else []
        for f in checked:
            if not p.get(f) > 0:
                ctx.fail(f"{f} must be larger than 0, got {p.get(f)}", f if p.has(f) else given[0])


def prior_box_shape(ctx, bottoms):
    p = ctx.p
    _check(ctx, p)
    ars = aspect_ratios(p)
    n = len(ars) * len(p.get("min_size")) + len(p.get("max_size"))
    h, w = legacy_dim(bottoms[0], 2), legacy_dim(bottoms[0], 3)
    legacy_dim(bottoms[1], 3, 1)        # Forward reads the image's width() and height()
    if h * w * n * 4 <= 0:
        ctx.fail(f"the feature map {tuple(bottoms[0])} has no cells: {h}x{w} cells x {n} priors")
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
