"""Parameters that come from the prototxt: shared blobs (`param { name }`, Caffe's
Net::AppendParam) and blobs fixed by constant fillers, in compile_net, port and the standalone
file. Expected values are computed here with numpy from the blobs the test writes."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from caffe_reference import caffe_conv
from protoseg import compile_net, export_module, plan_net
from protoseg.caffemodel import write_caffemodel
from protoseg.errors import GraphError, WeightsError
from protoseg.weights import state_dict

# Two towers (a siamese pair): conv_b and fc_b name the params of conv_a and fc_a.
SIAMESE = """name: "siamese"
layer { name: "in" type: "Input" top: "a" top: "b"
        input_param { shape { dim: 1 dim: 2 dim: 5 dim: 5 } shape { dim: 1 dim: 2 dim: 5 dim: 5 } } }
layer { name: "conv_a" type: "Convolution" bottom: "a" top: "conv_a"
        param { name: "conv_w" } param { name: "conv_b" }
        convolution_param { num_output: 3 kernel_size: 3 } }
layer { name: "conv_b" type: "Convolution" bottom: "b" top: "conv_b"
        param { name: "conv_w" } param { name: "conv_b" }
        convolution_param { num_output: 3 kernel_size: 3 } }
"""
W = np.arange(3 * 2 * 3 * 3, dtype=np.float32).reshape(3, 2, 3, 3) / 50 - 0.5
B = np.array([0.5, -1.0, 2.0], np.float32)


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, 2, 5, 5)).astype(np.float32) for _ in range(2)]


def run(model, *xs):
    import torch
    with torch.no_grad():
        out = model(*[torch.from_numpy(x) for x in xs])
    return {k: v.numpy() for k, v in out.items()}


def test_plan_names_owner_and_sharer():
    steps = {s.attr: s for s in plan_net(text=SIAMESE).steps}
    assert steps["conv_a"].shares == {} and steps["conv_a"].tied is None
    assert {i: (s.name, s.owner, s.owner_blob) for i, s in steps["conv_b"].shares.items()} == \
        {0: ("conv_w", "conv_a", 0), 1: ("conv_b", "conv_a", 1)}
    assert steps["conv_b"].tied == "conv_a"


def test_compiled_towers_hold_one_parameter():
    model = compile_net(text=SIAMESE)
    assert model.conv_b.weight is model.conv_a.weight and model.conv_b.bias is model.conv_a.bias
    assert len(list(model.parameters())) == 2


@pytest.mark.parametrize("present", [["conv_a", "conv_b"], ["conv_a"], ["conv_b"]],
                         ids=["both-copies", "owner-only", "sharer-only"])
def test_every_tower_computes_with_the_shared_blobs(tmp_path, present):
    """A caffemodel written by Caffe holds every layer's copy; one that holds only one of them
    (Caffe's HDF5 snapshots write owners only) still gives both layers the values."""
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [(n, "Convolution", [W, B]) for n in present])
    x, y = inputs()
    out = run(compile_net(text=SIAMESE, weights=str(path)), x, y)
    np.testing.assert_allclose(out["conv_a"], caffe_conv(x, W, B, (1, 1), (0, 0), (1, 1), 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["conv_b"], caffe_conv(y, W, B, (1, 1), (0, 0), (1, 1), 1), rtol=1e-5, atol=1e-5)


def test_copies_that_differ_are_refused_when_strict(tmp_path):
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [("conv_a", "Convolution", [W, B]), ("conv_b", "Convolution", [W + 1, B])])
    with pytest.raises(WeightsError) as e:
        compile_net(text=SIAMESE, weights=str(path))
    msg = str(e.value)
    assert "layer 'conv_a' (Convolution)" in msg and "shared parameter 'conv_w'" in msg
    assert "max difference 1" in msg and "keeps the last in the file, layer 'conv_b''s" in msg


