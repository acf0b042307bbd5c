"""The inference mode (protoseg.optimize): every fold against the unfolded module (<= 1e-5 of the
output's range), the cases that must not fold, identities dropped, the folded weights in the
standalone file, and one fold against a numpy computation of Caffe's formulas.

Weights are random (seeded) blobs of the shapes each layer's weights rule asks for; BatchNorm
variances are positive and its scale-factor blob is not 1, so the division by it is exercised."""
from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from protoseg import compile_net, export_module, plan_net
from protoseg.errors import WeightsError
from protoseg.optimize import fold_state, optimize_plan
from protoseg.weights import state_dict

from test_corpus import CORPUS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD = ('name: "f"\n'
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 7 dim: 7 } } }\n')
CONV = ('layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
        'convolution_param { num_output: 6 kernel_size: 3 pad: 1 %s} }\n')
BN = 'layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }\n'
SCALE = 'layer { name: "sc" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }\n'
RELU = 'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n'
IP = ('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
      'inner_product_param { num_output: 5 } }\n')


def random_blobs(plan, seed: int = 0) -> dict:
    """{layer: [arrays]} of the shapes each layer's weights rule expects, of a scale that keeps
    activations near 1 through a deep net: weights N(0, 1/fan_in), biases and means N(0, 0.1),
    scales and slopes 1 + N(0, 0.1), variances in [0.5, 1.5); BatchNorm's factor blob 0.75; a
    shared parameter's copies equal to its owner's."""
    rng = np.random.default_rng(seed)
    normal = lambda shape, std=1.0, mean=0.0: (mean + std * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    out = {}
    for step in plan.steps:
        if step.ctx.spec.weights is None:
            continue
        try:
            step.ctx.spec.weights(step.ctx, [])
            continue                                    # no blobs expected
        except WeightsError as e:
            shapes = [tuple(s) for s in e.expected]
        kind = step.layer.type
        if kind in ("Convolution", "Deconvolution", "InnerProduct"):
            w = shapes[0]
            arrays = [normal(w, (1 / np.prod(w[1:])) ** 0.5)] + [normal(s, 0.1) for s in shapes[1:]]
        elif kind == "BatchNorm":                       # mean, var, factor
            arrays = [normal(shapes[0], 0.1), rng.uniform(0.5, 1.5, shapes[1]).astype(np.float32),
                      np.array([0.75], np.float32)]
        elif kind == "BN" and len(shapes) == 4:         # PSPNet: slope, bias, mean, var
            arrays = [normal(shapes[0], 0.1, 1.0), normal(shapes[1], 0.1), normal(shapes[2], 0.1),
                      rng.uniform(0.5, 1.5, shapes[3]).astype(np.float32)]
        else:                                           # Scale, Bias, SegNet's BN: scale, shift
            scales = kind == "Scale" or kind == "BN"
            arrays = [normal(s, 0.1, 1.0 if scales and i == 0 else 0.0) for i, s in enumerate(shapes)]
        out[step.layer.name] = arrays
    owners = {step.attr: step.layer.name for step in plan.steps}
    for step in plan.steps:             # shared parameters (param { name }): equal copies
        for i, share in step.shares.items():
            owner = out[owners[share.owner]][share.owner_blob]
            out[step.layer.name][i] = owner.reshape(out[step.layer.name][i].shape)
    return out


def compare(text, outputs=None, seed=0):
    """(unoptimized, optimized) modules with the same weights, their outputs for one input, and
    the optimized plan."""
    plan = plan_net(text=text, outputs=outputs)
    blobs = random_blobs(plan, seed)
    plain = compile_net(text=text, weights=blobs, outputs=outputs)
    fast = compile_net(text=text, weights=blobs, outputs=outputs, optimize=True)
    shape = plan.inputs[0].shape
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1))
    with torch.inference_mode():
        want, got = plain(x), fast(x)
    return want, got, optimize_plan(plan)


def assert_close(got, want, rel=1e-5):
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            assert_close(got[k], want[k], rel)
        return
    scale = float(want.abs().max())
    assert scale > 0
    err = float((got - want).abs().max()) / scale
    assert err <= rel, f"max |diff| is {err:.2e} of the output's range"


def folds(plan) -> dict:
    return {s.layer.name: [f.layer.name for f in s.folded] for s in plan.steps if s.folded}


# ---------------------------------------------------------------------------------------------
# each fold, against the unfolded module

