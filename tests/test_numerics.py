"""Compiled layers against Caffe's arithmetic (caffe-semantics.md §3).

Every expected value here comes from a hand derivation or from a direct numpy re-implementation
of the loop in Caffe's *_layer.cpp, written in this file -- never from the torch code under test.
Inputs are seeded; sizes are small so that the whole file runs in seconds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from protoseg import compile_net

import caffe_pb as pb
from caffe_reference import (FLT_MAX, caffe_argmax, caffe_conv, caffe_deconv, caffe_interp,
                             caffe_lrn, caffe_pool, caffe_psroi_pool, caffe_roi_pool,
                             caffe_stochastic_pool_test, rpn_anchors, rpn_proposals)



# ---------------------------------------------------------------------------------------------
# helpers

def _net(body: str, inputs: dict) -> str:
    head = 'name: "t"\n'
    for name, shape in inputs.items():
        dims = " ".join(f"dim: {d}" for d in shape)
        head += (f'layer {{ name: "input_{name}" type: "Input" top: "{name}" '
                 f'input_param {{ shape {{ {dims} }} }} }}\n')
    return head + body


def run(body: str, weights=None, outputs=None, **arrays):
    """Compile the layers in `body` after one Input layer per array, run them once."""
    text = _net(body, {k: v.shape for k, v in arrays.items()})
    model = compile_net(text=text, weights=weights, outputs=outputs)
    with torch.no_grad():
        y = model(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays.values()])
    if isinstance(y, dict):
        return {k: v.numpy() for k, v in y.items()}
    return y.numpy()


def rand(seed: int, *shape, low=-1.0, high=1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Pooling

POOL_CASES = [
    # (H, W), kernel, stride, pad, pool, round_mode
    pytest.param((7, 7), (3, 3), (2, 2), (1, 1), "MAX", "CEIL", id="max-k3s2p1-torch-agrees"),
    pytest.param((8, 6), (3, 3), (2, 2), (1, 1), "AVE", "CEIL", id="ave-k3s2p1-clip-rule"),
    pytest.param((9, 9), (3, 3), (3, 3), (2, 2), "MAX", "CEIL", id="max-pad-gt-half-kernel"),
    pytest.param((6, 7), (3, 3), (2, 2), (2, 2), "AVE", "CEIL", id="ave-pad-gt-half-kernel"),
    pytest.param((6, 6), (1, 1), (2, 2), (0, 0), "MAX", "CEIL", id="max-stride-gt-kernel-no-pad"),
    pytest.param((8, 8), (3, 2), (2, 3), (1, 0), "MAX", "CEIL", id="max-per-axis-kernel-stride-pad"),
    # pad_h > 0 makes Caffe clip the W axis too, where pad_w is 0 and stride > kernel
    # (W 6, k1, s2): ceil(5/2) + 1 = 4 windows, the last starting at 6 = W + pad_w: dropped
    pytest.param((7, 6), (3, 1), (2, 2), (1, 0), "AVE", "CEIL", id="ave-pad-h-clips-w-axis"),
    pytest.param((7, 6), (3, 1), (2, 2), (2, 0), "MAX", "CEIL", id="max-pad-h-gt-half-clips-w"),
    pytest.param((7, 7), (3, 3), (2, 2), (1, 1), "AVE", "FLOOR", id="ave-floor"),
    pytest.param((13, 13), (3, 3), (2, 2), (0, 0), "AVE", "CEIL", id="ave-ceil-overhang"),
]


def _pool_body(kernel, stride, pad, pool, round_mode, tops='top: "y"'):
    return (f'layer {{ name: "pool" type: "Pooling" bottom: "x" {tops} pooling_param {{ pool: {pool} '
            f'kernel_h: {kernel[0]} kernel_w: {kernel[1]} stride_h: {stride[0]} stride_w: {stride[1]} '
            f'pad_h: {pad[0]} pad_w: {pad[1]} round_mode: {round_mode} }} }}')


@pytest.mark.parametrize("hw, kernel, stride, pad, pool, round_mode", POOL_CASES)
def test_pooling_matches_caffe_loop(hw, kernel, stride, pad, pool, round_mode):
    x = rand(1, 2, 3, *hw)
    y = run(_pool_body(kernel, stride, pad, pool, round_mode), x=x)
    want, _ = caffe_pool(x, kernel, stride, pad, pool, ceil=round_mode == "CEIL")
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7)


def test_pooling_max_mask_top_matches_caffe_loop():
    x = rand(2, 2, 3, 7, 7)
    tops = 'top: "y" top: "mask"'
    y = run(_pool_body((3, 3), (3, 3), (2, 2), "MAX", "CEIL", tops), x=x, outputs=["y", "mask"])
    want, mask = caffe_pool(x, (3, 3), (3, 3), (2, 2), "MAX")
    np.testing.assert_array_equal(y["y"], want)
    np.testing.assert_array_equal(y["mask"], mask)


def test_pooling_ave_divisor_hand_derived():
    # caffe-semantics §3.3: 4x4 input 1..16, k3 s2 p0 -> [[6, 7.5], [12, 13.5]]; the right and
    # bottom windows cover 2 columns/rows only (the ceil overhang is not counted).
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    y = run(_pool_body((3, 3), (2, 2), (0, 0), "AVE", "CEIL"), x=x)
    np.testing.assert_array_equal(y[0, 0], [[6, 7.5], [12, 13.5]])


def test_pooling_ave_divisor_counts_padding():
    # 3x3 ones, k3 s2 p1: the corner window [-1, 2) x [-1, 2) holds 4 ones over 9 cells.
    x = np.ones((1, 1, 3, 3), np.float32)
    y = run(_pool_body((3, 3), (2, 2), (1, 1), "AVE", "CEIL"), x=x)
    np.testing.assert_allclose(y[0, 0], np.full((2, 2), 4 / 9, np.float32), rtol=1e-6)


def test_pooling_max_ignores_padding():
    # all values negative: a zero from the padding would win if padding took part
    x = rand(3, 1, 2, 5, 5, low=-3.0, high=-1.0)
    y = run(_pool_body((3, 3), (2, 2), (1, 1), "MAX", "CEIL"), x=x)
    assert (y < -0.9).all()
    np.testing.assert_array_equal(y, caffe_pool(x, (3, 3), (2, 2), (1, 1), "MAX")[0])


def test_pooling_max_empty_window_is_minus_flt_max():
    # (6, k1, s2, p0): Caffe 4 rows, torch 3; the last window starts at 6, past the input.
    x = rand(4, 1, 1, 6, 6)
    y = run(_pool_body((1, 1), (2, 2), (0, 0), "MAX", "CEIL"), x=x)
    assert y.shape == (1, 1, 4, 4)
    assert (y[0, 0, 3, :] == -FLT_MAX).all() and (y[0, 0, :, 3] == -FLT_MAX).all()
    np.testing.assert_array_equal(y[0, 0, :3, :3], x[0, 0, ::2, ::2])


def test_pooling_ave_empty_window_as_caffe_cpu():
    # Documented behaviour: an empty AVE window (pad 0, stride > kernel) divides 0 by Caffe's
    # pool_size, which is <= 0 along the empty axis: (6, k1, s4) gives windows starting at
    # 0, 4, 8; the last has size min(9, 6) - 8 = -2. Rows x columns: 0 / (1 * -2) = -0,
    # 0 / (-2 * -2) = 0. (6, k2, s3): last window size 6 - 6 = 0, so 0 / 0 = NaN.
    x = rand(5, 1, 1, 6, 6)
    y = run(_pool_body((1, 1), (4, 4), (0, 0), "AVE", "CEIL"), x=x)
    want, _ = caffe_pool(x, (1, 1), (4, 4), (0, 0), "AVE")
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(want))
    assert np.signbit(y[0, 0, 0, 2]) and y[0, 0, 2, 2] == 0 and not np.signbit(y[0, 0, 2, 2])
    y2 = run(_pool_body((2, 2), (3, 3), (0, 0), "AVE", "CEIL"), x=x)
    assert np.isnan(y2[0, 0, 2, :]).all() and np.isnan(y2[0, 0, :, 2]).all()


def test_pooling_global_average():
    x = rand(6, 2, 3, 7, 9)
    y = run('layer { name: "g" type: "Pooling" bottom: "x" top: "y" '
            'pooling_param { pool: AVE global_pooling: true } }', x=x)
    np.testing.assert_allclose(y[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Convolution / Deconvolution / InnerProduct

CONV_CASES = [
    pytest.param("kernel_size: 3 pad: 1", (1, 1), (1, 1), (1, 1), 1, id="k3p1"),
    pytest.param("kernel_size: 3 stride: 2 group: 2", (2, 2), (0, 0), (1, 1), 2, id="group2-stride2"),
    pytest.param("kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 0 stride_h: 1 stride_w: 2 dilation: 2",
                 (1, 2), (2, 0), (2, 2), 1, id="per-axis-dilation2"),
]


def _kernel(spec):
    if "kernel_h" in spec:
        return (3, 2)
    return (3, 3)


@pytest.mark.parametrize("spec, stride, pad, dilation, group", CONV_CASES)
def test_convolution_matches_caffe(spec, stride, pad, dilation, group):
    x = rand(10, 2, 4, 9, 8)
    kh, kw = _kernel(spec)
    w = rand(11, 6, 4 // group, kh, kw)
    b = rand(12, 6)
    y = run(f'layer {{ name: "conv" type: "Convolution" bottom: "x" top: "y" convolution_param {{ '
            f'num_output: 6 {spec} }} }}', weights={"conv": [w, b]}, x=x)
    np.testing.assert_allclose(y, caffe_conv(x, w, b, stride, pad, dilation, group), rtol=1e-5, atol=1e-5)


def test_convolution_deeplab_v1_hole_is_dilation():
    x = rand(13, 1, 2, 9, 9)
    w = rand(14, 3, 2, 3, 3)
    text = ('layers { name: "conv" type: CONVOLUTION bottom: "x" top: "y" convolution_param { '
            'num_output: 3 kernel_size: 3 pad: 2 hole: 2 bias_term: false } }')
    model = compile_net(text='name: "t" input: "x" input_dim: 1 input_dim: 2 input_dim: 9 input_dim: 9\n' + text,
                        weights={"conv": [w]})
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, caffe_conv(x, w, None, (1, 1), (2, 2), (2, 2), 1), rtol=1e-5, atol=1e-5)


DECONV_CASES = [
    pytest.param("kernel_size: 4 stride: 2", (2, 2), (0, 0), (1, 1), 1, False, id="fcn-upscore-k4s2"),
    pytest.param("kernel_size: 3 stride: 2 pad: 1 group: 2", (2, 2), (1, 1), (1, 1), 2, True, id="group2-pad1-bias"),
    pytest.param("kernel_size: 3 stride: 2 dilation: 2", (2, 2), (0, 0), (2, 2), 1, True, id="dilation2"),
]


@pytest.mark.parametrize("spec, stride, pad, dilation, group, bias", DECONV_CASES)
def test_deconvolution_weight_layout_as_stored(spec, stride, pad, dilation, group, bias):
    # The blob (C_in, num_output/group, kh, kw) is used as stored: no transpose, no flip.
    x = rand(15, 1, 4, 5, 6)
    kh = int(spec.split("kernel_size: ")[1].split()[0])
    w = rand(16, 4, 4 // group, kh, kh)
    b = rand(17, 4) if bias else None
    blobs = [w, b] if bias else [w]
    y = run(f'layer {{ name: "up" type: "Deconvolution" bottom: "x" top: "y" convolution_param {{ '
            f'num_output: 4 bias_term: {str(bias).lower()} {spec} }} }}', weights={"up": blobs}, x=x)
    want = caffe_deconv(x, w, b, stride, pad, dilation, group)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


IP_CASES = [
    pytest.param((2, 3, 4, 5), 1, False, False, id="axis1-flattens-chw"),
    pytest.param((2, 3, 4), 2, False, False, id="axis2-last-axis"),
    pytest.param((2, 6), 1, True, False, id="transpose"),
    pytest.param((2, 6), 1, False, True, id="legacy-4d-blobs"),
]


@pytest.mark.parametrize("shape, axis, transpose, legacy", IP_CASES)
def test_inner_product(shape, axis, transpose, legacy):
    x = rand(18, *shape)
    k = int(np.prod(shape[axis:]))
    w = rand(19, 5, k)                       # (N, K)
    b = rand(20, 5)
    blob = w.T.copy() if transpose else w
    blobs = [blob.reshape(1, 1, 5, k), b.reshape(1, 1, 1, 5)] if legacy else [blob, b]
    y = run(f'layer {{ name: "fc" type: "InnerProduct" bottom: "x" top: "y" inner_product_param {{ '
            f'num_output: 5 axis: {axis} transpose: {str(transpose).lower()} }} }}',
            weights={"fc": blobs}, x=x)
    want = x.reshape(int(np.prod(shape[:axis])), k).astype(np.float64) @ w.T.astype(np.float64) + b
    np.testing.assert_allclose(y, want.reshape(shape[:axis] + (5,)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# BatchNorm, Scale, Bias, PReLU

@pytest.mark.parametrize("factor", [pytest.param(2.0, id="factor-2"), pytest.param(0.0, id="factor-0")])
def test_batchnorm_divides_statistics_by_factor_blob(factor):
    x = rand(21, 2, 3, 4, 5)
    mean_sum, var_sum = rand(22, 3), rand(23, 3, low=0.5, high=2.0)
    y = run('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" batch_norm_param { eps: 0.001 } }',
            weights={"bn": [mean_sum, var_sum, np.array([factor], np.float32)]}, x=x)
    f = 0.0 if factor == 0 else 1.0 / factor
    mean, var = mean_sum * f, var_sum * f
    want = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 0.001)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    if factor == 0:         # statistics 0: y = x / sqrt(eps)
        np.testing.assert_allclose(y, x / np.sqrt(0.001), rtol=1e-5)


def test_batchnorm_use_global_stats_false_uses_batch_statistics():
    x = rand(24, 3, 2, 4, 4) * 3 + 1
    y = run('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" '
            'batch_norm_param { use_global_stats: false } }',
            weights={"bn": [rand(25, 2), rand(26, 2, low=1, high=2), np.ones(1, np.float32)]}, x=x)
    mean = x.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)          # biased
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)


SCALE_CASES = [
    # param text, operand shape, how it lines up with x (2, 3, 4, 5): shape for numpy broadcasting
    pytest.param("axis: 1", (3,), (1, 3, 1, 1), id="axis1-channels"),
    pytest.param("axis: 1 num_axes: 2", (3, 4), (1, 3, 4, 1), id="axis1-num_axes2"),
    pytest.param("axis: 2 num_axes: -1", (4, 5), (1, 1, 4, 5), id="axis2-to-end"),
    pytest.param("axis: -3 num_axes: 1", (3,), (1, 3, 1, 1), id="negative-axis"),
    pytest.param("axis: 0 num_axes: 0", (), (1, 1, 1, 1), id="scalar"),
]


@pytest.mark.parametrize("param, shape, aligned", SCALE_CASES)
def test_scale_learned_broadcasts_from_axis(param, shape, aligned):
    x = rand(27, 2, 3, 4, 5)
    s, b = rand(28, *shape), rand(29, *shape)
    y = run(f'layer {{ name: "sc" type: "Scale" bottom: "x" top: "y" scale_param {{ {param} bias_term: true }} }}',
            weights={"sc": [s, b]}, x=x)
    np.testing.assert_allclose(y, x * s.reshape(aligned) + b.reshape(aligned), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("param, shape, aligned", SCALE_CASES)
def test_bias_learned_broadcasts_from_axis(param, shape, aligned):
    x = rand(30, 2, 3, 4, 5)
    b = rand(31, *shape)
    y = run(f'layer {{ name: "bi" type: "Bias" bottom: "x" top: "y" bias_param {{ {param} }} }}',
            weights={"bi": [b]}, x=x)
    np.testing.assert_allclose(y, x + b.reshape(aligned), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("axis, shape, aligned", [
    pytest.param(1, (3, 4), (1, 3, 4, 1), id="bottom1-axis1"),
    pytest.param(0, (2, 3), (2, 3, 1, 1), id="bottom1-axis0"),
    pytest.param(2, (), (1, 1, 1, 1), id="bottom1-scalar-ignores-axis"),
])
def test_scale_and_bias_with_second_bottom(axis, shape, aligned):
    x, s = rand(32, 2, 3, 4, 5), rand(33, *shape)
    b = rand(34, *shape)
    y = run(f'layer {{ name: "sc" type: "Scale" bottom: "x" bottom: "s" top: "y" '
            f'scale_param {{ axis: {axis} bias_term: true }} }}\n'
            f'layer {{ name: "bi" type: "Bias" bottom: "x" bottom: "s" top: "z" bias_param {{ axis: {axis} }} }}',
            weights={"sc": [b]}, outputs=["y", "z"], x=x, s=s)
    np.testing.assert_allclose(y["y"], x * s.reshape(aligned) + b.reshape(aligned), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y["z"], x + s.reshape(aligned), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shared", [pytest.param(True, id="channel_shared-0-axis-blob"),
                                    pytest.param(False, id="per-channel")])
def test_prelu(shared):
    x = rand(35, 2, 3, 4, 4)
    a = np.array(0.3, np.float32) if shared else rand(36, 3)
    y = run(f'layer {{ name: "pr" type: "PReLU" bottom: "x" top: "y" prelu_param {{ '
            f'channel_shared: {str(shared).lower()} }} }}', weights={"pr": [a]}, x=x)
    slope = a if shared else a[None, :, None, None]
    np.testing.assert_allclose(y, np.maximum(x, 0) + slope * np.minimum(x, 0), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# LRN, Interp, Dropout, Eltwise, Softmax, Threshold, ArgMax, Power, other neurons

@pytest.mark.parametrize("region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
def test_lrn(region):
    x = rand(37, 2, 6, 5, 5, low=-2, high=2)
    y = run(f'layer {{ name: "n" type: "LRN" bottom: "x" top: "y" lrn_param {{ local_size: 3 '
            f'alpha: 0.5 beta: 0.75 k: 2 norm_region: {region} }} }}', x=x)
    np.testing.assert_allclose(y, caffe_lrn(x, 3, 0.5, 0.75, 2.0, region), rtol=1e-5)


INTERP_CASES = [
    pytest.param("zoom_factor: 2", 0, 0, (9, 11), id="zoom2"),
    pytest.param("zoom_factor: 2 pad_beg: -1 pad_end: -1", -1, -1, (5, 7), id="zoom2-pad-crop"),
    pytest.param("shrink_factor: 2 pad_beg: -1", -1, 0, (2, 3), id="shrink2-pad_beg-only"),
    pytest.param("height: 7 width: 3", 0, 0, (7, 3), id="height-width"),
    pytest.param("height: 5 width: 6", 0, 0, (5, 6), id="same-size-copy"),
]


@pytest.mark.parametrize("param, pad_beg, pad_end, size", INTERP_CASES)
def test_interp_bilinear_align_corners_after_crop(param, pad_beg, pad_end, size):
    x = rand(38, 1, 2, 5, 6)
    y = run(f'layer {{ name: "i" type: "Interp" bottom: "x" top: "y" interp_param {{ {param} }} }}', x=x)
    want = caffe_interp(x, pad_beg, pad_end, *size)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_dropout_is_identity_at_test():
    x = rand(39, 2, 3, 4, 4)
    y = run('layer { name: "d" type: "Dropout" bottom: "x" top: "x" dropout_param { dropout_ratio: 0.7 } }', x=x)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("ratio", [-2, 7], ids=["negative", "above-1"])
def test_dropout_ratio_outside_0_1_is_still_the_identity_at_test(ratio):
    """Caffe's range check on dropout_ratio is a DCHECK (debug builds only); TEST copies."""
    x = rand(41, 1, 2, 3, 3)
    y = run(f'layer {{ name: "d" type: "Dropout" bottom: "x" top: "y" dropout_param {{ dropout_ratio: {ratio} }} }}',
            x=x)
    np.testing.assert_array_equal(y, x)


