"""numpy transcriptions of Caffe's CPU loops (pooling_layer.cpp, conv/deconv im2col/col2im,
interp.cpp, argmax_layer.cpp, lrn_layer.cpp): the references of tests/test_numerics.py and of
the hand-checked cases of tests/test_opencv.py (which also checks them against OpenCV where
OpenCV is right)."""
from __future__ import annotations

import math

import numpy as np

FLT_MAX = np.float32(3.4028235e38)



def caffe_pooled(size, k, s, p, ceil=True, padded=False):
    q = np.float32(size + 2 * p - k) / np.float32(s)            # float32, as pooling_layer.cpp
    out = int(math.ceil(q) if ceil else math.floor(q)) + 1
    if padded and (out - 1) * s >= size + p:                   # `if (pad_h_ || pad_w_)`
        out -= 1
    return out


def caffe_pool(x, k, s, p, pool, ceil=True):
    """PoolingLayer::Forward_cpu for MAX (with its mask) and AVE."""
    (kh, kw), (sh, sw), (ph_, pw_) = k, s, p
    n, c, H, W = x.shape
    padded = bool(ph_ or pw_)
    oh, ow = caffe_pooled(H, kh, sh, ph_, ceil, padded), caffe_pooled(W, kw, sw, pw_, ceil, padded)
    top = np.zeros((n, c, oh, ow), np.float32)
    mask = np.full((n, c, oh, ow), -1.0, np.float32)
    for ph in range(oh):
        for pw in range(ow):
            hs, ws = ph * sh - ph_, pw * sw - pw_
            if pool == "MAX":
                he, we = min(hs + kh, H), min(ws + kw, W)
                hs, ws = max(hs, 0), max(ws, 0)
                val = np.full((n, c), -FLT_MAX, np.float32)
                idx = np.full((n, c), -1.0, np.float32)
                for h in range(hs, he):
                    for w in range(ws, we):
                        better = x[:, :, h, w] > val
                        val = np.where(better, x[:, :, h, w], val)
                        idx = np.where(better, np.float32(h * W + w), idx)
                top[:, :, ph, pw], mask[:, :, ph, pw] = val, idx
            else:
                he, we = min(hs + kh, H + ph_), min(ws + kw, W + pw_)
                pool_size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
                acc = np.zeros((n, c), np.float32)
                for h in range(hs, he):
                    for w in range(ws, we):
                        acc += x[:, :, h, w]
                with np.errstate(divide="ignore", invalid="ignore"):
                    top[:, :, ph, pw] = acc / np.float32(pool_size)
    return top, mask


