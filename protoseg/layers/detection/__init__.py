"""DetectionOutput (SSD fork: detection_output_layer.cpp, bbox_util.cpp): SSD's output. Bottoms:
the box predictions (N, P * L * 4), L = 1 with share_location else num_classes; the class
scores (N, P * num_classes); the priors (1, 2, P * 4) (PriorBox); a fourth bottom (the image,
for `visualize`) is not read.

The number of detections is only known after forward: Reshape (set-up) gives the top
(1, 1, 1, 7) and Forward reshapes it to (1, 1, N, 7). save_output_param (result files for an
evaluation) and visualize are not part of the output and are not done.

Caffe's setup: num_classes is required; nms_param's nms_threshold (default 0.3) >= 0 and eta in
(0, 1]; confidence_threshold unset means every score counts (-FLT_MAX). The SSD fork runs NMS
also without an nms_param (its defaults); the brocolli-caffe fork used as the reference skips
NMS and the confidence threshold then (docs/fidelity.md).
"""
from __future__ import annotations

from ..geometry import f32, legacy_dim
from ..spec import LayerSpec, free, local

FLT_MAX = 3.4028234663852886e38


def detection_output_conf(ctx, bottoms) -> dict:
    p = ctx.p
    if not p.has("num_classes"):
        ctx.fail("num_classes is required (Caffe: \"Must specify num_classes\")", "num_classes")
    nms = p.get("nms_param")
    if nms.get("nms_threshold") < 0:
        ctx.fail(f"nms_threshold must be >= 0, got {nms.get('nms_threshold')}", "nms_param")
    if not 0 < nms.get("eta") <= 1:
        ctx.fail(f"eta must be in (0, 1], got {nms.get('eta')}", "nms_param")
    return {"num_classes": p.get("num_classes"), "share_location": p.get("share_location"),
            "background_label_id": p.get("background_label_id"),
            "nms_threshold": f32(nms.get("nms_threshold")),
            "top_k": nms.get("top_k") if nms.has("top_k") else -1, "eta": f32(nms.get("eta")),
            "keep_top_k": p.get("keep_top_k"),
            "confidence_threshold": f32(p.get("confidence_threshold"))
            if p.has("confidence_threshold") else -FLT_MAX,
            "code_type": p.get("code_type"),
            "variance_encoded_in_target": p.get("variance_encoded_in_target")}


def detection_output_shape(ctx, bottoms):
    """Reshape: P = the priors' height / 4; the box predictions need P * L * 4 channels and the
    scores P * num_classes, on the same batch."""
    c = ctx.conf
    loc, conf, prior = bottoms[:3]
    priors = legacy_dim(prior, 2, 2) // 4
    locs = 1 if c["share_location"] else c["num_classes"]
    if loc[0] != conf[0]:
        ctx.fail(f"the box predictions {tuple(loc)} and the scores {tuple(conf)} need the same batch")
    if legacy_dim(loc, 1, 0) != priors * locs * 4 or legacy_dim(conf, 1, 1) != priors * c["num_classes"]:
        ctx.fail(f"{priors} priors (bottom 2 {tuple(prior)}) need {priors * locs * 4} box predictions "
                 f"and {priors * c['num_classes']} scores per image; got channels {legacy_dim(loc, 1, 0)} "
                 f"{tuple(loc)} and {legacy_dim(conf, 1, 1)} {tuple(conf)}")
    ctx.note(f"{priors} priors x {c['num_classes']} classes; (1, 1, 1, 7) at set-up, "
             f"(1, 1, N, 7) after forward with N the detections kept")
    return [(1, 1, 1, 7)]


def detection_output_lower(ctx):
    """CaffeDetectionOutput with the layer's settings (SSD's defaults left out)."""
    defaults = {"share_location": True, "background_label_id": 0, "nms_threshold": f32(0.3),
                "top_k": -1, "eta": 1.0, "keep_top_k": -1, "confidence_threshold": -FLT_MAX,
                "code_type": "CORNER", "variance_encoded_in_target": False}
    c = ctx.conf
    kw = {k: v for k, v in c.items() if k != "num_classes" and v != defaults[k]}
    return ctx.module(local(__name__, "CaffeDetectionOutput"), c["num_classes"], **kw)


SPECS = [LayerSpec("DetectionOutput", detection_output_shape, param="detection_output_param",
                   conf=detection_output_conf, bottoms=(3, 4), in_place=False,
                   lower=detection_output_lower, cost=free, dynamic=True)]