def test_dropout_that_samples_at_test_needs_a_ratio_in_0_1():
    from protoseg.errors import ShapeError
    with pytest.raises(ShapeError, match=r"<string>:\d+:\d+: layer 'd' \(Dropout\): dropout_ratio 7.0 is not in"):
        compile_net(text='input: "x" input_shape { dim: 1 dim: 2 }\nlayer { name: "d" type: "Dropout" '
                         'bottom: "x" top: "y" dropout_param { dropout_ratio: 7 sample_weights_test: true } }')


def test_dropout_fork_scale_train_false_scales_at_test():
    x = rand(40, 2, 3, 4, 4)
    y = run('layer { name: "d" type: "Dropout" bottom: "x" top: "y" '
            'dropout_param { dropout_ratio: 0.3 scale_train: false } }', x=x)
    np.testing.assert_allclose(y, x * np.float32(0.7), rtol=1e-6)


ELTWISE_CASES = [
    pytest.param("operation: SUM coeff: 1 coeff: -1 coeff: 0.5", lambda a, b, c: a - b + 0.5 * c, id="sum-coeff"),
    pytest.param("operation: SUM", lambda a, b, c: a + b + c, id="sum"),
    pytest.param("operation: PROD", lambda a, b, c: a * b * c, id="prod"),
    pytest.param("operation: MAX", lambda a, b, c: np.maximum(np.maximum(a, b), c), id="max"),
]


