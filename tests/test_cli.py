"""`protoseg shapes`: the FCN-8s walkthrough number for number in the table, --explain and JSON;
golden shape files for our prototxts; errors as stderr + exit 2; no torch on the shape path."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from protoseg.cli import main

ROOT = Path(__file__).resolve().parents[1]
FCN8S = str(ROOT / "prototxts" / "fcn8s.prototxt")

# caffe-semantics.md §8: input 500 -> conv1_1 698 (padded 700) -> pools 349, 175, 88, 44, 22
# (ceil) -> fc6 16 -> upscore2 34 -> score_pool4c 34 (offset 5) -> upscore_pool4 70 ->
# score_pool3c 70 (offset 9) -> upscore8 568 -> score 500 (offset 31, size from 'data').
WALKTHROUGH = {
    "data": 500, "conv1_1": 698, "conv1_2": 698, "pool1": 349, "pool2": 175, "pool3": 88,
    "pool4": 44, "pool5": 22, "fc6": 16, "fc7": 16, "score_fr": 16, "upscore2": 34,
    "score_pool4": 44, "score_pool4c": 34, "fuse_pool4": 34, "upscore_pool4": 70, "score_pool3": 88,
    "score_pool3c": 70, "fuse_pool3": 70, "upscore8": 568, "score": 500,
}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_walkthrough(capsys):
    code, out, _ = run(capsys, "shapes", FCN8S, "--format", "json")
    assert code == 0
    j = json.loads(out)
    assert j["name"] == "fcn8s"
    assert j["inputs"] == {"data": [1, 3, 500, 500]}
    first = j["layers"][1]
    assert {k: first[k] for k in ("name", "type", "bottoms", "tops", "top_shapes")} == {
        "name": "conv1_1", "type": "Convolution", "bottoms": ["data"], "tops": ["conv1_1"],
        "top_shapes": [[1, 64, 698, 698]]}
    assert {b: j["blobs"][b][2] for b in WALKTHROUGH} == WALKTHROUGH
    assert j["blobs"]["score"] == [1, 21, 500, 500]
    assert [l["name"] for l in j["layers"]][:4] == ["input", "conv1_1", "relu1_1", "conv1_2"]


def test_table_walkthrough(capsys):
    code, out, _ = run(capsys, "shapes", FCN8S)
    assert code == 0
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[2:]}
    assert rows["conv1_1"] == "1x64x698x698"
    assert rows["pool5"] == "1x512x22x22"
    assert rows["upscore8"] == "1x21x568x568"
    assert rows["score"] == "1x21x500x500"
    assert "upscore8, data -> score" in out


def test_explain_shows_the_arithmetic(capsys):
    code, out, _ = run(capsys, "shapes", FCN8S, "--explain")
    assert code == 0
    assert "axis 2: (500 + 2*100 - 3) / 1 + 1 = 698   (padded input 700)" in out
    assert "H: ceil((698 + 2*0 - 2) / 2) + 1 = ceil(348) + 1 = 349; no clip rule (pad 0)" in out
    assert "H: ceil((349 + 2*0 - 2) / 2) + 1 = ceil(173.5) + 1 = 175" in out
    assert "axis 2: (22 + 2*0 - 7) / 1 + 1 = 16" in out
    assert "axis 2: 2*(16 - 1) + 4 - 2*0 = 34" in out
    assert "axis 2: keep [5:39] of 44 (size 34 from 'upscore2'): trims 5 before, 5 after" in out
    assert "axis 2: keep [9:79] of 88 (size 70 from 'upscore_pool4'): trims 9 before, 9 after" in out
    assert "axis 2: 8*(70 - 1) + 16 - 2*0 = 568" in out
    assert "axis 2: keep [31:531] of 568 (size 500 from 'data'): trims 31 before, 37 after" in out
    assert "a symmetric trim of 31 from both ends would give 568 - 2*31 = 506; Caffe's Crop gives 500" in out
    assert "takes the size from the second bottom 'data'" in out


def test_explain_reports_the_clip_rule(capsys, tmp_path):
    p = tmp_path / "clip.prototxt"
    p.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 6 dim: 6 } } }\n'
                 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 } }\n')
    code, out, _ = run(capsys, "shapes", str(p), "--explain")
    assert code == 0
    # ceil((6 + 2 - 2) / 2) + 1 = 4; (4 - 1)*2 = 6 < 6 + 1: the clip rule does not fire
    assert "H: ceil((6 + 2*1 - 2) / 2) + 1 = ceil(3) + 1 = 4; clip rule checked (the layer has padding), did not fire" in out


def test_markdown(capsys):
    code, out, _ = run(capsys, "shapes", FCN8S, "--format", "markdown")
    assert code == 0
    assert out.startswith("# fcn8s\n\n| layer | type | bottoms -> tops | top shape |\n|---|---|---|---|\n")
    assert "| score | Crop | upscore8, data -> score | 1x21x500x500 |" in out


def test_input_override(capsys):
    code, out, _ = run(capsys, "shapes", FCN8S, "--input", "data=1,3,224,224", "--format", "json")
    j = json.loads(out)
    assert code == 0 and j["blobs"]["upscore8"] == [1, 21, 312, 312] and j["blobs"]["score"] == [1, 21, 224, 224]


# The golden files record every layer; their distinctive values are derived here by hand
# (deconv: s*(in-1) + k - 2p; crop: size of the second bottom, offset only the start), so the
# golden files are pinned by Caffe's formulas, not only by protoseg's own earlier output.
HAND_DERIVED = {
    "fcn16s": {"fc6": 16, "upscore2": 2 * (16 - 1) + 4,          # 34
               "score_pool4c": 34,                                  # 44 - 5 >= 34
               "upscore16": 16 * (34 - 1) + 32,                     # 560; 560 - 27 >= 500
               "score": 500},
    "fcn32s": {"fc6": 16, "upscore": 32 * (16 - 1) + 64,           # 544; 544 - 19 >= 500
               "score": 500},
}


@pytest.mark.parametrize("name", sorted(HAND_DERIVED))
def test_golden_files_agree_with_hand_derivation(name):
    golden = json.loads((ROOT / "tests" / "golden" / f"{name}.json").read_text())
    got = {layer: tops[0][2] for layer, _, tops in golden["layers"]}
    assert {k: got[k] for k in HAND_DERIVED[name]} == HAND_DERIVED[name]


def test_fcn8s_golden_file_is_the_walkthrough():
    golden = json.loads((ROOT / "tests" / "golden" / "fcn8s.json").read_text())
    got = {layer: tops[0][2] for layer, _, tops in golden["layers"]}
    assert {k: got[k] for k in WALKTHROUGH if k != "data"} == {k: v for k, v in WALKTHROUGH.items() if k != "data"}


@pytest.mark.parametrize("name", ["fcn8s", "fcn16s", "fcn32s"])
def test_golden_shapes(name, capsys):
    code, out, _ = run(capsys, "shapes", str(ROOT / "prototxts" / f"{name}.prototxt"), "--format", "json")
    j = json.loads(out)
    golden = json.loads((ROOT / "tests" / "golden" / f"{name}.json").read_text())
    assert code == 0
    assert j["inputs"] == golden["inputs"]
    assert [[l["name"], l["type"], l["top_shapes"]] for l in j["layers"]] == golden["layers"]


@pytest.mark.parametrize("argv,words", [
    (["shapes", "missing.prototxt"], "missing.prototxt: cannot read"),
    (["shapes", FCN8S, "--input", "image=1,3,4,4"], "--input names 'image'"),
], ids=["missing-file", "unknown-input"])
def test_errors_exit_2_without_traceback(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("protoseg: error: ") and words in err
    assert "Traceback" not in err


def test_too_small_input_names_the_layer(capsys, tmp_path):
    p = tmp_path / "small.prototxt"
    p.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 9 dim: 9 } } }\n'
                 'layer { name: "c7" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 1 kernel_size: 7 } }\n')
    code, _, err = run(capsys, "shapes", str(p), "--input", "x=1,1,4,4")
    assert code == 2
    # (4 + 0 - 7) / 1 + 1 = -2
    assert f"{p}:2:1: layer 'c7' (Convolution): top 'c' would have shape (1, 1, -2, -2): a dimension below 1" in err
    assert "axis 3: (4 + 2*0 - 7) / 1 + 1 = -2" in err


def test_crop_out_of_bounds(capsys, tmp_path):
    p = tmp_path / "crop.prototxt"
    p.write_text('layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 1 dim: 21 dim: 44 dim: 44 } shape { dim: 1 dim: 21 dim: 34 dim: 34 } } }\n'
                 'layer { name: "c" type: "Crop" bottom: "a" bottom: "b" top: "c" crop_param { axis: 2 offset: 11 } }\n')
    code, _, err = run(capsys, "shapes", str(p))
    assert code == 2
    assert "layer 'c' (Crop): crop out of bounds on axis 2: window [11, 45) of size 34 (from 'b') does not fit in 44: 44 - 11 < 34" in err


def test_shapes_does_not_import_torch():
    code = ("import sys, protoseg.cli as c; c.main(['shapes', %r]); "
            "sys.exit(3 if 'torch' in sys.modules else 0)" % FCN8S)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_python_dash_m(tmp_path):
    r = subprocess.run([sys.executable, "-m", "protoseg", "shapes", FCN8S, "--format", "json"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and json.loads(r.stdout)["blobs"]["score"] == [1, 21, 500, 500]


@pytest.mark.parametrize("target,words", [
    ("a-file", "names an output folder, but this is a file"),
    ("a-file/sub", "cannot make the folder"),
], ids=["out-is-a-file", "out-under-a-file"])
def test_compile_output_folder_errors(capsys, tmp_path, target, words):
    (tmp_path / "a-file").write_text("x")
    code, _, err = run(capsys, "compile", FCN8S, "-o", str(tmp_path / target))
    assert code == 2 and words in err and "Traceback" not in err