@pytest.mark.parametrize("order", [("conv_a", "conv_b"), ("conv_b", "conv_a")], ids=["a-then-b", "b-then-a"])
def test_no_strict_keeps_the_copy_last_in_the_file(tmp_path, order):
    """Caffe's CopyTrainedLayersFrom writes each copy into the one shared blob in file order."""
    copies = {"conv_a": [W, B], "conv_b": [W * 2, B * 3]}
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [(n, "Convolution", copies[n]) for n in order])
    w, b = copies[order[-1]]
    x, y = inputs(1)
    out = run(compile_net(text=SIAMESE, weights=str(path), strict=False), x, y)
    np.testing.assert_allclose(out["conv_a"], caffe_conv(x, w, b, (1, 1), (0, 0), (1, 1), 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["conv_b"], caffe_conv(y, w, b, (1, 1), (0, 0), (1, 1), 1), rtol=1e-5, atol=1e-5)


def test_strict_shape_mismatch_is_refused():
    cut = SIAMESE.index('layer { name: "conv_b"')
    text = SIAMESE[:cut] + SIAMESE[cut:].replace("kernel_size: 3", "kernel_size: 1")
    with pytest.raises(GraphError) as e:
        plan_net(text=text)
    msg = str(e.value)
    assert "layer 'conv_b' (Convolution)" in msg and msg.startswith("<string>:8:17:")
    assert "cannot share parameter 'conv_w' owned by layer 'conv_a' (blob 0, (3, 2, 3, 3)): blob " \
           "0 of this layer is (3, 2, 1, 1)" in msg and "share_mode STRICT" in msg


# PERMISSIVE: an InnerProduct weight (3, 18) shares the 18 values per output of a 3x3 convolution's
# (3, 2, 3, 3) weight; the bias is its own. Not one module (other types): the values are shared.
PERMISSIVE = """name: "permissive"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "conv"
        param { name: "w" } convolution_param { num_output: 3 kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "fc"
        param { name: "w" share_mode: PERMISSIVE } param { name: "fc_bias" }
        inner_product_param { num_output: 3 } }
"""


def test_permissive_sharing_reshapes_and_keeps_own_blobs(tmp_path):
    fc_bias = np.array([1.0, 2.0, 3.0], np.float32)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [("conv", "Convolution", [W, B]),
                            ("fc", "InnerProduct", [W.reshape(3, 18), fc_bias])])
    steps = {s.attr: s for s in plan_net(text=PERMISSIVE).steps}
    assert steps["fc"].tied is None and list(steps["fc"].shares) == [0]
    x = inputs()[0][:, :, :3, :3].copy()
    import torch
    with torch.no_grad():
        out = compile_net(text=PERMISSIVE, weights=str(path))(torch.from_numpy(x))
    want_fc = W.reshape(3, 18) @ x.reshape(18) + fc_bias
    np.testing.assert_allclose(out["fc"].numpy().ravel(), want_fc, rtol=1e-5)
    np.testing.assert_allclose(out["conv"].numpy().ravel(), want_fc - fc_bias + B, rtol=1e-5)


def test_partial_sharing_ties_nothing_but_shares_the_values(tmp_path):
    """conv_b shares the weight only: its bias is its own blob, so the modules are not tied."""
    text = SIAMESE.replace("""top: "conv_b"
        param { name: "conv_w" } param { name: "conv_b" }""", """top: "conv_b"
        param { name: "conv_w" }""")
    steps = {s.attr: s for s in plan_net(text=text).steps}
    assert steps["conv_b"].tied is None and list(steps["conv_b"].shares) == [0]
    own_bias = np.array([7.0, 8.0, 9.0], np.float32)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [("conv_a", "Convolution", [W, B]), ("conv_b", "Convolution", [W, own_bias])])
    x, y = inputs(2)
    out = run(compile_net(text=text, weights=str(path)), x, y)
    np.testing.assert_allclose(out["conv_b"], caffe_conv(y, W, own_bias, (1, 1), (0, 0), (1, 1), 1), rtol=1e-5, atol=1e-5)


