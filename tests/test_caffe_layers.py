"""One small net per layer configuration, run by the reference Caffe and by protoseg.

The cases: every case of tests/test_opencv.py (the configurations OpenCV computes as Caffe does,
and the 42 where OpenCV deviates or fails and the reference there is hand-derived: docs/opencv.md)
and the parameter grids below (caffe-semantics.md §2-§3: the pooling size rule with its clip and
empty windows, convolution and deconvolution strides / pads / dilations / groups, every neuron
layer, the fork layers). Inputs and weights are seeded per case id; the caffemodel is written by
protoseg.caffemodel.write_caffemodel and loaded by both. All cases run in one Caffe process.

For every case: Caffe's layers and every blob's shape equal `protoseg.infer_shapes`, and the
outputs equal Caffe's -- exactly (bit for bit, NaN where Caffe has NaN) for the layers that only
move, pick or compare values, else within max|diff| <= REL * max|Caffe|.
"""
from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest

from protoseg import ProtosegError, infer_shapes, load_net
from protoseg.errors import UnsupportedLayerError

import caffe_ref
from opencv_helpers import run_protoseg, write_caffemodel
from test_opencv import CV_CASES, HAND_CASES, REFERENCE_CHECKS, Case, L, R, X4, conv, deconv, pool, wide

pytestmark = [pytest.mark.caffe, caffe_ref.skip_unless_available()]

REL = 1e-5


def C(id_: str, body: str, inputs: dict, weights=None, outputs=("y",)) -> Case:
    return Case(id_, body, inputs, weights or {}, outputs)


# ---------------------------------------------------------------------------------------------
# grids

def _pool_grid():
    """MAX/AVE x CEIL/FLOOR over sizes, kernels, strides and pads < kernel, both axes alike; then
    one pad on one axis only (the clip rule tests `pad_h || pad_w` and clips both axes)."""
    for op, ceil, h, k, s in itertools.product(("MAX", "AVE"), (True, False), (6, 7), (1, 2, 3), (1, 2, 3)):
        for p in range(k):
            yield C(f"pool-{op}-{'ceil' if ceil else 'floor'}-H{h}-k{k}-s{s}-p{p}",
                    pool(f"pool: {op} kernel_size: {k} stride: {s} pad: {p} ceil_mode: {str(ceil).lower()}"),
                    {"x": (1, 2, h, h + 1)})
    for op, (kh, kw, sh, sw, ph, pw) in itertools.product(("MAX", "AVE"), [
            (3, 1, 2, 2, 1, 0), (3, 2, 2, 3, 1, 0), (2, 3, 3, 2, 0, 1), (3, 1, 2, 2, 2, 0)]):
        yield C(f"pool-{op}-k{kh}x{kw}-s{sh}x{sw}-pad-h{ph}-w{pw}",
                pool(f"pool: {op} kernel_h: {kh} kernel_w: {kw} stride_h: {sh} stride_w: {sw} "
                     f"pad_h: {ph} pad_w: {pw}"), {"x": (1, 2, 7, 6)})
    yield C("pool-MAX-mask-top", 'layer { name: "y" type: "Pooling" bottom: "x" top: "y" top: "mask" '
            'pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }\n', {"x": R((1, 2, 7, 7), 0, 3, True)},
            outputs=("y", "mask"))
    for op in ("MAX", "AVE"):
        yield C(f"pool-{op}-global-batch2", pool(f"pool: {op} global_pooling: true"), {"x": (2, 3, 5, 4)})


