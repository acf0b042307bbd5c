"""Upsample (SegNet fork: upsample_layer.cpp): max-unpooling with the pooling mask (bottom 1).
Size: upsample_h/upsample_w when given, else H*scale - pad_out_h (and W likewise)."""
from __future__ import annotations

from dataclasses import dataclass

from ..spec import LayerSpec, local


@dataclass(frozen=True)
class UpsampleSize:
    size: tuple | None          # (upsample_h, upsample_w) when given
    scale: tuple                # (scale_h, scale_w)
    pad_out: tuple              # (pad_out_h, pad_out_w)


def upsample_size(ctx, bottoms) -> UpsampleSize:
    p = ctx.p
    b = bottoms[0]
    if len(b) != 4:
        ctx.fail(f"Upsample needs a 4-axis bottom, got {tuple(b)}")
    if len(bottoms) == 2 and tuple(bottoms[1]) != tuple(b):
        ctx.fail(f"the mask bottom '{ctx.layer.bottoms[1]}' {tuple(bottoms[1])} must have the data's "
                 f"shape {tuple(b)}")
    size = (p.get("upsample_h"), p.get("upsample_w")) if p.has("upsample_h") and p.has("upsample_w") else None
    scale = (p.get("scale_h") if p.has("scale_h") else p.get("scale"),
             p.get("scale_w") if p.has("scale_w") else p.get("scale"))
    return UpsampleSize(size, scale, (int(p.get("pad_out_h")), int(p.get("pad_out_w"))))


def upsample_shape(ctx, bottoms):
    u: UpsampleSize = ctx.conf
    b = bottoms[0]
    if u.size is not None:
        h, w = u.size
        ctx.note(f"size given: {h}x{w}")
    else:
        (sh, sw), (ph, pw) = u.scale, u.pad_out
        h, w = b[2] * sh - ph, b[3] * sw - pw
        ctx.note(f"H: {b[2]}*{sh} - {ph} = {h}; W: {b[3]}*{sw} - {pw} = {w}")
    return [(b[0], b[1], h, w)]


def upsample_lower(ctx):
    """CaffeUpsample: max-unpooling with the mask of a MAX Pooling (bottom 1)."""
    u: UpsampleSize = ctx.conf
    if len(ctx.bottoms) != 2:
        ctx.unsupported("Upsample without a mask bottom (SegNet's layer unpools with the argmax "
                        "top of a MAX Pooling)")
    if u.size is not None:
        return ctx.module(local(__name__, "CaffeUpsample"), size=u.size)
    kw = {"scale": u.scale}
    if any(u.pad_out):
        kw["pad_out"] = u.pad_out
    return ctx.module(local(__name__, "CaffeUpsample"), **kw)


SPECS = [LayerSpec("Upsample", upsample_shape, param="upsample_param", conf=upsample_size,
                   bottoms=(1, 2), in_place=False, lower=upsample_lower)]