@pytest.mark.parametrize("param, ref", ELTWISE_CASES)
def test_eltwise(param, ref):
    a, b, c = rand(41, 2, 3, 4), rand(42, 2, 3, 4), rand(43, 2, 3, 4)
    y = run(f'layer {{ name: "e" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "y" '
            f'eltwise_param {{ {param} }} }}', a=a, b=b, c=c)
    np.testing.assert_allclose(y, ref(a, b, c), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("axis", [pytest.param(1, id="axis1"), pytest.param(-1, id="axis-last"),
                                  pytest.param(0, id="axis0")])
def test_softmax_along_axis(axis):
    x = rand(44, 2, 3, 4, low=-5, high=5)
    y = run(f'layer {{ name: "s" type: "Softmax" bottom: "x" top: "y" softmax_param {{ axis: {axis} }} }}', x=x)
    e = np.exp(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=axis, keepdims=True), rtol=1e-5)


def test_threshold_is_strict_and_outputs_zero_one():
    x = np.array([[-1.0, 0.5, 0.49, 0.51, 2.0]], np.float32)
    y = run('layer { name: "t" type: "Threshold" bottom: "x" top: "y" threshold_param { threshold: 0.5 } }', x=x)
    np.testing.assert_array_equal(y, [[0, 0, 0, 1, 1]])


