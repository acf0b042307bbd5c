"""`protoseg draw`: the drawing's structure (nodes, edges, in-place folding, shape labels, colours),
DOT escaping, and SVG/PNG through Graphviz's `dot` where it is installed.

The expected counts are derived by hand from the prototxts:

- FCN-8s: 47 layers, 15 of them ReLUs in place after a convolution -> 32 layer nodes, plus the
  output `score` = 33 nodes. Edges, one per bottom read: 18 convolutions x 1 + 3 deconvolutions
  x 1 + 5 poolings x 1 + 3 crops x 2 + 2 eltwise x 2 = 36, plus the edge into `score` = 37.
- DeepLab v2 ASPP (VGG-16): 54 layers, 21 ReLUs in place -> 33 layer nodes + `fc8_interp` = 34.
  Edges: 25 convolutions + 5 poolings + 1 Interp + the 4-bottom Eltwise = 35, + 1 = 36.
- DeepLab v2 ResNet-101 MSc: 1360 layers, of which 312 BatchNorm, 312 Scale and 300 ReLU in
  place -> 436 layer nodes + `fc1_interp` = 437. Edges: 324 convolutions + 3 poolings +
  5 Interps + 99 two-bottom residual sums + 3 four-bottom ASPP sums + 1 three-bottom MAX fusion
  = 545, + 1 = 546.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protoseg import infer_shapes, load_net
from protoseg.cli import main
from protoseg.draw import FAMILIES, dot_source, drawing, family
from protoseg.layers import _PACKAGES, package_of, registry

ROOT = Path(__file__).resolve().parents[1]
NETS = {
    # name: (nodes, edges, folded in-place layers, output blob, its shape)
    "fcn8s": (33, 37, 15, "score", "1x21x500x500"),
    "deeplab_v2_aspp_vgg16": (34, 36, 21, "fc8_interp", "1x21x513x513"),
    "deeplab_v2_resnet101_msc": (437, 546, 924, "fc1_interp", "1x21x513x513"),
}
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")


def prototxt(name: str) -> str:
    return str(ROOT / "prototxts" / f"{name}.prototxt")


def draw_text(text: str, inputs=None) -> str:
    return dot_source(drawing(infer_shapes(load_net(text=text), inputs)))


def parse_dot(source: str):
    """{node id: label lines}, [(tail, head, label lines)] from dot_source's output."""
    nodes = {m.group(1): m.group(2).split("\\n")
             for m in re.finditer(r'^  (\w+) \[label="((?:[^"\\]|\\.)*)"', source, re.M)}
    edges = [(m.group(1), m.group(2), m.group(3).split("\\n"))
             for m in re.finditer(r'^  (\w+) -> (\w+) \[label="((?:[^"\\]|\\.)*)"\]', source, re.M)]
    return nodes, edges


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------------
# structure (DOT only: always runs)

@pytest.mark.parametrize("name", sorted(NETS))
def test_counts(name, capsys):
    n_nodes, n_edges, folded, _, _ = NETS[name]
    code, out, _ = run(capsys, "draw", prototxt(name))
    assert code == 0
    nodes, edges = parse_dot(out)
    assert (len(nodes), len(edges)) == (n_nodes, n_edges)
    assert sum(line.startswith("+ ") for lines in nodes.values() for line in lines) == folded


@pytest.mark.parametrize("name", sorted(NETS))
def test_output_node_shows_the_final_shape(name, capsys):
    *_, blob, shape = NETS[name]
    _, out, _ = run(capsys, "draw", prototxt(name))
    nodes, edges = parse_dot(out)
    assert nodes["out0"] == [blob, shape]
    assert [e for e in edges if e[1] == "out0"][0][2] == [blob, shape]


def test_fcn8s_in_place_relus_are_folded_into_their_convolutions(capsys):
    _, out, _ = run(capsys, "draw", prototxt("fcn8s"))
    nodes, _ = parse_dot(out)
    conv = [lines for lines in nodes.values() if lines[0] == "conv1_1"]
    assert len(conv) == 1
    assert conv[0] == ["conv1_1", "Convolution", "num_output: 64 kernel_size: 3 pad: 100",
                       "+ relu1_1 (ReLU)"]
    assert not [lines for lines in nodes.values() if lines[0].startswith("relu")]


def test_fcn8s_edges_carry_blob_names_and_shapes(capsys):
    _, out, _ = run(capsys, "draw", prototxt("fcn8s"))
    nodes, edges = parse_dot(out)
    name = {k: v[0] for k, v in nodes.items()}
    labelled = {(name[t], name[h]): lines for t, h, lines in edges}
    # caffe-semantics.md §8: conv1_1 sees 700 (pad 100) and gives 698; upscore8 568; data 500
    assert labelled[("input", "conv1_1")] == ["data", "1x3x500x500"]
    assert labelled[("conv1_1", "conv1_2")] == ["conv1_1", "1x64x698x698"]
    assert labelled[("upscore8", "score")] == ["upscore8", "1x21x568x568"]
    assert labelled[("input", "score")] == ["data", "1x3x500x500"]      # the crop's reference
    assert labelled[("pool4", "score_pool4")] == ["pool4", "1x512x44x44"]