def _conv_grid():
    for k, s, p, d, g in itertools.product((1, 3), (1, 2), (0, 1, 2), (1, 2), (1, 2)):
        yield C(f"conv-k{k}-s{s}-p{p}-d{d}-g{g}",
                conv(f"num_output: 4 kernel_size: {k} stride: {s} pad: {p} dilation: {d} group: {g}"),
                {"x": (1, 4, 7, 8)}, {"y": [(4, 4 // g, k, k), (4,)]})
    yield C("conv-3d", conv("num_output: 3 kernel_size: 3 pad: 1 stride: 2"), {"x": (1, 2, 5, 6, 7)},
            {"y": [(3, 2, 3, 3, 3), (3,)]})
    yield C("conv-axis2", conv("num_output: 3 kernel_size: 3 axis: 2"), {"x": (2, 3, 4, 6)},
            {"y": [(3, 4, 3), (3,)]})
    yield C("conv-two-bottoms-share-weights",
            'layer { name: "y" type: "Convolution" bottom: "a" bottom: "b" top: "y" top: "z" '
            'convolution_param { num_output: 3 kernel_size: 3 } }\n', {"a": X4, "b": X4},
            {"y": [(3, 4, 3, 3), (3,)]}, outputs=("y", "z"))


def _deconv_grid():
    for k, s, p, d, g in itertools.product((1, 2, 4), (1, 2, 3), (0, 1), (1, 2), (1, 2)):
        if p >= d * (k - 1) + 1:
            continue
        yield C(f"deconv-k{k}-s{s}-p{p}-d{d}-g{g}",
                deconv(f"num_output: 4 kernel_size: {k} stride: {s} pad: {p} dilation: {d} group: {g}"),
                {"x": (1, 4, 5, 6)}, {"y": [(4, 4 // g, k, k), (4,)]})


def _ip_grid():
    for shape, axis, transpose, bias in [((2, 3, 4, 5), 1, False, True), ((2, 3, 4, 5), 2, True, True),
                                         ((2, 3, 4, 5), 3, False, False), ((2, 3, 4, 5), -1, True, False),
                                         ((6, 7), 1, True, True), ((2, 3, 4, 5), 0, False, True)]:
        k = math.prod(shape[axis:])
        w = (k, 5) if transpose else (5, k)
        yield C(f"ip-{len(shape)}d-axis{axis}-transpose-{str(transpose).lower()}-bias-{str(bias).lower()}",
                L("InnerProduct", f"inner_product_param {{ num_output: 5 axis: {axis} "
                                  f"transpose: {str(transpose).lower()} bias_term: {str(bias).lower()} }}"),
                {"x": shape}, {"y": [w, (5,)] if bias else [w]})


X = (2, 3, 4, 5)
NEURONS = [     # (id, type, parameters, input)
    ("relu-negative_slope-neg", "ReLU", "relu_param { negative_slope: -0.5 }", wide(*X)),
    ("prelu-channel_shared", "PReLU", "prelu_param { channel_shared: true }", wide(*X)),
    ("elu-alpha2", "ELU", "elu_param { alpha: 2 }", wide(*X)),
    ("power-0-constant-1", "Power", "power_param { power: 0 scale: 3 shift: 2 }", wide(*X)),
    ("power-scale0-constant-shift-pow", "Power", "power_param { power: 3 scale: 0 shift: 1.5 }", wide(*X)),
    ("power-1-scale-shift", "Power", "power_param { scale: -2 shift: 0.25 }", wide(*X)),
    ("power-negative-base-half", "Power", "power_param { power: 0.5 }", wide(*X)),
    ("exp-base-e-scale", "Exp", "exp_param { base: -1 scale: 1.5 shift: -0.5 }", wide(*X)),
    ("exp-base0.5", "Exp", "exp_param { base: 0.5 }", wide(*X)),
    ("log-base2", "Log", "log_param { base: 2 }", R(X, 0.1, 3)),
    ("log-scale-shift", "Log", "log_param { scale: 0.5 shift: 1.2 }", wide(*X)),
    ("threshold-default-0", "Threshold", "", R(X, -1, 1)),
    ("threshold-ties", "Threshold", "threshold_param { threshold: 1 }", R(X, 0, 3, True)),
    ("dropout-ratio0.9-scale_train-false", "Dropout", "dropout_param { dropout_ratio: 0.9 scale_train: false }",
     wide(*X)),
    ("bnll-wide", "BNLL", "", R(X, -30, 30)),
    ("sigmoid-wide", "Sigmoid", "", R(X, -20, 20)),
    ("tanh-wide", "TanH", "", R(X, -10, 10)),
    ("softmax-axis0", "Softmax", "softmax_param { axis: 0 }", wide(*X)),
    ("softmax-axis3-large", "Softmax", "softmax_param { axis: 3 }", R(X, -50, 50)),
    ("mvn-across-channels-mean-only", "MVN", "mvn_param { across_channels: true normalize_variance: false }",
     wide(*X)),
    ("mvn-eps0.1", "MVN", "mvn_param { eps: 0.1 }", R(X, -0.3, 0.3)),
    ("lrn-across-size1", "LRN", "lrn_param { local_size: 1 alpha: 2 beta: 0.5 }", wide(*X)),
    ("lrn-across-size5-k0.5", "LRN", "lrn_param { local_size: 5 alpha: 3 beta: 0.75 k: 0.5 }", wide(2, 7, 3, 3)),
    ("lrn-within-size5", "LRN", "lrn_param { local_size: 5 alpha: 2 beta: 0.75 norm_region: WITHIN_CHANNEL }",
     wide(2, 2, 6, 7)),
]


def _prelu_blobs(type_: str, param: str) -> dict:
    if type_ != "PReLU":
        return {}
    return {"y": [np.array(0.3, np.float32)] if "channel_shared: true" in param else [(3,)]}


IN_PLACE = {"ReLU", "PReLU", "ELU", "Power", "Exp", "Threshold", "Dropout", "Sigmoid", "TanH", "BNLL"}


def _neuron_cases():
    for id_, type_, param, x in NEURONS:
        yield C(id_, L(type_, param), {"x": x}, _prelu_blobs(type_, param))
    for id_, type_, param, x in NEURONS:       # in place, after a 1x1 convolution
        if type_ in IN_PLACE:
            yield C(f"{id_}-in-place", L("Convolution", "convolution_param { num_output: 3 kernel_size: 1 }", top="h")
                    + f'layer {{ name: "y" type: "{type_}" bottom: "h" top: "h" {param} }}\n',
                    {"x": (2, 3, 4, 5)}, {"h": [(3, 3, 1, 1), (3,)], **_prelu_blobs(type_, param)}, outputs=("h",))


def _other_cases():
    yield from [
        C("batchnorm-2d-input", L("BatchNorm"), {"x": wide(3, 4)}, {"y": [(4,), R((4,), 0.5, 2), [2.0]]}),
        C("batchnorm-3d-input", L("BatchNorm"), {"x": wide(2, 3, 5)}, {"y": [(3,), R((3,), 0.5, 2), [0.5]]}),
        C("bn-pspnet", L("BN", "bn_param { eps: 0.0001 }"), {"x": wide(2, 3, 4, 4)},
          {"y": [(1, 3, 1, 1), (1, 3, 1, 1), (1, 3, 1, 1), R((1, 3, 1, 1), 0.5, 2)]}),
        C("scale-num_axes-neg1-bias-axis1", L("Scale", "scale_param { axis: 1 num_axes: -1 bias_term: true }"),
          {"x": (2, 3, 4)}, {"y": [(3, 4), (3, 4)]}),
        C("scale-2-bottoms-0-axis", L("Scale", "scale_param { axis: 2 }", bottoms=("x", "s")),
          {"x": X4, "s": np.array(1.7, np.float32)}),
        C("bias-num_axes0", L("Bias", "bias_param { num_axes: 0 }"), {"x": X4}, {"y": [np.array(-0.4, np.float32)]}),
        C("bias-2-bottoms-axis0", L("Bias", "bias_param { axis: 0 }", bottoms=("x", "b")), {"x": X4, "b": (1, 4)}),
        C("eltwise-sum-coeff-neg", L("Eltwise", "eltwise_param { coeff: 1 coeff: -1 }", bottoms=("a", "b")),
          {"a": X4, "b": X4}),
        C("eltwise-max-ties", L("Eltwise", "eltwise_param { operation: MAX }", bottoms=("a", "b")),
          {"a": R(X4, 0, 3, True), "b": R(X4, 0, 3, True)}),
        C("concat-axis0", L("Concat", "concat_param { axis: 0 }", bottoms=("a", "b")), {"a": X4, "b": (2, 4, 8, 8)}),
        C("concat-one-bottom", L("Concat", bottoms=("a",)), {"a": X4}),
        C("crop-axis0", L("Crop", "crop_param { axis: 0 offset: 0 offset: 1 offset: 2 offset: 3 }",
                          bottoms=("a", "b")), {"a": (2, 5, 6, 7), "b": (1, 3, 4, 2)}),
        C("crop-axis3-offset", L("Crop", "crop_param { axis: 3 offset: 4 }", bottoms=("a", "b")),
          {"a": (1, 2, 3, 8), "b": (1, 1, 1, 3)}),
        C("flatten-axis0", L("Flatten", "flatten_param { axis: 0 }"), {"x": X4}),
        C("flatten-end_axis-neg2", L("Flatten", "flatten_param { axis: 1 end_axis: -2 }"), {"x": X4}),
        C("reshape-num_axes0-insert", L("Reshape", "reshape_param { shape { dim: 1 } axis: 1 num_axes: 0 }"),
          {"x": X4}),
        C("reshape-all-minus1", L("Reshape", "reshape_param { shape { dim: -1 } }"), {"x": X4}),
        C("reshape-axis1-num_axes2", L("Reshape", "reshape_param { shape { dim: -1 } axis: 1 num_axes: 2 }"),
          {"x": X4}),
        C("permute-identity", L("Permute", "permute_param { order: 0 order: 1 order: 2 order: 3 }"), {"x": X4}),
        C("permute-1023", L("Permute", "permute_param { order: 1 order: 0 order: 3 order: 2 }"), {"x": (2, 3, 4, 5)}),
        C("tile-axis0", L("Tile", "tile_param { axis: 0 tiles: 2 }"), {"x": (2, 3, 4)}),
        C("tile-axis-neg1", L("Tile", "tile_param { axis: -1 tiles: 3 }"), {"x": (2, 3, 4)}),
        C("embed-bias", L("Embed", "embed_param { num_output: 3 input_dim: 5 }"), {"x": R((2, 4), 0, 5, True)},
          {"y": [(5, 3), (3,)]}),
        C("embed-no-bias-truncates", L("Embed", "embed_param { num_output: 4 input_dim: 3 bias_term: false }"),
          {"x": R((3, 2), 0, 2.99)}, {"y": [(3, 4)]}),
        C("argmax-flat-top3", L("ArgMax", "argmax_param { top_k: 3 }"), {"x": R((2, 3, 2, 2), 0, 4, True)}),
        C("argmax-flat-out_max_val", L("ArgMax", "argmax_param { top_k: 2 out_max_val: true }"),
          {"x": (2, 3, 2, 2)}),
        C("argmax-flat-2d", L("ArgMax"), {"x": R((3, 6), 0, 2, True)}),
        C("argmax-axis2-ties", L("ArgMax", "argmax_param { axis: 2 top_k: 3 }"), {"x": R((1, 2, 5, 3), 0, 2, True)}),
        C("argmax-axis-neg1-values", L("ArgMax", "argmax_param { axis: -1 out_max_val: true }"), {"x": X4}),
        C("reduction-sum-axis0", L("Reduction", "reduction_param { axis: 0 }"), {"x": X4}),
        C("reduction-asum-axis3", L("Reduction", "reduction_param { operation: ASUM axis: 3 }"), {"x": X4}),
        C("reduction-sumsq-axis1-coeff", L("Reduction", "reduction_param { operation: SUMSQ axis: 1 coeff: 2 }"),
          {"x": X4}),
        C("reduction-mean-axis2", L("Reduction", "reduction_param { operation: MEAN axis: 2 }"), {"x": X4}),
        C("normalize-across-shared", L("Normalize", "norm_param { across_spatial: true channel_shared: true }"),
          {"x": wide(*X4)}, {"y": [np.array(1.3, np.float32)]}),
        C("normalize-per-pixel-shared", L("Normalize", "norm_param { across_spatial: false channel_shared: true }"),
          {"x": wide(2, 3, 4, 5)}, {"y": [np.array(0.8, np.float32)]}),
        C("normalize-per-pixel-eps-large",
          L("Normalize", "norm_param { across_spatial: false channel_shared: false eps: 0.3 }"),
          {"x": R(X4, -0.2, 0.2)}, {"y": [(4,)]}),
        C("upsample-mask-scale2", 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" top: "m" '
          'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
          + L("Upsample", "upsample_param { scale: 2 }", bottoms=("p", "m")), {"x": (1, 2, 6, 8)}),
        C("upsample-mask-odd-upsample_h-w", 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" top: "m" '
          'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
          + L("Upsample", "upsample_param { scale: 2 upsample_h: 5 upsample_w: 7 }", bottoms=("p", "m")),
          {"x": (1, 2, 5, 7)}),
        # an in-place layer on a top that shares its bottom's memory rewrites the bottom too, and a
        # later reader of the bottom sees that in Caffe
        C("in-place-on-reshape-top-rewrites-bottom", L("Reshape", "reshape_param { shape { dim: 0 dim: -1 } }",
                                                       top="r") + L("ReLU", bottoms=("r",), top="r")
          + L("Sigmoid"), {"x": wide(*X4)}),
        C("in-place-on-flatten-top-rewrites-bottom", L("Flatten", top="r") + L("ReLU", bottoms=("r",), top="r")
          + L("Sigmoid"), {"x": wide(*X4)}),
        C("in-place-on-split-top-rewrites-other-top",
          'layer { name: "s" type: "Split" bottom: "x" top: "a" top: "b" }\n'
          + L("ReLU", bottoms=("a",), top="a") + L("Sigmoid", bottoms=("b",)), {"x": wide(*X4)}),
        C("in-place-after-another-reader", L("Sigmoid", top="a") + L("ReLU", top="x"), {"x": X4}, outputs=("a",)),
        C("split-3-tops", 'layer { name: "s" type: "Split" bottom: "x" top: "a" top: "b" top: "c" }\n', {"x": X4},
          outputs=("a", "b", "c")),
        C("slice-axis0", 'layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" '
          'slice_param { axis: 0 } }\n', {"x": (2, 3, 4)}, outputs=("a", "b")),
    ]
    img = {"f": (1, 4, 3, 5), "img": (1, 3, 30, 50)}
    for id_, param in [     # clip given: its default is false in SSD, true in the reference's proto
        ("two-min-sizes-max-sizes", "min_size: 4 min_size: 8 max_size: 9 max_size: 15 clip: false"),
        ("aspect-duplicates-flip", "min_size: 6 aspect_ratio: 2 aspect_ratio: 2 aspect_ratio: 0.5 aspect_ratio: 3 "
                                   "flip: true clip: false"),
        ("step_h-step_w-offset0", "min_size: 5 step_h: 8 step_w: 11 offset: 0 clip: false"),
        ("img_size-clip", "min_size: 20 img_size: 40 clip: true aspect_ratio: 2"),
        ("min-size-truncated", "min_size: 7.9 max_size: 12.6 variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 "
                               "clip: false"),
    ]:
        yield C(f"priorbox-{id_}", L("PriorBox", f"prior_box_param {{ {param} }}", bottoms=("f", "img")), img)
    # legacy accessors: a 2-axis feature map is 1x1 cells, a 3-axis one H x 1; aspect ratio 0 (and
    # its flip, 1/0) gives infinite and NaN corners, which Caffe writes without complaint
    for id_, param, shapes in [
        ("2-axis-feature", "min_size: 4 aspect_ratio: 2 clip: false", {"f": (1, 4), "img": (1, 3, 30, 50)}),
        ("3-axis-feature", "min_size: 4 clip: false", {"f": (1, 4, 3), "img": (1, 3, 30, 50)}),
        ("aspect-ratio-zero", "min_size: 4 aspect_ratio: 0 flip: true clip: false", img),
    ]:
        yield C(f"priorbox-{id_}", L("PriorBox", f"prior_box_param {{ {param} }}", bottoms=("f", "img")), shapes)


def _detection_inputs(id_: str, batch: int, priors: int, classes: int, loc_classes: int = 1,
                      levels: int | None = None) -> dict:
    """Seeded SSD bottoms: P prior boxes (centres in [0.1, 0.9], sides in [0.05, 0.5], overlapping
    enough for NMS to matter) with variances (0.1, 0.1, 0.2, 0.2); box predictions in [-1, 1);
    scores in [0, 1), or in `levels` steps (many equal scores: the tie rules decide)."""
    rng = np.random.default_rng(zlib.crc32(id_.encode()))
    centre, side = rng.uniform(0.1, 0.9, (priors, 2)), rng.uniform(0.05, 0.5, (priors, 2))
    boxes = np.concatenate([centre - side / 2, centre + side / 2], 1)
    prior = np.stack([boxes.ravel(), np.tile([0.1, 0.1, 0.2, 0.2], priors)])[None]
    conf = rng.uniform(0, 1, (batch, priors * classes))
    if levels:
        conf = np.floor(conf * levels) / levels
    return {"loc": rng.uniform(-1, 1, (batch, priors * loc_classes * 4)).astype(np.float32),
            "conf": conf.astype(np.float32), "prior": prior.astype(np.float32)}


DETECTION_CASES = [   # id, detection_output_param, batch, priors, classes, loc classes, score levels
    ("center-size-top-k-keep-top-k", "num_classes: 6 code_type: CENTER_SIZE confidence_threshold: 0.3 "
     "nms_param { nms_threshold: 0.45 top_k: 15 } keep_top_k: 30", 1, 60, 6, 1, None),
    # scores 0, .25, .5, .75: stable_sort keeps equal scores in prior order, and the keep_top_k
    # cut goes through a group of equal scores (std::sort's order)
    ("ties-keep-top-k-std-sort", "num_classes: 5 code_type: CENTER_SIZE confidence_threshold: 0.3 "
     "nms_param { nms_threshold: 0.45 top_k: 30 } keep_top_k: 25", 1, 80, 5, 1, 4),
    ("corner-variance-in-target-batch2", "num_classes: 4 code_type: CORNER variance_encoded_in_target: true "
     "confidence_threshold: 0.5 nms_param { nms_threshold: 0.3 } keep_top_k: 40", 2, 40, 4, 1, None),
    ("corner-size-per-class-no-background", "num_classes: 3 share_location: false background_label_id: -1 "
     "code_type: CORNER_SIZE confidence_threshold: 0.4 nms_param { nms_threshold: 0.5 top_k: 20 }", 1, 30, 3, 3, None),
    ("adaptive-nms-eta", "num_classes: 3 code_type: CENTER_SIZE confidence_threshold: 0.1 "
     "nms_param { nms_threshold: 0.8 eta: 0.8 top_k: 40 }", 1, 60, 3, 1, None),
    ("no-confidence-threshold-background-2", "num_classes: 3 background_label_id: 2 code_type: CENTER_SIZE "
     "nms_param { nms_threshold: 0.45 top_k: 12 }", 1, 30, 3, 1, None),
    ("nothing-kept-batch2", "num_classes: 3 code_type: CENTER_SIZE confidence_threshold: 1 "
     "nms_param { nms_threshold: 0.45 }", 2, 20, 3, 1, None),
    ("keep-top-k-0", "num_classes: 3 code_type: CENTER_SIZE nms_param { nms_threshold: 0.45 } keep_top_k: 0",
     1, 20, 3, 1, None),
    # without nms_param SSD runs NMS with its defaults; the reference's fork skips NMS (DIFFERS)
    ("no-nms-param", "num_classes: 3 code_type: CENTER_SIZE confidence_threshold: 0.5", 1, 30, 3, 1, None),
]


def _detection_cases():
    for id_, param, batch, priors, classes, loc_classes, levels in DETECTION_CASES:
        id_ = f"detection-output-{id_}"
        yield C(id_, L("DetectionOutput", f"detection_output_param {{ {param} }}", bottoms=("loc", "conf", "prior")),
                _detection_inputs(id_, batch, priors, classes, loc_classes, levels))


# the reference Caffe (brocolli-caffe 9.0.2) cannot run these cases: what in the case body it lacks
NOT_IN_REFERENCE = {
    'type: "Interp"': "the reference Caffe has no Interp layer (DeepLab's)",
    'type: "Clip"': "the reference Caffe has no Clip layer (BVLC added it after commit 9b89154)",
    'type: "Swish"': "the reference Caffe has no Swish layer (BVLC added it after commit 9b89154)",
    "round_mode": "the reference Caffe's PoolingParameter has the fork's ceil_mode (field 13), not round_mode",
    "scale_train": "the reference Caffe's DropoutParameter has no scale_train (caffe-fast-rcnn's field)",
    'type: "BN"': "the reference's BN is another fork's layer (yjxiong's: (1, C) blobs, blob 3 the inverse std), "
                  "not PSPNet's or SegNet's BN that protoseg implements",
    'type: "Upsample"': "the reference's Upsample is nearest-neighbour upsampling by `scale` (no upsample_h/w, "
                        "the mask bottom unused), not SegNet's max-unpooling that protoseg implements",
}

# cases Caffe refuses: what its message says. protoseg must refuse them too.
CAFFE_REFUSES = {
    "ip-legacy-4d-blobs": "Cannot copy param 0 weights from layer 'y'; shape mismatch.  Source param shape is "
                          "1 1 5 7 (35); target param shape is 5 7 (35)",
    "in-place-after-another-reader": "Top blob 'x' produced by multiple sources",
}

# where protoseg differs from Caffe: case id -> (the difference, the exception the test then fails with)
DIFFERS = {
    **{id_: ("Caffe's Reshape / Flatten / Split tops share their bottom's memory, so an in-place layer "
                   "on such a top rewrites the bottom (and the other tops) for the layers that read it later; "
                   "protoseg gives every value its own memory", AssertionError)
       for id_ in ("in-place-on-reshape-top-rewrites-bottom", "in-place-on-flatten-top-rewrites-bottom",
                   "in-place-on-split-top-rewrites-other-top")},
    "conv-axis2": ("protoseg cannot compile a Convolution with axis: 2; Caffe runs it", UnsupportedLayerError),
    "detection-output-no-nms-param": ("without nms_param the reference's fork (brocolli-caffe) keeps every box "
                                      "(no NMS, no confidence threshold); SSD's DetectionOutput, which protoseg "
                                      "follows, runs NMS with nms_param's defaults (threshold 0.3)", AssertionError),
}

GRID = [*_pool_grid(), *_conv_grid(), *_deconv_grid(), *_ip_grid(), *_neuron_cases(), *_other_cases(),
        *_detection_cases()]
OPENCV_CASES = [p.values[0] for p in [*CV_CASES, *HAND_CASES, *REFERENCE_CHECKS]]
# one case per id (test_opencv.py checks conv-k3-pad1-on-1x1-map twice: batch 1 against OpenCV,
# batch 2 by hand): the first one
CASES = list({case.id: case for case in reversed(OPENCV_CASES + GRID)}.values())[::-1]

# layers that only move, pick or compare values: Caffe's output is reproduced bit for bit
EXACT_TYPES = {"Concat", "Slice", "Split", "Crop", "Flatten", "Reshape", "Permute", "Tile", "ReLU", "AbsVal",
               "Threshold", "ArgMax", "Embed", "Upsample", "Input"}


def _skip_reason(case: Case) -> str | None:
    return next((why for what, why in NOT_IN_REFERENCE.items() if what in case.body), None)


@pytest.fixture(scope="module")
def caffe_results(tmp_path_factory):
    """{case id: (Result, inputs)}: every case run by Caffe, in one process."""
    tmp = tmp_path_factory.mktemp("caffe-layers")
    jobs, inputs = [], {}
    for case in CASES:
        if _skip_reason(case):
            continue
        text, arrays, weights = case.build()
        path = None
        if weights:
            path = str(tmp / f"{case.id}.caffemodel")
            write_caffemodel(path, [(name, "", blobs) for name, blobs in weights.items()], name=case.id)
        jobs.append(caffe_ref.Job(case.id, text, arrays, weights=path, all_blobs=True))
        inputs[case.id] = (text, arrays, path)
    return {job_id: (r, *inputs[job_id]) for job_id, r in caffe_ref.run(jobs).items()}


def _marks(case: Case) -> list:
    if _skip_reason(case):
        return [pytest.mark.skip(reason=_skip_reason(case))]
    if case.id in DIFFERS:
        reason, raises = DIFFERS[case.id]
        return [pytest.mark.xfail(strict=True, reason=reason, raises=raises)]
    return []


def _params():
    return [pytest.param(case, id=case.id, marks=_marks(case)) for case in CASES]


@pytest.mark.parametrize("case", _params())
def test_layer_matches_caffe(case: Case, caffe_results):
    r, text, inputs, caffemodel = caffe_results[case.id]
    if case.id in CAFFE_REFUSES:
        assert r.error is not None and CAFFE_REFUSES[case.id] in r.error, r.error
        with pytest.raises(ProtosegError):
            run_protoseg(text, caffemodel, inputs, case.blobs)
        return
    r.check()
    caffe_ref.assert_same_net(r, infer_shapes(load_net(text=text, file=case.id)))
    got = run_protoseg(text, caffemodel, inputs, case.blobs)
    exact = all(ly[1] in EXACT_TYPES or (ly[1] == "Pooling" and "pool: MAX" in text) for ly in r.user_layers)
    made_by = {top: ly[1] for ly in r.user_layers for top in ly[3]}
    for blob in case.blobs:
        if made_by[blob] == "DetectionOutput":
            caffe_ref.compare_detections(got[blob], r.data[blob], f"{case.id}: {blob}", REL, exact_scores=True)
        else:
            caffe_ref.compare(got[blob], r.data[blob], f"{case.id}: {blob}", REL, exact)


# Layers whose forward Caffe implements for the GPU only: the CPU-only reference sets them up
# (every shape must equal protoseg's) and stops in Forward_cpu ("Not Implemented Yet"); their
# numerics are checked against the CUDA kernels transcribed in tests/caffe_reference.py
# (test_numerics.py).
GPU_ONLY = [
    C("psroi-pooling-gpu-only", L("PSROIPooling", "psroi_pooling_param { spatial_scale: 0.25 output_dim: 2 "
                                  "group_size: 3 }", bottoms=("x", "rois")),
      {"x": (2, 18, 6, 7), "rois": np.array([[0, 1, 1, 20, 20], [1, 0, 4, 9, 9], [0, 3, 3, 4, 4]], np.float32)}),
    C("pooling-STOCHASTIC-gpu-only", pool("pool: STOCHASTIC kernel_size: 3 stride: 2"), {"x": R((1, 2, 7, 8), 0, 2)}),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in GPU_ONLY])
def test_gpu_only_layer_shapes_equal_caffe_and_its_cpu_forward_stops(case):
    text, arrays, _ = case.build()
    built, ran = caffe_ref.run([caffe_ref.Job("set-up", text, arrays, forward=False),
                                caffe_ref.Job("forward", text, arrays)]).values()
    caffe_ref.assert_same_net(built.check(), infer_shapes(load_net(text=text, file=case.id)))
    assert ran.error is not None and "Not Implemented Yet" in ran.error, ran.error
