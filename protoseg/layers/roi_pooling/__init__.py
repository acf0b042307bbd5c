"""ROIPooling (Fast/Faster R-CNN fork: roi_pooling_layer.cpp) and PSROIPooling (R-FCN fork:
psroi_pooling_layer.cu). Bottoms: the features (N, C, H, W) and the rois (R, 5), rows [batch
index, x1, y1, x2, y2] in input-image pixels; top (R, C, pooled_h, pooled_w), resp. (R,
output_dim, group_size, group_size). R follows the rois: set by a proposal layer, it is only
known after its forward (Caffe's set-up shape is R = 1).

LayerSetUp checks pooled_h, pooled_w > 0 (ROIPooling) and output_dim, group_size > 0
(PSROIPooling); Reshape checks C = output_dim * group_size^2 (PSROIPooling).
"""
from __future__ import annotations

import math

from ..geometry import f32
from ..spec import LayerSpec, free, local


def _rois(ctx, rois) -> None:
    if len(rois) < 2 or math.prod(rois[1:]) != 5:
        ctx.fail(f"the rois (bottom 1) must hold 5 values per roi (batch index, x1, y1, x2, y2), "
                 f"got {tuple(rois)}")


def _positive(ctx, *fields) -> None:
    for name in fields:
        if ctx.p.get(name) <= 0:
            ctx.fail(f"{name} must be > 0, got {ctx.p.get(name)}", name)


def roi_pooling_shape(ctx, bottoms):
    p = ctx.p
    feat, rois = bottoms
    _positive(ctx, "pooled_h", "pooled_w")
    _rois(ctx, rois)
    if len(feat) != 4:
        ctx.fail(f"the features (bottom 0) must be (N, C, H, W), got {tuple(feat)}")
    return [(rois[0], feat[1], p.get("pooled_h"), p.get("pooled_w"))]


def psroi_pooling_shape(ctx, bottoms):
    p = ctx.p
    feat, rois = bottoms
    _positive(ctx, "output_dim", "group_size")
    _rois(ctx, rois)
    g, d = p.get("group_size"), p.get("output_dim")
    if len(feat) != 4:
        ctx.fail(f"the features (bottom 0) must be (N, C, H, W), got {tuple(feat)}")
    if feat[1] != d * g * g:
        ctx.fail(f"the features need output_dim*group_size^2 = {d}*{g}^2 = {d * g * g} channels, "
                 f"got {feat[1]}", "output_dim")
    return [(rois[0], d, g, g)]


def roi_pooling_lower(ctx):
    p = ctx.p
    return ctx.module(local(__name__, "CaffeROIPooling"), p.get("pooled_h"), p.get("pooled_w"),
                      spatial_scale=f32(p.get("spatial_scale")))


def psroi_pooling_lower(ctx):
    p = ctx.p
    return ctx.module(local(__name__, "CaffePSROIPooling"), p.get("output_dim"), p.get("group_size"),
                      spatial_scale=f32(p.get("spatial_scale")))


SPECS = [
    LayerSpec("ROIPooling", roi_pooling_shape, param="roi_pooling_param", bottoms=(2, 2),
              in_place=False, lower=roi_pooling_lower, cost=free),
    LayerSpec("PSROIPooling", psroi_pooling_shape, param="psroi_pooling_param", bottoms=(2, 2),
              in_place=False, lower=psroi_pooling_lower, cost=free),
]