FOLDS = {
    "batchnorm": (CONV % "" + BN, {"conv": ["bn"]}),
    "batchnorm-scale-relu": (CONV % "" + BN + SCALE + RELU, {"conv": ["bn", "sc"]}),
    "conv-without-bias": (CONV % "bias_term: false " + BN + SCALE, {"conv": ["bn", "sc"]}),
    "grouped-conv": (CONV % "group: 2 " + BN + SCALE, {"conv": ["bn", "sc"]}),
    "scale-without-bias": (CONV % "" + 'layer { name: "sc" type: "Scale" bottom: "conv" top: "s" }\n',
                           {"conv": ["sc"]}),
    "scalar-scale": (CONV % "" + 'layer { name: "sc" type: "Scale" bottom: "conv" top: "conv" '
                                 'scale_param { num_axes: 0 bias_term: true } }\n', {"conv": ["sc"]}),
    "bias": (CONV % "" + 'layer { name: "b" type: "Bias" bottom: "conv" top: "conv" }\n',
             {"conv": ["b"]}),
    "power-scale-shift": (CONV % "" + 'layer { name: "p" type: "Power" bottom: "conv" top: "p" '
                                      'power_param { scale: -2.5 shift: 0.75 } }\n', {"conv": ["p"]}),
    "pspnet-bn": (CONV % "" + 'layer { name: "bn" type: "BN" bottom: "conv" top: "conv" '
                              'bn_param { frozen: true } }\n', {"conv": ["bn"]}),
    "segnet-bn-inference": (CONV % "" + 'layer { name: "bn" type: "BN" bottom: "conv" top: "conv" '
                                        'bn_param { bn_mode: INFERENCE } }\n', {"conv": ["bn"]}),
    "innerproduct-batchnorm-scale": (IP + BN.replace("conv", "ip") + SCALE.replace('"conv"', '"ip"'),
                                     {"ip": ["bn", "sc"]}),
    "folds-through-a-split": (CONV % "" + 'layer { name: "sp" type: "Split" bottom: "conv" top: "a" }\n'
                              'layer { name: "bn" type: "BatchNorm" bottom: "a" top: "a" }\n',
                              {"conv": ["bn"]}),
}


@pytest.mark.parametrize("text, want_folds", FOLDS.values(), ids=FOLDS.keys())
def test_fold_matches_the_unfolded_module(text, want_folds):
    want, got, plan = compare(HEAD + text)
    assert folds(plan) == want_folds
    assert_close(got, want)


def test_folded_value_may_be_an_output():
    # the BatchNorm's top is what the module returns: the convolution computes it, under its name
    want, got, plan = compare(HEAD + CONV % "" + BN.replace('top: "conv"', 'top: "out"'))
    assert folds(plan) == {"conv": ["bn"]} and plan.outputs == [("out", "conv")]
    assert_close(got, want)


NOT_FOLDED = {
    # the value between the two layers is read by another layer too
    "read-twice": (CONV % "" + 'layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "bn" }\n'
                   'layer { name: "sum" type: "Eltwise" bottom: "conv" bottom: "bn" top: "sum" }\n',
                   None, ["conv", "bn", "sum"]),
    # ... or is an output of the module
    "conv-is-an-output": (CONV % "" + 'layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "bn" }\n',
                          ["conv", "bn"], ["conv", "bn"]),
    # a scale per channel and pixel is not a per-channel map
    "spatial-scale": (CONV % "" + 'layer { name: "sc" type: "Scale" bottom: "conv" top: "conv" '
                                  'scale_param { num_axes: 3 } }\n', None, ["conv", "sc"]),
    "batch-statistics": (CONV % "" + 'layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" '
                                     'batch_norm_param { use_global_stats: false } }\n', None, ["conv", "bn"]),
    "power-2": (CONV % "" + 'layer { name: "p" type: "Power" bottom: "conv" top: "p" '
                            'power_param { power: 2 scale: 0.5 } }\n', None, ["conv", "p"]),
    "deconvolution": ('layer { name: "up" type: "Deconvolution" bottom: "data" top: "up" '
                      'convolution_param { num_output: 3 kernel_size: 2 stride: 2 } }\n'
                      + BN.replace("conv", "up"), None, ["up", "bn"]),
    "after-a-pooling": ('layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" '
                        'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
                        + BN.replace("conv", "pool"), None, ["pool", "bn"]),
}


