"""ROIPooling (Fast/Faster R-CNN fork: roi_pooling_layer.cpp) and PSROIPooling (R-FCN fork:
psroi_pooling_layer.cpp). Bottoms: features and rois (num_rois, 5)."""
from __future__ import annotations

from ..spec import LayerSpec, free


def roi_pooling_shape(ctx, bottoms):
    p = ctx.p
    feat, rois = bottoms
    return [(rois[0], feat[1], p.get("pooled_h"), p.get("pooled_w"))]


def psroi_pooling_shape(ctx, bottoms):
    p = ctx.p
    feat, rois = bottoms
    g, d = p.get("group_size"), p.get("output_dim")
    if feat[1] != d * g * g:
        ctx.fail(f"the features need output_dim*group_size^2 = {d}*{g}^2 = {d * g * g} channels, "
                 f"got {feat[1]}", "output_dim")
    return [(rois[0], d, g, g)]


SPECS = [
    LayerSpec("ROIPooling", roi_pooling_shape, param="roi_pooling_param", bottoms=(2, 2),
              in_place=False, inference=False, cost=free),
    LayerSpec("PSROIPooling", psroi_pooling_shape, param="psroi_pooling_param", bottoms=(2, 2),
              in_place=False, inference=False, cost=free),
]
