"""DetectionOutput (SSD fork: detection_output_layer.cpp): decodes boxes and runs NMS. The
number of detections is only known after running; at set-up Caffe shapes the top (1, 1, 1, 7)."""
from __future__ import annotations

from ..spec import LayerSpec, free


def detection_output_shape(ctx, bottoms):
    ctx.note("(1, 1, 1, 7) at set-up; the detection count is only known at run time")
    return [(1, 1, 1, 7)]


SPECS = [LayerSpec("DetectionOutput", detection_output_shape, param="detection_output_param",
                   bottoms=(3, 4), in_place=False, inference=False, cost=free)]
