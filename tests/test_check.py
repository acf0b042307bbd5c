"""`protoseg check` (protoseg.analysis.check_net): crop alignment audit and the other static traps.

Derived offsets are checked against the hand-derived coordinate maps of tests/test_coords.py:
FCN-8s' crops need score_pool4 (shift 183/32) onto upscore2 (23/32): 5; score_pool3 (191/16) onto
upscore_pool4 (47/16): 9; upscore8 (31) onto data (0): 31.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from protoseg.analysis import check_net
from protoseg.cli import main
from protoseg.net import load_net
from test_corpus import BROKEN, CORPUS, FILES, RUNS, TEMPLATES

ROOT = Path(__file__).resolve().parents[1]
FCN8S = ROOT / "prototxts" / "fcn8s.prototxt"
MSC = ROOT / "prototxts" / "deeplab_v2_resnet101_msc.prototxt"
MODELZOO = CORPUS / "fcn" / "fcn-8s-pascal-deploy_modelzoo.prototxt"
corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")


def fcn8s_with(old: str, new: str):
    text = FCN8S.read_text()
    assert old in text
    return load_net(text=text.replace(old, new, 1), file="fcn8s.prototxt")


def test_fcn8s_crops_are_aligned():
    report = check_net(load_net(str(FCN8S)))
    assert [(a.layer.name, a.declared, a.derived) for a in report.crops] == [
        ("score_pool4c", (5, 5), (5, 5)), ("score_pool3c", (9, 9), (9, 9)), ("score", (31, 31), (31, 31))]
    assert report.findings == []


def test_a_wrong_offset_is_flagged_with_the_right_one():
    report = check_net(fcn8s_with("offset: 5", "offset: 4"))
    crop = next(f for f in report.findings if f.kind == "crop-offset")
    assert crop.layer.name == "score_pool4c"
    assert "offset that aligns them: 5" in crop.message and "offset 4" in crop.message
    assert crop.hint == "crop_param { axis: 2 offset: 5 }"
    # the misaligned crop then misaligns the sum: by one pool4 step (16 pixels)
    fuse = next(f for f in report.findings if f.kind == "misaligned")
    assert fuse.layer.name == "fuse_pool4"
    assert "'upscore2' stride 16 offset -11.5, 'score_pool4c' stride 16 offset -27.5" in fuse.message
    assert {f.severity for f in report.findings} == {"warning"}


@corpus
def test_modelzoo_crops_without_crop_param_get_the_offsets_suggested():
    report = check_net(load_net(str(MODELZOO)))
    unset = [f for f in report.findings if f.kind == "crop-unset"]
    assert [f.hint for f in unset] == [f"crop_param {{ axis: 2 offset: {o} }}" for o in (5, 9, 31)]
    assert [a.derived for a in report.crops] == [(5, 5), (9, 9), (31, 31)]
    assert [a.declared for a in report.crops] == [(0, 0)] * 3        # BVLC: offset 0
    assert [f.layer.name for f in report.findings if f.kind == "misaligned"] == ["fuse", "fuse"]


CLIP = """
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 5 dim: 6 } } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param { pool: MAX kernel_size: 3 stride: 3 pad: 1 } }
"""


def test_pooling_clip_rule_is_reported():
    # H: ceil((5 + 2 - 3)/3) + 1 = 3, and (3 - 1)*3 = 6 >= 5 + 1: Caffe drops the last window: 2
    # W: ceil((6 + 2 - 3)/3) + 1 = 3, and 6 >= 6 + 1 is false: 3, nothing to report
    report = check_net(load_net(text=CLIP))
    assert [(f.kind, f.layer.name) for f in report.findings] == [("clip-rule", "pool")]
    message = report.findings[0].message
    assert "on H" in message and "gives 2;" in message and "formula gets 3" in message


UNALIGNED = """
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param { num_output: 1 kernel_size: 2 stride: 2 } }
layer { name: "b" type: "Convolution" bottom: "data" top: "b"
  convolution_param { num_output: 1 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "c" type: "Crop" bottom: "a" bottom: "b" top: "c" crop_param { axis: 2 offset: 0 } }
"""


def test_a_crop_no_integer_offset_can_align():
    # a sits at (0 - 1/2)/2 = -1/4, b at 0: they are -1/4 of a's elements apart (b starts first)
    report = check_net(load_net(text=UNALIGNED))
    assert [(f.kind, f.layer.name) for f in report.findings] == [("crop-unaligned", "c")]
    assert "along H and W" in report.findings[0].message
    assert report.crops[0].derived == (-0.25, -0.25)


def test_a_declared_size_the_net_cannot_take_is_an_error():
    # DeepLab v2 MSc takes sizes 32k+1 .. 32k+6 (tests/test_sizes.py): 521 = 32*16 + 9 fails at
    # fc_fusion. With the other axis at 521 no height works (nor width): at H = W the nearest
    # sizes it takes are 518 = 32*16 + 6 and 545 = 32*17 + 1
    report = check_net(load_net(str(MSC)), {"data": (1, 3, 521, 521)})
    (err,) = report.errors
    assert err.kind == "input-size" and err.layer.name == "fc_fusion"
    assert err.hint.startswith("nearest sizes it takes: H = W: 518, 545")


def test_check_exit_codes(capsys, tmp_path):
    assert main(["check", str(FCN8S)]) == 0
    out = capsys.readouterr().out
    assert "score_pool4c" in out and "3 crops checked; 0 warnings, 0 errors" in out
    wrong = tmp_path / "wrong.prototxt"
    wrong.write_text(FCN8S.read_text().replace("offset: 9", "offset: 8", 1))
    assert main(["check", str(wrong)]) == 0             # warnings are not errors
    out = capsys.readouterr().out
    assert f"{wrong}:" in out and "warning: layer 'score_pool3c' (Crop)" in out
    assert main(["check", str(MSC), "--input", "data=1,3,521,521"]) == 2
    assert "error: layer 'fc_fusion' (Eltwise)" in capsys.readouterr().out


def test_check_json(capsys):
    assert main(["check", str(FCN8S), "--format", "json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert [(c["layer"], c["declared"], c["derived"]) for c in j["crops"]] == [
        ("score_pool4c", [5, 5], [5, 5]), ("score_pool3c", [9, 9], [9, 9]), ("score", [31, 31], [31, 31])]
    assert (j["warnings"], j["errors"], j["findings"]) == (0, 0, [])


def test_check_net_checks_its_argument():
    with pytest.raises(TypeError, match="takes a Net"):
        check_net(str(FCN8S))


# -- every corpus net: no uncaught exception (exit 0, or 2 with a message)

def corpus_argv(rel: str) -> list:
    phase, stages, inputs = RUNS.get(rel, ("TEST", (), {}))
    argv = [str(CORPUS / rel), "--phase", phase.lower()]
    for s in stages:
        argv += ["--stage", s]
    for name, shape in inputs.items():
        argv += ["--input", f"{name}={','.join(map(str, shape))}"]
    return argv


NETS = [f for f in FILES if f not in TEMPLATES and f not in BROKEN]


@corpus
@pytest.mark.parametrize("rel", NETS)
def test_check_runs_on_every_corpus_net(rel, capsys):
    code = main(["check", *corpus_argv(rel)])
    err = capsys.readouterr().err
    assert code == 0, err