def test_aspp_branches_each_read_pool5(capsys):
    _, out, _ = run(capsys, "draw", prototxt("deeplab_v2_aspp_vgg16"))
    nodes, edges = parse_dot(out)
    name = {k: v[0] for k, v in nodes.items()}
    # 513 -> 257 -> 129 -> 65 (pools 1-3, k3 s2 p1), pools 4 and 5 keep 65 (k3 s1 p1)
    assert sorted(name[h] for t, h, lines in edges if lines == ["pool5", "1x512x65x65"]) == \
        ["fc6_1", "fc6_2", "fc6_3", "fc6_4"]


def test_msc_residual_block_is_one_node_per_convolution(capsys):
    _, out, _ = run(capsys, "draw", prototxt("deeplab_v2_resnet101_msc"))
    nodes, _ = parse_dot(out)
    conv1 = [lines for lines in nodes.values() if lines[0] == "conv1"]
    assert conv1 == [["conv1", "Convolution", "num_output: 64 bias_term: false",
                      "kernel_size: 7 pad: 3 stride: 2", "+ bn_conv1 (BatchNorm)", "+ scale_conv1 (Scale)",
                      "+ conv1_relu (ReLU)"]]
    res2a = [lines for lines in nodes.values() if lines[0] == "res2a"]
    assert res2a == [["res2a", "Eltwise", "operation: SUM", "+ res2a_relu (ReLU)"]]


SLICE_THEN_RELU = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
layer { name: "slice" type: "Slice" bottom: "x" top: "a" top: "b" }
layer { name: "relu" type: "ReLU" bottom: "b" top: "b" }
"""


def test_in_place_layer_after_a_several_top_layer_keeps_its_node():
    nodes, edges = parse_dot(draw_text(SLICE_THEN_RELU))
    assert sorted(v[0] for v in nodes.values()) == ["a", "b", "in", "relu", "slice"]
    assert len(edges) == 4      # x into slice, b into relu, a and b to their output nodes


def test_rankdir(capsys):
    _, out, _ = run(capsys, "draw", prototxt("fcn8s"), "--rankdir", "lr")
    assert "rankdir=LR" in out


def test_nodes_are_coloured_by_family(capsys):
    _, out, _ = run(capsys, "draw", prototxt("fcn8s"))
    fill = dict(re.findall(r'label="(\w+)\\n[^"]*", fillcolor="(#[0-9a-f]{6})"', out))
    assert fill["conv1_1"] == fill["upscore8"] == FAMILIES["convolution"]
    assert fill["pool1"] == FAMILIES["pooling"]
    assert fill["score"] == fill["score_pool4c"] == FAMILIES["reshape"]
    assert fill["fuse_pool4"] == FAMILIES["merge"]
    assert fill["input"] == FAMILIES["data"]
    assert len(set(fill.values())) == 5


@pytest.mark.parametrize("package", _PACKAGES)
def test_every_layer_package_has_a_family(package):
    types = [t for t in registry() if package_of(t) == f"protoseg.layers.{package}"]
    assert types
    assert family(types[0]) in FAMILIES


NASTY = r"""
layer { name: "in \"quoted\" \\ & &amp; <b>" type: "Input" top: "x\ty" input_param { shape { dim: 1 dim: 2 } } }
layer { name: "p" type: "Power" bottom: "x\ty" top: "z" power_param { scale: 2 } }
"""


def test_names_are_escaped():
    source = draw_text(NASTY)
    assert r'label="in \"quoted\" \\ &amp; &amp;amp; <b>\nInput"' in source
    assert r'label="x\\x09y\n1x2"' in source          # the tab shown, not laid out
    assert source.count(" -> ") == 2


@needs_dot
def test_escaped_names_render_literally(tmp_path):
    (tmp_path / "n.prototxt").write_text(NASTY)
    assert main(["draw", str(tmp_path / "n.prototxt"), "-o", str(tmp_path / "n.svg")]) == 0
    svg = (tmp_path / "n.svg").read_text()
    # in SVG text: " as &quot;, & as &amp;, < as &lt;
    assert "in &quot;quoted&quot; \\ &amp; &amp;amp; &lt;b&gt;" in svg
    assert "x\\x09y" in svg


PARAMS = r"""
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
layer { name: "py" type: "Python" bottom: "x" top: "y"
        python_param { module: "my\"mod\\" layer: "L" param_str: "a\tb" } }
