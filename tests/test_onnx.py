"""ONNX export (protoseg export / protoseg.export_onnx): every model passes onnx.checker and ONNX
Runtime computes what the (unoptimized) torch module computes, to 1e-4 of the output's range, on
FCN-8s, a BatchNorm ResNet, the DeepLab nets (Interp) and random small nets (Caffe's ceil
pooling, Crop, Interp, Eltwise, Concat, Deconvolution, BatchNorm + Scale). Values keep the Caffe
blob names; height and width are dynamic where the net allows it, and ONNX Runtime runs the
model at another size too.

Skipped when onnx, onnxscript or onnxruntime are not installed (the `onnx` extra)."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
import torch  # noqa: E402

from protoseg import compile_net, export_onnx, plan_net  # noqa: E402
from protoseg.backends.onnx import size_dependent_layers  # noqa: E402

from test_corpus import CORPUS  # noqa: E402
from test_optimize import random_blobs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETS = os.path.join(ROOT, "prototxts")


def run_onnx(path, *arrays):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(session.get_inputs(), arrays)}
    return session.run(None, feeds)


def rel_err(got, want) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def check_export(tmp_path, prototxt=None, *, text=None, inputs=None, outputs=None, seed=0,
                 other_size=None):
    """Export with random weights, then compare ONNX Runtime with the torch module (and at
    `other_size` too when given). Returns the export result."""
    plan = plan_net(prototxt, inputs, outputs, text=text)
    blobs = random_blobs(plan, seed)
    path = tmp_path / "net.onnx"
    result = export_onnx(prototxt, path, blobs, inputs, outputs, text=text)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    model = compile_net(prototxt, blobs, inputs, outputs, text=text)
    gen = torch.Generator().manual_seed(seed + 1)
    sizes = [tuple(i.shape) for i in plan.inputs]
    for shape in [sizes] + ([[other_size]] if other_size else []):
        xs = [torch.rand(s, generator=gen) * 2 - 1 for s in shape]
        with torch.inference_mode():
            want = model(*xs)
        want = list(want.values()) if isinstance(want, dict) else [want]
        got = run_onnx(path, *[x.numpy() for x in xs])
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape)
            assert rel_err(g, w.numpy()) <= 1e-4
    return result, onnx.load(path)


def value_names(model) -> set:
    return {v for n in model.graph.node for v in n.output}


# ---------------------------------------------------------------------------------------------
# FCN-8s, ResNet, DeepLab

def test_fcn8s_exports_dynamic_with_caffe_names(tmp_path):
    result, model = check_export(tmp_path, os.path.join(NETS, "fcn8s.prototxt"),
                                 inputs={"data": (1, 3, 64, 64)}, other_size=(1, 3, 90, 70))
    assert result.dynamic == ["data"] and result.fixed_by == []
    assert model.opset_import[0].version >= 17
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] == ["score"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[:2]] == [1, 3] and all(d.dim_param for d in dims[2:])
    assert {"conv1_1", "conv1_1_relu1_1", "pool5", "fc7", "upscore2", "score_pool4c",
            "upscore8"} <= value_names(model)


RESNET50 = os.path.join(CORPUS, "resnet", "ResNet-50-deploy.prototxt")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(RESNET50), reason="corpus not present")
def test_batchnorm_resnet50_exports_at_a_small_size(tmp_path):
    result, model = check_export(tmp_path, RESNET50, inputs={"data": (1, 3, 64, 64)},
                                 outputs=["res5c"], other_size=(1, 3, 96, 64))
    assert result.dynamic == ["data"]
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops and "Mul" not in ops      # folded into the convs
    assert {"conv1", "res2a_branch2a", "res5c"} <= value_names(model) | {o.name for o in model.graph.output}


def test_innerproduct_over_pixels_fixes_the_size(tmp_path):
    # fc1000 of a ResNet reads C*H*W values: at another size its weight has another shape
    text = ('name: "t" layer { name: "data" type: "Input" top: "data" input_param { shape { '
            'dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
            'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
            'convolution_param { num_output: 4 kernel_size: 3 } }\n'
            'layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" '
            'inner_product_param { num_output: 2 } }\n')
    assert size_dependent_layers(plan_net(text=text)) == [
        "layer 'fc' (InnerProduct) is CaffeInnerProduct(144, 2, axis=1) at data 8x8 but "
        "CaffeInnerProduct(5776, 2, axis=1) at data 40x40"]      # 4*6*6, 4*38*38
    result, model = check_export(tmp_path, text=text)
    assert result.dynamic == [] and "'fc' (InnerProduct)" in result.fixed_by[0]
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 8, 8]


DEEPLAB = {"deeplab_v1_largefov": 65, "deeplab_v2_aspp_vgg16": 65, "deeplab_v2_resnet101_msc": 65}


@pytest.mark.slow
@pytest.mark.parametrize("net", DEEPLAB)
def test_deeplab_nets_with_interp_export(tmp_path, net):
    size = DEEPLAB[net]
    result, model = check_export(tmp_path, os.path.join(NETS, f"{net}.prototxt"),
                                 inputs={"data": (1, 3, size, size)})
    assert "Resize" in {n.op_type for n in model.graph.node} or net == "deeplab_v1_largefov"


# ---------------------------------------------------------------------------------------------
# random small nets

def random_net(seed: int) -> str:
    """A seeded random chain of layers with Caffe's size rules in play: convolutions (stride,
    pad, dilation, groups), ceil-mode pooling with padding (Caffe's clip rule), BatchNorm +
    Scale, residual Eltwise, Concat, Deconvolution + Crop back to a reference, Interp."""
    rng = random.Random(seed)
    c, h, w = rng.choice([3, 4]), rng.randint(14, 24), rng.randint(14, 24)
    out = [f'name: "random{seed}"',
           f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 '
           f'dim: {c} dim: {h} dim: {w} }} }} }}']
    top = "data"
    for i in range(rng.randint(4, 8)):
        kind = rng.choice(["conv", "pool", "bn", "eltwise", "concat", "deconv_crop", "interp"])
        name = f"{kind}{i}"
        if kind == "conv" or (kind == "pool" and min(h, w) < 6):
            k, s, p, d = rng.choice([1, 3]), rng.choice([1, 1, 2]), rng.choice([0, 1]), rng.choice([1, 2])
            g, n = (2, 4) if c % 2 == 0 and rng.random() < 0.3 else (1, rng.choice([4, 6]))
            if (h + 2 * p - d * (k - 1) - 1) < s or (w + 2 * p - d * (k - 1) - 1) < s:
                s, p = 1, 1
            out.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{top}" top: "{name}" '
                       f'convolution_param {{ num_output: {n} kernel_size: {k} stride: {s} pad: {p} '
                       f'dilation: {d} group: {g} }} }}')
            out.append(f'layer {{ name: "relu{i}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
            h, w, c, top = ((h + 2 * p - d * (k - 1) - 1) // s + 1, (w + 2 * p - d * (k - 1) - 1) // s + 1,
                            n, name)
        elif kind == "pool":
            k, s, p = rng.choice([2, 3]), rng.choice([1, 2, 3]), rng.choice([0, 1])
            pool = rng.choice(["MAX", "AVE"])
            if pool == "AVE" and s > k and not p:    # Caffe divides 0 by 0 in a window past the end
                s = k
            out.append(f'layer {{ name: "{name}" type: "Pooling" bottom: "{top}" top: "{name}" '
                       f'pooling_param {{ pool: {pool} kernel_size: {k} stride: {s} pad: {p} }} }}')
            pooled = [-(-(x + 2 * p - k) // s) + 1 for x in (h, w)]
            h, w = [o - 1 if p and (o - 1) * s >= x + p else o for o, x in zip(pooled, (h, w))]
            top = name
        elif kind == "bn":
            out.append(f'layer {{ name: "{name}" type: "BatchNorm" bottom: "{top}" top: "{name}" }}')
            out.append(f'layer {{ name: "scale{i}" type: "Scale" bottom: "{name}" top: "{name}" '
                       f'scale_param {{ bias_term: true }} }}')
            top = name
        elif kind in ("eltwise", "concat"):
            out.append(f'layer {{ name: "{name}_a" type: "Convolution" bottom: "{top}" top: "{name}_a" '
                       f'convolution_param {{ num_output: {c} kernel_size: 3 pad: 1 }} }}')
            layer_type, param = (("Eltwise", "eltwise_param { operation: " + rng.choice(["SUM", "MAX", "PROD"]) + " }")
                                 if kind == "eltwise" else ("Concat", ""))
            out.append(f'layer {{ name: "{name}" type: "{layer_type}" bottom: "{top}" '
                       f'bottom: "{name}_a" top: "{name}" {param} }}')
            c, top = (c if kind == "eltwise" else 2 * c), name
        elif kind == "deconv_crop":
            out.append(f'layer {{ name: "{name}_up" type: "Deconvolution" bottom: "{top}" '
                       f'top: "{name}_up" convolution_param {{ num_output: {c} kernel_size: 4 stride: 2 '
                       f'bias_term: false }} }}')
            off = rng.randint(0, 2)
            out.append(f'layer {{ name: "{name}" type: "Crop" bottom: "{name}_up" bottom: "{top}" '
                       f'top: "{name}" crop_param {{ axis: 2 offset: {off} }} }}')
            top = name
        else:
            zoom = rng.choice(["zoom_factor: 2", "shrink_factor: 2", f"height: {h + 3} width: {w - 2}"])
            out.append(f'layer {{ name: "{name}" type: "Interp" bottom: "{top}" top: "{name}" '
                       f'interp_param {{ {zoom} }} }}')
            if zoom.startswith("zoom"):
                h, w = 2 * h - 1, 2 * w - 1
            elif zoom.startswith("shrink"):
                h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
            else:
                h, w = h + 3, w - 2
            top = name
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("seed", range(8), ids=[f"random-net-{s}" for s in range(8)])
def test_random_small_net_exports(tmp_path, seed):
    text = random_net(seed)
    plan_net(text=text)                     # the generator's size bookkeeping is Caffe's
    check_export(tmp_path, text=text, seed=seed)


# ---------------------------------------------------------------------------------------------
# the command

def test_cli_export_writes_a_checked_model(tmp_path, capsys):
    from protoseg.cli import main
    out = tmp_path / "fcn32s.onnx"
    assert main(["export", os.path.join(NETS, "fcn32s.prototxt"), "--input", "data=1,3,48,48",
                 "--static", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out} (opset 18, ")
    assert "; inputs data; outputs score)" in printed
    assert "fixed input sizes: dynamic sizes were not asked for" in printed
    onnx.checker.check_model(onnx.load(out))


def test_cli_export_refuses_an_unknown_output(tmp_path, capsys):
    from protoseg.cli import main
    assert main(["export", os.path.join(NETS, "fcn32s.prototxt"), "--outputs", "scroe",
                 "-o", str(tmp_path / "x.onnx")]) == 2
    assert "unknown output blob 'scroe'" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_missing_onnx_packages_are_a_clear_error(monkeypatch, tmp_path):
    import importlib.util

    import protoseg.backends.onnx as backend
    from protoseg.errors import ProtosegError
    real = importlib.util.find_spec
    monkeypatch.setattr(backend.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(ProtosegError, match=r"^ONNX export needs onnxscript: pip install 'protoseg\[onnx\]'$"):
        export_onnx(os.path.join(NETS, "fcn32s.prototxt"), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