ARGMAX_CASES = [
    pytest.param("", 1, False, None, id="flattened-top1"),
    pytest.param("top_k: 3 out_max_val: true", 3, True, None, id="flattened-top3-values"),
    pytest.param("axis: 1", 1, False, 1, id="axis1"),
    pytest.param("axis: 1 top_k: 2", 2, False, 1, id="axis1-top2"),
    pytest.param("axis: 2 top_k: 2 out_max_val: true", 2, True, 2, id="axis2-values"),
]


@pytest.mark.parametrize("param, top_k, out_max_val, axis", ARGMAX_CASES)
def test_argmax_ties_take_larger_index(param, top_k, out_max_val, axis):
    # values from {0, 1, 2}: many ties
    x = np.random.default_rng(45).integers(0, 3, (2, 4, 3, 2)).astype(np.float32)
    y = run(f'layer {{ name: "a" type: "ArgMax" bottom: "x" top: "y" argmax_param {{ {param} }} }}', x=x)
    want = caffe_argmax(x, top_k, out_max_val, axis)
    assert y.dtype == np.float32 and y.shape == want.shape
    np.testing.assert_array_equal(y, want)


def test_argmax_hand_derived_tie():
    # [1, 3, 3]: Caffe 2 (larger index first); torch.argmax would give 1.
    x = np.array([[[1.0], [3.0], [3.0]]], np.float32)           # (1, 3, 1)
    y = run('layer { name: "a" type: "ArgMax" bottom: "x" top: "y" argmax_param { axis: 1 } }', x=x)
    assert y.reshape(-1).tolist() == [2.0]


POWER_CASES = [
    pytest.param("power: 2 scale: 0.5 shift: 1", lambda x: (1 + 0.5 * x) ** 2, False, id="general"),
    pytest.param("power: 0 scale: 3 shift: 2", lambda x: np.ones_like(x), True, id="power0-constant-1"),
    pytest.param("power: 3 scale: 0 shift: 2", lambda x: np.full_like(x, 8.0), True, id="scale0-shift-pow"),
    pytest.param("power: 1 scale: -2 shift: 0.25", lambda x: 0.25 - 2 * x, False, id="affine"),
]


@pytest.mark.parametrize("param, ref, constant", POWER_CASES)
def test_power(param, ref, constant):
    x = rand(46, 2, 3, 4)
    x[0, 0, 0] = np.nan               # the constant shortcut (power * scale == 0) ignores x
    y = run(f'layer {{ name: "p" type: "Power" bottom: "x" top: "y" power_param {{ {param} }} }}', x=x)
    assert np.isnan(y[0, 0, 0]) != constant
    np.testing.assert_allclose(y, ref(x), rtol=1e-6, equal_nan=True)


NEURON_CASES = [
    pytest.param("ReLU", "relu_param { negative_slope: -0.5 }", lambda x: np.maximum(x, 0) - 0.5 * np.minimum(x, 0), id="relu-negative-slope"),
    pytest.param("ELU", "elu_param { alpha: 0.5 }", lambda x: np.maximum(x, 0) + 0.5 * (np.exp(np.minimum(x, 0)) - 1), id="elu"),
    pytest.param("AbsVal", "", np.abs, id="absval"),
    pytest.param("BNLL", "", lambda x: np.where(x > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x))), id="bnll"),
    pytest.param("Exp", "exp_param { base: 2 scale: 0.5 shift: 1 }", lambda x: 2.0 ** (1 + 0.5 * x), id="exp-base2"),
    pytest.param("Log", "log_param { base: 10 scale: 2 shift: 3 }", lambda x: np.log10(3 + 2 * x), id="log-base10"),
    pytest.param("Sigmoid", "", lambda x: 1 / (1 + np.exp(-x)), id="sigmoid"),
    pytest.param("TanH", "", np.tanh, id="tanh"),
    pytest.param("Clip", "clip_param { min: -0.3 max: 0.6 }", lambda x: np.clip(x, np.float32(-0.3), np.float32(0.6)), id="clip"),
    pytest.param("Swish", "swish_param { beta: 2 }", lambda x: x / (1 + np.exp(-2 * x)), id="swish-beta2"),
]


@pytest.mark.parametrize("type_, param, ref", NEURON_CASES)
def test_neuron_closed_forms(type_, param, ref):
    x = rand(47, 2, 3, 5, low=-1.4, high=1.4)
    y = run(f'layer {{ name: "n" type: "{type_}" bottom: "x" top: "y" {param} }}', x=x)
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=2e-6, atol=2e-7)


# ---------------------------------------------------------------------------------------------
# data movement: Crop, Reshape, Flatten, Slice, Concat

def test_crop_per_axis_offsets_hand_derived():
    # caffe-semantics Appendix A: axis 1, offsets [1, 2, 3] on (2,5,10,10) vs (2,3,4,4)
    x, ref = rand(48, 2, 5, 10, 10), np.zeros((2, 3, 4, 4), np.float32)
    y = run('layer { name: "c" type: "Crop" bottom: "x" bottom: "r" top: "y" '
            'crop_param { axis: 1 offset: 1 offset: 2 offset: 3 } }', x=x, r=ref)
    np.testing.assert_array_equal(y, x[:, 1:4, 2:6, 3:7])


def test_crop_one_offset_for_every_axis_is_one_sided():
    x, ref = rand(49, 1, 2, 12, 12), np.zeros((1, 2, 5, 5), np.float32)
    y = run('layer { name: "c" type: "Crop" bottom: "x" bottom: "r" top: "y" crop_param { offset: 3 } }',
            x=x, r=ref)
    np.testing.assert_array_equal(y, x[:, :, 3:8, 3:8])


RESHAPE_CASES = [
    pytest.param("shape { dim: 0 dim: 2 dim: -1 }", (2, 8), (2, 2, 4), id="copy-and-infer"),
    pytest.param("shape { dim: 1 } num_axes: 0", (2, 8), (1, 2, 8), id="insert-front"),
    pytest.param("shape { dim: 1 } axis: 1 num_axes: 0", (2, 8), (2, 1, 8), id="insert-axis1"),
    pytest.param("shape { dim: -1 } axis: 1 num_axes: 2", (2, 3, 4, 5), (2, 12, 5), id="merge-middle"),
    # Reshape's own axis rule: -1 means after the last axis
    pytest.param("shape { dim: 1 } axis: -1 num_axes: 0", (3, 4), (3, 4, 1), id="axis-minus1-after-last"),
]