layer { name: "pw" type: "Power" bottom: "x" top: "z" power_param { power: 2 scale: 0.5 shift: 1e-05 } }
layer { name: "pool" type: "Pooling" bottom: "x" top: "p"
        pooling_param { pool: AVE kernel_h: 2 kernel_w: 1 global_pooling: false } }
"""


@pytest.mark.parametrize("layer,text", [
    ("in", "input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } }"),
    ("py", r'python_param { module: "my\"mod\\" layer: "L" param_str: "a\011b" }'),
    ("pw", "power_param { power: 2 scale: 0.5 shift: 1e-05 }"),
    ("pool", "pooling_param { pool: AVE kernel_h: 2 kernel_w: 1 global_pooling: false }"),
])
def test_parameters_in_protobuf_text_format(layer, text):
    from protoseg.schema import msg_text
    (settings,) = load_net(text=PARAMS).layer(layer).settings.items()
    assert f"{settings[0]} {{ {msg_text(settings[1])} }}" == text


def test_a_long_parameter_is_cut_short_in_the_label_and_whole_in_the_tooltip():
    source = draw_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
                       'layer { name: "py" type: "Python" bottom: "x" top: "y" '
                       f'python_param {{ module: "m" param_str: "{"a" * 100}" }} }}\n', {"y": (1,)})
    nodes, _ = parse_dot(source)
    assert nodes["n1"] == ["py", "Python", r'module: \"m\"', r'param_str: \"' + "a" * 25 + "..."]
    assert f'param_str: \\"{"a" * 100}\\" }}"' in source


def test_draw_does_not_import_torch(tmp_path):
    code = ("import sys, protoseg.cli as c; c.main(['draw', %r, '-o', %r]); "
            "sys.exit(3 if 'torch' in sys.modules else 0)" % (prototxt("fcn8s"), str(tmp_path / "f.dot")))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.dot").read_text().startswith('digraph "fcn8s" {')


# ---------------------------------------------------------------------------------------------
# errors

def test_missing_dot_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = run(capsys, "draw", prototxt("fcn8s"), "-o", str(tmp_path / "f.svg"))
    assert code == 2
    assert "needs Graphviz's `dot` program, which is not installed" in err
    assert "apt-get install graphviz" in err and "-o NAME.dot" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_dot_output_needs_no_graphviz(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, _ = run(capsys, "draw", prototxt("fcn8s"), "-o", str(tmp_path / "f.dot"))
    assert code == 0
    assert out == f"wrote {tmp_path / 'f.dot'}: 47 layers in 32 nodes (15 in-place layers folded), " \
                  f"1 output, 37 edges\n"


def test_unknown_extension(capsys, tmp_path):
    code, _, err = run(capsys, "draw", prototxt("fcn8s"), "-o", str(tmp_path / "f.jpg"))
    assert code == 2
    assert "cannot tell the drawing's format from its name: end it in .dot, .svg, .png, .pdf or .html" in err


def test_bad_rankdir_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["draw", prototxt("fcn8s"), "--rankdir", "UP"])
    assert e.value.code == 2


def test_shape_errors_are_reported_as_by_shapes(capsys, tmp_path):
    p = tmp_path / "bad.prototxt"
    p.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }\n'
                 'layer { name: "conv" type: "Convolution" bottom: "x" top: "y" convolution_param { num_output: 1 kernel_size: 5 } }\n')
    code, _, err = run(capsys, "draw", str(p), "-o", str(tmp_path / "bad.dot"))
    assert code == 2
    assert f"{p}:2:1: layer 'conv' (Convolution):" in err
    assert not (tmp_path / "bad.dot").exists()


# ---------------------------------------------------------------------------------------------
# SVG and PNG through Graphviz

@needs_dot
@pytest.mark.parametrize("name", sorted(NETS))
def test_svg_structure(name, tmp_path):
    n_nodes, n_edges, folded, blob, shape = NETS[name]
    out = tmp_path / f"{name}.svg"
    assert main(["draw", prototxt(name), "-o", str(out)]) == 0
    svg = out.read_text()
    assert svg.count('class="node"') == n_nodes
    assert svg.count('class="edge"') == n_edges
    assert len(re.findall(r">\+ [^<]+ \((?:ReLU|BatchNorm|Scale)\)</text>", svg)) == folded
    assert f">{shape}</text>" in svg
    assert '<g id="out0" class="node">' in svg


@needs_dot
def test_png(tmp_path):
    out = tmp_path / "fcn8s.png"
    assert main(["draw", prototxt("fcn8s"), "-o", str(out), "--rankdir", "LR"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > height      # left to right: wider than tall