def caffe_conv(x, w, b, stride, pad, dilation, group):
    """Cross-correlation as im2col + gemm computes it, per group."""
    n, cin, H, W = x.shape
    cout, cin_g, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    oh = (H + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (W + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    xp = np.zeros((n, cin, H + 2 * ph, W + 2 * pw), np.float64)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    y = np.zeros((n, cout, oh, ow), np.float64)
    cout_g = cout // group
    for g in range(group):
        xs = xp[:, g * cin_g:(g + 1) * cin_g]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * cout_g:(g + 1) * cout_g] += np.einsum("nchw,oc->nohw", patch,
                                                               w[g * cout_g:(g + 1) * cout_g, :, i, j])
    if b is not None:
        y += b[None, :, None, None]
    return y.astype(np.float32)


def caffe_deconv(x, w, b, stride, pad, dilation, group=1):
    """Deconvolution = conv's backward-data (col2im): every input pixel scatters w * x onto the
    output, blob (C_in, num_output/group, kh, kw) used as stored."""
    n, cin, H, W = x.shape
    _, cout_g, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    full_h, full_w = sh * (H - 1) + dh * (kh - 1) + 1, sw * (W - 1) + dw * (kw - 1) + 1
    canvas = np.zeros((n, cout_g * group, full_h, full_w), np.float64)
    cin_g = cin // group
    for g in range(group):
        xs = x[:, g * cin_g:(g + 1) * cin_g].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,co->nohw", xs, w[g * cin_g:(g + 1) * cin_g, :, i, j])
                canvas[:, g * cout_g:(g + 1) * cout_g,
                       i * dh:i * dh + sh * (H - 1) + 1:sh, j * dw:j * dw + sw * (W - 1) + 1:sw] += contrib
    y = canvas[:, :, ph:full_h - ph, pw:full_w - pw]
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(np.float32)


def caffe_interp(x, pad_beg, pad_end, oh, ow):
    """caffe_cpu_interp2 on the window that starts at -pad_beg (float32 arithmetic)."""
    H1, W1 = x.shape[2] + pad_beg + pad_end, x.shape[3] + pad_beg + pad_end
    x1 = x[:, :, -pad_beg:-pad_beg + H1, -pad_beg:-pad_beg + W1]
    if (H1, W1) == (oh, ow):
        return x1.copy()
    f = np.float32
    rh = f(H1 - 1) / f(oh - 1) if oh > 1 else f(0)
    rw = f(W1 - 1) / f(ow - 1) if ow > 1 else f(0)
    y = np.zeros(x.shape[:2] + (oh, ow), np.float32)
    for h2 in range(oh):
        h1r = f(rh * f(h2))
        h1 = int(h1r)
        h1p = 1 if h1 < H1 - 1 else 0
        l1 = f(h1r - f(h1))
        l0 = f(1) - l1
        for w2 in range(ow):
            w1r = f(rw * f(w2))
            w1 = int(w1r)
            w1p = 1 if w1 < W1 - 1 else 0
            m1 = f(w1r - f(w1))
            m0 = f(1) - m1
            y[:, :, h2, w2] = (l0 * (m0 * x1[:, :, h1, w1] + m1 * x1[:, :, h1, w1 + w1p])
                               + l1 * (m0 * x1[:, :, h1 + h1p, w1] + m1 * x1[:, :, h1 + h1p, w1 + w1p]))
    return y


def caffe_argmax(x, top_k, out_max_val, axis):
    """ArgMaxLayer::Forward_cpu: (value, index) pairs sorted with std::greater."""
    if axis is None:
        rows = x.reshape(x.shape[0], -1)
        out = np.zeros((x.shape[0], 2 if out_max_val else 1, top_k) + (1,) * max(0, x.ndim - 3),
                       np.float32)
        for i, row in enumerate(rows):
            best = sorted(((float(v), j) for j, v in enumerate(row)), reverse=True)[:top_k]
            out[i, 0, :, ...] = np.array([j for _, j in best], np.float32).reshape((top_k,) + (1,) * (out.ndim - 3))
            if out_max_val:
                out[i, 1, :, ...] = np.array([v for v, _ in best], np.float32).reshape((top_k,) + (1,) * (out.ndim - 3))
        return out
    moved = np.moveaxis(x, axis, -1)
    res = np.zeros(moved.shape[:-1] + (top_k,), np.float32)
    for idx in np.ndindex(moved.shape[:-1]):
        best = sorted(((float(v), j) for j, v in enumerate(moved[idx])), reverse=True)[:top_k]
        res[idx] = [v if out_max_val else j for v, j in best]
    return np.moveaxis(res, -1, axis)


def caffe_lrn(x, n, alpha, beta, k, region="ACROSS_CHANNELS"):
    """LRNLayer: ACROSS_CHANNELS k + alpha/n * window sum; WITHIN_CHANNEL 1 + alpha/n^2 * n x n sum."""
    x64 = x.astype(np.float64)
    h = (n - 1) // 2
    sq = x64 ** 2
    out = np.empty_like(x64)
    C, H, W = x.shape[1:]
    if region == "ACROSS_CHANNELS":
        for c in range(C):
            s = sq[:, max(0, c - h):min(C, c + h + 1)].sum(axis=1)
            out[:, c] = x64[:, c] * (k + alpha / n * s) ** -beta
    else:                       # k ignored; alpha / n^2 times the n x n window sum
        for i in range(H):
            for j in range(W):
                s = sq[:, :, max(0, i - h):i + h + 1, max(0, j - h):j + h + 1].sum(axis=(2, 3))
                out[:, :, i, j] = x64[:, :, i, j] * (1 + alpha / n ** 2 * s) ** -beta
    return out


# ---------------------------------------------------------------------------------------------
# the layers of the forks: ROIPooling, PSROIPooling, STOCHASTIC pooling at TEST, and
# py-faster-rcnn's proposal layer

f32 = np.float32


def c_round(v) -> int:
    """C's round(): half away from zero (Python's round() rounds half to even)."""
    return int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))