@pytest.mark.parametrize("param, shape, want", RESHAPE_CASES)
def test_reshape(param, shape, want):
    x = rand(50, *shape)
    y = run(f'layer {{ name: "r" type: "Reshape" bottom: "x" top: "y" reshape_param {{ {param} }} }}', x=x)
    assert y.shape == want
    np.testing.assert_array_equal(y, x.reshape(want))


@pytest.mark.parametrize("param, want", [
    pytest.param("", (2, 60), id="default"),
    pytest.param("axis: 2", (2, 3, 20), id="axis2"),
    pytest.param("axis: 1 end_axis: 2", (2, 12, 5), id="end_axis2"),
])
def test_flatten(param, want):
    x = rand(51, 2, 3, 4, 5)
    y = run(f'layer {{ name: "f" type: "Flatten" bottom: "x" top: "y" flatten_param {{ {param} }} }}', x=x)
    np.testing.assert_array_equal(y, x.reshape(want))


@pytest.mark.parametrize("param, axis, sizes", [
    pytest.param("axis: 1 slice_point: 3 slice_point: 7", 1, (3, 4, 3), id="points"),
    pytest.param("axis: -1", -1, (5, 5), id="equal-parts"),
    pytest.param("slice_dim: 0 slice_point: 1", 0, (1, 1), id="legacy-slice_dim"),
])
def test_slice(param, axis, sizes):
    x = rand(52, 2, 10, 10)
    tops = " ".join(f'top: "y{i}"' for i in range(len(sizes)))
    y = run(f'layer {{ name: "s" type: "Slice" bottom: "x" {tops} slice_param {{ {param} }} }}',
            outputs=[f"y{i}" for i in range(len(sizes))], x=x)
    parts = np.split(x, np.cumsum(sizes)[:-1], axis=axis)
    for i, part in enumerate(parts):
        np.testing.assert_array_equal(y[f"y{i}"], part)


@pytest.mark.parametrize("param, axis", [pytest.param("axis: 2", 2, id="axis2"),
                                         pytest.param("concat_dim: 0", 0, id="legacy-concat_dim"),
                                         pytest.param("axis: -3", 0, id="negative-axis")])
def test_concat(param, axis):
    a, b = rand(53, 2, 3, 4), rand(54, 2, 3, 4)
    y = run(f'layer {{ name: "c" type: "Concat" bottom: "a" bottom: "b" top: "y" concat_param {{ {param} }} }}',
            a=a, b=b)
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=axis))


# ---------------------------------------------------------------------------------------------
# fork and less common layers: MVN, Normalize, Reduction, Tile, Embed, Permute, Upsample, BN,
# PriorBox

