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