@pytest.mark.parametrize("text, outputs, steps", NOT_FOLDED.values(), ids=NOT_FOLDED.keys())
def test_no_fold_where_the_value_is_shared_or_the_map_is_not_per_channel(text, outputs, steps):
    want, got, plan = compare(HEAD + text, outputs)
    assert [s.layer.name for s in plan.steps] == steps and not folds(plan)
    assert_close(got, want, rel=1e-6)


def test_fold_equals_caffe_formulas_in_numpy():
    # 1x1 convolution, BatchNorm (statistics divided by the factor blob), Scale with bias:
    # y = ((W x + b) - mean / f) / sqrt(var / f + eps) * s + t, computed here in float64
    text = HEAD + CONV.replace("kernel_size: 3 pad: 1", "kernel_size: 1") % "" + BN + SCALE
    rng = np.random.default_rng(3)
    w, b = rng.standard_normal((6, 4, 1, 1)), rng.standard_normal(6)
    mean, var, f = rng.standard_normal(6), rng.random(6) + 0.5, 0.25
    s, t = rng.standard_normal(6), rng.standard_normal(6)
    blobs = {"conv": [w, b], "bn": [mean, var, np.array([f])], "sc": [s, t]}
    blobs = {k: [np.asarray(a, np.float32) for a in v] for k, v in blobs.items()}
    x = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
    c = np.einsum("oi,nihw->nohw", w[:, :, 0, 0], x.astype(np.float64)) + b[:, None, None]
    per = lambda a: a[:, None, None]  # noqa: E731
    want = (c - per(mean / f)) / np.sqrt(per(var / f) + 1e-5) * per(s) + per(t)
    model = compile_net(text=text, weights=blobs, optimize=True)
    with torch.inference_mode():
        got = model(torch.from_numpy(x)).double()
    assert_close(got, torch.from_numpy(want))


# ---------------------------------------------------------------------------------------------
# identities

IDENTITIES = {
    "dropout": 'layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" }\n',
    "split": 'layer { name: "sp" type: "Split" bottom: "conv" top: "a" top: "b" }\n'
             'layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }\n',
    "power-identity": 'layer { name: "p" type: "Power" bottom: "conv" top: "p" }\n',
}


@pytest.mark.parametrize("text", IDENTITIES.values(), ids=IDENTITIES.keys())
def test_identities_are_dropped_and_change_nothing(text):
    want, got, plan = compare(HEAD + CONV % "" + text)
    kept = [s.layer.name for s in plan.steps]
    assert not {"drop", "sp", "p"} & set(kept) and kept[0] == "conv"
    assert torch.equal(got, want)


def test_identity_on_the_output_keeps_the_output_name():
    text = HEAD + CONV % "" + 'layer { name: "drop" type: "Dropout" bottom: "conv" top: "out" }\n'
    plan = optimize_plan(plan_net(text=text))
    assert plan.outputs == [("out", "conv")] and [s.attr for s in plan.steps] == ["conv"]


# ---------------------------------------------------------------------------------------------
# channels_last, weights, the standalone file

def test_channels_last_for_2d_convolution_nets_and_outputs_stay_contiguous():
    text = HEAD + CONV % "" + BN + SCALE + RELU
    model = compile_net(text=text, optimize=True)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = model(torch.rand(2, 4, 7, 7))
    assert y.is_contiguous()
    assert not optimize_plan(plan_net(text=HEAD + IP)).channels_last      # no convolution


def test_missing_weights_of_a_folded_layer_are_an_error():
    text = HEAD + CONV % "" + BN + SCALE
    blobs = random_blobs(plan_net(text=text))
    del blobs["bn"]
    with pytest.raises(WeightsError) as e:
        compile_net(text=text, weights=blobs, strict=False, optimize=True)
    assert str(e.value).startswith("<string>:4:1: layer 'bn' (BatchNorm): no running_mean, running_var: "
                                   "the optimized module folds this layer into 'conv' (Convolution)")
    assert e.value.hint == "give its weights, or compile without optimize"


def test_fold_state_folds_an_unoptimized_state_dict():
    text = HEAD + CONV % "" + BN + SCALE
    plan = plan_net(text=text)
    blobs = random_blobs(plan)
    plain = state_dict(plan, blobs)
    fast_plan = optimize_plan(plan)
    assert sorted(fold_state(fast_plan, plain)) == ["conv.bias", "conv.weight"]
    np.testing.assert_array_equal(fold_state(fast_plan, plain)["conv.weight"],
                                  state_dict(fast_plan, blobs)["conv.weight"])


def test_optimize_must_be_a_bool():
    with pytest.raises(TypeError, match="optimize must be True or False"):
        compile_net(text=HEAD + CONV % "", optimize="yes")


