"""protoseg port / compile --weights: caffemodels built here through the protobuf messages
(V1 and V2, legacy shapes, double_data, BatchNorm factors, deconvolution, grouped conv), strict
matching with every mismatch at once, safe output, bad input files."""
from __future__ import annotations

import os

import numpy as np
import pytest

import caffe_pb

from protoseg.cli import main
from protoseg.errors import ProtosegError, WeightsError

NET = """name: "small"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 6 dim: 6 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "up" type: "Deconvolution" bottom: "conv1" top: "up"
        convolution_param { num_output: 3 kernel_size: 4 stride: 2 bias_term: false } }
layer { name: "fc" type: "InnerProduct" bottom: "up" top: "fc" inner_product_param { num_output: 5 } }
"""

SHAPES = {   # layer -> blob shapes in Caffe's order
    "conv1": [(6, 2, 3, 3), (6,)],
    "bn1": [(6,), (6,), (1,)],
    "scale1": [(6,), (6,)],
    "up": [(6, 3, 4, 4)],
    "fc": [(5, 3 * 14 * 14), (5,)],
}
TYPES = {"conv1": "Convolution", "bn1": "BatchNorm", "scale1": "Scale", "up": "Deconvolution",
         "fc": "InnerProduct"}
V1_TYPES = {"conv1": 4, "up": 39, "fc": 14}


def random_blobs(seed=0, factor=2.0):
    rng = np.random.default_rng(seed)
    blobs = {name: [rng.standard_normal(s).astype(np.float32) for s in shapes]
             for name, shapes in SHAPES.items()}
    blobs["bn1"][1] = np.abs(blobs["bn1"][1]) + 0.5      # variance sums are positive
    blobs["bn1"][2] = np.array([factor], np.float32)
    return blobs


def write_v2(path, blobs, *, extra=(), double=()):
    pb = caffe_pb.PACKED
    net = pb.NetParameter(name="small")
    for name, arrays in blobs.items():
        l = net.layer.add(name=name, type=TYPES.get(name, "Convolution"))
        for i, a in enumerate(arrays):
            l.blobs.append(caffe_pb.blob(pb, a, double=(name, i) in double))
    for name in extra:
        l = net.layer.add(name=name, type="Convolution")
        l.blobs.append(caffe_pb.blob(pb, np.ones((2, 2), np.float32)))
    path.write_bytes(net.SerializeToString())
    return str(path)


def write_v1_legacy(path, blobs):
    """V1 `layers` with legacy num/channels/height/width shapes: the InnerProduct weight as
    (1, 1, N, K) and biases as (1, 1, 1, N), as 2014-era files store them."""
    pb = caffe_pb.UNPACKED
    net = pb.NetParameter(name="small")
    for name in ("conv1", "up", "fc"):
        l = net.layers.add(name=name, type=V1_TYPES[name])
        for a in blobs[name]:
            legacy = a.reshape((1,) * (4 - a.ndim) + a.shape)
            l.blobs.append(caffe_pb.blob(pb, legacy, legacy=True))
    path.write_bytes(net.SerializeToString())
    return str(path)


@pytest.fixture
def prototxt(tmp_path):
    p = tmp_path / "small.prototxt"
    p.write_text(NET)
    return str(p)


def load_safetensors(path):
    from safetensors.numpy import load_file
    return load_file(path)


def test_port_v2_maps_every_blob(tmp_path, prototxt, capsys):
    blobs = random_blobs()
    model = write_v2(tmp_path / "m.caffemodel", blobs)
    out = str(tmp_path / "w.safetensors")
    assert main(["port", model, "--prototxt", prototxt, "-o", out]) == 0
    assert "wrote" in capsys.readouterr().out
    sd = load_safetensors(out)
    np.testing.assert_array_equal(sd["conv1.weight"], blobs["conv1"][0])
    np.testing.assert_array_equal(sd["conv1.bias"], blobs["conv1"][1])
    np.testing.assert_array_equal(sd["up.weight"], blobs["up"][0])        # as is: no flip, no transpose
    np.testing.assert_array_equal(sd["fc.weight"], blobs["fc"][0])
    # BatchNorm statistics are stored as sums: divided by the factor blob (2 here)
    bn = {k: v for k, v in sd.items() if k.startswith("bn1.")}
    assert any(np.allclose(v, blobs["bn1"][0] / 2) for v in bn.values())
    assert any(np.allclose(v, blobs["bn1"][1] / 2) for v in bn.values())


