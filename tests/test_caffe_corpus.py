"""The corpus nets against the reference Caffe (tools/reference_caffe): every blob's shape, and
the outputs with random weights that Caffe itself makes and saves.

Each net of tests/test_compile_corpus.py's COMPILES table (the corpus deploy nets and the TEST
nets that run at inference) is made a deploy net by tests/caffe_ref.py with Caffe's own protobuf
messages (data layers -> net inputs of COMPILES' small sizes; losses, Accuracy and the other
label readers dropped), and protoseg gets exactly the text Caffe ran:

* `test_corpus_net_shapes_equal_caffe`: Caffe builds the net (one child process for all nets);
  its layers in order (without the Split layers Caffe inserts) and every blob's shape equal
  `protoseg.infer_shapes`;
* `test_corpus_net_outputs_equal_caffe`: Caffe fills every learnable blob from injected gaussian
  fillers (plus random BatchNorm statistics), `net.save`s the caffemodel and runs the net on a
  seeded input; `protoseg.compile_net(text=text, weights=that caffemodel)` gives the same outputs,
  max|diff| <= REL * max|Caffe|. A net whose deploy text and input shapes equal an earlier
  one's (train/val pairs, V1/V2 copies: 22 of 88) is run once.

Nets the reference cannot build are in NOT_IN_REFERENCE, checked to fail in Caffe with the
message given. The SSD nets' output is DetectionOutput's: the same detections in the same order,
scores and boxes within REL (their random class-score heads are scaled where no detection would
pass the net's threshold: SCORE_HEADS).
"""
from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from protoseg import compile_net, infer_shapes, load_net

import caffe_ref
from opencv_helpers import forward
from test_compile_corpus import COMPILES, SLOW_FILES, STAGES
from test_corpus import CORPUS, FILES

