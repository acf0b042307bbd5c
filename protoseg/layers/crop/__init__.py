"""Crop (crop_layer.cpp; caffe-semantics.md §2.6, §8.1).

Bottom 0 is cropped to bottom 1's size on axes >= axis (default 2), starting at `offset`
(0, one value for every axis, or one per cropped axis). The crop is one-sided: the window is
[offset, offset + size); the remainder at the end is dropped. (A "symmetric trim" by the offset
on both sides is a common misreading: for FCN-8s it gives 568 - 2*31 = 506, not Caffe's 500.)
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..geometry import canonical_axis
from ..spec import AxisRule, LayerSpec, free, local


@dataclass(frozen=True)
class CropWindow:
    axis: int                   # the first cropped axis
    offsets: tuple              # one per cropped axis


def crop_window(ctx, bottoms) -> CropWindow:
    """The first cropped axis and one offset per cropped axis, after Caffe's checks."""
    b0, b1 = bottoms
    p = ctx.p
    a = canonical_axis(p.get("axis"), len(b0))
    n = len(b0)
    offsets = list(p.get("offset"))
    if len(offsets) > 1 and len(offsets) != n - a:
        ctx.fail(f"{len(offsets)} offsets for the {n - a} cropped axes ({a}..{n - 1}): give 0, 1 "
                 f"or {n - a}", "offset")
    if len(b1) < n:
        ctx.fail(f"the reference bottom '{ctx.layer.bottoms[1]}' {tuple(b1)} has fewer axes than "
                 f"{tuple(b0)}")
    offs = [offsets[0] if len(offsets) == 1 else (offsets[i - a] if offsets else 0) for i in range(a, n)]
    return CropWindow(a, tuple(offs))


def cropped(size: int, offset: int, ref: int) -> int | None:
    """The size along a cropped axis: the reference bottom's, when the window [offset, offset +
    ref) fits in bottom 0's `size`; None when it does not."""
    return ref if size - offset >= ref else None


def crop_shape(ctx, bottoms):
    b0, b1 = bottoms
    a, offs = ctx.conf.axis, ctx.conf.offsets
    out = list(b0[:a])
    ref = ctx.layer.bottoms[1]
    for i, off in zip(range(a, len(b0)), offs):
        size = b1[i]
        if cropped(b0[i], off, size) is None:
            ctx.fail(f"crop out of bounds on axis {i}: window [{off}, {off + size}) of size {size} "
                     f"(from '{ref}') does not fit in {b0[i]}: {b0[i]} - {off} < {size}", "offset")
        rest = b0[i] - off - size
        ctx.note(f"axis {i}: keep [{off}:{off + size}] of {b0[i]} (size {size} from '{ref}'): "
                 f"trims {off} before, {rest} after")
        if off and rest != off:         # where the common misreading gives another size
            ctx.note(f"axis {i}: a symmetric trim of {off} from both ends would give "
                     f"{b0[i]} - 2*{off} = {b0[i] - 2 * off}; Caffe's Crop gives {size}: it takes the "
                     f"size from the second bottom '{ref}' and uses the offset only as the start "
                     f"({off} before, {rest} after)")
        out.append(size)
    if not ctx.p.has("offset") and not ctx.params.has("crop_param"):
        ctx.note("no crop_param: offset 0 on every axis (BVLC Caffe); the original FCN fork "
                 "derived offsets automatically")
    return [tuple(out)]


def crop_axes(ctx) -> dict:
    """Only bottom 0 is mapped (coord_map.py): x_top = x - offset on the cropped axes; the axes
    before them keep bottom 0's size."""
    a, offs = ctx.conf.axis, ctx.conf.offsets
    rules = {i: AxisRule(lambda n0, n1: n0, mapped=(0,)) for i in range(a)}
    for i, off in zip(range(a, len(ctx.bottoms[0])), offs):
        rules[i] = AxisRule(lambda n0, n1, off=off: cropped(n0, off, n1), shift=Fraction(-off),
                            mapped=(0,))
    return rules


def crop_lower(ctx):
    """CaffeCrop: a view of bottom 0, [offset, offset + size of bottom 1) on each cropped axis."""
    return ctx.module(local(__name__, "CaffeCrop"), axis=ctx.conf.axis, offset=ctx.conf.offsets,
                      fresh=False)


SPECS = [LayerSpec("Crop", crop_shape, param="crop_param", conf=crop_window, bottoms=(2, 2),
                   in_place=False, lower=crop_lower, cost=free, axes=crop_axes)]