def test_batchnorm_factor_zero_gives_zero_statistics(tmp_path, prototxt):
    blobs = random_blobs(factor=0.0)
    out = str(tmp_path / "w.safetensors")
    main(["port", write_v2(tmp_path / "m.caffemodel", blobs), "--prototxt", prototxt, "-o", out])
    bn = [v for k, v in load_safetensors(out).items() if k.startswith("bn1.") and v.size == 6]
    assert bn and all(np.all(v == 0) for v in bn)


def test_port_v1_legacy_shapes_and_double_data(tmp_path):
    """Legacy shapes are accepted by element count; the V1 file has no BatchNorm/Scale, so the
    prototxt is the matching V1-era net."""
    p = tmp_path / "v1.prototxt"
    p.write_text("\n".join(l for l in NET.splitlines() if "bn1" not in l and "scale1" not in l))
    blobs = random_blobs()
    model = write_v1_legacy(tmp_path / "m.caffemodel", blobs)
    out = str(tmp_path / "w.safetensors")
    assert main(["port", model, "--prototxt", str(p), "-o", out]) == 0
    sd = load_safetensors(out)
    np.testing.assert_array_equal(sd["fc.weight"], blobs["fc"][0])
    np.testing.assert_array_equal(sd["fc.bias"], blobs["fc"][1])
    np.testing.assert_array_equal(sd["up.weight"], blobs["up"][0])


def test_double_data(tmp_path, prototxt):
    blobs = random_blobs()
    blobs["conv1"][0] = blobs["conv1"][0].astype(np.float64) / 3
    out = str(tmp_path / "w.safetensors")
    main(["port", write_v2(tmp_path / "m.caffemodel", blobs, double={("conv1", 0)}), "--prototxt",
          prototxt, "-o", out])
    np.testing.assert_allclose(load_safetensors(out)["conv1.weight"], blobs["conv1"][0], rtol=1e-7)


def test_pt_output(tmp_path, prototxt):
    import torch
    out = str(tmp_path / "w.pt")
    main(["port", write_v2(tmp_path / "m.caffemodel", random_blobs()), "--prototxt", prototxt, "-o", out])
    sd = torch.load(out, weights_only=True)
    assert tuple(sd["conv1.weight"].shape) == (6, 2, 3, 3)


