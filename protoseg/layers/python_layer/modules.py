"""The torch modules of the well-known Python layers (see the package docstring)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..detection.modules import greedy_nms
from ..geometry import f32


def generate_anchors(scales, base_size=16, ratios=(0.5, 1.0, 2.0)):
    """py-faster-rcnn's generate_anchors (lib/rpn/generate_anchors.py), as (x1, y1, x2, y2) rows:
    the base box (0, 0, base_size - 1, base_size - 1), one box of its area per aspect ratio
    (width round(sqrt(area / ratio)), height round(width * ratio), numpy's round: half to even)
    about its centre, each scaled by every scale about its centre; ratio-major."""
    size = float(base_size)
    centre = (size - 1) / 2
    out = []
    for ratio in ratios:
        w = float(round(math.sqrt(size * size / ratio)))
        h = float(round(w * ratio))
        for scale in scales:
            sw, sh = w * scale, h * scale
            out.append((centre - (sw - 1) / 2, centre - (sh - 1) / 2,
                        centre + (sw - 1) / 2, centre + (sh - 1) / 2))
    return out


def box_overlap_plus1(candidates, kept):
    """py-faster-rcnn's NMS overlap of pixel boxes (widths x2 - x1 + 1), float32, as a (kept,
    candidates) matrix: intersection / (area of the kept box + area of the candidate -
    intersection). Rows are (x1, y1, x2, y2, area)."""
    ax0, ay0, ax1, ay1, aarea = candidates.t().contiguous()[:, None, :]
    bx0, by0, bx1, by1, barea = kept.t().contiguous()[:, :, None]
    width = (torch.minimum(ax1, bx1) - torch.maximum(ax0, bx0) + 1).clamp_min(0)
    height = (torch.minimum(ay1, by1) - torch.maximum(ay0, by0) + 1).clamp_min(0)
    inter = width * height
    return inter / (barea + aarea - inter)


def descending(scores):
    """numpy's scores.argsort()[::-1] with a stable sort: ascending, then reversed (equal scores
    end up last index first)."""
    return torch.argsort(scores, stable=True).flip(0)


class CaffeProposal(nn.Module):
    """py-faster-rcnn's ProposalLayer (lib/rpn/proposal_layer.py), in float32 as numpy runs it:
    anchors at every cell (shifted by feat_stride, cells row-major, anchors fastest), the
    foreground scores (channels A..2A-1), the box deltas applied as bbox_transform_inv does,
    boxes clipped to the image (im_info row 0: height, width, scale), boxes narrower or lower
    than min_size * scale dropped, the best pre_nms_top_n by score, non-maximum suppression
    (a box goes when its overlap with a kept box is > nms_thresh, as the default GPU NMS and
    py_cpu_nms; cpu_nms suppresses at >=), the first post_nms_top_n kept. Output rois (R, 5)
    [0, x1, y1, x2, y2] and, with scores_top, the scores (R, 1). Equal scores are ordered as a
    stable argsort()[::-1] would (numpy's default sort is not stable); exp is computed in
    double and rounded to float32."""

    def __init__(self, feat_stride, scales=(8, 16, 32), pre_nms_top_n=6000, post_nms_top_n=300,
                 nms_thresh=0.7, min_size=16, scores_top=False):
        super().__init__()
        self.feat_stride, self.scales = feat_stride, tuple(scales)
        self.pre_nms_top_n, self.post_nms_top_n = pre_nms_top_n, post_nms_top_n
        self.nms_thresh, self.min_size, self.scores_top = nms_thresh, min_size, scores_top
        self.anchors = generate_anchors(self.scales)

    def extra_repr(self):
        return (f"feat_stride={self.feat_stride}, scales={self.scales}, pre_nms_top_n={self.pre_nms_top_n}, "
                f"post_nms_top_n={self.post_nms_top_n}, nms_thresh={self.nms_thresh}, "
                f"min_size={self.min_size}, scores_top={self.scores_top}")

    def boxes(self, deltas, height, width):
        """The anchors of a height x width map moved by the deltas (bbox_transform_inv)."""
        anchors = torch.tensor(self.anchors, dtype=torch.float64, device=deltas.device)
        ys, xs = torch.meshgrid(torch.arange(height, device=deltas.device) * self.feat_stride,
                                torch.arange(width, device=deltas.device) * self.feat_stride, indexing="ij")
        shifts = torch.stack((xs, ys, xs, ys), -1).reshape(-1, 1, 4)
        anchors = (anchors[None] + shifts).reshape(-1, 4).float()
        d = deltas.permute(0, 2, 3, 1).reshape(-1, 4)
        widths = anchors[:, 2] - anchors[:, 0] + 1.0
        heights = anchors[:, 3] - anchors[:, 1] + 1.0
        cx = d[:, 0] * widths + (anchors[:, 0] + 0.5 * widths)
        cy = d[:, 1] * heights + (anchors[:, 1] + 0.5 * heights)
        w = torch.exp(d[:, 2].double()).float() * widths
        h = torch.exp(d[:, 3].double()).float() * heights
        return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), 1)

    def forward(self, scores, deltas, im_info):
        if scores.shape[0] != 1:
            raise ValueError("the proposal layer supports a single image (batch 1), as the original")
        a = len(self.anchors)
        height, width = scores.shape[-2:]
        fg = scores[:, a:].permute(0, 2, 3, 1).reshape(-1)
        boxes = self.boxes(deltas, height, width)
        info = im_info[0]
        limit = torch.stack((info[1], info[0], info[1], info[0])) - 1
        boxes = torch.maximum(torch.minimum(boxes, limit), torch.zeros_like(limit))
        least = (self.min_size * info[2].double()).float()
        keep = ((boxes[:, 2] - boxes[:, 0] + 1 >= least) & (boxes[:, 3] - boxes[:, 1] + 1 >= least))
        boxes, fg = boxes[keep], fg[keep]
        order = descending(fg)
        if self.pre_nms_top_n > 0:
            order = order[:self.pre_nms_top_n]
        boxes, fg = boxes[order], fg[order]
        order = descending(fg)
        area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
        ranked = torch.cat((boxes, area[:, None]), 1)[order]
        kept = greedy_nms(ranked, box_overlap_plus1, self.nms_thresh, limit=self.post_nms_top_n)
        kept = order[torch.tensor(kept, dtype=torch.long, device=order.device)]
        rois = torch.cat((torch.zeros_like(fg[kept, None]), boxes[kept]), 1)
        return (rois, fg[kept, None]) if self.scores_top else rois


class CaffeSpatialDropout(nn.Module):
    """ENet's SpatialDropoutLayer (spatial_dropout.py): x * (1 / (1 - p)), the factor rounded to
    float32 as numpy multiplies a float32 blob; with train (its param_str phase 'TRAIN'), whole
    channels of each image zeroed with probability p first (F.dropout2d)."""

    def __init__(self, p, train=False):
        super().__init__()
        self.p, self.train_phase = p, train

    def extra_repr(self):
        return f"p={self.p}, train={self.train_phase}"

    def forward(self, x):
        if self.train_phase:
            return F.dropout2d(x, self.p, True)
        return x * f32(1.0 / (1.0 - self.p))
