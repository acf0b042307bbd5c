"""Coordinate maps (protoseg.analysis.coord_maps, `protoseg shapes --rf`).

Expected maps are derived by hand with the rules of Caffe's python/caffe/coord_map.py: a
convolution or pooling with kernel extent k (dilated), stride s and pad p maps
x -> x/s + (p - (k-1)/2)/s, a deconvolution x -> s*x + (k-1)/2 - p, a Crop x -> x - offset, and
maps compose as a2*(a1*x + b1) + b2. The receptive field grows by (k-1) bottom steps for a
convolution or pooling, by the steps a deconvolution output's inputs span (floor((k-1)/s) for
dilation 1), times the bottom's stride in input pixels.
"""
from __future__ import annotations

import json
from fractions import Fraction as F
from pathlib import Path

import pytest

from conftest import infer_text
from protoseg.analysis import coord_maps
from protoseg.cli import main
from protoseg.layers import LowerContext, registry
from protoseg.net import load_net
from protoseg.shapes import infer_shapes
from test_corpus import CORPUS

ROOT = Path(__file__).resolve().parents[1]
FCN8S = ROOT / "prototxts" / "fcn8s.prototxt"


def blob_maps(shapes, input_="data", axis=2) -> dict:
    maps = coord_maps(shapes)
    out = {}
    for ls in shapes.layers:
        for blob, value in zip(ls.layer.tops, ls.layer.top_values):
            m = maps.of(value).get(input_, {}).get(axis)
            if m is not None:
                out[blob] = (m.scale, m.shift, m.rf)
    return out


# FCN-8s, relative to 'data' along H (W is the same): (scale, shift, receptive field)
# conv1_1 (k3, pad 100): shift 100 - 1 = 99, rf 3; conv1_2 rf 5. Each 3x3 pad-1 convolution
# keeps the map and adds 2 bottom steps (2 * stride) to the rf; each 2x2 stride-2 pool halves
# the scale, maps the shift to shift/2 - 1/4 and adds 1 step: pool1 1/2, 99/2 - 1/4 = 197/4, 6.
FCN8S_MAPS = {
    "conv1_1": (1, 99, 3), "conv1_2": (1, 99, 5), "pool1": (F(1, 2), F(197, 4), 6),
    "conv2_2": (F(1, 2), F(197, 4), 6 + 2 * 2 * 2), "pool2": (F(1, 4), F(195, 8), 16),
    "conv3_3": (F(1, 4), F(195, 8), 16 + 3 * 2 * 4), "pool3": (F(1, 8), F(191, 16), 44),
    "conv4_3": (F(1, 8), F(191, 16), 44 + 3 * 2 * 8), "pool4": (F(1, 16), F(183, 32), 100),
    "conv5_3": (F(1, 16), F(183, 32), 100 + 3 * 2 * 16), "pool5": (F(1, 32), F(167, 64), 212),
    # fc6: 7x7, pad 0: shift 167/64 - 3 = -25/64, rf 212 + 6*32 = 404
    "fc6": (F(1, 32), F(-25, 64), 404), "score_fr": (F(1, 32), F(-25, 64), 404),
    # upscore2: k4 s2: scale 1/16, shift 2*(-25/64) + 3/2 = 23/32, rf 404 + 1*32
    "upscore2": (F(1, 16), F(23, 32), 436),
    # score_pool4 sits where pool4 does; the Crop's offset 5 moves it onto upscore2
    "score_pool4": (F(1, 16), F(183, 32), 100), "score_pool4c": (F(1, 16), F(183, 32) - 5, 100),
    "fuse_pool4": (F(1, 16), F(23, 32), 436),
    "upscore_pool4": (F(1, 8), 2 * F(23, 32) + F(3, 2), 436 + 16),
    "score_pool3c": (F(1, 8), F(191, 16) - 9, 44), "fuse_pool3": (F(1, 8), F(47, 16), 452),
    # upscore8: k16 s8: scale 1, shift 8*47/16 + 15/2 = 31, rf 452 + floor(15/8)*8
    "upscore8": (1, 31, 460), "score": (1, 0, 460),
}


@pytest.mark.parametrize("blob", sorted(FCN8S_MAPS))
def test_fcn8s_map(blob):
    assert blob_maps(infer_shapes(load_net(str(FCN8S))))[blob] == FCN8S_MAPS[blob]


def test_fcn8s_upscore8_has_stride_one_eighth_of_its_bottom():
    # upscore8 (k16 s8) takes fuse_pool3 (stride 8 in 'data') to stride 1: relative to its own
    # bottom its stride is 1/8 (8 elements per bottom element), centred 7.5 further on
    shapes = infer_shapes(load_net(str(FCN8S)))
    ls = shapes.of("upscore8")
    spec = registry()["Deconvolution"]
    rule = spec.axes(LowerContext(ls.layer, spec, ls.bottoms, ls.tops, ls.conf))[2]
    assert (1 / rule.scale, rule.shift, rule.reach) == (F(1, 8), F(15, 2), 1)


def test_fcn8s_maps_are_the_same_on_w():
    shapes = infer_shapes(load_net(str(FCN8S)))
    assert blob_maps(shapes, axis=3) == blob_maps(shapes, axis=2)


