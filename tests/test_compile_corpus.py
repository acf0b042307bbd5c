"""Every deploy / TEST net of ../shared/corpus compiles, and running it gives exactly the inferred
shape for every value (`protoseg.compile.check_shapes`); every net that cannot be compiled is
refused with the UnsupportedLayerError that names each layer and why.

The corpus is read in place and skipped cleanly when absent. Each file is compiled as its TEST
net (phase TEST, as Caffe's test net / deploy net), with a random input of the size listed below:
fully convolutional nets at a reduced size (40-96 px where the net allows it),
nets with an InnerProduct, a fixed-size pooling before it, or fixed Upsample sizes at their
native size, always at batch 1. Train/val files keep their TEST net (the losses and the label
input are left out, see docs/compile.md "What is kept").

test_compile.py already checks nine of these nets; this file is the whole-corpus sweep.
"""
from __future__ import annotations

import re

import pytest
import torch

from protoseg import compile_net
from protoseg.compile import check_shapes
from protoseg.errors import GraphError, PrototxtSyntaxError, UnsupportedLayerError

from test_corpus import CORPUS, FILES, TEMPLATES

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")


def img(h, w=None, c=3, name="data"):
    """{name: (1, c, h, w)}: one image."""
    return {name: (1, c, h, w or h)}


SLOW = pytest.mark.slow

