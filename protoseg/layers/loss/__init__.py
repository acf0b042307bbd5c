"""Layers with no inference meaning: the losses (loss_layer.cpp and each *_loss_layer.cpp),
Accuracy, DeepLab's SegAccuracy, MatWrite, SSD's DetectionEvaluate. Their shapes still follow
Caffe: a loss is a 0-axis scalar (Caffe prints it as "(1)")."""
from __future__ import annotations

from ..spec import LayerSpec, free
from ..geometry import canonical_axis, count


def loss_shape(ctx, bottoms):
    if len(bottoms) >= 2 and ctx.layer.type not in ("ContrastiveLoss", "MultiBoxLoss", "SmoothL1Loss"):
        if bottoms[0][:1] != bottoms[1][:1]:
            ctx.fail(f"the data {tuple(bottoms[0])} and label {tuple(bottoms[1])} bottoms must have "
                     f"the same first axis (batch)")
    return [()] + [bottoms[0]] * (len(ctx.layer.tops) - 1)


def softmax_loss_shape(ctx, bottoms):
    scores, labels = bottoms[0], bottoms[1]
    if scores[:1] != labels[:1]:        # LossLayer::Reshape
        ctx.fail(f"the data {tuple(scores)} and label {tuple(labels)} bottoms must have the same "
                 f"first axis (batch)")
    sp = ctx.params.get("softmax_param")
    a = canonical_axis(sp.get("axis"), len(scores))
    outer, inner = count(scores[:a]), count(scores[a + 1:])
    if count(labels) != outer * inner:
        ctx.fail(f"the label bottom {tuple(labels)} must hold one label per position: "
                 f"{outer}*{inner} = {outer * inner} values for scores {tuple(scores)}, got {count(labels)}")
    return [()] + [scores] * (len(ctx.layer.tops) - 1)


def accuracy_shape(ctx, bottoms):
    scores, labels = bottoms
    a = canonical_axis(ctx.p.get("axis"), len(scores))
    outer, inner = count(scores[:a]), count(scores[a + 1:])
    if count(labels) != outer * inner:
        ctx.fail(f"the label bottom {tuple(labels)} must hold {outer * inner} values for scores "
                 f"{tuple(scores)}, got {count(labels)}")
    if ctx.p.get("top_k") > scores[a]:
        ctx.fail(f"top_k {ctx.p.get('top_k')} is larger than the {scores[a]} classes", "top_k")
    return [()] + [(scores[a],)] * (len(ctx.layer.tops) - 1)


def seg_accuracy_shape(ctx, bottoms):
    """DeepLab SegAccuracy: (1, 1, 1, 3): pixel accuracy, mean class accuracy, mean IU."""
    return [(1, 1, 1, 3)]


def detection_evaluate_shape(ctx, bottoms):
    """SSD DetectionEvaluate: (1, 1, positive classes + detections, 5)."""
    p = ctx.p
    n_cls = p.get("num_classes")
    pos = n_cls if p.get("background_label_id") == -1 else n_cls - 1
    return [(1, 1, pos + bottoms[0][2], 5)]


def _loss(type_, param=None, bottoms=(2, 2), tops=(1, 1), shape=loss_shape):
    return LayerSpec(type_, shape, param=param, bottoms=bottoms, tops=tops, inference=False,
                     in_place=False, auto_tops=type_.endswith("Loss"), cost=free)


SPECS = [
    _loss("SoftmaxWithLoss", "loss_param", (2, 3), (1, 2), softmax_loss_shape),
    _loss("EuclideanLoss"),
    _loss("SigmoidCrossEntropyLoss", "loss_param"),
    _loss("HingeLoss", "hinge_loss_param"),
    _loss("InfogainLoss", "infogain_loss_param", (2, 3), (1, 2)),
    _loss("MultinomialLogisticLoss", "loss_param"),
    _loss("ContrastiveLoss", "contrastive_loss_param", (3, 3)),
    _loss("SmoothL1Loss", "smooth_l1_loss_param", (2, 4)),
    _loss("MultiBoxLoss", "multibox_loss_param", (4, 4)),
    _loss("Accuracy", "accuracy_param", (2, 2), (1, 2), accuracy_shape),
    _loss("SegAccuracy", "seg_accuracy_param", (2, 2), (1, 1), seg_accuracy_shape),
    _loss("DetectionEvaluate", "detection_evaluate_param", (2, 2), (1, 1), detection_evaluate_shape),
    LayerSpec("MatWrite", lambda ctx, b: [], param="mat_write_param", bottoms=(1, None), tops=(0, 0),
              inference=False, cost=free),
    LayerSpec("HDF5Output", lambda ctx, b: [], param="hdf5_output_param", bottoms=(1, None),
              tops=(0, 0), inference=False, cost=free),
]
