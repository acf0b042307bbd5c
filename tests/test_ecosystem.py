"""The compiled module in the rest of the PyTorch ecosystem, on FCN-8s (prototxts/fcn8s.prototxt)
at 1x3x64x64: torch.compile, torch.export (and a saved .pt2), bfloat16 weights and autocast on
CPU, safetensors round trips of the state_dict, and on CUDA (marked `cuda`, skipped without a GPU):
fp32 against CPU, fp16 / bf16 autocast, and the standalone file `protoseg compile -o DIR` writes.

torch.compile: the default test uses the "aot_eager" backend: dynamo's whole-graph capture
(fullgraph=True: no graph break anywhere in the module) and AOTAutograd's functionalization and
decomposition -- what can break on a module -- without inductor's C++ code generation, which on
this 2-core machine takes ~30 s for FCN-8s with a cold cache (~5 s warm) and tests torch's
compiler more than protoseg. Inductor itself (the default backend) is checked too, marked slow.

bfloat16 on CPU: this machine's CPU (AVX2, no AVX512-BF16/AMX) has no bf16 convolution kernel,
so torch falls back to `_slow_conv2d_forward`: ~40 s per FCN-8s forward at 64x64 (conv1 runs at
262x262 after the 100-pixel padding). Those two tests are marked slow; they still run by default.

Weights: He-normal (std sqrt(2 / fan_in)) from a seeded generator, so activations keep their scale
through the 15 ReLU layers and tolerances below mean something (torch's default initialisation
shrinks the FCN-8s output towards 0).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch
from torch import nn

from protoseg import compile_net

from test_compile import ZOO

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FCN8S = os.path.join(ROOT, "prototxts", "fcn8s.prototxt")
SHAPE = (1, 3, 64, 64)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def he_init_(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                fan_in = p.shape[1] * p[0, 0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.01)
    return model


def fresh_model():
    return he_init_(compile_net(FCN8S, inputs={"data": SHAPE}))


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| relative to the largest |want|."""
    return float((got.float() - want.float()).abs().max() / want.float().abs().max())


@pytest.fixture(scope="module")
def model():
    return fresh_model()


@pytest.fixture(scope="module")
def x():
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def want(model, x):
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (1, 21, 64, 64) and y.dtype == torch.float32
    assert 1.0 < float(y.abs().max()) < 1e4           # the weights keep a sensible scale
    return y


# ---------------------------------------------------------------------------------------------
# torch.compile / torch.export

