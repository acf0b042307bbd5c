"""Every real prototxt of ../shared/corpus parses (or fails with its documented error) and gets
complete shapes; every layer in the two Caffe logs gets exactly Caffe's `Top shape`.

The corpus is read in place and skipped cleanly when absent. Shapes the net itself cannot give
(database records, Python data layers, training targets) are given the way a user gives them:
as --input values, listed per file below.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from protoseg.errors import GraphError, PrototxtSyntaxError
from protoseg.net import load_net
from protoseg.shapes import infer_shapes

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
if not CORPUS.is_dir():
    CORPUS = Path(os.environ.get("PROTOSEG_CORPUS", "/nonexistent"))
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")

FILES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*.prototxt")) if CORPUS.is_dir() else []


def seg(c=3, h=500, w=500, n=1, label="label", data="data"):
    return {data: (n, c, h, w), label: (n, 1, h, w)}


# file -> (phase, stages, inputs). Files not listed: TEST phase, no --input.
RUNS = {
    "bvlc/bvlc_alexnet_train_val.prototxt": ("TEST", (), {"data": (50, 3, 227, 227)}),
    "bvlc/bvlc_googlenet_train_val.prototxt": ("TEST", (), {"data": (50, 3, 224, 224)}),
    "bvlc/bvlc_reference_caffenet_train_val.prototxt": ("TEST", (), {"data": (50, 3, 227, 227)}),
    "bvlc/cifar10_full_sigmoid_train_test_bn.prototxt": ("TEST", (), {"data": (1000, 3, 32, 32)}),
    "bvlc/cifar10_quick_train_test.prototxt": ("TEST", (), {"data": (100, 3, 32, 32)}),
    "bvlc/hdf5_nonlinear_train_val.prototxt": ("TEST", (), {"data": (10, 4), "label": (10,)}),
    "bvlc/lenet_train_test.prototxt": ("TEST", (), {"data": (100, 1, 28, 28)}),
    "bvlc/mnist_autoencoder.prototxt": ("TEST", ("test-on-test",), {"data": (100, 1, 28, 28)}),
    "bvlc/mnist_siamese_train_test.prototxt": ("TEST", (), {"pair_data": (100, 2, 28, 28)}),
    "v1_legacy/bvlc_alexnet_train_val.prototxt": ("TEST", (), {"data": (50, 3, 227, 227)}),
    "v1_legacy/bvlc_reference_caffenet_train_val.prototxt": ("TEST", (), {"data": (50, 3, 227, 227)}),
    "v1_legacy/cifar10_quick_train_test.prototxt": ("TEST", (), {"data": (100, 3, 32, 32)}),
    "v1_legacy/lenet_train_test.prototxt": ("TEST", (), {"data": (100, 1, 28, 28)}),
    "v1_legacy/mnist_siamese_train_test.prototxt": ("TEST", (), {"pair_data": (100, 2, 28, 28)}),
    "deeplab/deeplabv2_resnet101_msc_test_hdf5.prototxt": ("TEST", (), seg(h=513, w=513)),
    "deeplab/deeplabv2_vgg16_aspp_nyu_train_resolved.prototxt": ("TRAIN", (), {}),
    "segnet/bayesian_segnet_inference.prototxt": ("TEST", (), seg(h=360, w=480, n=4)),
    "segnet/segnet_basic_inference.prototxt": ("TEST", (), seg(h=360, w=480)),
    "segnet/segnet_inference.prototxt": ("TEST", (), seg(h=360, w=480)),
    "segnet/segnet_train.prototxt": ("TEST", (), seg(h=360, w=480, n=4)),
    "ssd/MobileNetSSD_train.prototxt": ("TRAIN", (), {"label": (1, 1, 2, 8)}),
    "ssd/VGG_VOC0712_SSD_300x300_test.prototxt": ("TEST", (), {"label": (1, 1, 2, 8)}),
    "ssd/VGG_VOC0712_SSD_300x300_train.prototxt": ("TRAIN", (), {"label": (1, 1, 2, 8)}),
    # the Faster R-CNN / R-FCN test nets need no --input: the proposal layer's setup gives its
    # rois (1, 5). Training: the data and the anchor / proposal targets are Python layers of
    # classes protoseg does not know (their setup reads py-faster-rcnn's config)
    "faster_rcnn/voc_VGG16_faster_rcnn_end2end_train.prototxt": ("TRAIN", (), {
        "data": (1, 3, 600, 800), "im_info": (1, 3), "gt_boxes": (1, 5),
        "rpn_labels": (1, 1, 342, 50), "rpn_bbox_targets": (1, 36, 38, 50),
        "rpn_bbox_inside_weights": (1, 36, 38, 50), "rpn_bbox_outside_weights": (1, 36, 38, 50),
        "rois": (128, 5), "labels": (128,), "bbox_targets": (128, 84),
        "bbox_inside_weights": (128, 84), "bbox_outside_weights": (128, 84)}),
    "fcn/nyud-fcn32s-color-d_test.prototxt": ("TEST", (), {
        "color": (1, 3, 425, 560), "depth": (1, 1, 425, 560), "label": (1, 1, 425, 560)}),
    "fcn/nyud-fcn32s-color-d_trainval.prototxt": ("TEST", (), {
        "color": (1, 3, 425, 560), "depth": (1, 1, 425, 560), "label": (1, 1, 425, 560)}),
    "fcn/nyud-fcn32s-color-hha_test.prototxt": ("TEST", (), {
        "color": (1, 3, 425, 560), "hha": (1, 3, 425, 560), "label": (1, 1, 425, 560)}),
    "fcn/nyud-fcn32s-color-hha_trainval.prototxt": ("TEST", (), {
        "color": (1, 3, 425, 560), "hha": (1, 3, 425, 560), "label": (1, 1, 425, 560)}),
    "fcn/siftflow-fcn16s_test.prototxt": ("TEST", (), {"data": (1, 3, 256, 256), "sem": (1, 1, 256, 256),
                                                        "geo": (1, 1, 256, 256)}),
    "fcn/siftflow-fcn16s_trainval.prototxt": ("TEST", (), {"data": (1, 3, 256, 256), "sem": (1, 1, 256, 256),
                                                            "geo": (1, 1, 256, 256)}),
    "fcn/siftflow-fcn32s_test.prototxt": ("TEST", (), {"data": (1, 3, 256, 256), "sem": (1, 1, 256, 256),
                                                        "geo": (1, 1, 256, 256)}),
    "fcn/siftflow-fcn32s_trainval.prototxt": ("TEST", (), {"data": (1, 3, 256, 256), "sem": (1, 1, 256, 256),
                                                            "geo": (1, 1, 256, 256)}),
    "fcn/siftflow-fcn8s_test.prototxt": ("TEST", (), {"data": (1, 3, 256, 256), "sem": (1, 1, 256, 256),
                                                       "geo": (1, 1, 256, 256)}),
    "fcn/siftflow-fcn8s_trainval.prototxt": ("TEST", (), {"data": (1, 3, 256, 256), "sem": (1, 1, 256, 256),
                                                           "geo": (1, 1, 256, 256)}),
}
for _name in ("nyud-fcn32s-color", "nyud-fcn32s-hha", "pascalcontext-fcn16s", "pascalcontext-fcn32s",
              "pascalcontext-fcn8s", "voc-fcn-alexnet", "voc-fcn16s", "voc-fcn32s", "voc-fcn8s-atonce",
              "voc-fcn8s"):
    for _split in ("train", "val", "test", "trainval"):
        RUNS.setdefault(f"fcn/{_name}_{_split}.prototxt", ("TEST", (), seg()))

# Files that are not nets as they stand, with the error Caffe (and protoseg) gives.
TEMPLATES = {  # experiment templates: `num_output: ${NUM_LABELS}` is filled in by a script
    "deeplab/deeplabv1_largefov_test.prototxt",
    "deeplab/deeplabv1_msc_largefov_test.prototxt",
    "deeplab/deeplabv2_resnet101_msc_test_imagesegdata.prototxt",
    "deeplab/deeplabv2_resnet101_msc_train_imagesegdata.prototxt",
    "deeplab/deeplabv2_vgg16_aspp_voc2012_test.prototxt",
    "deeplab/deeplabv2_vgg16_aspp_voc2012_train.prototxt",
}
# A published deploy file whose Silence layer reads a blob ('data_dim') that nothing produces:
# Caffe stops with "Unknown bottom blob 'data_dim'".
BROKEN = {"deeplab/deeplabv2_vgg16_aspp_nyu_deploy.prototxt": ("data_dim", "silence")}


@pytest.mark.parametrize("rel", FILES)
def test_corpus_file_gets_complete_shapes(rel):
    path = str(CORPUS / rel)
    if rel in TEMPLATES:
        with pytest.raises(PrototxtSyntaxError, match=r"unfilled template variable '\$\{NUM_LABELS\}'"):
            load_net(path)
        return
    phase, stages, inputs = RUNS.get(rel, ("TEST", (), {}))
    if rel in BROKEN:
        blob, layer = BROKEN[rel]
        with pytest.raises(GraphError, match=f"bottom '{blob}'") as e:
            load_net(path, phase=phase)
        assert f"layer '{layer}'" in str(e.value)
        return
    net = load_net(path, phase=phase, stages=stages)
    shapes = infer_shapes(net, inputs)
    assert len(shapes.layers) == len(net.layers) > 0
    for ls in shapes.layers:
        assert len(ls.tops) == len(ls.layer.tops)
        assert all(isinstance(d, int) and d >= 1 for t in ls.tops for d in t), (ls.layer.name, ls.tops)


@pytest.mark.parametrize("rel", sorted(TEMPLATES))
def test_templates_load_once_filled(rel):
    """The template files are valid nets once the script's variables are substituted."""
    text = (CORPUS / rel).read_text().replace("${NUM_LABELS}", "21")
    net = load_net(text=text, file=rel, phase="TRAIN" if "_train" in rel else "TEST")
    shapes = infer_shapes(net, {"data": (1, 3, 321, 321), "label": (1, 1, 321, 321)}
                          if rel == "deeplab/deeplabv2_resnet101_msc_test_imagesegdata.prototxt" else {})
    assert len(shapes.layers) == len(net.layers) > 0