def fma32(a, b, c):
    """a * b + c rounded once to float32: what nvcc's default contraction makes of the CUDA
    kernels' `a * b + c` (the exact product fits a double)."""
    return f32(np.float64(a) * np.float64(b) + np.float64(c))


def caffe_roi_pool(x, rois, pooled_h, pooled_w, spatial_scale):
    """ROIPoolingLayer::Forward_cpu (caffe-fast-rcnn roi_pooling_layer.cpp)."""
    n, c, height, width = x.shape
    top = np.full((len(rois), c, pooled_h, pooled_w), -FLT_MAX, np.float32)
    for r, roi in enumerate(rois.astype(np.float32)):
        batch = int(roi[0])
        start_w, start_h, end_w, end_h = (c_round(v * f32(spatial_scale)) for v in roi[1:])
        roi_h, roi_w = max(end_h - start_h + 1, 1), max(end_w - start_w + 1, 1)
        bin_h, bin_w = f32(roi_h) / f32(pooled_h), f32(roi_w) / f32(pooled_w)
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                hs = min(max(int(math.floor(f32(ph) * bin_h)) + start_h, 0), height)
                he = min(max(int(math.ceil(f32(ph + 1) * bin_h)) + start_h, 0), height)
                ws = min(max(int(math.floor(f32(pw) * bin_w)) + start_w, 0), width)
                we = min(max(int(math.ceil(f32(pw + 1) * bin_w)) + start_w, 0), width)
                if he <= hs or we <= ws:
                    top[r, :, ph, pw] = 0
                for h in range(hs, he):
                    for w in range(ws, we):
                        value = x[batch, :, h, w]
                        top[r, :, ph, pw] = np.where(value > top[r, :, ph, pw], value, top[r, :, ph, pw])
    return top


def caffe_psroi_pool(x, rois, output_dim, group_size, spatial_scale):
    """PSROIPoolingForward (R-FCN psroi_pooling_layer.cu), one output at a time."""
    n, c, height, width = x.shape
    scale = f32(spatial_scale)
    top = np.zeros((len(rois), output_dim, group_size, group_size), np.float32)
    for r, roi in enumerate(rois.astype(np.float32)):
        batch = int(roi[0])
        start_w, start_h = f32(c_round(roi[1])) * scale, f32(c_round(roi[2])) * scale
        end_w, end_h = f32(c_round(roi[3]) + 1.0) * scale, f32(c_round(roi[4]) + 1.0) * scale
        roi_w = f32(max(float(end_w - start_w), 0.1))
        roi_h = f32(max(float(end_h - start_h), 0.1))
        bin_h, bin_w = roi_h / f32(group_size), roi_w / f32(group_size)
        for ctop in range(output_dim):
            for ph in range(group_size):
                for pw in range(group_size):
                    hs = min(max(int(math.floor(fma32(ph, bin_h, start_h))), 0), height)
                    ws = min(max(int(math.floor(fma32(pw, bin_w, start_w))), 0), width)
                    he = min(max(int(math.ceil(fma32(ph + 1, bin_h, start_h))), 0), height)
                    we = min(max(int(math.ceil(fma32(pw + 1, bin_w, start_w))), 0), width)
                    channel = (ctop * group_size + ph) * group_size + pw
                    total = f32(0)
                    for h in range(hs, he):
                        for w in range(ws, we):
                            total = f32(total + x[batch, channel, h, w])
                    area = f32((he - hs) * (we - ws))
                    top[r, ctop, ph, pw] = 0 if he <= hs or we <= ws else total / area
    return top


