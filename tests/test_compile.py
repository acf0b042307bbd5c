"""protoseg.compile / protoseg.export / `protoseg compile`: what gets compiled, how the module
reads, and that the standalone file behaves exactly like the in-memory module.

Layer arithmetic against Caffe's loops is in test_numerics.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from protoseg import compile_net
from protoseg.backends.fx import build_module
from protoseg.compile import check_shapes, load_weights
from protoseg.errors import GraphError, ProtosegError, UnsupportedLayerError, WeightsError
from protoseg.export import export_module, write_module
from protoseg.layers.crop.modules import CaffeCrop
from protoseg.layers.pooling.modules import CaffePooling
from protoseg.plan import plan_net
from protoseg.weights import state_dict
from protoseg.net import load_net
from protoseg.shapes import infer_shapes

import caffe_pb as pb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FCN8S = os.path.join(ROOT, "prototxts", "fcn8s.prototxt")


def _input(name, shape):
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'layer {{ name: "input_{name}" type: "Input" top: "{name}" input_param {{ shape {{ {dims} }} }} }}\n'


# ---------------------------------------------------------------------------------------------
# FCN-8s

@pytest.fixture(scope="module")
def fcn8s():
    torch.manual_seed(0)
    return compile_net(FCN8S, inputs={"data": (1, 3, 64, 64)})


def test_fcn8s_every_executed_shape_equals_inferred(fcn8s):
    checked, bad = check_shapes(fcn8s)
    net = load_net(FCN8S)
    assert bad == []
    assert checked == len(net.layers)        # 45 layers + the input, each one value


def test_fcn8s_output_is_crop_of_upscore8(fcn8s):
    with torch.no_grad():
        y = fcn8s(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    assert tuple(y.shape) == (1, 21, 64, 64)
    offsets = {name: m.offset for name, m in fcn8s.named_children() if isinstance(m, CaffeCrop)}
    assert offsets == {"score_pool4c": (5, 5), "score_pool3c": (9, 9), "score": (31, 31)}


def test_fcn8s_one_call_module_per_layer_with_torch_modules(fcn8s):
    calls = [n for n in fcn8s.graph.nodes if n.op == "call_module"]
    net = load_net(FCN8S)
    assert [n.target for n in calls] == [l.name for l in net.layers if l.type != "Input"]
    kinds = {type(m) for m in fcn8s.children()}
    assert kinds == {nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.ConvTranspose2d, CaffeCrop,
                     type(fcn8s.fuse_pool4)}
    assert all(m.inplace for m in fcn8s.children() if isinstance(m, nn.ReLU))
    assert fcn8s.pool1.ceil_mode and fcn8s.upscore8.stride == (8, 8) and fcn8s.upscore8.bias is None


def test_print_readable_shows_inferred_shapes_and_caffe_layers(fcn8s):
    code = fcn8s.print_readable(print_output=False)
    assert 'score: "f32[1, 21, 64, 64]" = self.score(upscore8, data)' in code
    assert 'conv1_1_relu1_1: "f32[1, 64, 262, 262]" = self.relu1_1(conv1_1)' in code
    assert "fcn8s.prototxt:214 in score, code: Crop" in code


# ---------------------------------------------------------------------------------------------
# names, inputs, outputs, what is left out

NAMED = (_input("data", (1, 3, 8, 8))
         + 'layer { name: "conv1/3x3-a" type: "Convolution" bottom: "data" top: "conv1/out" '
           'convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }\n'
           'layer { name: "1relu" type: "ReLU" bottom: "conv1/out" top: "conv1/out" }\n'
           'layer { name: "forward" type: "Pooling" bottom: "conv1/out" top: "pool" '
           'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n')


def test_attribute_names_are_cleaned_and_originals_kept():
    model = compile_net(text=NAMED)
    assert [name for name, _ in model.named_children()] == ["conv1_3x3_a", "_1relu", "forward_"]
    assert model.protoseg_layers == {"conv1_3x3_a": ("conv1/3x3-a", "Convolution"),
                                     "_1relu": ("1relu", "ReLU"), "forward_": ("forward", "Pooling")}
    metas = [n.meta["caffe_layer"] for n in model.graph.nodes if n.op == "call_module"]
    assert metas == ["conv1/3x3-a (Convolution)", "1relu (ReLU)", "forward (Pooling)"]


def test_outputs_by_caffe_name_give_a_dict_and_prune():
    model = compile_net(text=NAMED, outputs=["conv1/out"])
    assert [n for n, _ in model.named_children()] == ["conv1_3x3_a", "_1relu"]
    assert ("forward", "Pooling", "not needed for the requested outputs") in model.protoseg_dropped
    two = compile_net(text=NAMED, outputs=["pool", "conv1/out"])
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = two(x)
    assert list(y) == ["pool", "conv1/out"]
    assert (y["conv1/out"] >= 0).all()          # the blob's last version: after the ReLU


def test_unknown_output_lists_the_blobs():
    with pytest.raises(ProtosegError) as info:
        compile_net(text=NAMED, outputs=["pool1"])
    assert "unknown output blob 'pool1'" in str(info.value)
    assert "conv1/out, data, pool" in str(info.value)
    assert "did you mean 'pool'?" in str(info.value)


def test_inputs_positional_or_by_keyword():
    text = (_input("a", (2, 3)) + _input("b", (2, 3))
            + 'layer { name: "d" type: "Eltwise" bottom: "a" bottom: "b" top: "y" '
              'eltwise_param { coeff: 1 coeff: -1 } }\n')
    model = compile_net(text=text)
    a, b = torch.rand(2, 3), torch.rand(2, 3)
    with torch.no_grad():
        assert torch.equal(model(a, b), a - b)
        assert torch.equal(model(b=b, a=a), a - b)


TRAIN_VAL = """name: "tv"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { source: "x" batch_size: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" include { phase: TEST } }
layer { name: "silence" type: "Silence" bottom: "fc" }
"""


def test_losses_accuracy_silence_and_unused_label_are_left_out():
    # the label's shape is never given: it is not needed for what is compiled
    model = compile_net(text=TRAIN_VAL, inputs={"data": (2, 5)})
    assert model.protoseg_dropped == [
        ("loss", "SoftmaxWithLoss", "not part of inference (loss, accuracy, sink or post-processing layer)"),
        ("acc", "Accuracy", "not part of inference (loss, accuracy, sink or post-processing layer)"),
        ("silence", "Silence", "not part of inference (loss, accuracy, sink or post-processing layer)"),
        ("label", "input", "not used (top of data layer 'data', Data)"),
    ]
    assert [n.target for n in model.graph.nodes if n.op == "placeholder"] == ["data"]
    assert tuple(model(torch.rand(2, 5)).shape) == (2, 3)


def test_output_from_a_loss_layer_is_refused():
    with pytest.raises(GraphError, match="'loss' .*left out"):
        compile_net(text=TRAIN_VAL, inputs={"data": (2, 5)}, outputs=["loss"])


def test_every_layer_that_cannot_be_lowered_is_listed_at_once():
    text = (_input("data", (1, 3, 8, 8))
            + 'layer { name: "stoch" type: "Pooling" bottom: "data" top: "p" phase: TRAIN '
              'pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 } }\n'
              'layer { name: "proposal" type: "Python" bottom: "p" top: "props" '
              'python_param { module: "m" layer: "L" } }\n'
              'layer { name: "crf" type: "MultiStageMeanfield" bottom: "data" bottom: "data" bottom: "data" '
              'top: "q" multi_stage_meanfield_param { num_iterations: 2 } }\n'
              'layer { name: "fc" type: "InnerProduct" bottom: "q" top: "fc" '
              'inner_product_param { num_output: 2 } }\n')
    with pytest.raises(UnsupportedLayerError) as info:
        compile_net(text=text, inputs={"props": (1, 4)})
    err = info.value
    assert [(n, t) for n, t, _ in err.layers] == [("stoch", "Pooling"), ("proposal", "Python"),
                                                  ("crf", "MultiStageMeanfield")]
    assert "cannot compile 3 layers" in str(err) and "STOCHASTIC pooling in the TRAIN phase" in str(err)
    assert "register its class as layer type 'Python:m.L'" in str(err)
    assert "MultiStageMeanfield: no (permutohedral-lattice filtering is not implemented)" in str(err)


def test_prototxt_as_text_path_or_pathlike(tmp_path):
    path = tmp_path / "n.prototxt"
    path.write_text(NAMED)
    a, b = compile_net(text=NAMED), compile_net(str(path))
    c = compile_net(path)
    assert [type(m) for m in a.children()] == [type(m) for m in b.children()] == [type(m) for m in c.children()]


# ---------------------------------------------------------------------------------------------
# module choices, in place, aliasing

@pytest.mark.parametrize("param, cls", [
    pytest.param("pool: MAX kernel_size: 2 stride: 2", nn.MaxPool2d, id="k2s2-torch"),
    pytest.param("pool: AVE kernel_size: 3 stride: 2 pad: 1", nn.AvgPool2d, id="k3s2p1-torch"),
    pytest.param("pool: MAX kernel_size: 1 stride: 2", CaffePooling, id="stride-gt-kernel-caffe"),
    pytest.param("pool: MAX kernel_size: 3 stride: 1 pad: 2", CaffePooling, id="pad-gt-half-caffe"),
    pytest.param("pool: AVE global_pooling: true", nn.AdaptiveAvgPool2d, id="global"),
])
def test_pooling_uses_torch_only_where_it_agrees(param, cls):
    model = compile_net(text=_input("x", (1, 2, 10, 10))
                        + f'layer {{ name: "p" type: "Pooling" bottom: "x" top: "y" pooling_param {{ {param} }} }}')
    assert type(model.p) is cls


@pytest.mark.parametrize("shape, cls", [
    pytest.param((1, 2, 9), nn.Conv1d, id="1d"),
    pytest.param((1, 2, 5, 5), nn.Conv2d, id="2d"),
    pytest.param((1, 2, 4, 4, 4), nn.Conv3d, id="3d"),
])
def test_convolution_nd_is_torch_conv(shape, cls):
    model = compile_net(text=_input("x", shape) + 'layer { name: "c" type: "Convolution" bottom: "x" '
                        'top: "y" convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }')
    assert type(model.c) is cls
    assert tuple(model(torch.rand(shape)).shape) == shape[:1] + (3,) + shape[2:]


@pytest.mark.parametrize("shape, param, message", [
    pytest.param((1, 2, 3, 3, 3, 3), "", "4-D convolution: torch has Conv1d, Conv2d and Conv3d only", id="4-spatial-axes"),
    pytest.param((2, 4, 5, 5), "axis: 2", "convolution over channel axis 2", id="channel-axis-2"),
])
def test_convolution_torch_cannot_express_is_unsupported(shape, param, message):
    with pytest.raises(UnsupportedLayerError, match=message):
        compile_net(text=_input("x", shape) + 'layer { name: "c" type: "Convolution" bottom: "x" top: "y" '
                    f'convolution_param {{ num_output: 2 kernel_size: 1 {param} }} }}')


def test_train_phase_batchnorm_and_dropout_follow_caffe():
    text = (_input("x", (4, 3))
            + 'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }\n'
              'layer { name: "drop" type: "Dropout" bottom: "x" top: "x" }\n')
    test, train = compile_net(text=text), compile_net(text=text, phase="TRAIN")
    assert test.bn.track_running_stats and not train.bn.track_running_stats
    assert type(test.drop) is nn.Dropout and train.drop.sample      # drops out even in eval()


def test_no_in_place_on_inputs_or_views():
    text = (_input("x", (1, 2, 6, 6)) + _input("ref", (1, 2, 4, 4))
            + 'layer { name: "relu0" type: "ReLU" bottom: "x" top: "x" }\n'
              'layer { name: "conv" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 2 kernel_size: 1 } }\n'
              'layer { name: "crop" type: "Crop" bottom: "c" bottom: "ref" top: "cc" }\n'
              'layer { name: "relu1" type: "ReLU" bottom: "cc" top: "cc" }\n')
    model = compile_net(text=text, outputs=["c", "cc"])
    assert not model.relu0.inplace and not model.relu1.inplace
    x = torch.rand(1, 2, 6, 6, generator=torch.Generator().manual_seed(4)) - 0.5
    before = x.clone()
    with torch.no_grad():
        y = model(x, torch.zeros(1, 2, 4, 4))
    assert torch.equal(x, before)
    assert (y["c"] < 0).any() and (y["cc"] >= 0).all()


def test_split_and_dropout_do_not_copy():
    text = (_input("x", (2, 3))
            + 'layer { name: "drop" type: "Dropout" bottom: "x" top: "d" }\n'
              'layer { name: "split" type: "Split" bottom: "d" top: "a" top: "b" }\n')
    model = compile_net(text=text)
    x = torch.rand(2, 3)
    y = model(x)
    assert y["a"] is x and y["b"] is x
    assert sum(n.op == "call_module" for n in model.graph.nodes) == 2


def test_module_runs_at_other_input_sizes():
    # crop windows, Caffe pooling tables and Interp sizes follow the actual input
    text = (_input("x", (1, 2, 11, 11))
            + 'layer { name: "pool" type: "Pooling" bottom: "x" top: "p" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 2 } }\n'
              'layer { name: "up" type: "Interp" bottom: "p" top: "u" interp_param { zoom_factor: 2 } }\n'
              'layer { name: "crop" type: "Crop" bottom: "u" bottom: "x" top: "y" crop_param { offset: 1 } }\n')
    model = compile_net(text=text)
    for size in (11, 14):
        want = infer_shapes(load_net(text=text), {"x": (1, 2, size, size)}).blobs["y"]
        assert tuple(model(torch.rand(1, 2, size, size)).shape) == want


# ---------------------------------------------------------------------------------------------
# weights

TINY = (_input("x", (1, 3, 6, 6))
        + 'layer { name: "conv" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }\n'
          'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }\n'
          'layer { name: "sc" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true } }\n'
          'layer { name: "fc" type: "InnerProduct" bottom: "c" top: "fc" inner_product_param { num_output: 2 } }\n')


def _tiny_blobs(seed=5):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return {"conv": [f(4, 3, 3, 3), f(4)], "bn": [f(4), np.abs(f(4)) * 4, np.array([4.0], np.float32)],
            "sc": [f(4), f(4)], "fc": [f(2, 64), f(2)], "not_in_net": [f(3)]}


def test_state_dict_keys_and_values():
    blobs = _tiny_blobs()
    sd = state_dict(plan_net(text=TINY), blobs, strict=False)
    assert sorted(sd) == ["bn.running_mean", "bn.running_var", "conv.bias", "conv.weight", "fc.bias",
                          "fc.weight", "sc.bias", "sc.weight"]
    np.testing.assert_array_equal(sd["bn.running_mean"], blobs["bn"][0] / np.float32(4))
    np.testing.assert_array_equal(sd["conv.weight"], blobs["conv"][0])


def test_load_weights_is_lenient_like_caffe():
    # Net::CopyTrainedLayersFrom: unknown layers ignored, unnamed layers keep their values
    plan = plan_net(text=TINY)
    model = build_module(plan)
    before = model.conv.weight.clone()
    keys = load_weights(model, plan, {"fc": _tiny_blobs()["fc"], "other": []}, strict=False)
    assert keys == ["fc.bias", "fc.weight"] and torch.equal(model.conv.weight, before)


def test_compile_with_weights_dict_loads_them():
    blobs = _tiny_blobs()
    del blobs["not_in_net"]
    model = compile_net(text=TINY, weights=blobs)
    assert torch.equal(model.fc.weight, torch.from_numpy(blobs["fc"][0]))
    assert torch.equal(model.sc.bias, torch.from_numpy(blobs["sc"][1]))


def test_compile_with_caffemodel_path(tmp_path):
    blobs = _tiny_blobs()
    del blobs["not_in_net"]
    net = pb.PACKED.NetParameter(name="tiny")
    for name, arrays in blobs.items():
        layer = net.layer.add(name=name)
        for a in arrays:
            if name == "fc" and a.ndim == 2:         # old files store the weight (1, 1, N, K)
                layer.blobs.append(pb.blob(pb.PACKED, a.reshape((1, 1) + a.shape), legacy=True))
            else:
                layer.blobs.append(pb.blob(pb.PACKED, a))
    path = tmp_path / "tiny.caffemodel"
    path.write_bytes(net.SerializeToString())
    model = compile_net(text=TINY, weights=str(path))
    assert torch.equal(model.fc.weight, torch.from_numpy(blobs["fc"][0]))
    assert torch.equal(model.conv.weight, torch.from_numpy(blobs["conv"][0]))


@pytest.mark.parametrize("layer, arrays, message", [
    pytest.param("conv", [np.zeros((4, 3, 3, 3), np.float32)], "expected 2 blobs ((4, 3, 3, 3), (4)), got 1 ((4, 3, 3, 3))", id="count"),
    pytest.param("conv", [np.zeros((4, 3, 2, 2), np.float32), np.zeros(4, np.float32)], "blob 0: expected shape (4, 3, 3, 3), got (4, 3, 2, 2)", id="shape"),
    pytest.param("fc", [np.zeros((64, 2), np.float32), np.zeros(2, np.float32)], "blob 0: expected shape (2, 64), got (64, 2)", id="transposed-ip"),
])
def test_weights_error_says_expected_and_got(layer, arrays, message):
    with pytest.raises(WeightsError) as info:
        state_dict(plan_net(text=TINY), {layer: arrays}, strict=False)
    assert message in str(info.value)
    assert f"layer '{layer}'" in str(info.value)


def test_weights_for_a_layer_without_parameters_are_refused():
    with pytest.raises(WeightsError, match="the weights: 1 blob given for a ReLU layer, which has no parameters"):
        state_dict(plan_net(text=NAMED), {"1relu": [np.zeros(3, np.float32)]}, strict=False)


# ---------------------------------------------------------------------------------------------
# standalone export

ZOO = """name: "zoo-net v2"
layer { name: "input" type: "Input" top: "data" top: "aux" input_param { shape { dim: 1 dim: 3 dim: 12 dim: 12 } shape { dim: 1 dim: 4 dim: 6 dim: 6 } } }
layer { name: "conv1/3x3" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" top: "pool1_mask" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "2-pool" type: "Pooling" bottom: "conv1" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 2 } }
layer { name: "unpool" type: "Upsample" bottom: "pool1" bottom: "pool1_mask" top: "unpool" upsample_param { scale: 2 } }
layer { name: "slice" type: "Slice" bottom: "unpool" top: "s1" top: "s2" slice_param { slice_point: 4 } }
layer { name: "twin" type: "Convolution" bottom: "s1" bottom: "s2" top: "t1" top: "t2" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "split" type: "Split" bottom: "aux" top: "aux_a" top: "aux_b" }
layer { name: "interp" type: "Interp" bottom: "aux_a" top: "aux_up" interp_param { height: 12 width: 12 } }
layer { name: "cat" type: "Concat" bottom: "s1" bottom: "aux_up" top: "cat" }
layer { name: "prelu" type: "PReLU" bottom: "cat" top: "cat" }
layer { name: "lrn" type: "LRN" bottom: "cat" top: "lrn" lrn_param { local_size: 3 alpha: 0.1 norm_region: WITHIN_CHANNEL } }
layer { name: "deconv" type: "Deconvolution" bottom: "lrn" top: "up" convolution_param { num_output: 8 kernel_size: 4 stride: 2 group: 8 bias_term: false } }
layer { name: "crop" type: "Crop" bottom: "up" bottom: "data" top: "crop" crop_param { offset: 3 } }
layer { name: "fuse" type: "Eltwise" bottom: "crop" bottom: "lrn" top: "fuse" eltwise_param { coeff: 1 coeff: -0.5 } }
layer { name: "norm" type: "Normalize" bottom: "fuse" top: "fuse_n" norm_param { across_spatial: false channel_shared: false } }
layer { name: "drop" type: "Dropout" bottom: "fuse_n" top: "fuse_n" }
layer { name: "pow" type: "Power" bottom: "fuse_n" top: "pw" power_param { power: 2 shift: 1 } }
layer { name: "prob" type: "Softmax" bottom: "pw" top: "prob" }
layer { name: "argmax" type: "ArgMax" bottom: "prob" top: "label" argmax_param { axis: 1 } }
layer { name: "perm" type: "Permute" bottom: "pool2" top: "perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "flat" type: "Flatten" bottom: "perm" top: "flat" }
layer { name: "fc" type: "InnerProduct" bottom: "flat" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "reshape" type: "Reshape" bottom: "fc" top: "fc3" reshape_param { shape { dim: 0 dim: 1 dim: -1 } } }
layer { name: "mvn" type: "MVN" bottom: "s2" top: "mvn" }
layer { name: "thr" type: "Threshold" bottom: "mvn" top: "thr" threshold_param { threshold: 0.1 } }
"""


@pytest.fixture(scope="module")
def zoo():
    torch.manual_seed(6)
    model = compile_net(text=ZOO)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.5, 0.5)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
        for p in model.parameters():
            p.add_(torch.rand(p.shape) * 0.1)
    return model


def test_zoo_shapes_and_outputs(zoo):
    assert check_shapes(zoo)[1] == []
    assert zoo.protoseg_outputs == ["t1", "t2", "aux_b", "label", "fc3", "thr"]


def test_export_names_file_and_class_after_the_net(tmp_path):
    (path,) = write_module(plan_net(text=ZOO), tmp_path / "out")
    assert os.path.basename(path) == "zoo_net_v2.py"
    assert os.listdir(tmp_path / "out") == ["zoo_net_v2.py"]           # no temporary left
    code = open(path).read()
    assert "class ZooNetV2(nn.Module):" in code
    assert "protoseg" not in code.split('"""', 2)[2]                   # only the docstring says it
    assert "self.conv1_3x3 = nn.Conv2d(3, 8, kernel_size=3, padding=1)  # 'conv1/3x3' (Convolution)" in code
    # the variables are the fx module's node names: an in-place layer's value is named after the
    # blob and the layer; the tops of a Split are one value
    assert "        aux_a = self.split(aux)  # 1x4x6x6" in code
    assert "        t1 = self.twin(s1)  # 1x2x12x12\n        t2 = self.twin(s2)  # 1x2x12x12" in code
    assert "        conv1_relu1 = self.relu1(conv1_scale1)  # 1x8x12x12\n        del conv1_scale1" in code
    assert "        pool1, pool1_mask = self.pool1(conv1_relu1)  # 1x8x6x6, 1x8x6x6" in code
    assert "return {'t1': t1, 't2': t2, 'aux_b': aux_a, 'label': label, 'fc3': fc3, 'thr': thr}" in code


def test_export_without_net_name_uses_the_file_stem(tmp_path):
    src = tmp_path / "my-model.prototxt"
    src.write_text(NAMED)
    (path,) = export_module(src, tmp_path)
    assert os.path.basename(path) == "my_model.py"
    assert "class MyModel(nn.Module):" in open(path).read()


def test_exported_file_runs_alone_and_matches_the_module(zoo, tmp_path):
    (path,) = write_module(plan_net(text=ZOO), tmp_path)
    gen = torch.Generator().manual_seed(7)
    x, aux = torch.rand(1, 3, 12, 12, generator=gen), torch.rand(1, 4, 6, 6, generator=gen)
    with torch.no_grad():
        want = zoo(x, aux)
    torch.save({"state": zoo.state_dict(), "x": x, "aux": aux}, tmp_path / "in.pt")
    script = textwrap.dedent(f"""
        import importlib.util, sys, torch
        spec = importlib.util.spec_from_file_location("zoo", {path!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert not any(m.startswith("protoseg") for m in sys.modules), "imports protoseg"
        saved = torch.load({str(tmp_path / 'in.pt')!r})
        model = mod.ZooNetV2().eval()
        model.load_state_dict(saved["state"], strict=True)
        with torch.no_grad():
            out = model(saved["x"], aux=saved["aux"])
        torch.save(out, {str(tmp_path / 'out.pt')!r})
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = torch.load(tmp_path / "out.pt")
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key


# ---------------------------------------------------------------------------------------------
# command line

def _cli(argv) -> int:
    from protoseg.cli import main
    return main(argv)


def test_cli_check_runs_and_compares_every_shape(capsys):
    assert _cli(["compile", FCN8S, "--check", "--input", "data=1,3,40,40"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "check: ok, 47 values have their inferred shapes (data (1, 3, 40, 40))"


def test_cli_print_code_matches_written_file(tmp_path, capsys):
    src = tmp_path / "tv.prototxt"
    src.write_text(TRAIN_VAL)
    assert _cli(["compile", str(src), "--input", "data=2,5", "--print-code", "-o", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == (tmp_path / "tv.py").read_text()
    assert "left out: loss (SoftmaxWithLoss)" in captured.err
    assert "label (input): not used" in captured.err


def test_compile_modules_stay_out_of_torch_free_imports():
    code = ("import protoseg, protoseg.cli, protoseg.shapes, protoseg.cli.compile, protoseg.plan, "
            "protoseg.backends.source, sys; "
            "from protoseg.layers import registry; registry(); assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# real nets (../shared/corpus, skipped when absent): executed shapes == inferred shapes

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus")
CORPUS_NETS = [
    ("resnet/ResNet-50-deploy.prototxt", None),                    # BatchNorm + Scale, Eltwise
    ("bvlc/bvlc_googlenet_deploy.prototxt", None),                 # Concat, AVE pooling, LRN
    ("v1_legacy/bvlc_alexnet_deploy.prototxt", None),              # V1 format, group conv
    ("mobilenet/mobilenet_v2_deploy.prototxt", {"data": (1, 3, 64, 64)}),
    ("ssd/MobileNetSSD_deploy.prototxt", {"data": (1, 3, 96, 96)}),  # Permute, PriorBox, Flatten
    ("segnet/segnet_basic_inference.prototxt", {"data": (1, 3, 360, 480)}),  # mask, Upsample
    ("deeplab/deeplabv1_largefov_vgg128_noup_deploy.prototxt", {"data": (1, 3, 65, 65)}),  # hole
    ("deeplab/deeplabv2_resnet101_single_scale_deploy.prototxt", {"data": (1, 3, 65, 65)}),
    ("fcn/voc-fcn8s_val.prototxt", {"data": (1, 3, 40, 40)}),      # Python data layer, loss
]


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="../shared/corpus is not present")
@pytest.mark.parametrize("rel, inputs", [pytest.param(r, i, id=r.split("/")[-1]) for r, i in CORPUS_NETS])
def test_corpus_net_runs_with_inferred_shapes(rel, inputs):
    torch.manual_seed(0)
    model = compile_net(os.path.join(CORPUS, rel), inputs=inputs)
    checked, bad = check_shapes(model)
    assert bad == [] and checked > 0


# ---------------------------------------------------------------------------------------------
# values whose sizes depend on the data: DetectionOutput's top and what is computed from it

DETECT = (_input("loc", (1, 8)) + _input("conf", (1, 4)) + _input("prior", (1, 2, 8))
          + 'layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" top: "det" '
            'detection_output_param { num_classes: 2 nms_param { nms_threshold: 0.45 } } }\n'
            'layer { name: "twice" type: "Power" bottom: "det" top: "twice" power_param { scale: 2 } }\n')


def test_plan_marks_the_values_that_depend_on_the_data():
    plan = plan_net(text=DETECT)
    assert plan.runtime == {"det", "twice"}
    assert plan.var_shapes["det"] == (1, 1, 1, 7)          # Caffe's set-up shape


def test_check_shapes_takes_the_detection_count_from_the_run():
    # two far-apart priors, both scored 0.9 for class 1: two detections, (1, 1, 2, 7)
    model = compile_net(text=DETECT)
    prior = torch.tensor([[[0, 0, 0.2, 0.2, 0.6, 0.6, 0.9, 0.9], [0.1] * 8]])
    conf = torch.tensor([[0.1, 0.9, 0.1, 0.9]])
    checked, bad = check_shapes(model, torch.zeros(1, 8), conf, prior)
    assert (checked, bad) == (5, [])        # 3 inputs, det and twice
    assert tuple(model(torch.zeros(1, 8), conf, prior).shape) == (1, 1, 2, 7)


def test_check_shapes_still_compares_the_number_of_axes():
    model = compile_net(text=DETECT)
    for node in model.graph.nodes:
        if node.name == "twice":
            node.meta["tensor_meta"] = node.meta["tensor_meta"]._replace(shape=torch.Size((1, 7)))
    checked, bad = check_shapes(model)
    assert [(name, want) for name, _, want, _ in bad] == [("twice", (1, 7))]