# file -> the inputs it is compiled with (None: the net's own input shape, already batch 1 and
# small). Sizes: the FCN nets pad conv1 by 100 px, so any input >= 1 px runs through; 64 px keeps
# every crop offset in range. AlexNet / CaffeNet / GoogLeNet / VGG / ResNet-50/101/152 end in a
# fixed-size pooling or an InnerProduct over a fixed count: native size. MobileNets and ResNeXt
# pool globally: reduced size. SegNet's decoder has fixed upsample_h/w (23, 45 / 30, 60): 360x480.
# VGG-SSD's conv9_2 (3x3, no pad) needs >= 268 px to keep a 1x1 map: its native 300.
COMPILES = {
    # -- classification backbones (InnerProduct / fixed pooling: native size, batch 1)
    "bvlc/bvlc_alexnet_deploy.prototxt": img(227),
    "bvlc/bvlc_alexnet_train_val.prototxt": img(227),
    "bvlc/bvlc_caffenet_full_conv.prototxt": img(227),        # fully convolutional: 1x1 map
    "bvlc/bvlc_googlenet_deploy.prototxt": img(224),
    "bvlc/bvlc_googlenet_train_val.prototxt": img(224),       # + the two auxiliary classifiers
    "bvlc/bvlc_reference_caffenet_deploy.prototxt": img(227),
    "bvlc/bvlc_reference_caffenet_train_val.prototxt": img(227),
    "bvlc/bvlc_reference_rcnn_ilsvrc13_deploy.prototxt": img(227),
    "bvlc/cifar10_full.prototxt": None,
    "bvlc/cifar10_full_sigmoid_train_test_bn.prototxt": img(32),
    "bvlc/cifar10_quick.prototxt": None,
    "bvlc/cifar10_quick_train_test.prototxt": img(32),
    "bvlc/finetune_flickr_style_deploy.prototxt": img(227),
    "bvlc/hdf5_nonlinear_train_val.prototxt": {"data": (1, 4)},
    "bvlc/lenet.prototxt": img(28, c=1),
    "bvlc/lenet_train_test.prototxt": img(28, c=1),
    "bvlc/mnist_autoencoder.prototxt": img(28, c=1),
    "bvlc/mnist_siamese.prototxt": img(28, c=1),
    "bvlc/mnist_siamese_train_test.prototxt": img(28, c=2, name="pair_data"),   # Slice into two
    "bvlc/net_surgery_conv.prototxt": None,
    "bvlc/pascal_finetune_trainval_test.prototxt": img(227),
    "mobilenet/mobilenet_deploy.prototxt": img(64),
    "mobilenet/mobilenet_v2_deploy.prototxt": img(64),
    "resnet/ResNet-50-deploy.prototxt": None,
    "resnet/ResNet-101-deploy.prototxt": None,
    "resnet/ResNet-152-deploy.prototxt": None,
    "resnet/deploy_resnext50-32x4d.prototxt": img(64),
    "vgg/VGG_ILSVRC_16_layers_deploy.prototxt": img(224),
    "vgg/VGG_ILSVRC_19_layers_deploy.prototxt": img(224),
    "vgg/deploy_vgg16-pytorch.prototxt": None,
    "vgg/vgg16_train_val_v1.prototxt": img(224),
    "v0_legacy/cifar10_quick_v0.prototxt": None,
    "v0_legacy/imagenet_deploy_v0.prototxt": img(227),
    "v0_legacy/lenet_v0.prototxt": img(28, c=1),
    "v1_legacy/bvlc_alexnet_deploy.prototxt": img(227),
    "v1_legacy/bvlc_alexnet_deploy_input_shape.prototxt": img(227),
    "v1_legacy/bvlc_alexnet_train_val.prototxt": img(227),
    "v1_legacy/bvlc_caffenet_full_conv.prototxt": img(227),
    "v1_legacy/bvlc_googlenet_deploy.prototxt": img(224),
    "v1_legacy/bvlc_googlenet_deploy_input_dim.prototxt": img(224),
    "v1_legacy/bvlc_googlenet_deploy_input_shape.prototxt": img(224),
    "v1_legacy/bvlc_reference_caffenet_deploy.prototxt": img(227),
    "v1_legacy/bvlc_reference_caffenet_train_val.prototxt": img(227),
    "v1_legacy/cifar10_full.prototxt": None,
    "v1_legacy/cifar10_quick.prototxt": None,
    "v1_legacy/cifar10_quick_train_test.prototxt": img(32),
    "v1_legacy/lenet.prototxt": img(28, c=1),
    "v1_legacy/lenet_train_test.prototxt": img(28, c=1),
    "v1_legacy/lenet_v2_input_dim.prototxt": img(28, c=1),
    "v1_legacy/mnist_siamese_train_test.prototxt": img(28, c=2, name="pair_data"),
    # -- FCN (Crop, Deconvolution, Python data layers)
    "fcn/fcn-8s-pascal-deploy_modelzoo.prototxt": img(64),
    "fcn/nyud-fcn32s-color-d_test.prototxt": {**img(64, name="color"), **img(64, c=1, name="depth")},
    "fcn/nyud-fcn32s-color-d_trainval.prototxt": {**img(64, name="color"), **img(64, c=1, name="depth")},
    "fcn/nyud-fcn32s-color-hha_test.prototxt": {**img(64, name="color"), **img(64, name="hha")},
    "fcn/nyud-fcn32s-color-hha_trainval.prototxt": {**img(64, name="color"), **img(64, name="hha")},
    "fcn/nyud-fcn32s-color_test.prototxt": img(64),
    "fcn/nyud-fcn32s-color_trainval.prototxt": img(64),
    "fcn/nyud-fcn32s-hha_test.prototxt": img(64),
    "fcn/nyud-fcn32s-hha_trainval.prototxt": img(64),
    "fcn/pascalcontext-fcn16s_train.prototxt": img(64),
    "fcn/pascalcontext-fcn16s_val.prototxt": img(64),
    "fcn/pascalcontext-fcn32s_train.prototxt": img(64),
    "fcn/pascalcontext-fcn32s_val.prototxt": img(64),
    "fcn/pascalcontext-fcn8s_train.prototxt": img(64),
    "fcn/pascalcontext-fcn8s_val.prototxt": img(64),
    "fcn/siftflow-fcn16s_test.prototxt": img(64),             # two heads: score_sem, score_geo
    "fcn/siftflow-fcn16s_trainval.prototxt": img(64),
    "fcn/siftflow-fcn32s_test.prototxt": img(64),
    "fcn/siftflow-fcn32s_trainval.prototxt": img(64),
    "fcn/siftflow-fcn8s_test.prototxt": img(64),
    "fcn/siftflow-fcn8s_trainval.prototxt": img(64),
    "fcn/voc-fcn-alexnet_train.prototxt": img(64),
    "fcn/voc-fcn-alexnet_val.prototxt": img(64),
    "fcn/voc-fcn16s_train.prototxt": img(64),
    "fcn/voc-fcn16s_val.prototxt": img(64),
    "fcn/voc-fcn32s_train.prototxt": img(64),
    "fcn/voc-fcn32s_val.prototxt": img(64),
    "fcn/voc-fcn8s-atonce_train.prototxt": img(64),           # Scale layers on pool3 / pool4
    "fcn/voc-fcn8s-atonce_val.prototxt": img(64),
    "fcn/voc-fcn8s_deploy.prototxt": img(64),
    "fcn/voc-fcn8s_train.prototxt": img(64),
    "fcn/voc-fcn8s_val.prototxt": img(64),
    "v1_legacy/fcn-32s-pascal-deploy_modelzoo.prototxt": img(64),
    # -- DeepLab (dilation, Interp, multi-scale fusion)
    "deeplab/deeplabv1_largefov_vgg128_noup_deploy.prototxt": img(65),
    "deeplab/deeplabv2_resnet101_single_scale_deploy.prototxt": img(65),
    "deeplab/deeplabv2_resnet101_msc_test_513.prototxt": img(65),
    "deeplab/deeplabv2_resnet101_msc_test_hdf5.prototxt": img(65),
    "deeplab/deeplabv2_resnet101_msc_test_val_resolved.prototxt": img(65),
    "deeplab/deeplabv2_vgg16_aspp_nyu_test_val_resolved.prototxt": img(65),
    "deeplab/deeplabv2_vgg16_aspp_voc12_test_val_resolved.prototxt": img(65),
    # -- SegNet (pooling mask + Upsample, BN)
    "segnet/segnet_basic_inference.prototxt": img(40, 64),   # upsample4 pad_out_h: H/8 odd
    "segnet/segnet_pascal_example.prototxt": img(64),
    "segnet/segnet_inference.prototxt": img(360, 480),
    "segnet/bayesian_segnet_inference.prototxt": img(360, 480),
    "segnet/segnet_train.prototxt": img(360, 480),
    # -- SSD (Normalize, Permute, Flatten, PriorBox, Concat, DetectionOutput)
    "ssd/MobileNetSSD_deploy.prototxt": img(96),
    "ssd/MobileNetSSD_root_deploy.prototxt": img(96),
    "ssd/VGG_VOC0712_SSD_300x300_deploy.prototxt": img(300),
    "ssd/VGG_VOC0712_SSD_300x300_test.prototxt": img(300),
    # -- Fast / Faster R-CNN, R-FCN (the proposal Python layer, ROIPooling, PSROIPooling): their
    # own 224 x 224 input; the rois (their count is only known at run time) are checked for their
    # number of axes
    "faster_rcnn/voc_VGG16_faster_rcnn_end2end_test.prototxt": None,
    "faster_rcnn/voc_ZF_faster_rcnn_end2end_test.prototxt": None,
    "faster_rcnn/voc_VGG_CNN_M_1024_fast_rcnn_test.prototxt": None,
    "faster_rcnn/rfcn_voc_ResNet-50_test_agnostic.prototxt": None,
}

