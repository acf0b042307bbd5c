"""Interp (DeepLab v1/v2 and PSPNet forks: interp_layer.cpp; caffe-semantics.md §2.16, §3.13).

The input is first cropped by pad_beg/pad_end (both <= 0): H_eff = H + pad_beg + pad_end. Size:
  DeepLab v2 / PSPNet (V2 files), by field presence in this order: shrink only
  (H_eff-1)/shrink+1; zoom only H_eff+(H_eff-1)*(zoom-1); height and width; shrink then zoom.
  DeepLab v1 (V1 files, `type: INTERP`): exactly one of zoom, shrink, height/width.
A second bottom (a fork extension) gives the output size directly.
Resampling is bilinear with align_corners=True.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..geometry import cdiv
from ..spec import AxisRule, LayerSpec, free, local


@dataclass(frozen=True)
class InterpRule:
    """Which size rule applies: "bottom" (the second bottom's size), "shrink", "zoom", "size"
    (height and width) or "shrink_zoom", and the crop by pad_beg/pad_end (both <= 0)."""

    rule: str
    pad_beg: int = 0
    pad_end: int = 0
    zoom: int | None = None
    shrink: int | None = None
    height: int | None = None
    width: int | None = None

    def size(self, h: int) -> int:
        """The output size along one axis of cropped size h (rules other than bottom/size)."""
        if self.shrink is not None:
            h = cdiv(h - 1, self.shrink) + 1
        if self.zoom is not None:
            h = h + (h - 1) * (self.zoom - 1)
        return h

    def top_size(self, h: int, ref: int | None, given: int | None) -> int:
        """The output size along an axis of cropped size h: the second bottom's size `ref`, the
        `given` height or width, or the zoom/shrink rule."""
        return ref if self.rule == "bottom" else given if self.rule == "size" else self.size(h)


def interp_rule(ctx, bottoms) -> InterpRule:
    p = ctx.p
    b = bottoms[0]
    if len(b) != 4:
        ctx.fail(f"Interp needs a 4-axis bottom, got {tuple(b)}")
    pb, pe = p.get("pad_beg"), p.get("pad_end")
    if pb > 0 or pe > 0:
        ctx.fail(f"pad_beg ({pb}) and pad_end ({pe}) must be <= 0 (they crop)", "pad_beg")
    if b[2] + pb + pe < 1 or b[3] + pb + pe < 1:
        ctx.fail(f"after pad_beg {pb} and pad_end {pe}, {b[2]}x{b[3]} leaves nothing", "pad_beg")
    if len(bottoms) == 2:
        given = [f for f in ("shrink_factor", "zoom_factor", "height", "width") if p.has(f)]
        if given:       # the forks' interp_layer.cpp: LOG(FATAL), "ambiguous"
            ctx.fail(f"with a second bottom the size comes from it: {', '.join(given)} may not be "
                     f"given too (Caffe refuses the layer as ambiguous)", given[0])
        return InterpRule("bottom", pb, pe)
    has_zoom, has_shrink = p.has("zoom_factor"), p.has("shrink_factor")
    has_hw = p.has("height") and p.has("width")
    zoom, shrink = p.get("zoom_factor"), p.get("shrink_factor")
    if has_zoom and zoom < 1:
        ctx.fail(f"zoom_factor must be >= 1, got {zoom}", "zoom_factor")
    if has_shrink and shrink < 1:
        ctx.fail(f"shrink_factor must be >= 1, got {shrink}", "shrink_factor")
    if getattr(ctx.layer, "format", "V2") != "V2":          # DeepLab v1 flavour
        if has_zoom + has_shrink + has_hw != 1:
            ctx.fail("DeepLab v1 Interp takes exactly one of zoom_factor, shrink_factor, "
                     "height and width", "zoom_factor")
    if has_zoom and not has_shrink:
        return InterpRule("zoom", pb, pe, zoom=zoom)
    if has_shrink and not has_zoom:
        return InterpRule("shrink", pb, pe, shrink=shrink)
    if has_hw:
        return InterpRule("size", pb, pe, height=p.get("height"), width=p.get("width"))
    if has_zoom and has_shrink:
        return InterpRule("shrink_zoom", pb, pe, zoom=zoom, shrink=shrink)
    ctx.fail("Interp needs zoom_factor, shrink_factor, or height and width")


def interp_shape(ctx, bottoms):
    r: InterpRule = ctx.conf
    b = bottoms[0]
    h_eff, w_eff = b[2] + r.pad_beg + r.pad_end, b[3] + r.pad_beg + r.pad_end
    ref = bottoms[1] if r.rule == "bottom" else (None,) * 4
    h, w = r.top_size(h_eff, ref[2], r.height), r.top_size(w_eff, ref[3], r.width)
    crop = (f" (cropped by pad_beg {r.pad_beg}, pad_end {r.pad_end}: {h_eff}x{w_eff})"
            if (r.pad_beg or r.pad_end) else "")
    if r.rule == "bottom":
        ctx.note(f"size from the second bottom: {h}x{w}")
    elif r.rule == "size":
        ctx.note(f"height/width given: {h}x{w}{crop}")
    elif r.rule == "zoom":
        ctx.note(f"zoom {r.zoom}: {h_eff} + ({h_eff} - 1)*({r.zoom} - 1) = {h}{crop}")
    elif r.rule == "shrink":
        ctx.note(f"shrink {r.shrink}: ({h_eff} - 1)/{r.shrink} + 1 = {h}{crop}")
    else:
        ctx.note(f"shrink {r.shrink} then zoom {r.zoom}: {h_eff} -> "
                 f"{cdiv(h_eff - 1, r.shrink) + 1} -> {h}{crop}")
    return [(b[0], b[1], h, w)]


def interp_axes(ctx) -> dict:
    """H and W: the crop by pad_beg (x - |pad_beg|), then align-corners resampling, x_top = x *
    (out - 1)/(in - 1): exact for the sizes at hand (a zoom by z is exactly z; a shrink only when
    s divides in - 1). Each top element reads two neighbours (reach 1); a second bottom gives
    only the size."""
    r: InterpRule = ctx.conf
    pads = r.pad_beg + r.pad_end
    rules = {}
    for i, given in ((2, r.height), (3, r.width)):
        def size(n, ref=None, given=given):
            return r.top_size(n + pads, ref, given) if n + pads >= 1 else None
        eff, out = ctx.bottoms[0][i] + pads, ctx.tops[0][i]
        scale = Fraction(out - 1, eff - 1) if eff > 1 and out > 1 else None
        rules[i] = AxisRule(size, scale, (scale or 0) * r.pad_beg, Fraction(1), mapped=(0,))
    return rules


def interp_lower(ctx):
    """CaffeInterp with the size rule chosen here (by field presence): it crops by
    pad_beg/pad_end, then resizes with F.interpolate(bilinear, align_corners=True)."""
    r: InterpRule = ctx.conf
    b, top = ctx.bottoms[0], ctx.tops[0]
    kw = {}
    if r.pad_beg:
        kw["pad_beg"] = r.pad_beg
    if r.pad_end:
        kw["pad_end"] = r.pad_end
    if r.rule == "size":
        kw["height"], kw["width"] = r.height, r.width
    if r.shrink is not None:
        kw["shrink_factor"] = r.shrink
    if r.zoom is not None:
        kw["zoom_factor"] = r.zoom
    eff = (b[2] + r.pad_beg + r.pad_end, b[3] + r.pad_beg + r.pad_end)
    return ctx.module(local(__name__, "CaffeInterp"), fresh=tuple(top[2:]) != eff, **kw)


SPECS = [LayerSpec("Interp", interp_shape, param="interp_param", conf=interp_rule, bottoms=(1, 2),
                   in_place=False, lower=interp_lower, cost=free, axes=interp_axes)]