def test_torch_compile_whole_graph_gives_the_same_output(model, x, want):
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.inference_mode():
        got = compiled(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # inductor's own
def test_torch_compile_inductor_gives_the_same_output(model, x, want):
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    with torch.inference_mode():
        got = compiled(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_torch_export_gives_the_same_output(model, x, want):
    ep = torch.export.export(model, (x,))
    ops = Counter(str(n.target) for n in ep.graph.nodes if n.op == "call_function")
    # exactly the hand-written op set: 13 VGG convs + fc6, fc7, score_fr, score_pool4, score_pool3;
    # each Crop is two slices; the in-place ReLUs stay in place
    assert ops == {"aten.conv2d.default": 18, "aten.relu_.default": 15, "aten.slice.Tensor": 6,
                   "aten.max_pool2d.default": 5, "aten.conv_transpose2d.input": 3,
                   "aten.add.Tensor": 2}
    with torch.inference_mode():
        got = ep.module()(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_exported_program_survives_save_and_load(model, x, want, tmp_path):
    ep = torch.export.export(model, (x,))
    torch.export.save(ep, tmp_path / "fcn8s.pt2")
    loaded = torch.export.load(tmp_path / "fcn8s.pt2")
    with torch.inference_mode():
        got = loaded.module()(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_every_caffe_module_kind_exports_and_compiles_whole():
    """test_compile.py's ZOO net uses most protoseg.modules classes (pooling with a mask top,
    Upsample, Interp, Crop, Slice, Split, Normalize, MVN, Permute, Reshape, ArgMax, ...):
    torch.export and a fullgraph torch.compile give exactly its outputs."""
    torch.manual_seed(6)
    m = compile_net(text=ZOO)
    kinds = {type(c).__name__ for c in m.children()}
    assert len({k for k in kinds if k.startswith("Caffe")}) >= 15
    gen = torch.Generator().manual_seed(7)
    args = (torch.rand(1, 3, 12, 12, generator=gen), torch.rand(1, 4, 6, 6, generator=gen))
    with torch.inference_mode():
        want = m(*args)
        exported = torch.export.export(m, args).module()(*args)
    torch._dynamo.reset()
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.inference_mode():
        got = compiled(*args)
    assert list(exported) == list(got) == list(want)
    for key in want:
        torch.testing.assert_close(exported[key], want[key], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got[key], want[key], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# reduced precision on CPU

@pytest.mark.slow
def test_bfloat16_weights_run_on_cpu(x, want):
    m = fresh_model().to(torch.bfloat16)
    assert {p.dtype for p in m.parameters()} == {torch.bfloat16}
    with torch.inference_mode():
        got = m(x.to(torch.bfloat16))
    assert got.dtype == torch.bfloat16 and got.shape == want.shape
    assert torch.isfinite(got).all()
    # bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per op) over ~20 layers
    assert rel_err(got, want) < 0.05


@pytest.mark.slow
def test_autocast_bfloat16_on_cpu_is_close_to_fp32(model, x, want):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(x)
    assert got.dtype == torch.bfloat16            # the convolutions (and so the output) run in bf16
    assert torch.isfinite(got).all()
    assert rel_err(got, want) < 0.05
    # and agreeing on what matters for segmentation: the per-pixel class
    assert (got.float().argmax(1) == want.argmax(1)).float().mean() > 0.95


# ---------------------------------------------------------------------------------------------
# state_dict through safetensors

def test_state_dict_round_trips_through_safetensors(model, x, want, tmp_path):
    from safetensors.torch import load_file, save_file
    state = model.state_dict()
    save_file(state, tmp_path / "fcn8s.safetensors")          # as it is: no contiguous() fix-ups
    loaded = load_file(tmp_path / "fcn8s.safetensors")
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key
    other = compile_net(FCN8S, inputs={"data": SHAPE})        # different (default) initialisation
    assert not torch.equal(other.fc6.weight, model.fc6.weight)
    result = other.load_state_dict(loaded, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.inference_mode():
        assert torch.equal(other(x), want)


def test_bfloat16_state_dict_round_trips_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file
    m = fresh_model().to(torch.bfloat16)
    save_file(m.state_dict(), tmp_path / "bf16.safetensors")
    loaded = load_file(tmp_path / "bf16.safetensors")
    assert {v.dtype for v in loaded.values()} == {torch.bfloat16}
    assert all(torch.equal(loaded[k], v) for k, v in m.state_dict().items())


# ---------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)

def _no_tf32():
    """fp32 on the GPU as fp32: cuDNN may otherwise use TF32 (10-bit mantissa) for convolutions."""
    return (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


@pytest.fixture
def strict_fp32():
    saved = _no_tf32()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.cuda
@cuda
def test_cuda_fp32_matches_cpu(x, want, strict_fp32):
    m = fresh_model().cuda()
    assert {p.device.type for p in m.parameters()} == {"cuda"}
    with torch.inference_mode():
        got = m(x.cuda())
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_cuda_autocast_runs_close_to_fp32(x, want, dtype):
    m = fresh_model().cuda()
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
        got = m(x.cuda())
    assert got.dtype == dtype and torch.isfinite(got).all()
    assert rel_err(got.cpu(), want) < (0.01 if dtype == torch.float16 else 0.05)


@pytest.mark.cuda
@cuda
def test_cuda_runs_at_another_input_size():
    # the crops read the actual sizes: a module compiled for 64x64 runs at 100x120 on the GPU too
    m = fresh_model().cuda()
    with torch.inference_mode():
        y = m(torch.rand(1, 3, 100, 120, device="cuda"))
    assert y.shape == (1, 21, 100, 120) and y.device.type == "cuda"


def _write_standalone(out_dir) -> str:
    proc = subprocess.run([sys.executable, "-m", "protoseg", "compile", FCN8S, "--input",
                           "data=" + ",".join(map(str, SHAPE)), "-o", str(out_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    path = os.path.join(out_dir, "fcn8s.py")
    assert os.path.isfile(path), os.listdir(out_dir)
    return path


def _import_file(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.cuda
@cuda
def test_standalone_exported_module_runs_on_cuda(model, x, want, tmp_path, strict_fp32):
    module = _import_file(_write_standalone(tmp_path), "fcn8s_standalone_cuda")
    m = module.Fcn8s().eval()
    m.load_state_dict(model.state_dict(), strict=True)
    m = m.cuda()
    with torch.inference_mode():
        got = m(x.cuda())
        with torch.autocast("cuda", dtype=torch.float16):
            half = m(x.cuda())
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert half.dtype == torch.float16 and rel_err(half.cpu(), want) < 0.01