def test_fcn8s_has_no_misaligned_layer():
    assert coord_maps(infer_shapes(load_net(str(FCN8S)))).misaligned == []


SMALL = """
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 16 dim: 16 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up" type: "Deconvolution" bottom: "pool" top: "up"
  convolution_param { num_output: 2 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "dil" type: "Convolution" bottom: "data" top: "dil"
  convolution_param { num_output: 2 kernel_size: 3 dilation: 2 pad: 2 } }
layer { name: "dil2" type: "Convolution" bottom: "dil" top: "dil2"
  convolution_param { num_output: 2 kernel_size: 3 dilation: 4 pad: 4 } }
layer { name: "gp" type: "Pooling" bottom: "dil2" top: "gp" pooling_param { pool: AVE global_pooling: true } }
"""


@pytest.mark.parametrize("blob,expected", [
    # k3 s2 p1: x/2 + (1 - 1)/2, rf 3
    ("conv", (F(1, 2), 0, 3)),
    # k2 s2: scale 1/4, shift 0/2 + (0 - 1/2)/2 = -1/4, rf 3 + 1*2
    ("pool", (F(1, 4), F(-1, 4), 5)),
    # k4 s2 p1: scale 1/2, shift 2*(-1/4) + 3/2 - 1 = 0, rf 5 + floor(3/2)*4
    ("up", (F(1, 2), 0, 9)),
    # dilation 2: extent 5, pad 2: shift 0, rf 5; then dilation 4: extent 9, rf 5 + 8
    ("dil", (1, 0, 5)), ("dil2", (1, 0, 13)),
    # global pooling over 16: one window of 16, centred on 7.5: shift -15/2, rf 13 + 15
    ("gp", (1, F(-15, 2), 28)),
], ids=["conv-s2", "pool", "deconv", "dilation-2", "dilation-4", "global-pool"])
def test_small_net_map(blob, expected):
    assert blob_maps(infer_text(SMALL))[blob] == expected


@pytest.mark.parametrize("kernel,stride,dilation,reach", [
    (16, 8, 1, 1), (4, 2, 1, 1), (3, 2, 1, 1), (2, 2, 1, 0), (5, 2, 1, 2),
    # dilation 3, stride 2, kernel 2: taps at 0 and 3 never hit the same residue: one input each
    (2, 2, 3, 0),
    # dilation 2, stride 2, kernel 3: taps 0, 2, 4 all even: three inputs, two steps apart
    (3, 2, 2, 2),
], ids=["k16s8", "k4s2", "k3s2", "k2s2", "k5s2", "k2s2d3", "k3s2d2"])
def test_deconvolution_reach(kernel, stride, dilation, reach):
    from protoseg.layers.convolution import deconv_reach
    assert deconv_reach(kernel, stride, dilation) == reach


MISALIGNED = """
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "b" type: "Convolution" bottom: "data" top: "b"
  convolution_param { num_output: 2 kernel_size: 2 stride: 2 } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "cat" }
"""


def test_eltwise_of_misaligned_blobs_is_recorded():
    # a: k3 s2 p1, 8 -> 4, element 0 centred on input 0; b: k2 s2, 8 -> 4, centred on 0.5
    maps = coord_maps(infer_text(MISALIGNED))
    found = {(m.layer.name, m.axis): {b: (mm.stride, mm.offset) for b, mm in m.maps}
             for m in maps.misaligned}
    both = {"a": (2, 0), "b": (2, F(1, 2))}
    assert found == {("sum", 2): both, ("sum", 3): both, ("cat", 2): both, ("cat", 3): both}


def test_shapes_rf_columns(capsys):
    assert main(["shapes", str(FCN8S), "--rf"]) == 0
    rows = {l.split()[0]: l.split()[-3:] for l in capsys.readouterr().out.splitlines()[2:]}
    # stride, offset (the input coordinate element 0 is centred on: -shift/scale), rf
    assert rows["pool5"] == ["32", "-83.5", "212"]       # -(167/64)*32
    assert rows["upscore8"] == ["1", "-31", "460"]
    assert rows["conv1_1"] == ["1", "-99", "3"]


def test_shapes_json_always_has_maps(capsys):
    assert main(["shapes", str(FCN8S), "--format", "json"]) == 0
    j = json.loads(capsys.readouterr().out)
    pool5 = next(l for l in j["layers"] if l["name"] == "pool5")
    assert pool5["maps"] == {"pool5": {"data": {"H": {"stride": 32, "offset": -83.5, "rf": 212},
                                                "W": {"stride": 32, "offset": -83.5, "rf": 212}}}}
    assert j["misaligned"] == []


def test_coord_maps_checks_its_argument():
    with pytest.raises(TypeError, match="Shapes of infer_shapes"):
        coord_maps(load_net(str(FCN8S)))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")
def test_shapes_rf_names_the_layers_whose_bottoms_do_not_line_up(capsys):
    # the model-zoo FCN-8s crops at offset 0 (no crop_param), so both sums add misaligned blobs
    path = CORPUS / "fcn" / "fcn-8s-pascal-deploy_modelzoo.prototxt"
    assert main(["shapes", str(path), "--rf"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.endswith("'fuse' (line 526), 'fuse' (line 573)")
