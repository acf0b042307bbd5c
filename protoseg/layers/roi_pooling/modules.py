"""The torch modules of these layer types (see the package docstring)."""

import math

import torch
from torch import nn


def c_round(x):
    """C's round() of float32 values (half away from zero), as float64."""
    x = x.double()
    return torch.where(x >= 0, torch.floor(x + 0.5), torch.ceil(x - 0.5))


def roi_rows(rois, batch):
    """The (R, 5) rows of a rois blob, and each row's batch index (C's float -> int truncation),
    checked against the features' batch as Caffe's CPU forward checks it."""
    if rois.dim() < 2 or math.prod(rois.shape[1:]) != 5:
        raise ValueError(f"rois {tuple(rois.shape)}: each roi needs 5 values (batch index, x1, y1, x2, y2)")
    rows = rois.reshape(rois.shape[0], 5)
    index = rows[:, 0].trunc()
    if bool(((index < 0) | (index >= batch)).any()):
        raise ValueError(f"a roi's batch index is outside [0, {batch}) (Caffe: CHECK_LT(roi_batch_ind, "
                         f"batch_size))")
    return rows, index.long()


def bin_windows(start, size, bins, limit, fused_start=False):
    """Per roi (rows) and bin (columns): the window [lo, hi) of a roi starting at `start` (float32
    or int) spanning `size` (float32), split in `bins`: floor(b * size / bins) and
    ceil((b + 1) * size / bins), the bin size and the products in float32, then offset by the
    start (added as an int, or with `fused_start` inside the rounding as a fused multiply-add)
    and clipped to [0, limit]."""
    bin_size = size / float(bins)
    steps = torch.arange(bins + 1, dtype=torch.float32, device=size.device)
    if fused_start:     # floor(fma(b, bin_size, start)): the exact value rounded once to float32
        edge = (steps.double() * bin_size.double()[:, None] + start.double()[:, None]).float()
        lo, hi = torch.floor(edge[:, :-1]), torch.ceil(edge[:, 1:])
    else:
        edge = steps * bin_size[:, None]
        lo = torch.floor(edge[:, :-1]) + start[:, None]
        hi = torch.ceil(edge[:, 1:]) + start[:, None]
    return lo.clamp(0, limit).long(), hi.clamp(0, limit).long()


def window_steps(h0, h1, w0, w1, height, width):
    """Every (row, column) offset into the largest bin, row-major as the C++ loops run: each
    bin's row and column there (clamped into the map) and whether they lie inside the bin."""
    for dh in range(int((h1 - h0).max()) if h0.numel() else 0):
        h = h0 + dh
        for dw in range(int((w1 - w0).max()) if w0.numel() else 0):
            w = w0 + dw
            yield h.clamp(max=height - 1), w.clamp(max=width - 1), h < h1, w < w1


