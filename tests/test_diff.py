"""`protoseg diff`: the compiled module against OpenCV's Caffe importer, blob by blob.

- FCN-8s with random weights agrees at every one of its 46 computed blobs;
- a difference planted in the caffemodel the reference reads stops the diff at that layer, with
  every blob before it agreeing;
- layers where OpenCV computes something other than Caffe (docs/opencv.md) stop it there, and
  the report says that OpenCV is known to differ;
- JSON output, --image, and the errors: no OpenCV, a net OpenCV cannot load, a bad image.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import opencv_helpers as h
from protoseg.cli import main

h.opencv()          # skip this module where OpenCV has no Caffe importer

from protoseg.diff import diff_net  # noqa: E402
from protoseg.reference import OpenCV  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FCN8S = ROOT / "prototxts" / "fcn8s.prototxt"

# conv1 -> relu1 (in place) -> conv2 -> relu2 (in place) -> pool -> conv3
SMALL = """name: "small"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool" type: "Pooling" bottom: "conv2" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv3" type: "Convolution" bottom: "pool" top: "conv3" convolution_param { num_output: 2 kernel_size: 1 } }
"""


def small_layers(rng):
    def conv(cout, cin, k):
        return [rng.uniform(-0.5, 0.5, (cout, cin, k, k)).astype(np.float32),
                rng.uniform(-0.1, 0.1, (cout,)).astype(np.float32)]
    return [("conv1", "Convolution", conv(4, 3, 3)), ("conv2", "Convolution", conv(4, 4, 3)),
            ("conv3", "Convolution", conv(2, 4, 1))]


@pytest.fixture
def small(tmp_path):
    (tmp_path / "small.prototxt").write_text(SMALL)
    h.write_caffemodel(tmp_path / "small.caffemodel", small_layers(np.random.default_rng(3)))
    return tmp_path / "small.prototxt", tmp_path / "small.caffemodel"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------------
# agreement

@pytest.mark.slow
def test_fcn8s_agrees_at_every_blob(tmp_path, capsys):
    caffemodel = tmp_path / "fcn8s.caffemodel"
    h.write_fcn_caffemodel(caffemodel, "fcn8s", seed=8)
    code, out, err = run(capsys, "diff", FCN8S, "--weights", caffemodel, "--input", "data=1,3,64,64",
                         "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    # 47 layers less the Input, one top each: 18 convolutions and 15 ReLUs (each compared
    # before and after the ReLU rewrites it), 5 poolings, 3 deconvolutions, 3 crops, 2 eltwise
    assert len(d["blobs"]) == 46
    assert {r["status"] for r in d["blobs"]} == {"ok"}
    assert d["ok"] and d["first_difference"] is None
    assert d["blobs"][-1]["blob"] == "score" and d["blobs"][-1]["shape"] == [1, 21, 64, 64]
    assert d["blobs"][0]["layer"] == "conv1_1" and d["blobs"][1]["layer"] == "relu1_1"
    assert max(r["rel"] for r in d["blobs"]) < 1e-4


def test_small_net_agrees_in_the_table(small, capsys):
    prototxt, caffemodel = small
    code, out, _ = run(capsys, "diff", prototxt, "--weights", caffemodel)
    assert code == 0
    assert out.startswith(f"reference: OpenCV {h.opencv().__version__} (cv2.dnn.readNetFromCaffe)\n"
                          "input data 1x3x8x8: random, uniform in [-1, 1), seed 0\n")
    assert [l.split()[0] for l in out.splitlines()[5:11]] == ["conv1", "relu1", "conv2", "relu2",
                                                             "pool", "conv3"]
    assert "\nall 6 compared blobs agree (rtol 0.0001); the largest relative difference is" in out


SEVERAL_TOPS_V1 = """name: "tops"
input: "data"
input_dim: 1 input_dim: 4 input_dim: 6 input_dim: 6
layers { name: "sp" type: SPLIT bottom: "data" top: "a" top: "b" }
layers { name: "sl" type: SLICE bottom: "a" top: "c" top: "d" slice_param { slice_point: 1 } }
layers { name: "drop" type: DROPOUT bottom: "d" top: "d" }
layers { name: "e" type: ELTWISE bottom: "c" bottom: "c" top: "e" eltwise_param { operation: MAX } }
layers { name: "p" type: POWER bottom: "d" top: "pd" power_param { scale: 2 } }
layers { name: "cat" type: CONCAT bottom: "e" bottom: "pd" top: "f" }
"""


def test_layers_with_several_tops_in_a_v1_net(tmp_path):
    (tmp_path / "tops.prototxt").write_text(SEVERAL_TOPS_V1)
    # no learnable layer: a caffemodel with a layer the net lacks, and strict=False
    h.write_caffemodel(tmp_path / "w.caffemodel", [("other", "Convolution", [np.ones((1, 1, 1, 1), np.float32)])])
    d = diff_net(tmp_path / "tops.prototxt", tmp_path / "w.caffemodel", strict=False)
    assert d.ok
    # OpenCV keeps only the tops a later layer reads: not the Split's unread 'b'; the Slice's both
    assert [(r.layer, r.blob, r.status) for r in d.rows] == [
        ("sp", "a", "ok"), ("sp", "b", "missing"), ("sl", "c", "ok"), ("sl", "d", "ok"),
        ("drop", "d", "ok"), ("e", "e", "ok"), ("p", "pd", "ok"), ("cat", "f", "ok")]
    assert d.rows[-1].shape == (1, 4, 6, 6)


# ---------------------------------------------------------------------------------------------
# a planted difference


class EditedWeights(OpenCV):
    """OpenCV reading another caffemodel than the module: a difference planted on one side."""

    def __init__(self, caffemodel):
        super().__init__()
        self.caffemodel = caffemodel

    def run(self, prototxt, weights, net, inputs):
        return super().run(prototxt, self.caffemodel, net, inputs)


def test_planted_weight_stops_at_its_layer(small, tmp_path):
    prototxt, caffemodel = small
    layers = small_layers(np.random.default_rng(3))
    layers[1][2][0][2, 1, 0, 2] += 0.25         # one weight of conv2
    edited = tmp_path / "edited.caffemodel"
    h.write_caffemodel(edited, layers)
    d = diff_net(prototxt, caffemodel, reference=EditedWeights(edited))
    assert [(r.layer, r.status) for r in d.rows] == [("conv1", "ok"), ("relu1", "ok"), ("conv2", "over")]
    assert (d.first.layer, d.first.type, d.first.blob) == ("conv2", "Convolution", "conv2")
    assert d.layer.span.line == 5
    assert d.deviation is None
    assert d.first.max_abs > 1e-4 * d.first.max_ref


def test_planted_weight_in_the_report(small, tmp_path, capsys, monkeypatch):
    prototxt, caffemodel = small
    layers = small_layers(np.random.default_rng(3))
    layers[2][2][1][1] += 1.0                   # conv3's bias of channel 1
    edited = tmp_path / "edited.caffemodel"
    h.write_caffemodel(edited, layers)
    monkeypatch.setattr("protoseg.diff.OpenCV", lambda: EditedWeights(edited))
    code, out, _ = run(capsys, "diff", prototxt, "--weights", caffemodel)
    assert code == 1
    lines = out.splitlines()
    assert lines[-5] == "" and lines[-4] == (f"{prototxt}:8: first difference: blob 'conv3' 1x2x4x4 "
                                             f"of layer 'conv3' (Convolution)")
    assert lines[-3].startswith("  max|diff| 1 = ")       # the bias moved every value by 1
    assert lines[-2] == "  parameters: convolution_param { num_output: 2 kernel_size: 1 }"
    assert lines[-1] == "  bottoms: pool (every blob before it agrees)"


def test_tolerance_option(small, tmp_path, capsys, monkeypatch):
    prototxt, caffemodel = small
    layers = small_layers(np.random.default_rng(3))
    layers[2][2][1][1] += 1e-3
    edited = tmp_path / "edited.caffemodel"
    h.write_caffemodel(edited, layers)
    monkeypatch.setattr("protoseg.diff.OpenCV", lambda: EditedWeights(edited))
    assert run(capsys, "diff", prototxt, "--weights", caffemodel)[0] == 1
    assert run(capsys, "diff", prototxt, "--weights", caffemodel, "--atol", "2e-3")[0] == 0


# ---------------------------------------------------------------------------------------------
# where OpenCV is known to differ from Caffe (docs/opencv.md)

def one_layer(layer: str, shape=(1, 4, 6, 6)) -> str:
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'name: "one"\nlayer {{ name: "input" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
            f'layer {{ name: "conv" type: "Convolution" bottom: "data" top: "x" '
            f'convolution_param {{ num_output: 4 kernel_size: 1 }} }}\n{layer}\n')


DEVIATIONS = {
    "lrn-k2": ('layer { name: "y" type: "LRN" bottom: "x" top: "y" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }',
               "over", "OpenCV ignores LRN's k (2) and uses 1"),
    "log-base10": ('layer { name: "y" type: "Log" bottom: "x" top: "y" log_param { base: 10 scale: 0.5 shift: 2 } }',
                   "over", "OpenCV ignores Log's base, scale and shift and computes ln(x)"),
    "swish-beta2": ('layer { name: "y" type: "Swish" bottom: "x" top: "y" swish_param { beta: 2 } }',
                    "over", "OpenCV ignores Swish's beta and uses 1"),
    "deconv-dilation2": ('layer { name: "y" type: "Deconvolution" bottom: "x" top: "y" '
                         'convolution_param { num_output: 2 kernel_size: 3 stride: 2 dilation: 2 } }',
                         "shape", "OpenCV ignores a deconvolution's dilation"),
}


def deviation_files(tmp_path, layer):
    (tmp_path / "one.prototxt").write_text(one_layer(layer))
    rng = np.random.default_rng(5)
    blobs = [("conv", "Convolution", [rng.uniform(-1, 1, (4, 4, 1, 1)).astype(np.float32),
                                      np.zeros(4, np.float32)])]
    if "Deconvolution" in layer:
        blobs.append(("y", "Deconvolution", [rng.uniform(-1, 1, (4, 2, 3, 3)).astype(np.float32),
                                             np.zeros(2, np.float32)]))
    h.write_caffemodel(tmp_path / "one.caffemodel", blobs)
    return tmp_path / "one.prototxt", tmp_path / "one.caffemodel"


@pytest.mark.parametrize("case", sorted(DEVIATIONS))
def test_stops_at_a_layer_where_opencv_differs_and_says_so(case, tmp_path):
    layer, status, why = DEVIATIONS[case]
    d = diff_net(*deviation_files(tmp_path, layer))
    assert [(r.layer, r.status) for r in d.rows] == [("conv", "ok"), ("y", status)]
    assert d.deviation == why


def test_deconvolution_shape_difference_in_the_report(tmp_path, capsys):
    prototxt, caffemodel = deviation_files(tmp_path, DEVIATIONS["deconv-dilation2"][0])
    code, out, _ = run(capsys, "diff", prototxt, "--weights", caffemodel)
    assert code == 1
    # Caffe: (6 - 1) * 2 + 2 * (3 - 1) + 1 = 15; OpenCV without the dilation: (6 - 1) * 2 + 3 = 13
    assert "y      Deconvolution  y     1x2x15x15" in out
    assert "the reference gives 1x2x13x13" in out
    assert out.rstrip().endswith("known difference of the reference from Caffe here: OpenCV "
                                 "ignores a deconvolution's dilation (docs/opencv.md)")


def test_json_output(tmp_path, capsys):
    prototxt, caffemodel = deviation_files(tmp_path, DEVIATIONS["lrn-k2"][0])
    code, out, _ = run(capsys, "diff", prototxt, "--weights", caffemodel, "--format", "json", "--seed", "7")
    assert code == 1
    d = json.loads(out)
    assert d["reference"].startswith("OpenCV ") and (d["rtol"], d["atol"]) == (1e-4, 0.0)
    assert d["inputs"] == {"data": {"shape": [1, 4, 6, 6], "values": "random, uniform in [-1, 1), seed 7"}}
    assert d["ok"] is False
    assert [(r["layer"], r["status"]) for r in d["blobs"]] == [("conv", "ok"), ("y", "over")]
    first = d["first_difference"]
    assert (first["layer"], first["type"], first["blob"], first["line"]) == ("y", "LRN", "y", 4)
    assert first["params"] == {"lrn_param": {"local_size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0}}
    assert first["bottoms"] == ["x"]
    assert first["reference_deviation"] == "OpenCV ignores LRN's k (2) and uses 1"
    assert first["rel"] == first["max_abs"] / first["max_ref"] > 1e-4


# ---------------------------------------------------------------------------------------------
# --image

def test_image_with_mean_and_scale(tmp_path):
    from protoseg.diff import image_input
    from protoseg.plan import plan_net
    cv2 = h.opencv()
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10      # H 2, W 3, BGR
    cv2.imwrite(str(tmp_path / "x.png"), pixels)
    net = ('layer { name: "d" type: "ImageData" top: "data" top: "label" image_data_param { '
           'source: "list.txt" batch_size: 2 new_height: 2 new_width: 3 } '
           'transform_param { mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.5 } }\n'
           'layer { name: "p" type: "Power" bottom: "data" top: "y" }\n')
    (inp,) = plan_net(text=net).inputs
    x, how = image_input(tmp_path / "x.png", inp)
    want = (pixels.astype(np.float32).transpose(2, 0, 1) - np.array([104, 117, 123], np.float32)
            .reshape(3, 1, 1)) * 0.5
    assert x.shape == (2, 3, 2, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], want)
    np.testing.assert_array_equal(x[1], want)
    assert how == f"image {tmp_path / 'x.png'} (3x2, BGR 0-255, mean 104, 117, 123 subtracted, scaled by 0.5)"


def test_image_resized_to_the_input(small, tmp_path, capsys):
    cv2 = h.opencv()
    prototxt, caffemodel = small
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((5, 7, 3), 60, np.uint8))
    code, out, _ = run(capsys, "diff", prototxt, "--weights", caffemodel, "--image", tmp_path / "grey.png")
    assert code == 0
    assert (f"input data 1x3x8x8: image {tmp_path / 'grey.png'} (7x5, BGR 0-255, resized to 8x8, "
            f"no transform_param: the values as read)") in out


@pytest.mark.parametrize("name,content,words", [
    ("missing.png", None, "no such file"),
    ("text.png", b"not an image", "not an image OpenCV can read"),
])
def test_bad_image(small, tmp_path, capsys, name, content, words):
    prototxt, caffemodel = small
    if content is not None:
        (tmp_path / name).write_bytes(content)
    code, _, err = run(capsys, "diff", prototxt, "--weights", caffemodel, "--image", tmp_path / name)
    assert code == 2
    assert f"protoseg: error: --image {tmp_path / name}: {words}" in err


# ---------------------------------------------------------------------------------------------
# errors

def test_missing_opencv(small, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)      # `import cv2` raises ImportError
    prototxt, caffemodel = small
    code, out, err = run(capsys, "diff", prototxt, "--weights", caffemodel)
    assert code == 2 and out == ""
    assert err == ("protoseg: error: the reference for protoseg diff is OpenCV's Caffe importer, "
                   "and OpenCV (cv2) is not installed\nhint: pip install \"opencv-python-headless"
                   ">=4.8,<5\" (OpenCV 5 removed the Caffe importer)\n")


def test_net_opencv_cannot_load(tmp_path, capsys):
    # OpenCV 4.14's importer has no Threshold layer (docs/opencv.md)
    (tmp_path / "t.prototxt").write_text(one_layer('layer { name: "y" type: "Threshold" bottom: "x" top: "y" }'))
    h.write_caffemodel(tmp_path / "t.caffemodel", [("conv", "Convolution", [np.ones((4, 4, 1, 1), np.float32),
                                                                           np.zeros(4, np.float32)])])
    code, _, err = run(capsys, "diff", tmp_path / "t.prototxt", "--weights", tmp_path / "t.caffemodel")
    assert code == 2
    assert err.startswith("protoseg: error: OpenCV cannot load the net: ")
    assert "Threshold" in err
    assert err.endswith("hint: docs/opencv.md lists what OpenCV's Caffe importer cannot load or run\n")


def test_weights_that_do_not_fit(small, tmp_path, capsys):
    prototxt, _ = small
    h.write_caffemodel(tmp_path / "other.caffemodel", [("convX", "Convolution", [np.ones((4, 3, 3, 3), np.float32)])])
    code, _, err = run(capsys, "diff", prototxt, "--weights", tmp_path / "other.caffemodel")
    assert code == 2
    assert "'convX'" in err and "Traceback" not in err


@pytest.mark.parametrize("kwargs,error,words", [
    ({"prototxt": 3}, TypeError, "prototxt must be a path"),
    ({"rtol": -1}, ValueError, "rtol must be a number >= 0"),
    ({"seed": 1.5}, TypeError, "seed must be an int"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
    ({"reference": "opencv"}, TypeError, "reference must be a protoseg.reference.Reference"),
])
def test_argument_checks(small, kwargs, error, words):
    prototxt, caffemodel = small
    args = {"prototxt": prototxt, "weights": caffemodel, **kwargs}
    with pytest.raises(error, match=words):
        diff_net(args.pop("prototxt"), args.pop("weights"), **args)


@pytest.mark.parametrize("option,value", [("--rtol", "-1"), ("--rtol", "nan"), ("--atol", "x"),
                                          ("--seed", "-3")])
def test_bad_option_values_are_usage_errors(small, capsys, option, value):
    prototxt, caffemodel = small
    with pytest.raises(SystemExit) as e:
        main(["diff", str(prototxt), "--weights", str(caffemodel), option, value])
    assert e.value.code == 2
    assert f"argument {option}: expected a" in capsys.readouterr().err


class FakeCvNet:
    """What OpenCV's Net shows of its layers: names and types, in order."""

    def __init__(self, layers):
        self.layers = layers

    def getLayerNames(self):
        return [name for name, _ in self.layers]

    def getLayerId(self, name):
        return self.getLayerNames().index(name)

    def getLayer(self, i):
        return type("Layer", (), {"type": self.layers[i][1]})


def test_opencv_layers_are_matched_in_file_order():
    from protoseg import load_net
    net = load_net(text=one_layer('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }\n'
                                  'layer { name: "y" type: "Threshold" bottom: "x" top: "y" }\n'
                                  'layer { name: "z" type: "ReLU" bottom: "y" top: "z" }'))
    # OpenCV: the Convolution named after its top, an MVN of its own before the BatchNorm, no
    # Threshold
    cv_net = FakeCvNet([("x", "Convolution"), ("bn/mvn", "MVN"), ("bn", "BatchNorm"), ("z", "ReLU")])
    assert OpenCV._match(cv_net, net) == [(1, "x"), (2, "bn"), (4, "z")]