pytestmark = [pytest.mark.caffe, caffe_ref.skip_unless_available(),
              pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")]

REL = 1e-5

NO_INTERP = 'has no field named "interp_param"'     # the reference has no Interp layer
NO_ROI_POOLING = 'has no field named "roi_pooling_param"'   # nor Fast R-CNN's ROIPooling
NO_PYTHON = "Unknown layer type: Python"           # nor Python layers
SEGNET_BN = 'Message type "caffe.BNParameter" has no field named'  # its BN is another fork's (docs/fidelity.md)
# nets the reference Caffe cannot build: what its message (or its protobuf parser's) says
NOT_IN_REFERENCE = {
    "deeplab/deeplabv1_largefov_vgg128_noup_deploy.prototxt":
        'Message type "caffe.ConvolutionParameter" has no field named "hole"',    # DeepLab v1's dilation
    "deeplab/deeplabv2_resnet101_msc_test_513.prototxt": NO_INTERP,
    "deeplab/deeplabv2_resnet101_msc_test_hdf5.prototxt": NO_INTERP,
    "deeplab/deeplabv2_resnet101_msc_test_val_resolved.prototxt": NO_INTERP,
    "deeplab/deeplabv2_vgg16_aspp_nyu_test_val_resolved.prototxt": NO_INTERP,
    "deeplab/deeplabv2_vgg16_aspp_voc12_test_val_resolved.prototxt": NO_INTERP,
    "segnet/bayesian_segnet_inference.prototxt": SEGNET_BN,
    "segnet/segnet_basic_inference.prototxt": SEGNET_BN,
    "segnet/segnet_inference.prototxt": SEGNET_BN,
    "segnet/segnet_pascal_example.prototxt": SEGNET_BN,
    "segnet/segnet_train.prototxt": SEGNET_BN,
    "v1_legacy/fcn-32s-pascal-deploy_modelzoo.prototxt":
        'Enum type "caffe.V1LayerParameter.LayerType" has no value named CROP',
    "faster_rcnn/voc_VGG16_faster_rcnn_end2end_test.prototxt": NO_ROI_POOLING,
    "faster_rcnn/voc_ZF_faster_rcnn_end2end_test.prototxt": NO_ROI_POOLING,
    "faster_rcnn/voc_VGG_CNN_M_1024_fast_rcnn_test.prototxt": NO_ROI_POOLING,
    "faster_rcnn/rfcn_voc_ResNet-50_test_agnostic.prototxt": NO_PYTHON,
}

# SSD nets whose random class scores pass no confidence threshold: their score heads' weights
# (layers <...>_mbox_conf) are multiplied by this after Caffe's fill. MobileNetSSD_deploy (its
# BatchNorm folded into the convolutions) scores every class about 1/21 < 0.25; x 8 gives 100
# detections. The comparison is robust: the detections of these nets keep their order when
# DetectionOutput's inputs are perturbed by 1e-5 (relative), 10 draws out of 10.
SCORE_HEADS = {"ssd/MobileNetSSD_deploy.prototxt": 8.0}


def _id(rel: str, stages) -> str:
    return rel.replace(".prototxt", "") + "".join(f"(stage={s})" for s in stages)


CASES = [(rel, stages) for rel in FILES if rel in COMPILES for stages in STAGES.get(rel, [()])]
BUILDS = [(rel, stages) for rel, stages in CASES if rel not in NOT_IN_REFERENCE]


def _input_arrays(rel: str, shapes: dict) -> dict:
    rng = np.random.default_rng(zlib.crc32(rel.encode()))
    return {k: rng.uniform(-1, 1, s).astype(np.float32) for k, s in shapes.items()}


def _job(rel: str, stages, shapes: dict | None = None, **kw) -> caffe_ref.Job:
    """COMPILES' inputs (None: the net's own, then `shapes` gives them for the arrays)."""
    given = COMPILES[rel]
    return caffe_ref.Job(_id(rel, stages), str(CORPUS / rel),
                         inputs=_input_arrays(rel, given or shapes or {}),
                         deploy=given is not None, stages=stages, **kw)


@pytest.fixture(scope="module")
def built():
    """{case id: Result}: every corpus net built by Caffe, in one child process."""
    return caffe_ref.run([_job(rel, stages, forward=False) for rel, stages in BUILDS])


@pytest.fixture(scope="module")
def same_as(built):
    """{case id: the first case whose deploy net (the text Caffe ran, but for the net's name) and
    input shapes are the same}: train/val pairs and the V1/V2 copies run once for the outputs."""
    first, out = {}, {}
    for rel, stages in BUILDS:
        r = built[_id(rel, stages)]
        if r.error is None:
            key = (re.sub(r'^name: ".*"\n', "", r.prototxt), tuple(r.shapes[i] for i in r.inputs))
            out[_id(rel, stages)] = first.setdefault(key, _id(rel, stages))
    return out


def _params(cases):
    return [pytest.param(rel, stages, id=_id(rel, stages), marks=[pytest.mark.slow] if rel in SLOW_FILES else [])
            for rel, stages in cases]


@pytest.mark.parametrize("rel, stages", _params(BUILDS))
def test_corpus_net_shapes_equal_caffe(rel, stages, built):
    r = built[_id(rel, stages)].check()
    caffe_ref.assert_same_net(r, infer_shapes(load_net(text=r.prototxt, stages=stages, file=rel)))


@pytest.mark.parametrize("rel, stages", _params(BUILDS))
def test_corpus_net_outputs_equal_caffe(rel, stages, built, same_as, tmp_path):
    shape_run = built[_id(rel, stages)].check()
    if same_as[_id(rel, stages)] != _id(rel, stages):
        pytest.skip(f"the same deploy net and input shapes as {same_as[_id(rel, stages)]}, whose test runs it")
    caffemodel = tmp_path / "random.caffemodel"
    inputs = {name: shape_run.shapes[name] for name in shape_run.inputs}
    heads = {name: SCORE_HEADS[rel] for name, *_ in shape_run.layers
             if rel in SCORE_HEADS and name.endswith("_mbox_conf")}
    job = _job(rel, stages, inputs, fill_seed=zlib.crc32(rel.encode()) % 2**31, save=str(caffemodel),
               scale_weights=heads)
    r = caffe_ref.run_one(job).check()
    model = compile_net(text=r.prototxt, weights=str(caffemodel), outputs=r.outputs, stages=stages)
    caffemodel.unlink()
    got = forward(model, job.inputs, r.outputs)
    made_by = {top: type_ for _, type_, _, tops in r.layers for top in tops}
    for name in r.outputs:
        if made_by[name] == "DetectionOutput":
            assert (r.data[name][0, 0, :, 1] >= 0).sum() >= 50, "too few detections for a comparison"
            caffe_ref.compare_detections(got[name], r.data[name], f"{rel}: {name}", REL)
        else:
            caffe_ref.compare(got[name], r.data[name], f"{rel}: {name}", REL)


@pytest.fixture(scope="module")
def refused():
    return caffe_ref.run([_job(rel, (), forward=False) for rel in FILES if rel in NOT_IN_REFERENCE])


@pytest.mark.parametrize("rel", [pytest.param(rel, id=_id(rel, ())) for rel in FILES if rel in NOT_IN_REFERENCE])
def test_net_the_reference_cannot_build(rel, refused):
    error = refused[_id(rel, ())].error
    assert error is not None and NOT_IN_REFERENCE[rel] in error, error
