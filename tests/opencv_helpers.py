"""Shared code for tests/test_opencv.py: caffemodels written at wire level, OpenCV's Caffe importer
(cv2.dnn.readNetFromCaffe) as an independent Caffe implementation, and the comparison.

The caffemodel writer is a tiny protobuf wire writer (caffe-semantics.md §1.1-1.5): NetParameter
field 100 `layer` = LayerParameter {1 name, 2 type, 7 blobs}; BlobProto {7 shape = BlobShape
{1 dim, packed int64}, 5 data, packed float32}. Packed float data is written straight from numpy
(`tobytes()` / the array's buffer), so a VGG-16 sized model (~540 MB) takes about a second -- going
through protobuf messages and `.tolist()` would take minutes. Layers are streamed to the file one
at a time; nothing holds the whole file in memory.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

# the caffemodels are written by protoseg.caffemodel.write_caffemodel (checked against protobuf's
# own parser in tests/test_caffemodel.py)
from protoseg.caffemodel import write_caffemodel  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------
# OpenCV


def opencv():
    """cv2 with a Caffe importer, or skip the calling test."""
    import pytest

    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):
        pytest.skip("this OpenCV has no dnn Caffe importer (OpenCV 5 removed it)")
    return cv2


def run_opencv(prototxt, caffemodel, inputs, outputs: Sequence[str]) -> dict:
    """Run OpenCV dnn's Caffe importer: `inputs` {blob: array} (set by name), forward `outputs`.
    Returns {blob: float32 array}. OpenCV takes the input size from the arrays set here."""
    cv2 = opencv()
    net = cv2.dnn.readNetFromCaffe(os.fspath(prototxt), os.fspath(caffemodel) if caffemodel else "")
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    for blob, array in inputs.items():
        net.setInput(np.ascontiguousarray(array, np.float32), blob)
    got = net.forward(list(outputs))
    return {name: np.asarray(a, np.float32).copy() for name, a in zip(outputs, got)}


def run_protoseg(prototxt, weights, inputs, outputs: Sequence[str], *, input_shapes=None) -> dict:
    """Compile with protoseg (`prototxt`: a Path, or the text as a str; `weights`: None, a
    caffemodel path or {layer: [arrays]}) and run once on `inputs` {blob: array}. Returns
    {blob: array}."""
    from protoseg import compile_net

    source = {"text": prototxt} if isinstance(prototxt, str) else {"prototxt": prototxt}
    model = compile_net(**source, weights=weights, inputs=input_shapes, outputs=list(outputs))
    return forward(model, inputs, outputs)


def forward(model, inputs, outputs: Sequence[str]) -> dict:
    """Run a compiled module on {blob: array} (passed positionally in the module's input order)."""
    import torch

    order = list(model.protoseg_inputs)
    with torch.no_grad():
        y = model(*[torch.from_numpy(np.ascontiguousarray(inputs[k], np.float32)) for k in order])
    if not isinstance(y, dict):
        assert len(outputs) == 1, outputs
        y = {outputs[0]: y}
    return {k: v.detach().numpy() for k, v in y.items()}


# ---------------------------------------------------------------------------------------------
# comparison


def assert_close(got, want, *, rel: float = 1e-4, what: str = "") -> float:
    """max|got - want| <= rel * max|want| (shapes equal, everything finite). Returns the relative error."""
    got = np.asarray(got)
    want = np.asarray(want)
    label = f"{what}: " if what else ""
    assert got.shape == want.shape, f"{label}shape {got.shape} != reference {want.shape}"
    assert np.isfinite(want).all(), f"{label}the reference has non-finite values"
    assert np.isfinite(got).all(), f"{label}non-finite values where the reference is finite"
    ref = float(np.abs(want).max()) if want.size else 0.0
    diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if want.size else 0.0
    assert ref > 0, f"{label}the reference is all zero; the comparison would prove nothing"
    assert diff <= rel * ref, (f"{label}max|diff| = {diff:.3e} > {rel:g} * max|ref| = {rel * ref:.3e} "
                               f"(max|ref| = {ref:.3e}, relative {diff / ref:.3e})")
    return diff / ref


# ---------------------------------------------------------------------------------------------
# FCN (VGG-16) weights

# (layer, C_out, C_in, kernel) of the VGG-16 trunk shared by FCN-32s/16s/8s (caffe-semantics §8)
VGG_TRUNK = [
    ("conv1_1", 64, 3, 3), ("conv1_2", 64, 64, 3),
    ("conv2_1", 128, 64, 3), ("conv2_2", 128, 128, 3),
    ("conv3_1", 256, 128, 3), ("conv3_2", 256, 256, 3), ("conv3_3", 256, 256, 3),
    ("conv4_1", 512, 256, 3), ("conv4_2", 512, 512, 3), ("conv4_3", 512, 512, 3),
    ("conv5_1", 512, 512, 3), ("conv5_2", 512, 512, 3), ("conv5_3", 512, 512, 3),
    ("fc6", 4096, 512, 7), ("fc7", 4096, 4096, 1), ("score_fr", 21, 4096, 1),
]
# convolutions (with bias) and deconvolutions (no bias: (C_in, C_out, k, k)) of each head
FCN_HEADS = {
    "fcn32s": {"conv": [], "deconv": [("upscore", 21, 64, 32)]},
    "fcn8s": {"conv": [("score_pool4", 21, 512, 1), ("score_pool3", 21, 256, 1)],
              "deconv": [("upscore2", 21, 4, 2), ("upscore_pool4", 21, 4, 2), ("upscore8", 21, 16, 8)]},
}


def _uniform(rng, shape, std) -> np.ndarray:
    """Zero-mean uniform values with standard deviation `std` (uniform float32 draws are about
    twice as fast as normal ones, which matters for fc6's 103 M weights)."""
    a = rng.random(shape, dtype=np.float32)
    a -= np.float32(0.5)
    a *= np.float32(std * math.sqrt(12.0))
    return a


def fcn_layers(variant: str, seed: int = 0):
    """Yield (name, type, blobs) for an FCN caffemodel with random weights (fixed seed, zero-mean
    uniform): He-style std = sqrt(2 / fan_in) for the ReLU convolutions, sqrt(1 / fan_in) for the linear score
    layers, small random biases; deconvolutions random with std = stride / sqrt(C_in * k * k) so
    the upsampled scores keep their scale. Each layer draws from its own seeded generator, so
    the trunk is the same for every variant."""
    head = FCN_HEADS[variant]
    for i, (name, cout, cin, k) in enumerate(VGG_TRUNK + head["conv"]):
        rng = np.random.default_rng([seed, i])
        fan_in = cin * k * k
        relu = not name.startswith("score")
        w = _uniform(rng, (cout, cin, k, k), math.sqrt((2.0 if relu else 1.0) / fan_in))
        b = _uniform(rng, (cout,), 0.05)
        yield name, "Convolution", [w, b]
        del w
    for j, (name, c, k, s) in enumerate(head["deconv"]):
        rng = np.random.default_rng([seed, 100 + j])
        yield name, "Deconvolution", [_uniform(rng, (c, c, k, k), s / math.sqrt(c * k * k))]


def write_fcn_caffemodel(path, variant: str, seed: int = 0) -> int:
    return write_caffemodel(path, fcn_layers(variant, seed), name=variant)