@pytest.mark.parametrize("param, axes", [
    pytest.param("", (2, 3), id="per-channel-normalize-variance"),
    pytest.param("across_channels: true", (1, 2, 3), id="across-channels"),
    pytest.param("normalize_variance: false", (2, 3), id="mean-only"),
])
def test_mvn(param, axes):
    x = rand(55, 2, 3, 4, 5) * 2 + 0.5
    y = run(f'layer {{ name: "m" type: "MVN" bottom: "x" top: "y" mvn_param {{ {param} eps: 0.01 }} }}', x=x)
    x64 = x.astype(np.float64)
    centred = x64 - x64.mean(axis=axes, keepdims=True)
    if "false" not in param:     # eps is added after the square root
        centred /= np.sqrt((centred ** 2).mean(axis=axes, keepdims=True)) + 0.01
    np.testing.assert_allclose(y, centred, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("across, shared", [(True, True), (False, False), (False, True)],
                         ids=["across-shared", "per-pixel-per-channel", "per-pixel-shared"])
def test_normalize_ssd(across, shared):
    x = rand(56, 2, 3, 4, 4)
    scale = np.array(2.5, np.float32) if shared else rand(57, 3, low=1, high=3)
    y = run(f'layer {{ name: "n" type: "Normalize" bottom: "x" top: "y" norm_param {{ '
            f'across_spatial: {str(across).lower()} channel_shared: {str(shared).lower()} eps: 0.001 }} }}',
            weights={"n": [scale]}, x=x)
    x64 = x.astype(np.float64)
    axes = (1, 2, 3) if across else (1,)
    norm = np.sqrt((x64 ** 2).sum(axis=axes, keepdims=True) + 0.001)        # eps inside the root
    s = scale if shared else scale[None, :, None, None]
    np.testing.assert_allclose(y, x64 / norm * s, rtol=1e-5)


@pytest.mark.parametrize("op, axis, coeff, ref", [
    pytest.param("SUM", 1, 2.0, lambda r: 2 * r.sum(-1), id="sum-axis1-coeff2"),
    pytest.param("ASUM", 2, 1.0, lambda r: np.abs(r).sum(-1), id="asum-axis2"),
    pytest.param("SUMSQ", 0, 1.0, lambda r: (r ** 2).sum(-1), id="sumsq-axis0-scalar"),
    pytest.param("MEAN", 1, 3.0, lambda r: 3 * r.mean(-1), id="mean-coeff3"),
])
def test_reduction(op, axis, coeff, ref):
    x = rand(58, 2, 3, 4)
    y = run(f'layer {{ name: "r" type: "Reduction" bottom: "x" top: "y" reduction_param {{ '
            f'operation: {op} axis: {axis} coeff: {coeff} }} }}', x=x)
    want = ref(x.astype(np.float64).reshape(x.shape[:axis] + (-1,)))
    assert y.shape == x.shape[:axis]
    np.testing.assert_allclose(y, want, rtol=1e-5)


def test_tile_repeats_the_block_from_axis():
    x = rand(59, 2, 3, 2)
    y = run('layer { name: "t" type: "Tile" bottom: "x" top: "y" tile_param { axis: 1 tiles: 3 } }', x=x)
    want = np.stack([np.concatenate([x[n]] * 3, axis=0) for n in range(2)])     # per item: C*... block x3
    np.testing.assert_array_equal(y, want)


def test_embed_looks_up_truncated_indices():
    x = np.array([[0.0, 2.9], [1.2, 3.0]], np.float32)
    table, bias = rand(60, 4, 3), rand(61, 3)
    y = run('layer { name: "e" type: "Embed" bottom: "x" top: "y" embed_param { num_output: 3 input_dim: 4 } }',
            weights={"e": [table, bias]}, x=x)
    np.testing.assert_allclose(y, table[[[0, 2], [1, 3]]] + bias, rtol=1e-6)


def test_permute():
    x = rand(62, 2, 3, 4, 5)
    y = run('layer { name: "p" type: "Permute" bottom: "x" top: "y" permute_param { order: 0 order: 2 order: 3 order: 1 } }', x=x)
    np.testing.assert_array_equal(y, x.transpose(0, 2, 3, 1))


def test_upsample_unpools_with_pooling_mask():
    x = rand(63, 1, 2, 5, 6)
    body = ('layer { name: "pool" type: "Pooling" bottom: "x" top: "p" top: "mask" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
            'layer { name: "up" type: "Upsample" bottom: "p" bottom: "mask" top: "y" upsample_param { scale: 2 upsample_h: 5 upsample_w: 6 } }')
    y = run(body, x=x)
    pooled, mask = caffe_pool(x, (2, 2), (2, 2), (0, 0), "MAX")
    want = np.zeros((1, 2, 30), np.float32)             # upsample_layer.cpp: top[mask[i]] = bottom[i]
    for c in range(2):
        for i, idx in enumerate(mask[0, c].reshape(-1)):
            want[0, c, int(idx)] = pooled[0, c].reshape(-1)[i]
    np.testing.assert_array_equal(y, want.reshape(1, 2, 5, 6))


def test_bn_pspnet_uses_stored_statistics():
    x = rand(64, 2, 3, 4, 4)
    slope, bias, mean, var = (rand(65 + i, 1, 3, 1, 1, low=0.5, high=1.5) for i in range(4))
    y = run('layer { name: "bn" type: "BN" bottom: "x" top: "y" bn_param { eps: 0.0001 } }',
            weights={"bn": [slope, bias, mean, var]}, x=x)
    np.testing.assert_allclose(y, slope * (x - mean) / np.sqrt(var + 0.0001) + bias, rtol=1e-5, atol=1e-6)


def test_bn_segnet_inference_is_scale_and_shift():
    x = rand(69, 2, 3, 4, 4)
    scale, shift = rand(70, 1, 3, 1, 1), rand(71, 1, 3, 1, 1)
    y = run('layer { name: "bn" type: "BN" bottom: "x" top: "y" bn_param { bn_mode: INFERENCE } }',
            weights={"bn": [scale, shift]}, x=x)
    np.testing.assert_allclose(y, x * scale + shift, rtol=1e-6)


def test_priorbox_hand_derived():
    # one 1x1 cell of a 10x10 image (step 10, centre (5, 5)), min_size 4, max_size 9, aspect
    # ratio 2 with flip: boxes 4x4, sqrt(4*9)=6 square, 4*sqrt2 x 4/sqrt2, 4/sqrt2 x 4*sqrt2.
    feat, img = np.zeros((1, 2, 1, 1), np.float32), np.zeros((1, 3, 10, 10), np.float32)
    y = run('layer { name: "pb" type: "PriorBox" bottom: "f" bottom: "i" top: "y" prior_box_param { '
            'min_size: 4 max_size: 9 aspect_ratio: 2 flip: true variance: 0.1 } }', f=feat, i=img)
    r = math.sqrt(2)
    boxes = [(3, 3, 7, 7), (2, 2, 8, 8), (5 - 2 * r, 5 - 1 * r, 5 + 2 * r, 5 + 1 * r),
             (5 - 1 * r, 5 - 2 * r, 5 + 1 * r, 5 + 2 * r)]
    want = np.array([c / 10 for b in boxes for c in b], np.float32)
    assert y.shape == (1, 2, 16)
    np.testing.assert_allclose(y[0, 0], want, rtol=1e-6)
    np.testing.assert_allclose(y[0, 1], np.full(16, 0.1, np.float32))


# ---------------------------------------------------------------------------------------------
# the detection forks: ROIPooling, PSROIPooling (R-FCN), STOCHASTIC pooling at TEST, the proposal
# and spatial-dropout Python layers, DetectionOutput (also against the reference Caffe:
# test_caffe_layers.py) -- references: the C++ / CUDA loops and the Python originals transcribed
# in tests/caffe_reference.py

# rois [batch, x1, y1, x2, y2] in image pixels; with spatial_scale 0.25 on a 10 x 12 map: inside,
# half-way corners (2 * 0.25 = 0.5 rounds away from zero to 1, -2 * 0.25 to -1), partly outside,
# inverted (x2 < x1: one column wide), the whole map and beyond, wholly outside (empty bins: 0)
ROIS = np.array([[0, 4, 4, 20, 28], [1, 2, 2, 30, 18], [0, -6, -2, 10, 9], [1, 20, 8, 12, 30],
                 [0, 0, 0, 47, 39], [1, -8, -8, 60, 60], [0, 52, 44, 70, 60], [1, 5.9, 6.1, 6.0, 6.2]],
                np.float32)


def _features(seed, shape, special=False):
    x = rand(seed, *shape)
    if special:                 # NaN never wins a maximum; -inf alone leaves -FLT_MAX
        x[0, 0, 1, 1], x[0, 1, :, :] = np.nan, -np.inf
    return x


@pytest.mark.parametrize("pooled, scale, special", [
    pytest.param((2, 3), 0.25, False, id="2x3-scale-quarter"),
    pytest.param((7, 7), 0.25, False, id="7x7-more-bins-than-pixels"),
    pytest.param((3, 2), 0.0625, False, id="3x2-scale-sixteenth"),
    pytest.param((2, 2), 0.25, True, id="nan-and-minus-inf"),
])
def test_roi_pooling_matches_caffe_loop(pooled, scale, special):
    x = _features(31, (2, 3, 10, 12), special)
    y = run(f'layer {{ name: "roi" type: "ROIPooling" bottom: "x" bottom: "rois" top: "y" roi_pooling_param {{ '
            f'pooled_h: {pooled[0]} pooled_w: {pooled[1]} spatial_scale: {scale} }} }}', x=x, rois=ROIS)
    np.testing.assert_array_equal(y, caffe_roi_pool(x, ROIS, *pooled, scale))


def test_roi_pooling_refuses_a_batch_index_outside_the_features():
    x, rois = rand(32, 1, 2, 6, 6), np.array([[1, 0, 0, 4, 4]], np.float32)
    with pytest.raises(ValueError, match="batch index is outside"):
        run('layer { name: "roi" type: "ROIPooling" bottom: "x" bottom: "rois" top: "y" roi_pooling_param { '
            'pooled_h: 2 pooled_w: 2 } }', x=x, rois=rois)


@pytest.mark.parametrize("output_dim, group, scale", [
    pytest.param(2, 3, 0.25, id="dim2-group3"),
    pytest.param(3, 2, 0.25, id="dim3-group2"),
    pytest.param(1, 7, 0.0625, id="dim1-group7-tiny-bins"),
])
def test_psroi_pooling_matches_cuda_kernel(output_dim, group, scale):
    x = rand(33, 2, output_dim * group * group, 10, 12)
    y = run(f'layer {{ name: "ps" type: "PSROIPooling" bottom: "x" bottom: "rois" top: "y" psroi_pooling_param {{ '
            f'spatial_scale: {scale} output_dim: {output_dim} group_size: {group} }} }}', x=x, rois=ROIS)
    np.testing.assert_array_equal(y, caffe_psroi_pool(x, ROIS, output_dim, group, scale))


@pytest.mark.parametrize("hw, param, ceil", [
    pytest.param((7, 7), "kernel_size: 3 stride: 2", True, id="k3s2-ceil"),
    pytest.param((7, 8), "kernel_size: 3 stride: 2 ceil_mode: false", False, id="k3s2-floor"),
    # stride 3 > kernel 2: the last window starts past the edge (sum FLT_MIN, squares 0: 0)
    pytest.param((7, 7), "kernel_size: 2 stride: 3", True, id="k2s3-empty-last-window"),
    pytest.param((5, 6), "global_pooling: true", True, id="global"),
])
def test_stochastic_pooling_at_test_matches_cuda_kernel(hw, param, ceil):
    x = rand(34, 2, 3, *hw, low=0.0, high=2.0)
    x[0, 0, :3, :3] = 0                     # an all-zero window: 0 / FLT_MIN = 0
    x[1, 2] -= 1.0                          # signed values: the formula as it stands
    y = run(f'layer {{ name: "p" type: "Pooling" bottom: "x" top: "y" pooling_param {{ pool: STOCHASTIC {param} }} }}',
            x=x)
    kernel = hw if "global" in param else (3, 3) if "kernel_size: 3" in param else (2, 2)
    stride = (1, 1) if "global" in param else (2, 2) if "stride: 2" in param else (3, 3)
    np.testing.assert_array_equal(y, caffe_stochastic_pool_test(x, kernel, stride, ceil))


def _rpn_inputs(seed, anchors, height, width, scale=1.0, levels=None):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((1, 2, anchors, height, width))
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if levels:                                  # equal scores: the tie rule decides the order
        scores = np.round(scores * levels) / levels
    scores = scores.reshape(1, 2 * anchors, height, width).astype(np.float32)
    deltas = (rng.standard_normal((1, 4 * anchors, height, width)) * 0.3).astype(np.float32)
    info = np.array([[height * 16 * scale, width * 16 * scale, scale]], np.float32)
    return scores, deltas, info


PROPOSAL_LAYER = ('layer {{ name: "proposal" type: "Python" bottom: "s" bottom: "d" bottom: "info" top: "rois" '
                  '{tops} python_param {{ module: "rpn.proposal_layer" layer: "ProposalLayer" '
                  'param_str: "{param_str}" }} {phase} }}')


@pytest.mark.parametrize("hw, scales, phase, levels", [
    pytest.param((9, 11), (8, 16, 32), "TEST", None, id="small-map"),
    # 30 x 30 x 9 = 8100 boxes: the 6000 pre-NMS cut and the 300 post-NMS cut
    pytest.param((30, 30), (8, 16, 32), "TEST", None, id="pre-and-post-nms-cuts"),
    # TRAIN config: 12000 before NMS, 2000 after
    pytest.param((30, 30), (8, 16, 32), "TRAIN", None, id="train-config"),
    pytest.param((10, 10), (4, 8, 16, 32), "TEST", None, id="py-r-fcn-scales"),
    pytest.param((12, 12), (8, 16, 32), "TEST", 20, id="tied-scores"),
])
def test_proposal_layer_matches_the_original(hw, scales, phase, levels):
    a = 3 * len(scales)
    scores, deltas, info = _rpn_inputs(35, a, *hw, scale=1.6, levels=levels)
    param_str = f"'feat_stride': 16, 'scales': {list(scales)}"
    body = PROPOSAL_LAYER.format(tops='top: "scores"', param_str=param_str, phase=f"phase: {phase}")
    got = run(body, outputs=["rois", "scores"], s=scores, d=deltas, info=info)
    pre, post = (6000, 300) if phase == "TEST" else (12000, 2000)
    rois, fg = rpn_proposals(scores, deltas, info, 16, scales, pre, post)
    assert got["rois"].shape == rois.shape
    np.testing.assert_array_equal(got["scores"], fg)
    np.testing.assert_array_equal(got["rois"][:, 0], 0)
    # the same boxes in the same order; the corners within float32 rounding of the image size
    # (a corner is a difference of the centre and half the size: numpy's float32 exp and the
    # correctly rounded one protoseg uses may differ in the last bit)
    np.testing.assert_allclose(got["rois"], rois, rtol=0, atol=1e-6 * float(info.max()))


def test_proposal_layer_hand_derived_anchors():
    from protoseg.layers.python_layer.modules import generate_anchors
    # generate_anchors.py's own comment lists Shaoqing's MATLAB anchors for the default settings,
    # 1-based: -83 -39 100 56 for the first; the Python ones (base box (0, 0, 15, 15)) are 1 less.
    # By hand for ratio 0.5: width round(sqrt(256 / 0.5)) = 23, height round(11.5) = 12 (half to
    # even), centre 7.5; scale 8: 184 x 96 -> 7.5 -+ 91.5, 7.5 -+ 47.5 = (-84, -40, 99, 55)
    matlab = [(-83, -39, 100, 56), (-175, -87, 192, 104), (-359, -183, 376, 200), (-55, -55, 72, 72),
              (-119, -119, 136, 136), (-247, -247, 264, 264), (-35, -79, 52, 96), (-79, -167, 96, 184),
              (-167, -343, 184, 360)]
    want = [tuple(v - 1 for v in box) for box in matlab]
    assert generate_anchors((8, 16, 32)) == want
    np.testing.assert_array_equal(rpn_anchors((8, 16, 32)), np.array(want, np.float64))


@pytest.mark.parametrize("type_, python_param, inputs, module_class", [
    pytest.param("Python:rpn.proposal_layer.ProposalLayer",
                 "module: 'rpn.proposal_layer' layer: 'ProposalLayer' param_str: \"'feat_stride': 16\"",
                 {"s": (1, 18, 4, 5), "d": (1, 36, 4, 5), "info": (1, 3)}, "CaffeProposal", id="proposal"),
    pytest.param("Python:spatial_dropout.SpatialDropoutLayer",
                 "module: 'spatial_dropout' layer: 'SpatialDropoutLayer' param_str: \"{'phase': 'TEST', 'p': 0.1}\"",
                 {"x": (1, 4, 5, 5)}, "CaffeSpatialDropout", id="spatial-dropout"),
])
def test_known_python_layer_is_planned_by_its_module_and_class(type_, python_param, inputs, module_class):
    from protoseg import plan_net
    bottoms = " ".join(f'bottom: "{b}"' for b in inputs)
    plan = plan_net(text=_net(f'layer {{ name: "py" type: "Python" {bottoms} top: "y" python_param {{ {python_param} }} }}',
                              inputs))
    (step,) = plan.steps
    assert (step.ctx.spec.type, step.call.ref.name) == (type_, module_class)


def test_spatial_dropout_scales_at_test():
    # spatial_dropout.py forward() with phase TEST: top = bottom * (1 / (1 - p)), numpy float32
    x = rand(36, 2, 4, 5, 6)
    y = run('layer { name: "drop" type: "Python" bottom: "x" top: "y" python_param { module: "spatial_dropout" '
            "layer: 'SpatialDropoutLayer' param_str: \"{'phase': 'TEST', 'p': '0.01'}\" } }", x=x)
    np.testing.assert_array_equal(y, x * np.float32(1 / (1 - 0.01)))


def test_spatial_dropout_train_drops_whole_channels():
    torch.manual_seed(7)
    x = rand(37, 4, 32, 3, 3, low=1.0, high=2.0)
    y = run('layer { name: "drop" type: "Python" bottom: "x" top: "y" python_param { module: "spatial_dropout" '
            "layer: 'SpatialDropoutLayer' param_str: \"{'phase': 'TRAIN', 'p': 0.5}\" } }", x=x)
    dropped = (y == 0).all(axis=(2, 3))
    assert 0 < dropped.sum() < dropped.size
    np.testing.assert_allclose(y[~dropped], x[~dropped] * 2, rtol=1e-6)


# DetectionOutput by hand: priors A (0, 0, 1, 1), B (0, 0, 1, 0.5), C (0.5, 0.5, 1.5, 1.5), decoded
# unchanged (CORNER, zero offsets, variance in the target). IoU(A, B) = 0.5 / 1 = 0.5; IoU(A, C) =
# 0.25 / 1.75; B and C only touch (intersection height 0): 0.
#   class 1 scores A .9, B .8, C .3: A kept, B suppressed (0.5 > 0.45), C kept
#   class 2 scores A .2, B .6, C .7: A under the threshold .25; C, then B (0 <= 0.45)
#   4 detections > keep_top_k 3: by score A1 .9, C2 .7, B2 .6 stay; then by label
DETECTION = ('layer {{ name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" top: "y" '
             'detection_output_param {{ num_classes: 3 code_type: CORNER variance_encoded_in_target: true '
             'nms_param {{ nms_threshold: 0.45 }} keep_top_k: 3 confidence_threshold: {thr} }} }}')
PRIORS = [(0, 0, 1, 1), (0, 0, 1, 0.5), (0.5, 0.5, 1.5, 1.5)]


def _detection_inputs(batch):
    prior = np.array([[np.ravel(PRIORS), np.full(12, 0.1)]], np.float32)
    conf = np.tile(np.array([[0.1, 0.9, 0.2], [0.2, 0.8, 0.6], [0.0, 0.3, 0.7]], np.float32).reshape(1, 9), (batch, 1))
    return np.zeros((batch, 12), np.float32), conf, prior


def test_detection_output_hand_derived():
    loc, conf, prior = _detection_inputs(1)
    y = run(DETECTION.format(thr=0.25), loc=loc, conf=conf, prior=prior)
    f = np.float32
    want = [[0, 1, f(0.9), *PRIORS[0]], [0, 2, f(0.7), *PRIORS[2]], [0, 2, f(0.6), *PRIORS[1]]]
    np.testing.assert_array_equal(y, np.array(want, np.float32).reshape(1, 1, 3, 7))


def test_detection_output_nothing_kept_gives_one_row_per_image():
    # detection_output_layer.cpp: no detection at all -> (1, 1, num, 7) of -1, column 0 the image
    loc, conf, prior = _detection_inputs(2)
    y = run(DETECTION.format(thr=0.95), loc=loc, conf=conf, prior=prior)
    np.testing.assert_array_equal(y, np.array([[[[0] + [-1] * 6, [1] + [-1] * 6]]], np.float32))


STD_SORT = """#include <algorithm>
#include <cstdio>
#include <vector>
int main() {
  int n;
  while (std::scanf("%d", &n) == 1) {
    std::vector<std::pair<float, int> > v(n);
    for (int i = 0; i < n; ++i) { std::scanf("%f", &v[i].first); v[i].second = i; }
    std::sort(v.begin(), v.end(), [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
      return a.first > b.first; });   // SortScorePairDescend
    for (int i = 0; i < n; ++i) std::printf("%d ", v[i].second);
    std::printf("\\n");
  }
}
"""


@pytest.mark.parametrize("n, levels", [
    pytest.param(16, 3, id="16-insertion-sort-only"), pytest.param(17, 2, id="17-two-levels"),
    pytest.param(300, 4, id="300-four-levels"), pytest.param(3000, 50, id="3000-fifty-levels"),
    pytest.param(8000, 1, id="8000-all-equal"),
])
def test_keep_top_k_sort_orders_ties_as_libstdcxx(n, levels, tmp_path):
    # Caffe's keep_top_k step sorts with std::sort, which is not stable: cxx_sort must give the
    # order of equal scores that the GCC-built Caffe gives. The reference: std::sort itself.
    import shutil
    import subprocess
    from protoseg.layers.detection.modules import cxx_sort
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the std::sort reference")
    (tmp_path / "sort.cpp").write_text(STD_SORT)
    subprocess.run(["g++", "-O2", "-o", str(tmp_path / "sort"), str(tmp_path / "sort.cpp")], check=True)
    scores = (np.random.default_rng(n).integers(0, levels, n) / 8).astype(np.float32)
    out = subprocess.run([str(tmp_path / "sort")], input=f"{n} " + " ".join(map(repr, scores.tolist())),
                         capture_output=True, text=True, check=True).stdout
    items = [(s, i) for i, s in enumerate(scores.tolist())]
    cxx_sort(items, lambda a, b: a[0] > b[0])
    assert [i for _, i in items] == [int(t) for t in out.split()]


# ---------------------------------------------------------------------------------------------
# end to end against an independent Caffe implementation: OpenCV's dnn Caffe importer (it agrees
# with Caffe for every layer used here, caffe-semantics.md Appendix D)

CV_NET = """name: "cv"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 13 dim: 13 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "conv1" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "cat" type: "Concat" bottom: "pool1" bottom: "pool2" top: "cat" }
layer { name: "up" type: "Deconvolution" bottom: "cat" top: "up" convolution_param { num_output: 4 kernel_size: 4 stride: 2 } }
layer { name: "crop" type: "Crop" bottom: "up" bottom: "data" top: "crop" crop_param { axis: 2 offset: 1 } }
layer { name: "lrn" type: "LRN" bottom: "crop" top: "lrn" lrn_param { local_size: 3 alpha: 0.01 beta: 0.75 } }
layer { name: "zoom" type: "Interp" bottom: "lrn" top: "zoom" interp_param { zoom_factor: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "lrn" top: "fc" inner_product_param { num_output: 6 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_small_net_matches_opencv_caffe_importer(tmp_path):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "dnn") or int(cv2.__version__.split(".")[0]) >= 5:
        pytest.skip("OpenCV 5 has no Caffe importer")
    rng = np.random.default_rng(72)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    blobs = {"conv1": [f(8, 3, 3, 3), f(8)], "bn1": [f(8), rng.uniform(1, 3, 8).astype(np.float32),
                                                     np.array([2.0], np.float32)],
             "sc1": [f(8), f(8)], "up": [f(16, 4, 4, 4), f(4)], "fc": [f(6, 4 * 13 * 13) * 0.1, f(6)]}
    model_pb = pb.PACKED.NetParameter(name="cv")
    for name, arrays in blobs.items():
        layer = model_pb.layer.add(name=name)
        for a in arrays:
            layer.blobs.append(pb.blob(pb.PACKED, a))
    (tmp_path / "cv.caffemodel").write_bytes(model_pb.SerializeToString())
    (tmp_path / "cv.prototxt").write_text(CV_NET)
    names = ["pool1", "pool2", "up", "crop", "lrn", "zoom", "prob"]
    x = rand(73, 1, 3, 13, 13)
    cv_net = cv2.dnn.readNetFromCaffe(str(tmp_path / "cv.prototxt"), str(tmp_path / "cv.caffemodel"))
    cv_net.setInput(x)
    want = dict(zip(names, cv_net.forward(names)))
    ours = compile_net(text=CV_NET, weights=str(tmp_path / "cv.caffemodel"), outputs=names)
    with torch.no_grad():
        got = ours(torch.from_numpy(x))
    for name in names:
        scale = float(np.abs(want[name]).max())
        np.testing.assert_allclose(got[name].numpy(), want[name], rtol=0, atol=1e-5 * scale, err_msg=name)
