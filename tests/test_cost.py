"""Cost per layer and in total (protoseg.analysis.costs, `protoseg shapes --cost`).

Every expected number is derived by hand from the layer shapes (written out below) and the
counting rules of docs/analysis.md: a convolution's output value is a dot product of
C_in/group * kh * kw inputs, an inner product's of K; parameters are the values of the blobs a
caffemodel stores (weights and biases). VGG16 and AlexNet are checked against their published
parameter counts; the MACs at batch 1.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import infer_text
from protoseg.analysis import costs
from protoseg.cli import main
from protoseg.net import load_net
from protoseg.shapes import infer_shapes
from test_check import NETS, corpus_argv
from test_corpus import CORPUS

ROOT = Path(__file__).resolve().parents[1]
FCN8S = ROOT / "prototxts" / "fcn8s.prototxt"
VGG16 = CORPUS / "vgg" / "VGG_ILSVRC_16_layers_deploy.prototxt"
ALEXNET = CORPUS / "bvlc" / "bvlc_alexnet_deploy.prototxt"
corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")


def layer_costs(path, inputs=None) -> dict:
    shapes = infer_shapes(load_net(str(path)), inputs)
    return {c.layer.name: c for c in costs(shapes).layers}


# -- VGG16 at 1x3x224x224: 3x3 convolutions, pad 1 (size kept), pools halve.
# (layer, C_in, C_out, output size)
VGG16_CONVS = [
    ("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224), ("conv2_1", 64, 128, 112),
    ("conv2_2", 128, 128, 112), ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56),
    ("conv3_3", 256, 256, 56), ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28),
    ("conv4_3", 512, 512, 28), ("conv5_1", 512, 512, 14), ("conv5_2", 512, 512, 14),
    ("conv5_3", 512, 512, 14),
]
# (layer, K, N): fc6 reads pool5 512x7x7 = 25088 values
VGG16_FCS = [("fc6", 25088, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)]


@corpus
@pytest.mark.parametrize("name,cin,cout,size", VGG16_CONVS, ids=[c[0] for c in VGG16_CONVS])
def test_vgg16_convolution(name, cin, cout, size):
    c = layer_costs(VGG16, {"data": (1, 3, 224, 224)})[name]
    assert c.params == 9 * cin * cout + cout            # 3x3 weights + bias
    assert c.macs == size * size * cout * cin * 9       # one 9*C_in dot product per output value


@corpus
@pytest.mark.parametrize("name,k,n", VGG16_FCS, ids=[f[0] for f in VGG16_FCS])
def test_vgg16_inner_product(name, k, n):
    c = layer_costs(VGG16, {"data": (1, 3, 224, 224)})[name]
    assert (c.params, c.macs) == (k * n + n, k * n)


@corpus
def test_vgg16_totals():
    # parameters: 14,714,688 in the convolutions + 102,764,544 + 16,781,312 + 4,097,000 in fc6-8
    # MACs: per stage 224^2*(3*64 + 64*64)*9 = 1,936,392,192; 112^2*(64*128 + 128^2)*9 =
    # 2,774,532,096; 56^2*(128*256 + 2*256^2)*9 = 4,624,220,160; 28^2*(256*512 + 2*512^2)*9 =
    # 4,624,220,160; 14^2*3*512^2*9 = 1,387,266,048; fc 25088*4096 + 4096^2 + 4096*1000 =
    # 123,633,664: 15,470,264,320 (15.47 G)
    total = costs(infer_shapes(load_net(str(VGG16)), {"data": (1, 3, 224, 224)}))
    assert total.params == 138_357_544
    assert total.macs == 15_470_264_320
    assert total.unknown == []


@corpus
def test_vgg16_macs_scale_with_the_declared_batch():
    # the deploy file declares 16 images: Netscope's counts, like these, are for the whole batch
    assert costs(infer_shapes(load_net(str(VGG16)))).macs == 16 * 15_470_264_320


@corpus
def test_alexnet_parameters_with_grouped_convolutions():
    # conv1 96*3*11*11 + 96 = 34,944; conv2 (group 2) 256*48*5*5 + 256 = 307,456; conv3
    # 384*256*9 + 384 = 885,120; conv4 (group 2) 384*192*9 + 384 = 663,936; conv5 (group 2)
    # 256*192*9 + 256 = 442,624; fc6 4096*9216 + 4096 = 37,752,832; fc7 4096*4096 + 4096 =
    # 16,781,312; fc8 1000*4096 + 1000 = 4,097,000: 60,965,224
    total = costs(infer_shapes(load_net(str(ALEXNET)), {"data": (1, 3, 227, 227)}))
    assert total.params == 60_965_224


@corpus
def test_alexnet_grouped_convolution_and_lrn_macs():
    c = layer_costs(ALEXNET, {"data": (1, 3, 227, 227)})
    # conv2: 27x27x256 outputs, each over 96/2 = 48 channels of a 5x5 window
    assert c["conv2"].macs == 27 * 27 * 256 * 48 * 25
    # norm1: local_size 5 multiply-adds per value of 96x55x55 (as Netscope counts LRN)
    assert c["norm1"].macs == 96 * 55 * 55 * 5
    assert c["norm1"].params == 0


# -- FCN-8s at 500x500 (the walkthrough sizes of tests/test_cli.py): (layer, C_in, C_out, kernel,
# spatial size the MACs run over: the output for a convolution, the input for a deconvolution)
FCN8S_LAYERS = [
    ("conv1_1", 3, 64, 3, 698), ("conv1_2", 64, 64, 3, 698),
    ("conv2_1", 64, 128, 3, 349), ("conv2_2", 128, 128, 3, 349),
    ("conv3_1", 128, 256, 3, 175), ("conv3_2", 256, 256, 3, 175), ("conv3_3", 256, 256, 3, 175),
    ("conv4_1", 256, 512, 3, 88), ("conv4_2", 512, 512, 3, 88), ("conv4_3", 512, 512, 3, 88),
    ("conv5_1", 512, 512, 3, 44), ("conv5_2", 512, 512, 3, 44), ("conv5_3", 512, 512, 3, 44),
    ("fc6", 512, 4096, 7, 16), ("fc7", 4096, 4096, 1, 16), ("score_fr", 4096, 21, 1, 16),
    ("upscore2", 21, 21, 4, 16), ("score_pool4", 512, 21, 1, 44),
    ("upscore_pool4", 21, 21, 4, 34), ("score_pool3", 256, 21, 1, 88),
    ("upscore8", 21, 21, 16, 70),
]
DECONVS = {"upscore2", "upscore_pool4", "upscore8"}      # bias_term: false


@pytest.mark.parametrize("name,cin,cout,k,size", FCN8S_LAYERS, ids=[l[0] for l in FCN8S_LAYERS])
def test_fcn8s_layer(name, cin, cout, k, size):
    c = layer_costs(FCN8S)[name]
    assert c.params == cin * cout * k * k + (0 if name in DECONVS else cout)
    # a deconvolution scatters each of its size^2 x C_in inputs through C_out x k^2 weights
    assert c.macs == size * size * cin * cout * k * k


def test_fcn8s_totals():
    total = costs(infer_shapes(load_net(str(FCN8S))))
    assert total.params == sum(cin * cout * k * k + (0 if n in DECONVS else cout)
                               for n, cin, cout, k, _ in FCN8S_LAYERS) == 134_489_759
    assert total.macs == sum(s * s * cin * cout * k * k for _, cin, cout, k, s in FCN8S_LAYERS)


def test_fcn8s_activation_memory():
    c = layer_costs(FCN8S)
    assert c["conv1_1"].activation_bytes == 64 * 698 * 698 * 4        # float32
    assert c["relu1_1"].activation_bytes == 0                         # in place: conv1_1's memory
    assert c["input"].activation_bytes == 3 * 500 * 500 * 4
    assert c["score"].activation_bytes == 21 * 500 * 500 * 4          # Crop copies


# 2x2x4x4 = 64 values: PROD of 3 bottoms multiplies twice per value, a SUM with coefficients
# multiply-adds once per value and bottom, Scale multiplies (and adds its bias) once per value
@pytest.mark.parametrize("layer,bottoms,macs", [
    ('type: "Eltwise" eltwise_param { operation: PROD }', 3, 64 * 2),
    ('type: "Eltwise" eltwise_param { operation: SUM }', 2, 0),
    ('type: "Eltwise" eltwise_param { operation: SUM coeff: 1 coeff: -1 }', 2, 64 * 2),
    ('type: "Scale" scale_param { bias_term: true }', 1, 64),
], ids=["prod-3-bottoms", "sum", "sum-coeff", "scale"])
def test_element_wise_macs(layer, bottoms, macs):
    names = [f"b{i}" for i in range(bottoms)]
    text = ('layer { name: "in" type: "Input" ' + " ".join(f'top: "{b}"' for b in names)
            + ' input_param { shape { dim: 2 dim: 2 dim: 4 dim: 4 } } }\n'
            + 'layer { name: "L" ' + layer + " ".join(f' bottom: "{b}"' for b in names)
            + ' top: "t" }\n')
    c = costs(infer_text(text)).layers[1]
    assert c.macs == macs


def test_batch_norm_parameters_are_its_three_blobs():
    text = ('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 8 dim: 4 dim: 4 } } }\n'
            'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }\n'
            'layer { name: "sc" type: "Scale" bottom: "x" top: "x" scale_param { bias_term: true } }\n')
    bn, sc = costs(infer_text(text)).layers[1:]
    assert (bn.params, bn.blobs) == (8 + 8 + 1, ((8,), (8,), (1,)))   # mean, variance, factor
    assert (bn.activation_bytes, sc.params) == (0, 8 + 8)              # in place; scale + bias


def test_split_and_reshape_share_their_bottom():
    text = ('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 8 dim: 4 dim: 4 } } }\n'
            'layer { name: "sp" type: "Split" bottom: "x" top: "a" top: "b" }\n'
            'layer { name: "rs" type: "Reshape" bottom: "a" top: "r" reshape_param { shape { dim: 0 dim: -1 } } }\n'
            'layer { name: "fl" type: "Flatten" bottom: "b" top: "f" }\n')
    assert [c.activation_bytes for c in costs(infer_text(text)).layers] == [8 * 4 * 4 * 4, 0, 0, 0]


def test_a_type_without_cost_rule_is_unknown_not_zero():
    from protoseg.layers import LayerSpec, register, same_shape, unregister
    register(LayerSpec("Mystery", same_shape))
    try:
        text = ('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }\n'
                'layer { name: "m" type: "Mystery" bottom: "x" top: "y" }\n')
        total = costs(infer_text(text))
    finally:
        unregister("Mystery")
    assert (total.layers[1].params, total.layers[1].macs) == (None, None)
    assert total.unknown == ["m"]


def test_costs_checks_its_argument():
    with pytest.raises(TypeError, match="Shapes of infer_shapes"):
        costs(load_net(str(FCN8S)))


def test_shapes_cost_table_has_a_total_row(capsys):
    assert main(["shapes", str(FCN8S), "--cost"]) == 0
    out = capsys.readouterr().out
    total = next(l for l in out.splitlines() if l.startswith("total"))
    assert "134,489,759" in total
    assert "181.53 G" in total     # the sum of FCN8S_LAYERS' MACs: 181,529,034,048


def test_shapes_json_always_has_cost(capsys):
    assert main(["shapes", str(FCN8S), "--format", "json"]) == 0
    j = json.loads(capsys.readouterr().out)
    conv = next(l for l in j["layers"] if l["name"] == "conv1_1")
    assert conv["cost"] == {"params": 1792, "macs": 698 * 698 * 64 * 27,
                            "activation_bytes": 64 * 698 * 698 * 4, "blobs": [[64, 3, 3, 3], [64]]}
    assert j["totals"]["params"] == 134_489_759


@corpus
@pytest.mark.parametrize("rel", NETS)
def test_shapes_json_with_cost_and_maps_runs_on_every_corpus_net(rel, capsys):
    assert main(["shapes", *corpus_argv(rel), "--format", "json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert all("cost" in l and "maps" in l for l in j["layers"])