def test_every_mismatch_reported_at_once_and_nothing_written(tmp_path, prototxt, capsys):
    blobs = random_blobs()
    del blobs["fc"]                                            # missing
    blobs["up"] = [blobs["up"][0], np.zeros(3, np.float32)]    # wrong blob count
    blobs["conv1"][0] = np.zeros((6, 4, 3, 3), np.float32)     # wrong shape (group ignored)
    model = write_v2(tmp_path / "m.caffemodel", blobs, extra=("conv9",))   # extra
    out = tmp_path / "w.safetensors"
    assert main(["port", model, "--prototxt", prototxt, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "4 weight problems (1 missing, 1 extra, 2 mismatched)" in err
    assert "layer 'fc' (InnerProduct): missing from m.caffemodel" in err
    assert "layer 'conv9' (Convolution) of m.caffemodel has 1 blob but the prototxt has no layer of that name" in err
    assert "layer 'up' (Deconvolution): m.caffemodel: expected 1 blob ((6, 3, 4, 4)), got 2" in err
    assert "layer 'conv1' (Convolution): m.caffemodel: blob 0: expected shape (6, 2, 3, 3), got (6, 4, 3, 3)" in err
    assert "small.prototxt:3:" in err       # the location of conv1
    assert not out.exists()
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_no_strict_ignores_extra_and_missing(tmp_path, prototxt):
    blobs = random_blobs()
    del blobs["fc"]
    model = write_v2(tmp_path / "m.caffemodel", blobs, extra=("conv9",))
    out = tmp_path / "w.safetensors"
    assert main(["port", model, "--prototxt", prototxt, "-o", str(out), "--no-strict"]) == 0
    assert "fc.weight" not in load_safetensors(str(out))


@pytest.mark.parametrize("content,words", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "PNG"),
    (NET.encode(), "looks like a text file"),
    (b"", "empty"),
], ids=["png", "prototxt", "empty"])
def test_bad_caffemodel_files(tmp_path, prototxt, capsys, content, words):
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(content)
    out = tmp_path / "w.safetensors"
    assert main(["port", str(bad), "--prototxt", prototxt, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists()
    assert bad.read_bytes() == content


def test_truncated_caffemodel_names_layer_and_offset(tmp_path, prototxt, capsys):
    full = tmp_path / "m.caffemodel"
    write_v2(full, random_blobs())
    data = full.read_bytes()
    bad = tmp_path / "cut.caffemodel"
    bad.write_bytes(data[: len(data) - 100])
    out = tmp_path / "w.safetensors"
    assert main(["port", str(bad), "--prototxt", prototxt, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "byte" in err and "layer 'fc'" in err
    assert not out.exists()


def test_failure_keeps_an_existing_output(tmp_path, prototxt):
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"previous")
    blobs = random_blobs()
    del blobs["conv1"]
    assert main(["port", write_v2(tmp_path / "m.caffemodel", blobs), "--prototxt", prototxt, "-o", str(out)]) == 2
    assert out.read_bytes() == b"previous"


def test_refuses_to_overwrite_the_input(tmp_path, prototxt, capsys):
    model = write_v2(tmp_path / "m.caffemodel", random_blobs())
    before = open(model, "rb").read()
    assert main(["port", model, "--prototxt", prototxt, "-o", model]) == 2
    assert "refusing to overwrite an input file" in capsys.readouterr().err
    assert open(model, "rb").read() == before


def test_inspect(tmp_path, capsys):
    model = write_v2(tmp_path / "m.caffemodel", random_blobs())
    assert main(["inspect", model]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "6x2x3x3, 6" in out and "BatchNorm" in out and "3,372 parameters" in out


def test_compile_with_weights_equals_load_state_dict(tmp_path, prototxt):
    import torch
    import protoseg
    blobs = random_blobs()
    model_path = write_v2(tmp_path / "m.caffemodel", blobs)
    out = str(tmp_path / "w.safetensors")
    main(["port", model_path, "--prototxt", prototxt, "-o", out])
    a = protoseg.compile_net(prototxt, weights=model_path)
    b = protoseg.compile_net(prototxt)
    from safetensors.torch import load_file
    b.load_state_dict(load_file(out), strict=False)
    x = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_compile_with_mismatched_weights_lists_all(tmp_path, prototxt):
    import protoseg
    blobs = random_blobs()
    del blobs["fc"]
    del blobs["up"]
    with pytest.raises(WeightsError, match="2 weight problems") as info:   # one WeightsError for all
        protoseg.compile_net(prototxt, weights=write_v2(tmp_path / "m.caffemodel", blobs))
    assert sorted((e.layer, e.kind) for e in info.value.errors) == [("fc", "missing"), ("up", "missing")]


def test_load_caffemodel_api(tmp_path):
    import protoseg
    blobs = random_blobs()
    got = protoseg.load_caffemodel(write_v2(tmp_path / "m.caffemodel", blobs))
    assert list(got) == list(blobs)
    np.testing.assert_array_equal(got["conv1"][0], blobs["conv1"][0])


def test_weights_error_is_a_protoseg_error():
    assert issubclass(WeightsError, ProtosegError)


def test_compile_weights_writes_module_and_safetensors(tmp_path, prototxt, capsys):
    """The user flow: `protoseg compile net --weights m.caffemodel -o out/`, then the standalone
    module (torch only) loads out/<net>.safetensors in a clean interpreter and gives the same
    output as compile_net with the caffemodel."""
    import subprocess
    import sys

    import torch

    import protoseg
    model_path = write_v2(tmp_path / "m.caffemodel", random_blobs())
    out = tmp_path / "out"
    assert main(["compile", prototxt, "--weights", model_path, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and (out / "small.py").exists() and (out / "small.safetensors").exists()
    x = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(2))
    torch.save(x, tmp_path / "x.pt")
    code = ("import sys, torch; sys.path.insert(0, %r); import small; "
            "from safetensors.torch import load_file; m = small.Small(); "
            "m.load_state_dict(load_file(%r)); m.eval(); "
            "torch.save(m(torch.load(%r)), %r); assert 'protoseg' not in sys.modules"
            % (str(out), str(out / "small.safetensors"), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    expected = protoseg.compile_net(prototxt, weights=model_path)(x)
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, rtol=0, atol=0)


def test_compile_weights_mismatch_writes_nothing(tmp_path, prototxt, capsys):
    blobs = random_blobs()
    del blobs["conv1"]
    out = tmp_path / "out"
    assert main(["compile", prototxt, "--weights", write_v2(tmp_path / "m.caffemodel", blobs),
                 "-o", str(out)]) == 2
    assert "layer 'conv1' (Convolution): missing from m.caffemodel" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# blobs held in the prototxt itself (`blobs { }` in a layer): Caffe's Layer constructor loads them
# (Blob::FromProto), a caffemodel layer of the same name replaces them

EMBEDDED = """name: "embedded"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 2 kernel_size: 1 }
  blobs { shape { dim: 2 dim: 1 dim: 1 dim: 1 } data: 2 data: -1 }
  blobs { %s } }
layer { name: "fc" type: "InnerProduct" bottom: "c" top: "y" inner_product_param { num_output: 1 } }
"""
BIAS_FORMS = {  # the conv bias (0.5, 3) as Caffe's BlobProto allows it
    "shape-data": "shape { dim: 2 } data: 0.5 data: 3",
    "legacy-num-channels-height-width": "num: 1 channels: 1 height: 1 width: 2 data: 0.5 data: 3",
    "double-data": "shape { dim: 2 } double_data: 0.5 double_data: 3",
}


@pytest.mark.parametrize("form", list(BIAS_FORMS), ids=list(BIAS_FORMS))
def test_prototxt_blobs_are_the_weights_without_a_caffemodel(form):
    import torch
    from protoseg import compile_net
    fc = [np.array([[1, 2, 3, 4, 5, 6, 7, 8]], np.float32), np.array([0.25], np.float32)]
    model = compile_net(text=EMBEDDED % BIAS_FORMS[form], weights={"fc": fc}, outputs=["c"])
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    with torch.no_grad():
        c = model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(c, np.concatenate([2 * x + 0.5, -x + 3], 1))
    # no weights at all: the prototxt's blobs still load (fc keeps its initial values)
    alone = compile_net(text=EMBEDDED % BIAS_FORMS[form], outputs=["c"])
    with torch.no_grad():
        np.testing.assert_array_equal(alone(torch.from_numpy(x)).numpy(), c)


def test_caffemodel_layer_replaces_the_prototxt_blobs():
    from protoseg.plan import plan_net
    from protoseg.weights import state_dict
    plan = plan_net(text=EMBEDDED % BIAS_FORMS["shape-data"])
    conv = [np.full((2, 1, 1, 1), 7, np.float32), np.zeros(2, np.float32)]
    fc = [np.zeros((1, 8), np.float32), np.zeros(1, np.float32)]
    state = state_dict(plan, {"conv": conv, "fc": fc})
    np.testing.assert_array_equal(state["conv.weight"], conv[0])
    np.testing.assert_array_equal(state["conv.bias"], conv[1])


def test_prototxt_blob_of_the_wrong_size_is_refused_at_its_line():
    from protoseg import compile_net
    text = EMBEDDED % "shape { dim: 2 } data: 0.5 data: 3 data: 1"
    with pytest.raises(WeightsError) as info:
        compile_net(text=text, outputs=["c"])
    # blob 1 is the second `blobs {` of layer 'conv': line 5, column 3
    assert str(info.value).startswith("<string>:5:3: layer 'conv' (Convolution): blob 1 of the prototxt: "
                                      "shape (2) needs 2 values, it holds 3")


def test_prototxt_blob_of_the_wrong_shape_names_the_prototxt():
    from protoseg import compile_net
    with pytest.raises(WeightsError) as info:
        compile_net(text=EMBEDDED % "shape { dim: 3 } data: 0.5 data: 3 data: 1", outputs=["c"])
    assert "the prototxt: blob 1: expected shape (2), got (3)" in str(info.value)


def test_compile_o_writes_the_prototxt_blobs(tmp_path, capsys):
    (tmp_path / "e.prototxt").write_text(EMBEDDED % BIAS_FORMS["shape-data"])
    assert main(["compile", str(tmp_path / "e.prototxt"), "-o", str(tmp_path / "out")]) == 0
    from safetensors.numpy import load_file
    state = load_file(str(tmp_path / "out" / "embedded.safetensors"))
    assert sorted(state) == ["conv.bias", "conv.weight"]
    np.testing.assert_array_equal(state["conv.bias"], np.array([0.5, 3], np.float32))