# ---------------------------------------------------------------------------------------------
# Caffe's own logs

GLOG = re.compile(r"^[IWEF]\d{4} \S+\s+\d+ \S+\] ?(.*)$")


def parse_log(path: Path) -> list:
    """-> [(net text, [(layer, bottoms, tops, [top shapes])...])] for each net the log set up."""
    nets = []
    lines = path.read_text(errors="replace").splitlines()
    i = 0
    while i < len(lines):
        m = GLOG.match(lines[i])
        if m and m.group(1).startswith("Initializing net from parameters"):
            j = i + 1
            while j < len(lines) and not GLOG.match(lines[j]):
                j += 1
            text = "\n".join(lines[i + 1:j])
            layers = []
            k = j
            while k < len(lines):
                mm = GLOG.match(lines[k])
                msg = mm.group(1) if mm else ""
                if msg.startswith("Initializing net from parameters"):
                    break
                if msg.startswith("Creating Layer "):
                    layers.append([msg[len("Creating Layer "):].strip(), [], [], []])
                elif layers and re.match(r"\S+ <- \S+$", msg):
                    layers[-1][1].append(msg.split(" <- ")[1])
                elif layers and re.match(r"\S+ -> \S+( \(in-place\))?$", msg):
                    layers[-1][2].append(msg.split(" -> ")[1].split()[0])
                elif layers and msg.startswith("Top shape: "):
                    dims = msg[len("Top shape: "):].rsplit("(", 1)[0].split()
                    layers[-1][3].append(tuple(int(d) for d in dims))
                k += 1
            nets.append((text, layers))
            i = k
        else:
            i += 1
    return nets


