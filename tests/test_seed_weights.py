"""Every seed net end to end with weights: random blobs written as a caffemodel (tests/
seed_weights.py), `protoseg port` loading them strictly, the ported safetensors loaded into the
compiled module, and its outputs against OpenCV's Caffe importer (<= 1e-4 relative, as
tests/test_opencv.py) on the same caffemodel and input, at reduced input sizes (the canonical
sizes are in the golden shape tests).

FCN-8s and FCN-32s are compared in tests/test_opencv.py (full size, `slow`); FCN-16s here.
Where OpenCV does not compute what Caffe computes (docs/opencv.md), that part is checked by hand:
- DeepLab v2 MSc: Interp `shrink_factor` (OpenCV ignores it) in `data_res05` (shrink 2),
  `data_res075` (shrink 4, zoom 3) and `fc1_voc12_res075_interp` (shrink 3, zoom 4) is checked
  against interp_layer.cpp's loop in numpy (tests/caffe_reference.py caffe_interp); OpenCV runs
  the rest of the net with those three blobs given as inputs (protoseg's values, so checked).
- FPN: the fixed up-sampling deconvolutions are not in protoseg's caffemodel (their constant
  fillers give them, as in Caffe); OpenCV, which does not apply fillers, gets them written out.
  OpenCV's Interp takes one bottom: the final `score` (Interp to the size of its second bottom,
  `data`) is given to it as `height`/`width` of the input's size, which interp_layer.cpp
  computes the same way (the output size is all a second bottom sets).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import opencv_helpers as h
from caffe_reference import caffe_interp
from protoseg import compile_net
from protoseg.cli import main
from seed_weights import write_seed_caffemodel

ROOT = Path(__file__).resolve().parents[1]
NETS = ROOT / "prototxts"
REL = 1e-4

# net -> (input size, blobs compared: every one is the top of a layer of that name that no
# later layer rewrites in place, so OpenCV exposes it by that name)
CASES = {
    "fcn16s": (64, ["pool4", "score_fr", "upscore2", "fuse_pool4", "upscore16", "score"]),
    "deeplab_v1_largefov": (65, ["pool5", "pool5a", "fc8_voc12", "fc8_interp"]),
    "deeplab_v2_aspp_vgg16": (65, ["pool5", "fc8_voc12_1", "fc8_voc12_4", "fc8_voc12", "fc8_interp"]),
    "deeplab_v2_resnet101_msc": (33, ["fc1_voc12", "fc1_voc12_res05", "fc1_voc12_res075",
                                      "fc1_voc12_res05_interp", "fc_fusion", "fc1_interp"]),
    "fpn_resnet50": (99, ["p5", "p4_sum", "p2", "p3_x2_crop", "p5_x8_crop", "fpn_sum", "score_p2", "score"]),
}
SLOW = {"fcn16s", "deeplab_v2_resnet101_msc"}      # 540 MB and 510 MB caffemodels
# DeepLab v2 MSc: the Interp layers with shrink_factor (OpenCV ignores it), as hand-derived sizes
# at 33: (33 - 1)/2 + 1 = 17; (33 - 1)/4 + 1 = 9, then 9 + 8*2 = 25; the 0.75 tower's score is 4
# (25 -> conv1 13 -> pool1 7 -> res3 4), shrunk (4 - 1)/3 + 1 = 2 and zoomed 2 + 1*3 = 5: the
# full-scale score's size (33 -> 17 -> 9 -> 5)
SHRINK = {"data_res05": ("data", 17), "data_res075": ("data", 25),
          "fc1_voc12_res075_interp": ("fc1_voc12_res075", 5)}


def _ported(tmp_path, net, size):
    """Write the caffemodel, port it strictly with the CLI, load the safetensors into the module
    compiled at `size` (strict load_state_dict). Returns (module, caffemodel path)."""
    from safetensors.torch import load_file
    prototxt = NETS / f"{net}.prototxt"
    caffemodel = tmp_path / f"{net}.caffemodel"
    write_seed_caffemodel(caffemodel, prototxt, size, seed=len(net))
    out = tmp_path / f"{net}.safetensors"
    assert main(["port", str(caffemodel), "--prototxt", str(prototxt), "-o", str(out), "-q"]) == 0
    model = compile_net(prototxt, inputs={"data": (1, 3, size, size)}, outputs=CASES[net][1] + list(
        SHRINK if net == "deeplab_v2_resnet101_msc" else []))
    result = model.load_state_dict(load_file(str(out)), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    out.unlink()
    return model, caffemodel


def _opencv_prototxt(net, tmp_path) -> Path:
    """The prototxt OpenCV runs: MSc's shrink Interps replaced by Input layers of their size;
    FPN's two-bottom Interp as height/width."""
    text = (NETS / f"{net}.prototxt").read_text()
    if net == "fpn_resnet50":
        size = CASES[net][0]
        old = 'bottom: "score_p2"  bottom: "data"  top: "score" }'
        assert old in text
        text = text.replace(old, f'bottom: "score_p2"  top: "score" interp_param {{ height: {size} width: {size} }} }}')
    if net == "deeplab_v2_resnet101_msc":
        for name, (_, side) in SHRINK.items():
            block = re.compile(r'layer \{\n  name: "' + name + r'"  type: "Interp".*?\n\}\n', re.S)
            channels = 3 if name.startswith("data") else 21
            text, n = block.subn(f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param '
                                 f'{{ shape {{ dim: 1 dim: {channels} dim: {side} dim: {side} }} }} }}\n', text)
            assert n == 1, name
    path = tmp_path / f"{net}_opencv.prototxt"
    path.write_text(text)
    return path


@pytest.mark.parametrize("net", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                 for n in sorted(CASES)])
def test_ported_weights_match_opencv(net, tmp_path):
    size, blobs = CASES[net]
    model, caffemodel = _ported(tmp_path, net, size)
    x = np.random.default_rng(size).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    got = h.forward(model, {"data": x}, blobs + list(SHRINK if net == "deeplab_v2_resnet101_msc" else []))
    del model
    inputs = {"data": x}
    if net == "deeplab_v2_resnet101_msc":
        for name, (bottom, side) in SHRINK.items():
            src = x if bottom == "data" else got[bottom]
            assert got[name].shape[2:] == (side, side), name
            h.assert_close(got[name], caffe_interp(src, 0, 0, side, side), rel=REL, what=f"{name} (numpy)")
            inputs[name] = got[name]
    if net == "fpn_resnet50":          # OpenCV gets the fixed deconvolution weights in its file
        write_seed_caffemodel(caffemodel, NETS / f"{net}.prototxt", size, seed=len(net), fillers=True)
    want = h.run_opencv(_opencv_prototxt(net, tmp_path), caffemodel, inputs, blobs)
    caffemodel.unlink()
    assert want[blobs[-1]].shape == (1, 21, size, size)
    for blob in blobs:
        h.assert_close(got[blob], want[blob], rel=REL, what=blob)