# the slowest (about 2 s or more each on 2 cores: 360x480 SegNet, the 3-scale DeepLab-v2
# ResNet-101, the two-stream NYUD FCN); still run by default, `-m "not slow"` leaves them out
SLOW_FILES = {
    "deeplab/deeplabv2_resnet101_msc_test_513.prototxt",
    "deeplab/deeplabv2_resnet101_msc_test_hdf5.prototxt",
    "deeplab/deeplabv2_resnet101_msc_test_val_resolved.prototxt",
    "fcn/nyud-fcn32s-color-hha_test.prototxt",             # two VGG-16 streams
    "fcn/nyud-fcn32s-color-hha_trainval.prototxt",
    "segnet/segnet_inference.prototxt",
    "segnet/bayesian_segnet_inference.prototxt",
    "segnet/segnet_train.prototxt",
}

# files with several TEST nets (include { phase: TEST stage: ... }): each one is compiled
STAGES = {"bvlc/mnist_autoencoder.prototxt": [("test-on-test",), ("test-on-train",)]}

# Nets that cannot be compiled: the one UnsupportedLayerError, (layer, type, reason) per layer.
def _python(module: str, layer: str) -> str:
    return ("a Python layer with bottoms runs Python code of its own (python_param module/layer), which "
            f"protoseg cannot compile; register its class as layer type 'Python:{module}.{layer}' with its "
            'shape rule and torch module (README, "A layer type of your own fork")')


REFUSED = {
    # Faster R-CNN training: the anchor and proposal targets are Python layers reading the ground truth
    "faster_rcnn/voc_VGG16_faster_rcnn_end2end_train.prototxt": [
        (428, "rpn-data", "Python", _python("rpn.anchor_target_layer", "AnchorTargetLayer")),
        (517, "roi-data", "Python", _python("rpn.proposal_target_layer", "ProposalTargetLayer"))],
}


# Files that have no TEST net: every data layer is `include { phase: TRAIN }` (test_corpus.py
# gives them shapes in the TRAIN phase). Compiling their TEST net stops where Caffe stops.
TRAIN_ONLY = {
    "ssd/MobileNetSSD_train.prototxt": (142, "conv0", "Convolution", 2),
    "deeplab/deeplabv2_vgg16_aspp_nyu_train_resolved.prototxt": (50, "conv1_1", "Convolution", 21),
    "ssd/VGG_VOC0712_SSD_300x300_train.prototxt": (141, "conv1_1", "Convolution", 2),
}

# A published deploy file whose Silence layer reads a blob nothing produces ('data_dim'):
# Caffe stops with "Unknown bottom blob 'data_dim'" (also in test_corpus.py).
# The caret is on the unknown bottom itself (line 616), not on the layer's first bottom (615).
BROKEN = {"deeplab/deeplabv2_vgg16_aspp_nyu_deploy.prototxt": (616, "silence", "data_dim")}