def test_standalone_file_ties_in_init(tmp_path):
    from safetensors.torch import load_file
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, [("conv_a", "Convolution", [W, B]), ("conv_b", "Convolution", [W, B])])
    proto = tmp_path / "siamese.prototxt"
    proto.write_text(SIAMESE)
    py, weights = export_module(proto, tmp_path / "out", weights=str(path))
    assert "tie_parameters(self.conv_b, self.conv_a)" in open(py).read()
    spec = importlib.util.spec_from_file_location("siamese_standalone", py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop("siamese_standalone", None)
    net = module.Siamese().eval()
    net.load_state_dict(load_file(weights))
    assert net.conv_b.weight is net.conv_a.weight and len(list(net.parameters())) == 2
    x, y = inputs(3)
    out = run(net, x, y)
    np.testing.assert_allclose(out["conv_b"], caffe_conv(y, W, B, (1, 1), (0, 0), (1, 1), 1), rtol=1e-5, atol=1e-5)


# Constant fillers: Caffe fills every layer the caffemodel does not cover from its fillers.
FILLED = """name: "filled"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }
layer { name: "up" type: "Deconvolution" bottom: "x" top: "up"
        convolution_param { num_output: 2 group: 2 kernel_size: 2 stride: 2 FILLERS } }
"""
FILLER_CASES = {   # id -> (convolution_param fillers and bias_term, the blobs they give or None)
    "weight-constant-1-no-bias": ('bias_term: false weight_filler { type: "constant" value: 1 }',
                                  [np.ones((2, 1, 2, 2), np.float32)]),
    "type-defaults-to-constant": ("bias_term: false weight_filler { value: 2 }",
                                  [np.full((2, 1, 2, 2), 2, np.float32)]),
    "weight-and-bias-constant": ('weight_filler { type: "constant" value: 1 } '
                                 'bias_filler { type: "constant" value: -0.5 }',
                                 [np.ones((2, 1, 2, 2), np.float32), np.full((2,), -0.5, np.float32)]),
    "bias-filler-unset": ('weight_filler { type: "constant" value: 1 }', None),
    "weight-filler-unset": ("bias_term: false", None),
    "gaussian": ('bias_term: false weight_filler { type: "gaussian" std: 0.01 }', None),
}


@pytest.mark.parametrize("case", sorted(FILLER_CASES))
def test_constant_fillers_give_the_blobs_of_a_layer_the_caffemodel_lacks(case):
    fillers, want = FILLER_CASES[case]
    plan = plan_net(text=FILLED.replace("FILLERS", fillers))
    if want is None:
        with pytest.raises(WeightsError) as e:
            state_dict(plan, {"other": []})
        assert e.value.kind == "missing" and "layer 'up' (Deconvolution)" in str(e.value)
        return
    got = state_dict(plan, {"other": []})
    assert sorted(got) == ["up.bias", "up.weight"][2 - len(want):]
    for key, array in zip(["up.weight", "up.bias"], want):
        np.testing.assert_array_equal(got[key], array)


def test_the_caffemodel_wins_over_the_filler(tmp_path):
    w = np.full((2, 1, 2, 2), 3, np.float32)
    plan = plan_net(text=FILLED.replace("FILLERS", 'bias_term: false weight_filler { value: 1 }'))
    np.testing.assert_array_equal(state_dict(plan, {"up": [w]})["up.weight"], w)


def test_compile_without_weights_uses_constant_fillers():
    """The deconvolution of ones with stride = kernel = 2 and a group per channel repeats every
    value 2x2 (nearest up-sampling)."""
    import torch
    model = compile_net(text=FILLED.replace("FILLERS", 'bias_term: false weight_filler { value: 1 }'))
    x = torch.arange(18, dtype=torch.float32).reshape(1, 2, 3, 3)
    with torch.no_grad():
        y = model(x)
    assert torch.equal(y, x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))