def caffe_stochastic_pool_test(x, kernel, stride, ceil=True):
    """StoPoolForwardTest (pooling_layer.cu): sum(x * x) / sum(x) over each window, the sum
    starting at FLT_MIN."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, height, width = x.shape
    oh, ow = caffe_pooled(height, kh, sh, 0, ceil), caffe_pooled(width, kw, sw, 0, ceil)
    top = np.zeros((n, c, oh, ow), np.float32)
    for i, j in np.ndindex(n, c):
        for ph in range(oh):
            for pw in range(ow):
                total, squares = f32(np.finfo(np.float32).tiny), f32(0)
                for h in range(ph * sh, min(ph * sh + kh, height)):
                    for w in range(pw * sw, min(pw * sw + kw, width)):
                        v = x[i, j, h, w]
                        total = f32(total + v)
                        squares = fma32(v, v, squares)
                top[i, j, ph, pw] = squares / total
    return top


def rpn_anchors(scales, base_size=16, ratios=(0.5, 1, 2)):
    """py-faster-rcnn's generate_anchors: per ratio, a box of the base box's area (width and
    height rounded half to even, as np.round), then scaled about its centre; (A, 4) float64."""
    base = np.array([0, 0, base_size - 1, base_size - 1], np.float64)
    w, h = base[2] - base[0] + 1, base[3] - base[1] + 1
    cx, cy = base[0] + 0.5 * (w - 1), base[1] + 0.5 * (h - 1)
    out = []
    for ratio in ratios:
        rw = np.round(np.sqrt(w * h / ratio))
        rh = np.round(rw * ratio)
        for s in scales:
            sw, sh = rw * s, rh * s
            out.append([cx - 0.5 * (sw - 1), cy - 0.5 * (sh - 1), cx + 0.5 * (sw - 1), cy + 0.5 * (sh - 1)])
    return np.array(out)


def rpn_proposals(scores, deltas, im_info, feat_stride, scales=(8, 16, 32), pre_nms=6000, post_nms=300,
                  nms_thresh=0.7, min_size=16):
    """ProposalLayer.forward (lib/rpn/proposal_layer.py) in numpy float32, with py_cpu_nms; the
    sorts are argsort()[::-1] with a stable argsort. Returns (rois (R, 5), scores (R, 1))."""
    anchors = rpn_anchors(scales)
    a = len(anchors)
    height, width = scores.shape[-2:]
    sx, sy = np.meshgrid(np.arange(width) * feat_stride, np.arange(height) * feat_stride)
    shifts = np.stack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()], 1)
    boxes = (anchors[None] + shifts[:, None]).reshape(-1, 4).astype(np.float32)
    d = deltas.transpose(0, 2, 3, 1).reshape(-1, 4)
    fg = scores[:, a:].transpose(0, 2, 3, 1).reshape(-1)
    widths = boxes[:, 2] - boxes[:, 0] + f32(1)
    heights = boxes[:, 3] - boxes[:, 1] + f32(1)
    cx = d[:, 0] * widths + (boxes[:, 0] + f32(0.5) * widths)
    cy = d[:, 1] * heights + (boxes[:, 1] + f32(0.5) * heights)
    w, h = np.exp(d[:, 2]) * widths, np.exp(d[:, 3]) * heights
    props = np.stack([cx - f32(0.5) * w, cy - f32(0.5) * h, cx + f32(0.5) * w, cy + f32(0.5) * h], 1)
    info = im_info[0]
    limit = np.array([info[1], info[0], info[1], info[0]], np.float32) - f32(1)
    props = np.maximum(np.minimum(props, limit), f32(0))
    least = f32(min_size * np.float64(info[2]))
    keep = ((props[:, 2] - props[:, 0] + f32(1) >= least) & (props[:, 3] - props[:, 1] + f32(1) >= least))
    props, fg = props[keep], fg[keep]
    order = np.argsort(fg, kind="stable")[::-1]
    if pre_nms > 0:
        order = order[:pre_nms]
    props, fg = props[order], fg[order]
    # py_cpu_nms
    areas = (props[:, 2] - props[:, 0] + f32(1)) * (props[:, 3] - props[:, 1] + f32(1))
    order, kept = np.argsort(fg, kind="stable")[::-1], []
    while order.size:
        i = order[0]
        kept.append(i)
        rest = order[1:]
        iw = np.maximum(f32(0), np.minimum(props[i, 2], props[rest, 2]) - np.maximum(props[i, 0], props[rest, 0]) + f32(1))
        ih = np.maximum(f32(0), np.minimum(props[i, 3], props[rest, 3]) - np.maximum(props[i, 1], props[rest, 1]) + f32(1))
        inter = iw * ih
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= f32(nms_thresh)]
    if post_nms > 0:
        kept = kept[:post_nms]
    rois = np.concatenate([np.zeros((len(kept), 1), np.float32), props[kept]], 1)
    return rois, fg[kept, None]