def _id(rel: str) -> str:
    return rel.replace(".prototxt", "")


def test_every_corpus_file_is_in_exactly_one_table():
    tables = [set(COMPILES), set(REFUSED), set(TRAIN_ONLY), set(BROKEN), TEMPLATES]
    assert sum(len(t) for t in tables) == len(set().union(*tables))
    assert set().union(*tables) == set(FILES)


# ---------------------------------------------------------------------------------------------
# compiles: every executed value has its inferred shape

def _compile_cases():
    return [pytest.param(rel, COMPILES[rel], stages,
                         id=_id(rel) + "".join(f"(stage={s})" for s in stages),
                         marks=[SLOW] if rel in SLOW_FILES else [])
            for rel in FILES if rel in COMPILES for stages in STAGES.get(rel, [()])]


@pytest.mark.parametrize("rel, inputs, stages", _compile_cases())
def test_corpus_net_compiles_and_runs_with_inferred_shapes(rel, inputs, stages):
    torch.manual_seed(0)
    model = compile_net(CORPUS / rel, inputs=inputs, stages=stages)
    if inputs is not None:
        assert model.protoseg_input_shapes == {k: tuple(v) for k, v in inputs.items()}
    assert all(shape[0] == 1 for shape in model.protoseg_input_shapes.values())   # batch 1
    checked, bad = check_shapes(model)
    assert bad == []
    steps = sum(n.op == "call_module" for n in model.graph.nodes)
    assert checked >= steps > 0


# ---------------------------------------------------------------------------------------------
# refused: one error listing every layer that cannot be compiled, and why

def _refused_cases():
    return [pytest.param(rel, id=_id(rel)) for rel in FILES if rel in REFUSED]


@pytest.mark.parametrize("rel", _refused_cases())
def test_corpus_net_is_refused_listing_every_unsupported_layer(rel):
    path = str(CORPUS / rel)
    expected = REFUSED[rel]
    with pytest.raises(UnsupportedLayerError) as info:
        compile_net(path)
    # the summary names the root cause: the left-out producer's type, else the layer's own
    causes = ", ".join(sorted({(re.search(r"\((\w+)\), which is left out", why) or [None, t])[1]
                               for _, _, t, why in expected}))
    n = len(expected)
    lines = [f"cannot compile {n} layer{'s' if n != 1 else ''} (because of: {causes}):"]
    lines += [f"  {path}:{line}:1: layer '{name}' ({type_}): {why}" for line, name, type_, why in expected]
    lines.append("hint: `protoseg layers` (docs/layers.md) lists every supported type and what it supports")
    assert str(info.value) == "\n".join(lines)
    assert info.value.layers == [(name, type_, why) for _, name, type_, why in expected]


def _train_only_cases():
    return [pytest.param(rel, id=_id(rel)) for rel in FILES if rel in TRAIN_ONLY]


@pytest.mark.parametrize("rel", _train_only_cases())
def test_train_only_file_has_no_test_net(rel):
    line, layer, type_, data_line = TRAIN_ONLY[rel]
    path = str(CORPUS / rel)
    with pytest.raises(GraphError) as info:
        compile_net(path)
    first = str(info.value).splitlines()[0]
    # the caret on the value "data" of `  bottom: "data"` (column 11)
    assert first == (f"{path}:{line}:11: layer '{layer}' ({type_}): bottom 'data' comes only from layer "
                     f"'data' (line {data_line}), which is not included in this state (its include "
                     f"rules); Caffe would stop here too")


def _broken_cases():
    return [pytest.param(rel, id=_id(rel)) for rel in FILES if rel in BROKEN]


@pytest.mark.parametrize("rel", _broken_cases())
def test_broken_file_is_refused_like_caffe(rel):
    line, layer, blob = BROKEN[rel]
    path = str(CORPUS / rel)
    with pytest.raises(GraphError) as info:
        compile_net(path)
    assert str(info.value).splitlines()[0] == (
        f"{path}:{line}:11: layer '{layer}' (Silence): bottom '{blob}' (bottom 1) is not produced by "
        f"any layer before this one (and is not a net input)")


def _template_cases():
    return [pytest.param(rel, id=_id(rel), marks=pytest.mark.skip(
        reason="experiment template (num_output: ${NUM_LABELS} is filled in by a script), not a net"))
        for rel in FILES if rel in TEMPLATES]


@pytest.mark.parametrize("rel", _template_cases())
def test_template(rel):
    with pytest.raises(PrototxtSyntaxError):      # never runs (skipped); test_corpus.py checks this
        compile_net(CORPUS / rel)