def _import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_standalone_file_is_written_optimized_with_folded_weights(tmp_path):
    from safetensors.torch import load_file
    text = HEAD + CONV % "bias_term: false " + BN + SCALE + RELU
    (tmp_path / "f.prototxt").write_text(text)
    blobs = random_blobs(plan_net(text=text))
    paths = export_module(str(tmp_path / "f.prototxt"), tmp_path / "out", weights=blobs,
                          optimize=True)
    code = open(paths[0]).read()
    assert "self.conv = nn.Conv2d(4, 6, kernel_size=3, padding=1)  # bn (BatchNorm), sc (Scale) folded in" in code
    assert "self.to(memory_format=torch.channels_last)" in code and "self.bn" not in code
    module = getattr(_import_file(paths[0], "f_optimized"), plan_net(text=text).class_name)().eval()
    module.load_state_dict(load_file(paths[1]), strict=True)
    fast = compile_net(text=text, weights=blobs, optimize=True)
    x = torch.randn(2, 4, 7, 7, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(module(x), fast(x))


def test_cli_compile_optimize_prints_folded_code_without_torch(tmp_path):
    (tmp_path / "f.prototxt").write_text(HEAD + CONV % "" + BN + SCALE + RELU)
    code = ("import sys; from protoseg.cli import main; rc = main(['compile', sys.argv[1], "
            "'--optimize', '--print-code']); assert 'torch' not in sys.modules; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.prototxt")], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert "# bn (BatchNorm), sc (Scale) folded in" in proc.stdout
    assert "conv = self.conv(data)" in proc.stdout and "self.relu(conv)" in proc.stdout


# ---------------------------------------------------------------------------------------------
# a real BatchNorm ResNet (../shared/corpus, skipped when absent)

RESNET50 = os.path.join(CORPUS, "resnet", "ResNet-50-deploy.prototxt")


@pytest.mark.skipif(not os.path.exists(RESNET50), reason="corpus not present")
def test_resnet50_optimized_matches_unfolded():
    inputs = {"data": (1, 3, 64, 64)}
    plan = plan_net(RESNET50, inputs, ["res5c"])
    blobs = random_blobs(plan, seed=4)
    kw = dict(weights=blobs, inputs=inputs, outputs=["res5c"])
    plain, fast = compile_net(RESNET50, **kw), compile_net(RESNET50, optimize=True, **kw)
    fast_plan = optimize_plan(plan)
    assert sum(len(s.folded) for s in fast_plan.steps) == 2 * 53      # every BatchNorm + Scale
    assert {s.layer.type for s in fast_plan.steps} == {"Convolution", "ReLU", "Pooling", "Eltwise"}
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        assert_close(fast(x), plain(x))


# ---------------------------------------------------------------------------------------------
# torch.compile, torch.export and CUDA (the last skipped without a GPU)

BLOCK = (HEAD + CONV % "bias_term: false " + BN + SCALE + RELU
         + 'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" '
           'pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n'
         + 'layer { name: "drop" type: "Dropout" bottom: "pool" top: "pool" }\n')


@pytest.fixture(scope="module")
def block():
    blobs = random_blobs(plan_net(text=BLOCK), seed=8)
    x = torch.randn(2, 4, 7, 7, generator=torch.Generator().manual_seed(9))
    model = compile_net(text=BLOCK, weights=blobs, optimize=True)
    with torch.inference_mode():
        want = model(x)
    return model, x, want


def test_optimized_module_compiles_as_one_graph(block):
    model, x, want = block
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.inference_mode():
        assert_close(compiled(x), want, rel=1e-6)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_optimized_module_under_inductor_with_freezing(block):
    import torch._inductor.config as inductor_config
    model, x, want = block
    torch._dynamo.reset()
    with inductor_config.patch(freezing=True):
        compiled = torch.compile(model, fullgraph=True)
        with torch.inference_mode():
            got = compiled(x)
    assert_close(got, want)


def test_optimized_module_exports_without_batchnorm(block):
    model, x, want = block
    ep = torch.export.export(model, (x,))
    ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert ops == {"aten.contiguous.default", "aten.conv2d.default", "aten.relu_.default",
                   "aten.max_pool2d.default"}
    with torch.inference_mode():
        assert_close(ep.module()(x), want, rel=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_optimized_module_on_cuda_matches_cpu(block):
    model, x, want = block
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            got = copy.deepcopy(model).cuda()(x.cuda()).cpu()
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    assert_close(got, want)
