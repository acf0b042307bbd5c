"""protoseg against an independent Caffe implementation: OpenCV dnn's Caffe importer.

* `test_layer_matches_opencv`: one small net per layer configuration that OpenCV 4.x computes as
  Caffe does; the prototxt and a caffemodel with seeded random weights are written here, OpenCV
  (`cv2.dnn.readNetFromCaffe`) and the compiled module (`weights=` the same caffemodel) run on the
  same input, and `max|diff| <= 1e-4 * max|OpenCV|` is required.
* `test_layer_matches_caffe_by_hand`: the configurations where OpenCV is not an oracle (it
  deviates from Caffe, fails, or has no such layer; docs/opencv.md lists each one with what
  OpenCV does): the reference is a formula or a numpy transcription of Caffe's loop written in
  this file, never the torch code under test.
* FCN-32s and FCN-8s end to end (full VGG-16 size, random He-scaled weights, 64x64 input) and the
  `protoseg port` -> safetensors -> `load_state_dict` round trip, against OpenCV.

OpenCV addresses outputs by *layer* name; every case names its layers after their tops, and a
multi-top layer's tops are read through one identity layer each (OpenCV keeps only the tops
that a later layer consumes).
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):  # OpenCV 5 dropped it
    pytest.skip("this OpenCV has no Caffe importer", allow_module_level=True)

from protoseg import compile_net  # noqa: E402
from protoseg.errors import WeightsError  # noqa: E402

import opencv_helpers as h
from caffe_reference import FLT_MAX, caffe_argmax, caffe_deconv, caffe_interp, caffe_lrn, caffe_pool

ROOT = Path(__file__).resolve().parent.parent
REL = 1e-4


# ---------------------------------------------------------------------------------------------
# cases


@dataclass(frozen=True)
class R:
    """A seeded random array: uniform in [lo, hi), or integers in [lo, hi) (for ties)."""
    shape: tuple
    lo: float = -1.0
    hi: float = 1.0
    integer: bool = False

    def draw(self, rng) -> np.ndarray:
        if self.integer:
            return rng.integers(int(self.lo), int(self.hi), self.shape).astype(np.float32)
        return rng.uniform(self.lo, self.hi, self.shape).astype(np.float32)


def _array(spec, rng) -> np.ndarray:
    if isinstance(spec, R):
        return spec.draw(rng)
    if isinstance(spec, tuple):
        return R(spec).draw(rng)
    return np.asarray(spec, np.float32)


@dataclass(frozen=True)
class Case:
    """Input layers (one per `inputs` entry) + `body`; `weights` {layer: [array specs]};
    `outputs` blob names (or (blob, OpenCV layer) pairs where they differ); `ref` for the
    hand-derived cases: (inputs, weights) -> {blob: expected}."""
    id: str
    body: str
    inputs: dict
    weights: dict = field(default_factory=dict)
    outputs: tuple = ("y",)
    ref: object = None
    why: str = ""                 # hand cases: why OpenCV cannot be the reference
    opencv_may_fail: str = ""     # OpenCV versions differ: skip (with this reason) if it raises

    @property
    def blobs(self) -> list:
        return [o if isinstance(o, str) else o[0] for o in self.outputs]

    @property
    def cv_names(self) -> list:
        return [o if isinstance(o, str) else o[1] for o in self.outputs]

    def build(self):
        """(prototxt text, {input: array}, {layer: [arrays]}), seeded by the case id."""
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        inputs = {k: _array(s, rng) for k, s in self.inputs.items()}
        weights = {k: [_array(s, rng) for s in specs] for k, specs in self.weights.items()}
        head = f'name: "{self.id}"\n'
        for k, a in inputs.items():
            dims = " ".join(f"dim: {d}" for d in a.shape)
            head += f'layer {{ name: "{k}" type: "Input" top: "{k}" input_param {{ shape {{ {dims} }} }} }}\n'
        return head + self.body, inputs, weights


def L(type_: str, param: str = "", bottoms=("x",), top: str = "y") -> str:
    """One layer named after its top."""
    bots = " ".join(f'bottom: "{b}"' for b in bottoms)
    return f'layer {{ name: "{top}" type: "{type_}" {bots} top: "{top}" {param} }}\n'


def conv(param: str, **kw) -> str:
    return L("Convolution", f"convolution_param {{ {param} }}", **kw)


def deconv(param: str, **kw) -> str:
    return L("Deconvolution", f"convolution_param {{ {param} }}", **kw)


def pool(param: str, **kw) -> str:
    return L("Pooling", f"pooling_param {{ {param} }}", **kw)


def identities(n: int, prefix: str = "t", scale: float = 1.0) -> str:
    """Power layers o0..o{n-1} reading t0..t{n-1} (scale 1: identity)."""
    p = f"power_param {{ scale: {scale} }}" if scale != 1.0 else ""
    return "".join(L("Power", p, bottoms=(f"{prefix}{i}",), top=f"o{i}") for i in range(n))


def tops(n: int) -> str:
    return " ".join(f'top: "t{i}"' for i in range(n))


def P(case: Case):
    return pytest.param(case, id=case.id)


X = (2, 3, 5, 5)                       # default neuron input
X4 = (1, 4, 8, 8)


def pos(*shape, lo=0.5, hi=2.0) -> R:
    return R(tuple(shape), lo, hi)


def wide(*shape) -> R:
    return R(tuple(shape), -2.0, 2.0)


def bn_blobs(c: int, factor: float) -> list:
    return [(c,), pos(c), np.array([factor], np.float32)]


# -- configurations OpenCV computes as Caffe does ------------------------------------------------

CV_CASES = [
    # Convolution
    P(Case("conv-k3-pad1", conv("num_output: 5 kernel_size: 3 pad: 1"), {"x": X4},
           {"y": [(5, 4, 3, 3), (5,)]})),
    P(Case("conv-groups2-dilation2", conv("num_output: 6 kernel_size: 3 pad: 2 dilation: 2 group: 2"),
           {"x": (1, 4, 9, 9)}, {"y": [(6, 2, 3, 3), (6,)]})),
    P(Case("conv-asym-kernel-pad-stride-hw",
           conv("num_output: 3 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1"),
           {"x": (1, 4, 9, 8)}, {"y": [(3, 4, 3, 2), (3,)]})),
    P(Case("conv-per-axis-lists",
           conv("num_output: 3 kernel_size: 3 kernel_size: 2 dilation: 2 dilation: 3 pad: 1 pad: 2 "
                "stride: 1 stride: 2"), {"x": (1, 4, 8, 9)}, {"y": [(3, 4, 3, 2), (3,)]})),
    P(Case("conv-depthwise-stride2-nobias",
           conv("num_output: 4 kernel_size: 3 pad: 1 stride: 2 group: 4 bias_term: false"),
           {"x": X4}, {"y": [(4, 1, 3, 3)]})),
    P(Case("conv-batch2-k3-pad0", conv("num_output: 3 kernel_size: 3"), {"x": (2, 4, 6, 7)},
           {"y": [(3, 4, 3, 3), (3,)]})),
    P(Case("conv-1d", conv("num_output: 3 kernel_size: 3 pad: 1"), {"x": (2, 2, 7)},
           {"y": [(3, 2, 3), (3,)]})),
    P(Case("conv-k3-pad1-on-1x1-map", conv("num_output: 3 kernel_size: 3 pad: 1"), {"x": (1, 4, 1, 1)},
           {"y": [(3, 4, 3, 3), (3,)]},
           opencv_may_fail="OpenCV before 4.14 turns it into an InnerProduct and fails "
                           "(test_layer_matches_caffe_by_hand[conv-k3-pad1-on-1x1-map] covers it)")),
    # Deconvolution
    P(Case("deconv-k4-s2", deconv("num_output: 3 kernel_size: 4 stride: 2"), {"x": (1, 4, 6, 6)},
           {"y": [(4, 3, 4, 4), (3,)]})),
    P(Case("deconv-k4-s2-pad1-nobias", deconv("num_output: 3 kernel_size: 4 stride: 2 pad: 1 bias_term: false"),
           {"x": (1, 4, 6, 6)}, {"y": [(4, 3, 4, 4)]})),
    P(Case("deconv-groups2", deconv("num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2"),
           {"x": (1, 4, 5, 5)}, {"y": [(4, 3, 3, 3), (6,)]})),
    P(Case("deconv-depthwise", deconv("num_output: 4 kernel_size: 4 stride: 2 group: 4 bias_term: false"),
           {"x": (1, 4, 5, 5)}, {"y": [(4, 1, 4, 4)]})),
    P(Case("deconv-asym-kernel-pad-stride-hw",
           deconv("num_output: 3 kernel_h: 4 kernel_w: 3 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0"),
           {"x": (2, 4, 5, 6)}, {"y": [(4, 3, 4, 3), (3,)]})),
    # Pooling (Caffe's default round mode is CEIL)
    P(Case("pool-max-k3-s2-ceil", pool("pool: MAX kernel_size: 3 stride: 2"), {"x": (1, 3, 8, 8)})),
    P(Case("pool-max-k3-s2-pad1", pool("pool: MAX kernel_size: 3 stride: 2 pad: 1"), {"x": (1, 3, 8, 8)})),
    P(Case("pool-max-k3-s2-pad2", pool("pool: MAX kernel_size: 3 stride: 2 pad: 2"), {"x": (1, 3, 8, 8)})),
    P(Case("pool-ave-k3-s2-ceil", pool("pool: AVE kernel_size: 3 stride: 2"), {"x": (1, 3, 8, 8)})),
    P(Case("pool-ave-k3-s2-pad1", pool("pool: AVE kernel_size: 3 stride: 2 pad: 1"), {"x": (1, 3, 8, 8)})),
    P(Case("pool-ave-k3-s2-pad2", pool("pool: AVE kernel_size: 3 stride: 2 pad: 2"), {"x": (1, 3, 8, 8)})),
    P(Case("pool-ave-asym-pad-both-axes",
           pool("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 1"),
           {"x": (1, 3, 9, 9)})),
    P(Case("pool-max-k2-s3-pad1-clip", pool("pool: MAX kernel_size: 2 stride: 3 pad: 1"), {"x": (1, 3, 7, 7)})),
    P(Case("pool-ave-k2-s3-pad1-clip", pool("pool: AVE kernel_size: 2 stride: 3 pad: 1"), {"x": (1, 3, 7, 7)})),
    P(Case("pool-ave-k2-s2-batch2", pool("pool: AVE kernel_size: 2 stride: 2"), {"x": (2, 3, 5, 5)})),
    P(Case("pool-max-ceil_mode-false", pool("pool: MAX kernel_size: 3 stride: 2 ceil_mode: false"),
           {"x": (1, 3, 8, 8)})),
    P(Case("pool-global-max", pool("pool: MAX global_pooling: true"), {"x": (1, 3, 7, 9)})),
    P(Case("pool-global-ave", pool("pool: AVE global_pooling: true"), {"x": (1, 3, 7, 9)})),
    # InnerProduct
    P(Case("ip-4d-axis1", L("InnerProduct", "inner_product_param { num_output: 5 }"), {"x": (2, 4, 3, 3)},
           {"y": [(5, 36), (5,)]})),
    P(Case("ip-axis2-3d", L("InnerProduct", "inner_product_param { num_output: 5 axis: 2 }"),
           {"x": (2, 3, 6)}, {"y": [(5, 6), (5,)]})),
    P(Case("ip-axis2-4d", L("InnerProduct", "inner_product_param { num_output: 5 axis: 2 }"),
           {"x": (1, 4, 3, 3)}, {"y": [(5, 9), (5,)]})),
    P(Case("ip-nobias", L("InnerProduct", "inner_product_param { num_output: 5 bias_term: false }"),
           {"x": (2, 7)}, {"y": [(5, 7)]})),
    P(Case("ip-legacy-4d-blobs", L("InnerProduct", "inner_product_param { num_output: 5 }"),
           {"x": (2, 7)}, {"y": [(1, 1, 5, 7), (1, 1, 1, 5)]})),
    # neurons
    P(Case("relu", L("ReLU"), {"x": wide(*X)})),
    P(Case("relu-negative_slope", L("ReLU", "relu_param { negative_slope: 0.1 }"), {"x": wide(*X)})),
    P(Case("prelu-per-channel", L("PReLU"), {"x": wide(*X)}, {"y": [(3,)]})),
    P(Case("prelu-2d-input", L("PReLU"), {"x": wide(3, 5)}, {"y": [(5,)]})),
    P(Case("elu-alpha0.5", L("ELU", "elu_param { alpha: 0.5 }"), {"x": wide(*X)})),
    P(Case("elu-default", L("ELU"), {"x": wide(*X)})),
    P(Case("sigmoid", L("Sigmoid"), {"x": wide(*X)})),
    P(Case("tanh", L("TanH"), {"x": wide(*X)})),
    P(Case("absval", L("AbsVal"), {"x": wide(*X)})),
    P(Case("bnll", L("BNLL"), {"x": wide(*X)})),
    P(Case("power-2-scale-shift", L("Power", "power_param { power: 2 scale: 0.5 shift: 1 }"), {"x": wide(*X)})),
    P(Case("power-3-negative-scale", L("Power", "power_param { power: 3 scale: -1.5 }"), {"x": wide(*X)})),
    P(Case("power-sqrt", L("Power", "power_param { power: 0.5 scale: 0.5 shift: 2 }"), {"x": wide(*X)})),
    P(Case("exp-base2-scale-shift", L("Exp", "exp_param { base: 2 scale: 0.5 shift: 0.1 }"), {"x": wide(*X)})),
    P(Case("exp-default", L("Exp"), {"x": wide(*X)})),
    P(Case("log-default", L("Log"), {"x": pos(*X, lo=0.05, hi=3.0)})),
    P(Case("swish-default-beta", L("Swish"), {"x": wide(*X)})),
    P(Case("dropout", L("Dropout", "dropout_param { dropout_ratio: 0.3 }"), {"x": wide(*X)})),
    P(Case("dropout-scale_train-false", L("Dropout", "dropout_param { dropout_ratio: 0.3 scale_train: false }"),
           {"x": wide(*X)})),
    # LRN
    P(Case("lrn-across-k1", L("LRN", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 }"), {"x": wide(*X4)})),
    P(Case("lrn-across-size5-batch2", L("LRN", "lrn_param { local_size: 5 alpha: 0.1 beta: 0.5 }"),
           {"x": wide(2, 7, 4, 4)})),
    P(Case("lrn-within", L("LRN", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }"),
           {"x": wide(*X4)})),
    P(Case("lrn-within-ignores-k", L("LRN", "lrn_param { local_size: 5 alpha: 0.3 beta: 0.6 "
                                            "norm_region: WITHIN_CHANNEL k: 3 }"), {"x": wide(2, 3, 6, 6)})),
    # MVN (default eps 1e-9: where OpenCV puts eps does not show)
    P(Case("mvn-default", L("MVN"), {"x": wide(*X4)})),
    P(Case("mvn-mean-only", L("MVN", "mvn_param { normalize_variance: false }"), {"x": wide(*X4)})),
    P(Case("mvn-across-channels", L("MVN", "mvn_param { across_channels: true }"), {"x": wide(2, 4, 5, 5)})),
    # BatchNorm (statistics blobs divided by the factor blob; factor 0 -> x / sqrt(eps))
    P(Case("batchnorm-factor2", L("BatchNorm"), {"x": wide(*X4)}, {"y": bn_blobs(4, 2.0)})),
    P(Case("batchnorm-factor0", L("BatchNorm"), {"x": wide(*X4)}, {"y": bn_blobs(4, 0.0)})),
    P(Case("batchnorm-use_global_stats-eps", L("BatchNorm", "batch_norm_param { use_global_stats: true eps: 0.001 }"),
           {"x": wide(*X4)}, {"y": bn_blobs(4, 1.0)})),
    P(Case("batchnorm-batch-stats-batch1", L("BatchNorm", "batch_norm_param { use_global_stats: false }"),
           {"x": wide(*X4)}, {"y": bn_blobs(4, 1.0)})),
    P(Case("conv-batchnorm-scale-relu-in-place",
           conv("num_output: 4 kernel_size: 3 pad: 1")
           + 'layer { name: "bn" type: "BatchNorm" bottom: "y" top: "y" }\n'
           + 'layer { name: "sc" type: "Scale" bottom: "y" top: "y" scale_param { bias_term: true } }\n'
           + 'layer { name: "relu" type: "ReLU" bottom: "y" top: "y" }\n',
           {"x": X4}, {"y": [(4, 4, 3, 3), (4,)], "bn": bn_blobs(4, 3.0), "sc": [(4,), (4,)]},
           outputs=(("y", "relu"),))),
    # Scale
    P(Case("scale-bias_term", L("Scale", "scale_param { bias_term: true }"), {"x": X4}, {"y": [(4,), (4,)]})),
    P(Case("scale-axis1-num_axes2", L("Scale", "scale_param { axis: 1 num_axes: 2 }"), {"x": X4}, {"y": [(4, 8)]})),
    P(Case("scale-axis2-num_axes-1-bias", L("Scale", "scale_param { axis: 2 num_axes: -1 bias_term: true }"),
           {"x": X4}, {"y": [(8, 8), (8, 8)]})),
    P(Case("scale-axis0-num_axes2", L("Scale", "scale_param { axis: 0 num_axes: 2 }"), {"x": (2, 4, 3, 3)},
           {"y": [(2, 4)]})),
    P(Case("scale-2-bottoms-channel", L("Scale", bottoms=("x", "s")), {"x": X4, "s": (4,)})),
    P(Case("scale-2-bottoms-2-axes", L("Scale", bottoms=("x", "s")), {"x": X4, "s": (4, 8)})),
    P(Case("scale-2-bottoms-3-axes", L("Scale", bottoms=("x", "s")), {"x": X4, "s": (4, 8, 8)})),
    P(Case("scale-2-bottoms-axis2", L("Scale", "scale_param { axis: 2 }", bottoms=("x", "s")),
           {"x": X4, "s": (8, 8)})),
    P(Case("scale-2-bottoms-axis0", L("Scale", "scale_param { axis: 0 }", bottoms=("x", "s")),
           {"x": (2, 4, 3, 3), "s": (2, 4)})),
    # Eltwise
    P(Case("eltwise-sum", L("Eltwise", bottoms=("a", "b")), {"a": X4, "b": X4})),
    P(Case("eltwise-sum-coeff", L("Eltwise", "eltwise_param { operation: SUM coeff: 0.5 coeff: -2 coeff: 3 }",
                                  bottoms=("a", "b", "c")), {"a": X4, "b": X4, "c": X4})),
    P(Case("eltwise-prod", L("Eltwise", "eltwise_param { operation: PROD }", bottoms=("a", "b", "c")),
           {"a": X4, "b": X4, "c": X4})),
    P(Case("eltwise-max", L("Eltwise", "eltwise_param { operation: MAX }", bottoms=("a", "b", "c")),
           {"a": X4, "b": X4, "c": X4})),
    # Concat / Slice / Split / Crop
    P(Case("concat-axis1", L("Concat", bottoms=("a", "b")), {"a": X4, "b": (1, 2, 8, 8)})),
    P(Case("concat-axis2", L("Concat", "concat_param { axis: 2 }", bottoms=("a", "b")),
           {"a": X4, "b": (1, 4, 3, 8)})),
    P(Case("concat-axis-neg1", L("Concat", "concat_param { axis: -1 }", bottoms=("a", "b", "c")),
           {"a": X4, "b": (1, 4, 8, 3), "c": (1, 4, 8, 1)})),
    P(Case("slice-points-axis1",
           f'layer {{ name: "s" type: "Slice" bottom: "x" {tops(3)} slice_param {{ axis: 1 slice_point: 1 '
           f'slice_point: 3 }} }}\n' + identities(3), {"x": X4}, outputs=("o0", "o1", "o2"))),
    P(Case("slice-equal-axis3", f'layer {{ name: "s" type: "Slice" bottom: "x" {tops(2)} slice_param {{ axis: 3 }} }}\n'
           + identities(2), {"x": X4}, outputs=("o0", "o1"))),
    P(Case("slice-point-axis-neg1",
           f'layer {{ name: "s" type: "Slice" bottom: "x" {tops(2)} slice_param {{ axis: -1 slice_point: 5 }} }}\n'
           + identities(2), {"x": X4}, outputs=("o0", "o1"))),
    P(Case("split", f'layer {{ name: "s" type: "Split" bottom: "x" {tops(2)} }}\n' + identities(2, scale=2.0),
           {"x": X4}, outputs=("o0", "o1"))),
    P(Case("crop-axis2-offsets", L("Crop", "crop_param { axis: 2 offset: 1 offset: 2 }", bottoms=("a", "b")),
           {"a": X4, "b": (1, 4, 5, 4)})),
    P(Case("crop-axis1-offsets", L("Crop", "crop_param { axis: 1 offset: 1 offset: 2 offset: 3 }", bottoms=("a", "b")),
           {"a": X4, "b": (1, 2, 5, 4)})),
    P(Case("crop-one-offset", L("Crop", "crop_param { axis: 2 offset: 2 }", bottoms=("a", "b")),
           {"a": X4, "b": (1, 4, 5, 4)})),
    P(Case("crop-default-params", L("Crop", bottoms=("a", "b")), {"a": X4, "b": (1, 1, 5, 4)})),
    P(Case("crop-axis-neg1", L("Crop", "crop_param { axis: -1 offset: 3 }", bottoms=("a", "b")),
           {"a": X4, "b": (1, 4, 5, 4)})),
    # Softmax / Flatten / Reshape / Permute
    P(Case("softmax-axis1", L("Softmax"), {"x": wide(*X4)})),
    P(Case("softmax-axis2", L("Softmax", "softmax_param { axis: 2 }"), {"x": wide(*X4)})),
    P(Case("softmax-axis-neg1", L("Softmax", "softmax_param { axis: -1 }"), {"x": wide(*X4)})),
    P(Case("softmax-2d", L("Softmax"), {"x": wide(3, 7)})),
    P(Case("flatten-default", L("Flatten"), {"x": X4})),
    P(Case("flatten-axis2", L("Flatten", "flatten_param { axis: 2 }"), {"x": X4})),
    P(Case("flatten-axis1-end_axis2", L("Flatten", "flatten_param { axis: 1 end_axis: 2 }"), {"x": X4})),
    P(Case("reshape-0-minus1", L("Reshape", "reshape_param { shape { dim: 0 dim: -1 dim: 16 } }"), {"x": X4})),
    P(Case("reshape-axis1-num_axes1", L("Reshape", "reshape_param { shape { dim: 2 dim: 2 } axis: 1 num_axes: 1 }"),
           {"x": X4})),
    P(Case("permute-nhwc", L("Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }"), {"x": (1, 4, 5, 6)})),
    P(Case("permute-0312", L("Permute", "permute_param { order: 0 order: 3 order: 1 order: 2 }"), {"x": (2, 4, 5, 6)})),
    # SSD
    P(Case("normalize-per-pixel-per-channel-scale",
           L("Normalize", "norm_param { across_spatial: false channel_shared: false }"), {"x": wide(*X4)},
           {"y": [(4,)]})),
    P(Case("normalize-per-pixel-eps", L("Normalize", "norm_param { across_spatial: false channel_shared: false eps: 0.5 }"),
           {"x": R(X4, -0.1, 0.1)}, {"y": [(4,)]})),
    P(Case("priorbox-min-max-aspect-flip-variance4",
           L("PriorBox", "prior_box_param { min_size: 4 max_size: 9 aspect_ratio: 2 flip: true "
                         "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 }", bottoms=("f", "img")),
           {"f": (1, 4, 3, 4), "img": (1, 3, 30, 40)})),
    P(Case("priorbox-clip-step-offset",
           L("PriorBox", "prior_box_param { min_size: 15 aspect_ratio: 3 flip: false clip: true variance: 0.1 "
                         "step: 8 offset: 0.25 }", bottoms=("f", "img")),
           {"f": (1, 4, 3, 4), "img": (1, 3, 30, 40)})),
    # Interp (DeepLab / PSPNet): zoom_factor or height/width
    P(Case("interp-zoom_factor3", L("Interp", "interp_param { zoom_factor: 3 }"), {"x": X4})),
    P(Case("interp-height-width", L("Interp", "interp_param { height: 11 width: 5 }"), {"x": X4})),
]


# -- numpy transcriptions of Caffe's loops (the references of the hand cases) --------------------

def mvn(x, axes, eps, variance=True):
    x64 = x.astype(np.float64)
    c = x64 - x64.mean(axis=axes, keepdims=True)
    if variance:                                   # mvn_layer.cpp: sqrt first, then + eps
        c = c / (np.sqrt((c ** 2).mean(axis=axes, keepdims=True)) + eps)
    return c


def bcast(v, axis, ndim):
    """A parameter covering axes [axis, axis + v.ndim) of an ndim-axis blob (Caffe's left-aligned broadcast)."""
    return np.asarray(v).reshape((1,) * axis + np.shape(v) + (1,) * (ndim - axis - np.ndim(v)))


def priorbox_ref(fh, fw, img_h, img_w, min_size, step_h=None, step_w=None, offset=0.5, variance=(0.1,)):
    """PriorBoxLayer for one min_size and aspect ratio 1 (no max_size): one box per cell."""
    step_h = step_h or img_h / fh
    step_w = step_w or img_w / fw
    boxes = []
    for i in range(fh):
        for j in range(fw):
            cx, cy = (j + offset) * step_w, (i + offset) * step_h
            boxes += [(cx - min_size / 2) / img_w, (cy - min_size / 2) / img_h,
                      (cx + min_size / 2) / img_w, (cy + min_size / 2) / img_h]
    var = np.resize(np.asarray(variance, np.float32), len(boxes))
    return np.stack([np.asarray(boxes, np.float32), var])[None]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


# -- configurations where OpenCV is not an oracle -------------------------------------------------

def _conv_1x1(i, w):
    return {"y": (np.einsum("oc,nc->no", w["y"][0][:, :, 1, 1], i["x"][:, :, 0, 0]) + w["y"][1])[:, :, None, None]}


HAND_CASES = [
    # OpenCV computes something else
    P(Case("lrn-across-k2", L("LRN", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 }"), {"x": wide(*X4)},
           ref=lambda i, w: {"y": caffe_lrn(i["x"], 3, 0.5, 0.75, 2.0, "ACROSS_CHANNELS")},
           why="OpenCV ignores k (uses 1)")),
    P(Case("mvn-eps-after-sqrt", L("MVN", "mvn_param { eps: 0.001 }"), {"x": wide(*X4)},
           ref=lambda i, w: {"y": mvn(i["x"], (2, 3), 1e-3)},
           why="OpenCV adds eps inside the square root")),
    P(Case("mvn-across-channels-eps", L("MVN", "mvn_param { across_channels: true eps: 0.01 }"),
           {"x": R((2, 3, 4, 4), -0.2, 0.2)}, ref=lambda i, w: {"y": mvn(i["x"], (1, 2, 3), 1e-2)},
           why="OpenCV adds eps inside the square root")),
    P(Case("log-base10-scale-shift", L("Log", "log_param { base: 10 scale: 2 shift: 5 }"), {"x": wide(*X)},
           ref=lambda i, w: {"y": np.log10(5 + 2 * i["x"].astype(np.float64))},
           why="OpenCV ignores base, scale and shift (computes ln x)")),
    P(Case("swish-beta2", L("Swish", "swish_param { beta: 2 }"), {"x": wide(*X)},
           ref=lambda i, w: {"y": i["x"] * sigmoid(2 * i["x"])},
           why="OpenCV ignores beta (uses 1)")),
    P(Case("ip-transpose", L("InnerProduct", "inner_product_param { num_output: 5 transpose: true }"),
           {"x": (2, 7)}, {"y": [(7, 5), (5,)]},
           ref=lambda i, w: {"y": i["x"].astype(np.float64) @ w["y"][0] + w["y"][1]},
           why="OpenCV ignores transpose (reads the (K, N) blob as (N, K))")),
    P(Case("deconv-dilation2", deconv("num_output: 3 kernel_size: 3 stride: 2 dilation: 2"), {"x": (1, 4, 6, 6)},
           {"y": [(4, 3, 3, 3), (3,)]},
           ref=lambda i, w: {"y": caffe_deconv(i["x"], *w["y"], (2, 2), (0, 0), (2, 2))},
           why="OpenCV ignores a Deconvolution's dilation (output 13x13 instead of 15x15)")),
    P(Case("deconv-dilation2-pad1-groups2", deconv("num_output: 4 kernel_size: 3 stride: 2 pad: 1 dilation: 2 group: 2"),
           {"x": (2, 4, 5, 5)}, {"y": [(4, 2, 3, 3), (4,)]},
           ref=lambda i, w: {"y": caffe_deconv(i["x"], *w["y"], (2, 2), (1, 1), (2, 2), group=2)},
           why="OpenCV ignores a Deconvolution's dilation")),
    P(Case("pool-max-empty-window", pool("pool: MAX kernel_size: 1 stride: 2"), {"x": (1, 2, 6, 6)},
           ref=lambda i, w: {"y": caffe_pool(i["x"], (1, 1), (2, 2), (0, 0), "MAX")[0]},
           why="empty windows (pad 0, stride > kernel): OpenCV outputs 0, Caffe -FLT_MAX")),
    P(Case("pool-ave-empty-window", pool("pool: AVE kernel_size: 2 stride: 3"), {"x": (1, 2, 6, 6)},
           ref=lambda i, w: {"y": caffe_pool(i["x"], (2, 2), (3, 3), (0, 0), "AVE")[0]},
           why="empty windows: Caffe divides 0 by a pool size <= 0 (NaN, -0)")),
    P(Case("pool-max-pad-on-one-axis-clips-both",
           pool("pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0"), {"x": (1, 3, 9, 9)},
           ref=lambda i, w: {"y": caffe_pool(i["x"], (3, 2), (2, 3), (1, 0), "MAX")[0]},
           why="Caffe clips the last window on both axes when any pad is non-zero; OpenCV only on "
               "padded axes (width 4 instead of 3)")),
    P(Case("pool-ave-round_mode-floor", pool("pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR"),
           {"x": (1, 3, 8, 8)}, ref=lambda i, w: {"y": caffe_pool(i["x"], (3, 3), (2, 2), (1, 1), "AVE", ceil=False)[0]},
           why="OpenCV's proto has no round_mode (field 13 is its ceil_mode); it fails")),
    P(Case("interp-shrink_factor", L("Interp", "interp_param { shrink_factor: 2 }"), {"x": (1, 2, 9, 9)},
           ref=lambda i, w: {"y": caffe_interp(i["x"], 0, 0, 5, 5)},
           why="OpenCV ignores shrink_factor (and fails with it alone)")),
    P(Case("interp-shrink-then-zoom", L("Interp", "interp_param { shrink_factor: 4 zoom_factor: 3 }"),
           {"x": (1, 2, 13, 9)}, ref=lambda i, w: {"y": caffe_interp(i["x"], 0, 0, 10, 7)},
           why="OpenCV ignores shrink_factor")),
    P(Case("interp-pad_beg-pad_end", L("Interp", "interp_param { zoom_factor: 2 pad_beg: -1 pad_end: -1 }"),
           {"x": X4}, ref=lambda i, w: {"y": caffe_interp(i["x"], -1, -1, 11, 11)},
           why="OpenCV ignores pad_beg and pad_end")),
    P(Case("interp-pad_end-only", L("Interp", "interp_param { height: 7 width: 9 pad_end: -2 }"),
           {"x": (1, 2, 8, 8)}, ref=lambda i, w: {"y": caffe_interp(i["x"], 0, -2, 7, 9)},
           why="OpenCV ignores pad_beg and pad_end")),
    P(Case("concat-legacy-concat_dim", L("Concat", "concat_param { concat_dim: 3 }", bottoms=("a", "b")),
           {"a": X4, "b": (1, 4, 8, 3)}, ref=lambda i, w: {"y": np.concatenate([i["a"], i["b"]], 3)},
           why="OpenCV ignores concat_dim (concatenates along axis 1)")),
    P(Case("slice-legacy-slice_dim",
           f'layer {{ name: "s" type: "Slice" bottom: "x" {tops(2)} slice_param {{ slice_dim: 2 slice_point: 3 }} }}\n'
           + identities(2), {"x": X4}, outputs=("o0", "o1"),
           ref=lambda i, w: dict(zip(("o0", "o1"), np.split(i["x"], [3], axis=2))),
           why="OpenCV ignores slice_dim (slices axis 1)")),
    P(Case("scale-2-bottoms-bias_term", L("Scale", "scale_param { bias_term: true }", bottoms=("x", "s")),
           {"x": X4, "s": (4,)}, {"y": [(4,)]},
           ref=lambda i, w: {"y": i["x"] * bcast(i["s"], 1, 4) + bcast(w["y"][0], 1, 4)},
           why="OpenCV drops the second bottom and computes x + bias")),
    # OpenCV refuses the file or the blob
    P(Case("prelu-channel_shared-0-axis-blob", L("PReLU", "prelu_param { channel_shared: true }"), {"x": wide(*X)},
           {"y": [np.array(0.3, np.float32)]},
           ref=lambda i, w: {"y": np.maximum(i["x"], 0) + 0.3 * np.minimum(i["x"], 0)},
           why="OpenCV cannot load a 0-axis blob")),
    P(Case("scale-num_axes0-0-axis-blob", L("Scale", "scale_param { num_axes: 0 bias_term: true }"), {"x": X4},
           {"y": [np.array(1.5, np.float32), np.array(-0.25, np.float32)]},
           ref=lambda i, w: {"y": i["x"] * 1.5 - 0.25},
           why="OpenCV cannot load a 0-axis blob")),
    P(Case("scale-axis-neg1", L("Scale", "scale_param { axis: -1 }"), {"x": X4}, {"y": [(8,)]},
           ref=lambda i, w: {"y": i["x"] * bcast(w["y"][0], 3, 4)},
           why="OpenCV fails on a negative Scale axis")),
    P(Case("normalize-channel_shared-0-axis-blob",
           L("Normalize", "norm_param { across_spatial: true channel_shared: true }"), {"x": wide(*X4)},
           {"y": [np.array(0.7, np.float32)]},
           ref=lambda i, w: {"y": i["x"] / np.sqrt((i["x"].astype(np.float64) ** 2).sum(axis=(1, 2, 3), keepdims=True)
                                                   + 1e-10) * 0.7},
           why="OpenCV cannot load a 0-axis blob")),
    P(Case("normalize-across_spatial-per-channel-scale",
           L("Normalize", "norm_param { across_spatial: true channel_shared: false }"), {"x": wide(*X4)},
           {"y": [(4,)]},
           ref=lambda i, w: {"y": i["x"] / np.sqrt((i["x"].astype(np.float64) ** 2).sum(axis=(1, 2, 3), keepdims=True)
                                                   + 1e-10) * bcast(w["y"][0], 1, 4)},
           why="OpenCV fails (it expects one scale per plane)")),
    P(Case("reshape-axis-neg1", L("Reshape", "reshape_param { shape { dim: 1 dim: 1 } axis: -1 }"), {"x": X4},
           ref=lambda i, w: {"y": i["x"].reshape(1, 4, 8, 8, 1, 1)},
           why="OpenCV fails; Caffe's Reshape axis -1 means after the last axis")),
    P(Case("permute-partial-order", L("Permute", "permute_param { order: 0 order: 3 }"), {"x": (1, 4, 5, 6)},
           ref=lambda i, w: {"y": i["x"].transpose(0, 3, 1, 2)},
           why="OpenCV requires every axis in order; SSD appends the missing ones")),
    P(Case("priorbox-img_h-img_w", L("PriorBox", "prior_box_param { min_size: 7 img_h: 50 img_w: 60 variance: 0.1 }",
                                     bottoms=("f", "img")),
           {"f": (1, 4, 3, 4), "img": (1, 3, 30, 40)}, ref=lambda i, w: {"y": priorbox_ref(3, 4, 50, 60, 7)},
           why="OpenCV ignores img_h/img_w (uses the image bottom's size)")),
    P(Case("batchnorm-batch-stats-batch2", L("BatchNorm", "batch_norm_param { use_global_stats: false eps: 0.001 }"),
           {"x": wide(2, 3, 4, 5)}, {"y": bn_blobs(3, 1.0)},
           ref=lambda i, w: {"y": (i["x"] - i["x"].mean(axis=(0, 2, 3), keepdims=True))
                             / np.sqrt(i["x"].astype(np.float64).var(axis=(0, 2, 3), keepdims=True) + 1e-3)},
           why="OpenCV has no batch statistics for batch > 1")),
    P(Case("conv-k3-pad1-on-1x1-map", conv("num_output: 3 kernel_size: 3 pad: 1"), {"x": (2, 4, 1, 1)},
           {"y": [(3, 4, 3, 3), (3,)]}, ref=lambda i, w: _conv_1x1(i, w),
           why="OpenCV before 4.14 treats it as InnerProduct and fails; only the centre tap sees data")),
    # layer types OpenCV's Caffe importer cannot create
    P(Case("threshold", L("Threshold", "threshold_param { threshold: 0.25 }"), {"x": X},
           ref=lambda i, w: {"y": (i["x"] > np.float32(0.25)).astype(np.float32)}, why="no Threshold layer")),
    P(Case("clip", L("Clip", "clip_param { min: -0.3 max: 0.6 }"), {"x": X},
           ref=lambda i, w: {"y": np.clip(i["x"], np.float32(-0.3), np.float32(0.6))}, why="no Clip layer")),
    P(Case("bias-learned-channel", L("Bias"), {"x": X4}, {"y": [(4,)]},
           ref=lambda i, w: {"y": i["x"] + bcast(w["y"][0], 1, 4)}, why="no Bias layer")),
    P(Case("bias-learned-axis2-num_axes2", L("Bias", "bias_param { axis: 2 num_axes: 2 }"), {"x": X4}, {"y": [(8, 8)]},
           ref=lambda i, w: {"y": i["x"] + bcast(w["y"][0], 2, 4)}, why="no Bias layer")),
    P(Case("bias-2-bottoms", L("Bias", bottoms=("x", "b")), {"x": X4, "b": (4, 8)},
           ref=lambda i, w: {"y": i["x"] + bcast(i["b"], 1, 4)}, why="no Bias layer")),
    P(Case("argmax-axis1-top2-ties", L("ArgMax", "argmax_param { axis: 1 top_k: 2 }"), {"x": R((2, 5, 3, 3), 0, 3, True)},
           ref=lambda i, w: {"y": caffe_argmax(i["x"], 2, False, 1)}, why="no ArgMax layer")),
    P(Case("argmax-axis1-out_max_val", L("ArgMax", "argmax_param { axis: 1 out_max_val: true }"), {"x": (2, 5, 3, 3)},
           ref=lambda i, w: {"y": caffe_argmax(i["x"], 1, True, 1)}, why="no ArgMax layer")),
    P(Case("reduction-sum-axis2", L("Reduction", "reduction_param { operation: SUM axis: 2 }"), {"x": X4},
           ref=lambda i, w: {"y": i["x"].astype(np.float64).reshape(1, 4, -1).sum(-1)}, why="no Reduction layer")),
    P(Case("reduction-asum-coeff", L("Reduction", "reduction_param { operation: ASUM axis: 1 coeff: -0.5 }"), {"x": X4},
           ref=lambda i, w: {"y": -0.5 * np.abs(i["x"].astype(np.float64)).reshape(1, -1).sum(-1)},
           why="no Reduction layer")),
    P(Case("reduction-sumsq-default-axis", L("Reduction", "reduction_param { operation: SUMSQ }"), {"x": X4},
           ref=lambda i, w: {"y": np.array((i["x"].astype(np.float64) ** 2).sum())}, why="no Reduction layer")),
    P(Case("reduction-mean-axis-neg1", L("Reduction", "reduction_param { operation: MEAN axis: -1 }"), {"x": X4},
           ref=lambda i, w: {"y": i["x"].astype(np.float64).mean(-1)}, why="no Reduction layer")),
    P(Case("tile-axis1", L("Tile", "tile_param { axis: 1 tiles: 3 }"), {"x": (2, 3, 4, 5)},
           ref=lambda i, w: {"y": np.tile(i["x"], (1, 3, 1, 1))}, why="OpenCV's Tile is ONNX's (needs repeats)")),
    P(Case("tile-axis2", L("Tile", "tile_param { axis: 2 tiles: 2 }"), {"x": (2, 3, 4, 5)},
           ref=lambda i, w: {"y": np.tile(i["x"], (1, 1, 2, 1))}, why="OpenCV's Tile is ONNX's (needs repeats)")),
]


def _write(case: Case, tmp_path: Path):
    text, inputs, weights = case.build()
    prototxt = tmp_path / f"{case.id}.prototxt"
    caffemodel = tmp_path / f"{case.id}.caffemodel"
    prototxt.write_text(text)
    if not weights:     # no learnable layer: no caffemodel (protoseg refuses one without layers)
        return text, inputs, weights, prototxt, None
    h.write_caffemodel(caffemodel, [(name, "", arrays) for name, arrays in weights.items()], name=case.id)
    return text, inputs, weights, prototxt, caffemodel


# Cases OpenCV runs but Caffe refuses (tests/test_caffe_layers.py checks the refusal against the
# reference Caffe): protoseg refuses them as Caffe does.
CAFFE_REFUSES = {
    # a `shape {}` blob must match the target exactly (Blob::ShapeEquals); only legacy
    # num/channels/height/width blobs are matched right-aligned. OpenCV takes any equal count.
    "ip-legacy-4d-blobs": "blob 0: expected shape (5, 7), got (1, 1, 5, 7)",
}


@pytest.mark.parametrize("case", CV_CASES)
def test_layer_matches_opencv(case: Case, tmp_path):
    text, inputs, _, prototxt, caffemodel = _write(case, tmp_path)
    try:
        want = h.run_opencv(prototxt, caffemodel, inputs, case.cv_names)
    except cv2.error as e:
        if case.opencv_may_fail:
            pytest.skip(f"OpenCV {cv2.__version__} fails: {case.opencv_may_fail}")
        raise AssertionError(f"OpenCV {cv2.__version__} cannot run this case: {e}") from None
    if case.id in CAFFE_REFUSES:
        with pytest.raises(WeightsError, match=re.escape(CAFFE_REFUSES[case.id])):
            h.run_protoseg(text, str(caffemodel), inputs, case.blobs)
        return
    got = h.run_protoseg(text, caffemodel and str(caffemodel), inputs, case.blobs)
    for blob, cv_name in zip(case.blobs, case.cv_names):
        h.assert_close(got[blob], want[cv_name], rel=REL, what=f"{case.id}: {blob}")


@pytest.mark.parametrize("case", HAND_CASES)
def test_layer_matches_caffe_by_hand(case: Case, tmp_path):
    text, inputs, weights, _, caffemodel = _write(case, tmp_path)
    want = case.ref(inputs, weights)
    got = h.run_protoseg(text, caffemodel and str(caffemodel), inputs, case.blobs)
    for blob in case.blobs:
        w = np.asarray(want[blob])
        if not np.isfinite(w).all():           # Caffe's empty pooling windows: NaN / -FLT_MAX, exactly
            assert got[blob].shape == w.shape, f"{case.id}: {blob}: shape {got[blob].shape} != {w.shape}"
            np.testing.assert_array_equal(got[blob], w, err_msg=f"{case.id}: {blob}")
            continue
        h.assert_close(got[blob], w, rel=REL, what=f"{case.id}: {blob} (by hand: {case.why})")


# The numpy references of the hand cases, checked against OpenCV on configurations where OpenCV is
# an oracle (so a slip in a reference cannot hide behind agreeing with protoseg).
REFERENCE_CHECKS = [
    P(Case("ref-caffe_pool-ave-asym-pad", pool("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 1"),
           {"x": (1, 3, 9, 9)}, ref=lambda i, w: {"y": caffe_pool(i["x"], (3, 2), (2, 3), (1, 1), "AVE")[0]})),
    P(Case("ref-caffe_pool-max-ceil", pool("pool: MAX kernel_size: 3 stride: 2"), {"x": (1, 3, 8, 8)},
           ref=lambda i, w: {"y": caffe_pool(i["x"], (3, 3), (2, 2), (0, 0), "MAX")[0]})),
    P(Case("ref-caffe_interp-height-width", L("Interp", "interp_param { height: 11 width: 5 }"), {"x": X4},
           ref=lambda i, w: {"y": caffe_interp(i["x"], 0, 0, 11, 5)})),
    P(Case("ref-caffe_deconv-groups-pad", deconv("num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2"),
           {"x": (1, 4, 5, 5)}, {"y": [(4, 3, 3, 3), (6,)]},
           ref=lambda i, w: {"y": caffe_deconv(i["x"], *w["y"], (2, 2), (1, 1), (1, 1), group=2)})),
    P(Case("ref-caffe_lrn-across-k1", L("LRN", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 }"), {"x": wide(*X4)},
           ref=lambda i, w: {"y": caffe_lrn(i["x"], 3, 0.5, 0.75, 1.0, "ACROSS_CHANNELS")})),
    P(Case("ref-mvn-default-eps", L("MVN"), {"x": wide(*X4)}, ref=lambda i, w: {"y": mvn(i["x"], (2, 3), 1e-9)})),
    P(Case("ref-priorbox", L("PriorBox", "prior_box_param { min_size: 7 variance: 0.1 }", bottoms=("f", "img")),
           {"f": (1, 4, 3, 4), "img": (1, 3, 30, 40)}, ref=lambda i, w: {"y": priorbox_ref(3, 4, 30, 40, 7)})),
]


@pytest.mark.parametrize("case", REFERENCE_CHECKS)
def test_numpy_reference_matches_opencv(case: Case, tmp_path):
    _, inputs, weights, prototxt, caffemodel = _write(case, tmp_path)
    want = h.run_opencv(prototxt, caffemodel, inputs, case.cv_names)
    ours = case.ref(inputs, weights)
    for blob, cv_name in zip(case.blobs, case.cv_names):
        h.assert_close(ours[blob], want[cv_name], rel=REL, what=f"{case.id}: {blob}")


def test_empty_window_references_are_what_caffe_outputs():
    """The two empty-window cases above really exercise empty windows (-FLT_MAX and NaN)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (1, 1, 6, 6)).astype(np.float32)
    mx, _ = caffe_pool(x, (1, 1), (2, 2), (0, 0), "MAX")
    av, _ = caffe_pool(x, (2, 2), (3, 3), (0, 0), "AVE")
    assert mx.shape == (1, 1, 4, 4) and (mx[0, 0, 3] == -FLT_MAX).all() and (mx[0, 0, :, 3] == -FLT_MAX).all()
    assert av.shape == (1, 1, 3, 3) and np.isnan(av[0, 0, 2, 2])


# ---------------------------------------------------------------------------------------------
# FCN end to end (full VGG-16 size, random weights) and the port round trip

FCN_INPUT = (1, 3, 64, 64)
FCN8S = ROOT / "prototxts" / "fcn8s.prototxt"
FCN32S = ROOT / "prototxts" / "fcn32s.prototxt"
# blobs compared besides `score` (OpenCV exposes them by layer name: every one here is the top
# of a layer of the same name, and none is rewritten in place afterwards)
FCN8S_BLOBS = ["pool1", "pool3", "pool4", "pool5", "score_fr", "upscore2", "score_pool4c", "fuse_pool4",
               "upscore_pool4", "score_pool3c", "fuse_pool3", "upscore8", "score"]
FCN32S_BLOBS = ["pool2", "pool5", "score_fr", "upscore", "score"]


def _fcn_input() -> np.ndarray:
    return np.random.default_rng(2024).uniform(-1, 1, FCN_INPUT).astype(np.float32)


@pytest.fixture(scope="session")
def fcn8s_reference(tmp_path_factory):
    """(caffemodel path, input, OpenCV's outputs) for FCN-8s, written and run once per session."""
    path = tmp_path_factory.mktemp("fcn8s") / "fcn8s.caffemodel"
    h.write_fcn_caffemodel(path, "fcn8s", seed=8)
    x = _fcn_input()
    want = h.run_opencv(FCN8S, path, {"data": x}, FCN8S_BLOBS)
    yield path, x, want
    path.unlink(missing_ok=True)


def _check_fcn(got: dict, want: dict, blobs):
    assert want["score"].shape == (1, 21) + FCN_INPUT[2:], want["score"].shape   # Crop to the input size
    for blob in blobs:
        h.assert_close(got[blob], want[blob], rel=REL, what=blob)


@pytest.mark.slow
def test_fcn8s_matches_opencv(fcn8s_reference):
    caffemodel, x, want = fcn8s_reference
    got = h.run_protoseg(FCN8S, str(caffemodel), {"data": x}, FCN8S_BLOBS, input_shapes={"data": FCN_INPUT})
    _check_fcn(got, want, FCN8S_BLOBS)


@pytest.mark.slow
def test_fcn32s_matches_opencv(tmp_path):
    caffemodel = tmp_path / "fcn32s.caffemodel"
    try:
        h.write_fcn_caffemodel(caffemodel, "fcn32s", seed=32)
        x = _fcn_input()
        want = h.run_opencv(FCN32S, caffemodel, {"data": x}, FCN32S_BLOBS)
        got = h.run_protoseg(FCN32S, str(caffemodel), {"data": x}, FCN32S_BLOBS, input_shapes={"data": FCN_INPUT})
    finally:
        caffemodel.unlink(missing_ok=True)
    _check_fcn(got, want, FCN32S_BLOBS)


@pytest.mark.slow
def test_port_fcn8s_safetensors_round_trip_matches_opencv(fcn8s_reference, tmp_path, capsys):
    from safetensors.torch import load_file

    from protoseg.cli import main

    caffemodel, x, want = fcn8s_reference
    out = tmp_path / "fcn8s.safetensors"
    try:
        assert main(["port", str(caffemodel), "--prototxt", str(FCN8S), "-o", str(out)]) == 0
        state = load_file(str(out))
    finally:
        out.unlink(missing_ok=True)
    heads = h.FCN_HEADS["fcn8s"]
    assert len(state) == 2 * (len(h.VGG_TRUNK) + len(heads["conv"])) + len(heads["deconv"])
    model = compile_net(str(FCN8S), inputs={"data": FCN_INPUT})
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    del state
    got = h.forward(model, {"data": x}, ["score"])
    h.assert_close(got["score"], want["score"], rel=REL, what="score (ported safetensors)")