LOGS = {
    # log -> per net set up in it: the data-dependent tops, as a user gives them with --input
    # (SSD's AnnotatedData label holds the boxes of the first batch: 5 in TRAIN, 2 in TEST).
    "ssd300_vgg16_voc0712_train_and_test.caffe.log": [{"label": (1, 1, 5, 8)}, {"label": (1, 1, 2, 8)}],
    "vgg16_train_val_batch16.caffe.log": [{}, {}],
}


def _log_cases():
    out = []
    if not CORPUS.is_dir():
        return out
    for log, inputs in LOGS.items():
        for n, (text, layers) in enumerate(parse_log(CORPUS / "logs" / log)):
            out.append(pytest.param(log, n, text, layers, inputs[n], id=f"{log.split('.')[0]}-net{n}"))
    return out


@pytest.mark.parametrize("log,n,text,layers,inputs", _log_cases())
def test_every_logged_layer_matches_caffe_top_shapes(log, n, text, layers, inputs):
    phase = re.search(r"phase:\s*(TRAIN|TEST)", text).group(1)
    net = load_net(text=text, file=f"{log}#net{n}", phase=phase)
    shapes = infer_shapes(net, inputs)
    ours = {ls.layer.name: ls for ls in shapes.layers}
    current = {}        # blob -> shape, as Caffe's layers run (for its inserted Split layers)
    checked = 0
    for name, bottoms, tops, top_shapes in layers:
        if name in ours:
            ls = ours[name]
            got = [t for t, blob in zip(ls.tops, ls.layer.tops) if blob != "(automatic)"] \
                if len(top_shapes) < len(ls.tops) else ls.tops
            assert got == top_shapes, f"layer {name}: protoseg {got}, Caffe {top_shapes}"
            for blob, shape in zip(ls.layer.tops, ls.tops):
                current[blob] = shape
        else:   # a Split that Caffe inserted: every top has its bottom's shape
            assert name.endswith("_split"), f"Caffe created layer {name!r}, which protoseg does not have"
            assert all(s == current[bottoms[0]] for s in top_shapes), name
        checked += 1
    assert checked == len(layers) > 20
    assert len(ours) == len([l for l in layers if not l[0].endswith("_split")])


# The published files behind the logs (SOURCES.tsv): loading the original file (V1 format for
# VGG, through protoseg's own upgrade) must give the same shapes as Caffe's run of it.
SOURCES = [
    ("vgg16_train_val_batch16.caffe.log", 0, "vgg/vgg16_train_val_v1.prototxt", "TRAIN", {}),
    ("ssd300_vgg16_voc0712_train_and_test.caffe.log", 0, "ssd/VGG_VOC0712_SSD_300x300_train.prototxt",
     "TRAIN", {"label": (1, 1, 5, 8)}),
]


@pytest.mark.parametrize("log,n,rel,phase,inputs", SOURCES, ids=[s[2] for s in SOURCES])
def test_source_file_matches_its_log(log, n, rel, phase, inputs):
    _, layers = parse_log(CORPUS / "logs" / log)[n]
    shapes = infer_shapes(load_net(str(CORPUS / rel), phase=phase), inputs)
    ours = {ls.layer.name: ls.tops for ls in shapes.layers}
    logged = {name: tops for name, _, _, tops in layers if not name.endswith("_split")}
    assert set(ours) == set(logged)
    assert {k: [t for t in v if t != ()] for k, v in ours.items()} == \
        {k: [t for t in v if t != ()] for k, v in logged.items()}