class CaffeROIPooling(nn.Module):
    """ROIPooling (Fast R-CNN fork: roi_pooling_layer.cpp). features (N, C, H, W), rois (R, 5)
    [batch index, x1, y1, x2, y2] in image pixels -> (R, C, pooled_h, pooled_w): each roi's
    corners scaled by spatial_scale (float32) and rounded (half away from zero); its size
    end - start + 1, at least 1; bin (ph, pw) covers rows floor(ph * bin_h) .. ceil((ph + 1) *
    bin_h) - 1 from the roi's start (bin_h = roi height / pooled_h, float32), clipped to the
    map. Each output is the maximum over its bin, updated only where a value is greater (NaN
    never wins, -FLT_MAX where nothing does); an empty bin gives 0."""

    def __init__(self, pooled_h, pooled_w, spatial_scale=1.0):
        super().__init__()
        self.pooled_h, self.pooled_w, self.spatial_scale = pooled_h, pooled_w, spatial_scale

    def extra_repr(self):
        return f"pooled_h={self.pooled_h}, pooled_w={self.pooled_w}, spatial_scale={self.spatial_scale}"

    def forward(self, x, rois):
        rows, batch = roi_rows(rois, x.shape[0])
        corner = c_round(rows[:, 1:] * self.spatial_scale).long()
        x1, y1, x2, y2 = corner.unbind(1)
        height = (y2 - y1 + 1).clamp_min(1).float()
        width = (x2 - x1 + 1).clamp_min(1).float()
        h0, h1 = bin_windows(y1, height, self.pooled_h, x.shape[2])
        w0, w1 = bin_windows(x1, width, self.pooled_w, x.shape[3])
        out = torch.full((rows.shape[0], self.pooled_h, self.pooled_w, x.shape[1]),
                         -3.4028234663852886e38, dtype=x.dtype, device=x.device)
        for h, w, in_h, in_w in window_steps(h0, h1, w0, w1, x.shape[2], x.shape[3]):
            value = x[batch[:, None, None], :, h[:, :, None], w[:, None, :]]
            inside = (in_h[:, :, None] & in_w[:, None, :])[..., None]
            out = torch.where(inside & (value > out), value, out)
        empty = ((h1 <= h0)[:, :, None] | (w1 <= w0)[:, None, :])[..., None]
        return out.masked_fill(empty, 0.0).permute(0, 3, 1, 2)


class CaffePSROIPooling(nn.Module):
    """PSROIPooling (R-FCN fork: psroi_pooling_layer.cu; Caffe has no CPU version). features
    (N, output_dim * group_size^2, H, W), rois (R, 5) -> (R, output_dim, group_size,
    group_size): output (ctop, ph, pw) averages channel (ctop * group_size + ph) * group_size +
    pw over its bin. The roi: x1, y1 rounded (half away from zero) times spatial_scale, x2, y2
    rounded plus 1 times spatial_scale, in float32; its size at least 0.1; bin (ph, pw) covers
    floor(ph * bin_h + start) .. ceil((ph + 1) * bin_h + start) - 1, each a fused multiply-add
    as nvcc compiles it, clipped to the map. The sum runs in float32 in row-major order and is
    divided by the bin's area; an empty bin gives 0."""

    def __init__(self, output_dim, group_size, spatial_scale=1.0):
        super().__init__()
        self.output_dim, self.group_size, self.spatial_scale = output_dim, group_size, spatial_scale

    def extra_repr(self):
        return f"output_dim={self.output_dim}, group_size={self.group_size}, spatial_scale={self.spatial_scale}"

    def forward(self, x, rois):
        rows, batch = roi_rows(rois, x.shape[0])
        g = self.group_size
        start = c_round(rows[:, 1:3]).float() * self.spatial_scale
        end = (c_round(rows[:, 3:5]) + 1).float() * self.spatial_scale
        size = end - start
        size = torch.where(size > 0.1, size, torch.full_like(size, 0.1))
        h0, h1 = bin_windows(start[:, 1], size[:, 1], g, x.shape[2], fused_start=True)
        w0, w1 = bin_windows(start[:, 0], size[:, 0], g, x.shape[3], fused_start=True)
        channel = torch.arange(self.output_dim * g * g, device=x.device).reshape(self.output_dim, g, g)
        total = torch.zeros((rows.shape[0], self.output_dim, g, g), dtype=x.dtype, device=x.device)
        for h, w, in_h, in_w in window_steps(h0, h1, w0, w1, x.shape[2], x.shape[3]):
            value = x[batch[:, None, None, None], channel[None], h[:, None, :, None], w[:, None, None, :]]
            inside = in_h[:, None, :, None] & in_w[:, None, None, :]
            total = total + torch.where(inside, value, torch.zeros_like(value))
        area = ((h1 - h0)[:, :, None] * (w1 - w0)[:, None, :]).float()[:, None]
        empty = ((h1 <= h0)[:, :, None] | (w1 <= w0)[:, None, :])[:, None]
        return torch.where(empty, torch.zeros_like(total), total / area.clamp_min(1))
