"""Upsample (SegNet fork: upsample_layer.cpp): max-unpooling with the pooling mask (bottom 1).
Size: upsample_h/upsample_w when given, else H*scale - pad_out_h (and W likewise)."""
from __future__ import annotations

from . import LayerSpec


def upsample_shape(ctx, bottoms):
    p = ctx.p
    b = bottoms[0]
    if len(b) != 4:
        ctx.fail(f"Upsample needs a 4-axis bottom, got {tuple(b)}")
    if len(bottoms) == 2 and tuple(bottoms[1]) != tuple(b):
        ctx.fail(f"the mask bottom '{ctx.layer.bottoms[1]}' {tuple(bottoms[1])} must have the data's "
                 f"shape {tuple(b)}")
    if p.has("upsample_h") and p.has("upsample_w"):
        h, w = p.get("upsample_h"), p.get("upsample_w")
        ctx.note(f"size given: {h}x{w}")
    else:
        sh = p.get("scale_h") if p.has("scale_h") else p.get("scale")
        sw = p.get("scale_w") if p.has("scale_w") else p.get("scale")
        h = b[2] * sh - int(p.get("pad_out_h"))
        w = b[3] * sw - int(p.get("pad_out_w"))
        ctx.note(f"H: {b[2]}*{sh} - {int(p.get('pad_out_h'))} = {h}; W: {b[3]}*{sw} - "
                 f"{int(p.get('pad_out_w'))} = {w}")
    return [(b[0], b[1], h, w)]


def upsample_lower(ctx):
    """CaffeUpsample: max-unpooling with the mask of a MAX Pooling (bottom 1)."""
    p = ctx.p
    if len(ctx.bottoms) != 2:
        ctx.unsupported("Upsample without a mask bottom (SegNet's layer unpools with the argmax "
                        "top of a MAX Pooling)")
    if p.has("upsample_h") and p.has("upsample_w"):
        return ctx.module("CaffeUpsample", size=(p.get("upsample_h"), p.get("upsample_w")))
    sh = p.get("scale_h") if p.has("scale_h") else p.get("scale")
    sw = p.get("scale_w") if p.has("scale_w") else p.get("scale")
    kw = {"scale": (sh, sw)}
    if p.get("pad_out_h") or p.get("pad_out_w"):
        kw["pad_out"] = (int(p.get("pad_out_h")), int(p.get("pad_out_w")))
    return ctx.module("CaffeUpsample", **kw)


SPECS = [LayerSpec("Upsample", upsample_shape, param="upsample_param", bottoms=(1, 2), in_place=False,
                   lower=upsample_lower)]
