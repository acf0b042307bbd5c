"""`protoseg sizes` (protoseg.analysis.input_sizes): the input sizes a net takes, per axis.

Expected sets and outputs are derived by hand from the size rules (caffe-semantics.md §2.2-2.4):
convolution (n + 2p - k)/s + 1 with C division, pooling ceil((n + 2p - k)/s) + 1 with the clip
rule, and the layers' checks. Separately, the analysis is held to the plain shape pass: over a
range of sizes both must agree size for size.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from protoseg.analysis import Rejection, Row, input_sizes
from protoseg.cli import main
from protoseg.errors import ProtosegError
from protoseg.net import load_net
from protoseg.shapes import infer_shapes
from test_check import NETS, corpus_argv
from test_corpus import CORPUS

ROOT = Path(__file__).resolve().parents[1]
P = ROOT / "prototxts"
RESNET50 = CORPUS / "resnet" / "ResNet-50-deploy.prototxt"
corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")


def outcome(report, n, axis=0):
    o = report.axes[axis].outcomes[n]
    return ("refused", report.net.layers[o.index].name) if isinstance(o, Rejection) else o


def test_fcn8s_takes_every_size_and_gives_it_back():
    # pad 100 makes conv1_1 n + 198, so pool5 = ceil-halvings of it is >= 7 for every n >= 1 (at
    # n = 1: 199 -> 100 -> 50 -> 25 -> 13 -> 7, fc6 1, upscore2 4 <= 13 - 5, upscore_pool4 10 <=
    # 25 - 9, upscore8 88 >= 1 + 31); the last crop takes data's size: the output is n
    report = input_sizes(load_net(str(P / "fcn8s.prototxt")))
    for ax in report.axes:
        assert ax.rows == [Row(1, 1024, 1, (0,), ((1, 0),))]
    assert (report.input, report.outputs) == ("data", ["score"])


def test_deeplab_v1_output_is_the_input_only_at_8k_plus_1():
    # conv1_1 pad 1 keeps n; each pool (k3 s2 p1, ceil) gives floor(n/2) + 1 (the clip rule never
    # fires: for n = 2m, (m + 1 - 1)*2 >= 2m + 1 is false); fc8 m = three of those; Interp zoom 8
    # gives 8(m - 1) + 1. n = 8k + 1 -> 4k + 1 -> 2k + 1 -> k + 1 -> 8k + 1 = n; n = 8k + r, r in
    # 2..8 -> k + 2 -> 8k + 9 = n + 9 - r: the next 8k + 1. Hence 513 = 8*64 + 1 and 321 = 8*40 + 1.
    report = input_sizes(load_net(str(P / "deeplab_v1_largefov.prototxt")))
    expected = [Row(r, 1024, 8, (r % 8,), ((1, 0 if r == 1 else 9 - r),)) for r in range(1, 9)]
    assert report.axes[0].rows == expected
    assert report.axes[1].rows == expected


# DeepLab v2 ResNet-101 MSc: with S(n) = ceil((floor(ceil(n/2)/2) + 1)/2) (conv1 k7 s2 p3, pool1
# k3 s2 p1 ceil, res3a stride 2; res4/res5 dilated), the branches give S(n) at scale 1,
# 2*S((n - 1)/2 + 1) - 1 at 0.5 (Interp shrink 2, zoom 2) and 4*((S(3m - 2) - 1)/3) + 1 with
# m = (n - 1)/4 + 1 at 0.75; fc_fusion needs the three equal; the output is 8*(S(n) - 1) + 1.
@pytest.mark.parametrize("n,expected", [
    (513, 513),   # S = 65; 0.5: 257 -> 33 -> 65; 0.75: m = 129, 385 -> 49 -> 17 -> 65
    (321, 321),   # S = 41; 0.5: 161 -> 21 -> 41; 0.75: m = 81, 241 -> 31 -> 11 -> 41
    (514, 513),   # S(514) = 65 as for 513; (513)/2 + 1 = 257 and m = 129 as for 513
    (550, 545),   # 550 = 32*17 + 6: S = 69, 0.5: 275 -> 35 -> 69, 0.75: m = 138, 412 -> 52 -> 18 -> 69
    (521, ("refused", "fc_fusion")),   # S = 66, 0.5: 261 -> 33 -> 65
], ids=["513", "321", "514", "550", "521"])
def test_deeplab_v2_msc(n, expected):
    report = input_sizes(load_net(str(P / "deeplab_v2_resnet101_msc.prototxt")), lo=n, hi=n)
    assert outcome(report, n) == (expected if isinstance(expected, tuple) else (expected,))


@corpus
def test_resnet50_takes_only_sizes_that_keep_fc1000_weights():
    # conv1 (k7 s2 p3): floor((n - 1)/2) + 1; pool1 (k3 s2, ceil, no pad); res3a, res4a, res5a
    # (k1 s2): floor((m - 1)/2) + 1; pool5 (k7 s1) is 1x1 only at res5c = 7, which fc1000's K =
    # 2048 (its weights) needs: res4 in 13..14, res3 25..28, res2 49..56, conv1 98..113, n 195..226
    report = input_sizes(load_net(str(RESNET50)))
    for ax in report.axes:
        assert ax.accepted == list(range(195, 227))
        assert {report.net.layers[i].name: (ns[0], ns[-1]) for i, ns in ax.rejected().items()} == {
            "pool1": (1, 2), "pool5": (3, 194), "fc1000": (227, 1024)}
    assert "its weights are (1000, 2048), (1000)" in report.reason(report.axes[0].outcomes[227])


def test_fpn_takes_every_size_from_3():
    # conv1 (k7 s2 p3) gives 1 at n = 1, 2 and pool1 (k3 s2, ceil) needs 2 or more; the final Interp
    # takes data's size
    report = input_sizes(load_net(str(P / "fpn_resnet50.prototxt")))
    assert report.axes[0].rows == [Row(3, 1024, 1, (0,), ((1, 0),))]
    assert [report.net.layers[i].name for i in report.axes[0].rejected()] == ["pool1"]


def test_square_moves_every_axis_at_once():
    report = input_sizes(load_net(str(P / "deeplab_v2_resnet101_msc.prototxt")), lo=518, hi=521,
                         square=True)
    (ax,) = report.axes
    assert ax.axes == (2, 3) and ax.accepted == [518]


@pytest.mark.parametrize("name", ["fcn8s", "deeplab_v1_largefov", "fpn_resnet50", "fcn32s"])
def test_the_analysis_agrees_with_the_shape_pass(name):
    """Every size of 1..48 along H (W as declared): accepted with the same output, or refused."""
    net = load_net(str(P / f"{name}.prototxt"))
    report = input_sizes(net, lo=1, hi=48)
    out = report.outputs[0]
    declared = report.shape

    def shape_pass(n):
        try:
            return (infer_shapes(net, {"data": declared[:2] + (n,) + declared[3:]}).blobs[out][2],)
        except ProtosegError:
            return None
    got = {n: None if isinstance(o, Rejection) else o for n, o in report.axes[0].outcomes.items()}
    assert got == {n: shape_pass(n) for n in range(1, 49)}


def test_sizes_table(capsys):
    assert main(["sizes", str(P / "fpn_resnet50.prototxt")]) == 0
    out = capsys.readouterr().out
    assert "H, W  ≥ 3     n" in out
    assert "H, W: 2 refused (1..2) by layer 'pool1' (Pooling, line 45)" in out


def test_sizes_json(capsys):
    assert main(["sizes", str(P / "deeplab_v1_largefov.prototxt"), "--range", "505:520",
                 "--format", "json"]) == 0
    j = json.loads(capsys.readouterr().out)
    (h, w) = j["axes"]
    assert (h["name"], h["declared"], j["range"]) == ("H", [513], [505, 520])
    assert h["accepted"]["513"] == {"fc8_interp": 513}
    assert h["accepted"]["514"] == {"fc8_interp": 521}      # 514 = 8*64 + 2: the next 8k + 1
    assert h["rows"][0]["sizes"] == "every 8k+1 from 505" and h["rows"][0]["outputs"] == {"fc8_interp": "n"}


@pytest.mark.parametrize("value", ["0:10", "10:5", "a:b", "12"])
def test_sizes_range_errors(value, capsys):
    assert main(["sizes", str(P / "fcn8s.prototxt"), "--range", value]) == 2
    assert "--range" in capsys.readouterr().err


def test_a_net_without_spatial_input(capsys, tmp_path):
    net = tmp_path / "fc.prototxt"
    net.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 4 } } }\n'
                   'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" '
                   'inner_product_param { num_output: 3 } }\n')
    assert main(["sizes", str(net)]) == 2
    assert "no input of this net has spatial axes" in capsys.readouterr().err


def test_input_sizes_checks_its_arguments():
    net = load_net(str(P / "fcn8s.prototxt"))
    with pytest.raises(TypeError, match="takes a Net"):
        input_sizes(str(P / "fcn8s.prototxt"))
    with pytest.raises(ValueError, match="1 <= lo <= hi"):
        input_sizes(net, lo=5, hi=4)


# corpus nets whose inputs have no spatial axes (nothing to vary)
NO_SPATIAL = {"bvlc/hdf5_nonlinear_train_val.prototxt"}


@corpus
@pytest.mark.parametrize("rel", NETS)
def test_sizes_runs_on_every_corpus_net(rel, capsys):
    code = main(["sizes", *corpus_argv(rel), "--range", "1:320"])
    err = capsys.readouterr().err
    if rel in NO_SPATIAL:
        assert code == 2 and "no input of this net has spatial axes" in err
    else:
        assert code == 0, err
