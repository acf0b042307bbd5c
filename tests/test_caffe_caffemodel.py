"""Caffemodels written by the reference Caffe, read by protoseg.

* current form (`layer`, NetParameter field 100): Caffe fills a net that has every learnable
  layer type from injected fillers and `net.save`s it;
* legacy V1 form (`layers`, field 2, V1LayerParameter with the type enum and 4-axis
  num/channels/height/width blobs): current Caffe cannot write it, so the Caffe child writes the
  blobs `net.save` just wrote with Caffe's own protobuf messages (caffe_pb2) in that form, and
  Caffe itself then loads that file (`Net(..., weights=)`, which upgrades it) and must reproduce
  the outputs of the saved weights.

`protoseg.read_caffemodel` / `load_caffemodel` must give exactly Caffe's arrays (float32, bit for
bit), the layers in Caffe's order, and `compile_net(weights=)` Caffe's outputs.
"""
from __future__ import annotations

import numpy as np
import pytest

from protoseg import compile_net, load_caffemodel, read_caffemodel

import caffe_ref
from opencv_helpers import forward

pytestmark = [pytest.mark.caffe, caffe_ref.skip_unless_available()]

REL = 1e-5

# every layer type with learnable blobs that both Caffe and protoseg have, except BN: the
# reference's BN is another fork's layer than the PSPNet / SegNet BN protoseg reads (docs/fidelity.md)
V2_NET = """name: "learnable"
layer { name: "data" type: "Input" top: "x" top: "idx"
        input_param { shape { dim: 2 dim: 3 dim: 7 dim: 7 } shape { dim: 2 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }
layer { name: "scale" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true } }
layer { name: "prelu" type: "PReLU" bottom: "c" top: "c" }
layer { name: "up" type: "Deconvolution" bottom: "c" top: "u"
        convolution_param { num_output: 2 kernel_size: 2 stride: 2 bias_term: false } }
layer { name: "bias" type: "Bias" bottom: "u" top: "u" }
layer { name: "norm" type: "Normalize" bottom: "u" top: "n" norm_param { across_spatial: false } }
layer { name: "fc" type: "InnerProduct" bottom: "n" top: "fc" inner_product_param { num_output: 5 transpose: true } }
layer { name: "embed" type: "Embed" bottom: "idx" top: "e" embed_param { num_output: 3 input_dim: 6 } }
"""

V1_NET = """name: "legacy"
input: "data"
input_dim: 2 input_dim: 3 input_dim: 9 input_dim: 9
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
         convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "up" type: DECONVOLUTION bottom: "conv1" top: "up" convolution_param { num_output: 2 kernel_size: 2 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "up" top: "fc" inner_product_param { num_output: 6 } }
"""


def _inputs(net: str) -> dict:
    rng = np.random.default_rng(7)
    if net == "v2":
        return {"x": rng.uniform(-1, 1, (2, 3, 7, 7)).astype(np.float32),
                "idx": rng.integers(0, 6, (2, 4)).astype(np.float32)}
    return {"data": rng.uniform(-1, 1, (2, 3, 9, 9)).astype(np.float32)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{form: (caffemodel path, the Result of Caffe's run, the net text, the inputs)}, one process."""
    tmp = tmp_path_factory.mktemp("caffemodels")
    v2, v1_v2, v1 = (str(tmp / n) for n in ("learnable.caffemodel", "legacy.caffemodel", "legacy-v1.caffemodel"))
    jobs = [caffe_ref.Job("V2", V2_NET, _inputs("v2"), fill_seed=2, save=v2, params=True),
            caffe_ref.Job("V1 source", V1_NET, _inputs("v1"), fill_seed=1, save=v1_v2, save_v1=v1, params=True),
            caffe_ref.Job("V1", V1_NET, _inputs("v1"), weights=v1, params=True)]
    r = caffe_ref.run(jobs)
    return {"V2": (v2, r["V2"], V2_NET, jobs[0].inputs), "V1": (v1, r["V1"], V1_NET, jobs[2].inputs),
            "V1 source": (v1_v2, r["V1 source"], V1_NET, jobs[1].inputs)}


FORMS = [pytest.param("V2", id="V2-layer"), pytest.param("V1", id="V1-layers")]


def test_caffe_loads_the_v1_file_as_the_weights_it_was_written_from(saved):
    _, source, *_ = saved["V1 source"]
    _, reloaded, *_ = saved["V1"]
    source.check(), reloaded.check()
    assert list(reloaded.params) == list(source.params)
    for layer, arrays in source.params.items():
        for a, b in zip(arrays, reloaded.params[layer]):
            np.testing.assert_array_equal(b.reshape(a.shape), a)
    for name in source.outputs:
        np.testing.assert_array_equal(reloaded.data[name], source.data[name])


@pytest.mark.parametrize("form", FORMS)
def test_read_caffemodel_gives_caffes_arrays(form, saved):
    path, r, *_ = saved[form]
    r.check()
    model = read_caffemodel(path)
    assert model.format == form
    types = {name: type_ for name, type_, *_ in r.layers}
    assert [(layer.name, layer.type) for layer in model.layers if layer.blobs] == \
        [(name, types[name]) for name in r.params]
    for layer in (layer for layer in model.layers if layer.blobs):   # net.save writes every layer
        caffe_arrays = r.params[layer.name]
        assert len(layer.blobs) == len(caffe_arrays)
        for blob, want in zip(layer.blobs, caffe_arrays):
            assert blob.data.dtype == np.float32
            assert blob.legacy == (form == "V1")
            # V1 blobs are 4-axis num/channels/height/width: Caffe's shape padded with leading 1s
            assert blob.shape == ((1,) * (4 - want.ndim) + want.shape if form == "V1" else want.shape)
            np.testing.assert_array_equal(blob.data.reshape(want.shape), want)


@pytest.mark.parametrize("form", FORMS)
def test_load_caffemodel_gives_caffes_arrays(form, saved):
    path, r, *_ = saved[form]
    r.check()
    got = load_caffemodel(path)
    assert list(got) == list(r.params)
    for layer, arrays in r.params.items():
        for a, want in zip(got[layer], arrays):
            np.testing.assert_array_equal(a.reshape(want.shape), want)


@pytest.mark.parametrize("form", FORMS)
def test_compiled_with_caffes_caffemodel_gives_caffes_outputs(form, saved):
    path, r, text, inputs = saved[form]
    r.check()
    got = forward(compile_net(text=text, weights=path, outputs=r.outputs), inputs, r.outputs)
    for name in r.outputs:
        caffe_ref.compare(got[name], r.data[name], f"{form}: {name}", REL)
