"""Interp (DeepLab v1/v2 and PSPNet forks: interp_layer.cpp; caffe-semantics.md §2.16, §3.13).

The input is first cropped by pad_beg/pad_end (both <= 0): H_eff = H + pad_beg + pad_end. Size:
  DeepLab v2 / PSPNet (V2 files), by field presence in this order: shrink only
  (H_eff-1)/shrink+1; zoom only H_eff+(H_eff-1)*(zoom-1); height and width; shrink then zoom.
  DeepLab v1 (V1 files, `type: INTERP`): exactly one of zoom, shrink, height/width.
A second bottom (a fork extension) gives the output size directly.
Resampling is bilinear with align_corners=True.
"""
from __future__ import annotations

from . import LayerSpec
from .geometry import cdiv


def interp_size(ctx, bottoms) -> tuple[int, int]:
    p = ctx.p
    b = bottoms[0]
    if len(b) != 4:
        ctx.fail(f"Interp needs a 4-axis bottom, got {tuple(b)}")
    pb, pe = p.get("pad_beg"), p.get("pad_end")
    if pb > 0 or pe > 0:
        ctx.fail(f"pad_beg ({pb}) and pad_end ({pe}) must be <= 0 (they crop)", "pad_beg")
    h_eff, w_eff = b[2] + pb + pe, b[3] + pb + pe
    if h_eff < 1 or w_eff < 1:
        ctx.fail(f"after pad_beg {pb} and pad_end {pe}, {b[2]}x{b[3]} leaves nothing", "pad_beg")
    crop = f" (cropped by pad_beg {pb}, pad_end {pe}: {h_eff}x{w_eff})" if (pb or pe) else ""
    if len(bottoms) == 2:
        ctx.note(f"size from the second bottom: {bottoms[1][2]}x{bottoms[1][3]}")
        return bottoms[1][2], bottoms[1][3]
    has_zoom, has_shrink = p.has("zoom_factor"), p.has("shrink_factor")
    has_hw = p.has("height") and p.has("width")
    zoom, shrink = p.get("zoom_factor"), p.get("shrink_factor")
    if has_zoom and zoom < 1:
        ctx.fail(f"zoom_factor must be >= 1, got {zoom}", "zoom_factor")
    if has_shrink and shrink < 1:
        ctx.fail(f"shrink_factor must be >= 1, got {shrink}", "shrink_factor")

    def zoomed(x):
        return x + (x - 1) * (zoom - 1)

    def shrunk(x):
        return cdiv(x - 1, shrink) + 1

    if getattr(ctx.layer, "format", "V2") != "V2":          # DeepLab v1 flavour
        given = has_zoom + has_shrink + has_hw
        if given != 1:
            ctx.fail("DeepLab v1 Interp takes exactly one of zoom_factor, shrink_factor, "
                     "height and width", "zoom_factor")
    if has_zoom and not has_shrink:
        h, w = zoomed(h_eff), zoomed(w_eff)
        ctx.note(f"zoom {zoom}: {h_eff} + ({h_eff} - 1)*({zoom} - 1) = {h}{crop}")
    elif has_shrink and not has_zoom:
        h, w = shrunk(h_eff), shrunk(w_eff)
        ctx.note(f"shrink {shrink}: ({h_eff} - 1)/{shrink} + 1 = {h}{crop}")
    elif has_hw:
        h, w = p.get("height"), p.get("width")
        ctx.note(f"height/width given: {h}x{w}{crop}")
    elif has_zoom and has_shrink:
        h, w = zoomed(shrunk(h_eff)), zoomed(shrunk(w_eff))
        ctx.note(f"shrink {shrink} then zoom {zoom}: {h_eff} -> {shrunk(h_eff)} -> {h}{crop}")
    else:
        ctx.fail("Interp needs zoom_factor, shrink_factor, or height and width")
    return h, w


def interp_shape(ctx, bottoms):
    h, w = interp_size(ctx, bottoms)
    b = bottoms[0]
    return [(b[0], b[1], h, w)]


def interp_lower(ctx):
    """CaffeInterp with the size rule chosen here (by field presence, as interp_size): it crops
    by pad_beg/pad_end, then resizes with F.interpolate(bilinear, align_corners=True)."""
    p = ctx.p
    interp_size(ctx, ctx.bottoms)          # the checks
    b, top = ctx.bottoms[0], ctx.tops[0]
    kw = {}
    if p.get("pad_beg"):
        kw["pad_beg"] = p.get("pad_beg")
    if p.get("pad_end"):
        kw["pad_end"] = p.get("pad_end")
    if len(ctx.bottoms) == 1:
        has_zoom, has_shrink = p.has("zoom_factor"), p.has("shrink_factor")
        if has_shrink and not has_zoom:
            kw["shrink_factor"] = p.get("shrink_factor")
        elif has_zoom and not has_shrink:
            kw["zoom_factor"] = p.get("zoom_factor")
        elif p.has("height") and p.has("width"):
            kw["height"], kw["width"] = p.get("height"), p.get("width")
        else:
            kw["shrink_factor"], kw["zoom_factor"] = p.get("shrink_factor"), p.get("zoom_factor")
    eff = (b[2] + p.get("pad_beg") + p.get("pad_end"), b[3] + p.get("pad_beg") + p.get("pad_end"))
    return ctx.module("CaffeInterp", fresh=tuple(top[2:]) != eff, **kw)


SPECS = [LayerSpec("Interp", interp_shape, param="interp_param", bottoms=(1, 2), in_place=False,
                   lower=interp_lower)]
