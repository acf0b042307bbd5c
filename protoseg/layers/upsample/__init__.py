"""Upsample (SegNet fork: upsample_layer.cpp): max-unpooling with the pooling mask (bottom 1).
Size: upsample_h/upsample_w when given, else H*scale - pad_out_h (and W likewise)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..spec import AxisRule, LayerSpec, free, local, one_size


@dataclass(frozen=True)
class UpsampleSize:
    size: tuple | None          # (upsample_h, upsample_w) when given
    scale: tuple                # (scale_h, scale_w)
    pad_out: tuple              # (pad_out_h, pad_out_w)

    def out(self, i: int, size: int) -> int:
        """The size along spatial axis i (0: H, 1: W) from the bottom's `size`."""
        return self.size[i] if self.size is not None else size * self.scale[i] - self.pad_out[i]


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
    h, w = u.out(0, b[2]), u.out(1, b[3])
    if u.size is not None:
        ctx.note(f"size given: {h}x{w}")
    else:
        (sh, sw), (ph, pw) = u.scale, u.pad_out
        ctx.note(f"H: {b[2]}*{sh} - {ph} = {h}; W: {b[3]}*{sw} - {pw} = {w}")
    return [(b[0], b[1], h, w)]


def upsample_axes(ctx) -> dict:
    """H and W: bottom element x goes to one place of the scale x scale block at scale*x (the
    pooling mask says which), centred at x_top = scale*x + (scale - 1)/2, as a deconvolution
    with kernel = stride = scale; the mask bottom must have the data's size."""
    u: UpsampleSize = ctx.conf
    return {2 + i: AxisRule(one_size(lambda n, i=i: u.out(i, n)),
                            Fraction(u.scale[i]), Fraction(u.scale[i] - 1, 2))
            for i in range(2)}


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
                   bottoms=(1, 2), in_place=False, lower=upsample_lower, cost=free,
                   axes=upsample_axes)]
