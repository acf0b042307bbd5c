"""Python layers (Caffe's python_layer.hpp): `python_param { module layer param_str }` names a
Python class that Caffe imports and runs. What it computes is that class's code, so protoseg
knows a Python layer only by its module and layer name.

The plain `Python` type: a data layer (no bottoms) whose tops come from --input; one with
bottoms cannot be computed (its tops need --input, and it does not compile). Well-known classes
get a spec of their own, registered as `Python:<module>.<layer>` (layers.python_type), which
`spec_of` picks for a Python layer naming them:

* py-faster-rcnn's (and py-R-FCN's) `rpn.proposal_layer.ProposalLayer` (lib/rpn/proposal_layer.py):
  region proposals from the RPN's scores and box deltas. setup() shapes the rois top (1, 5)
  and the optional scores top (1, 1, 1, 1); forward() reshapes them to (R, 5) and (R, 1),
  R <= the post-NMS top-N. param_str is YAML: `'feat_stride': 16` (required) and, in
  py-R-FCN, `'scales'` (default (8, 16, 32)). The top-N, NMS and minimum-size settings are
  not in the prototxt: they are lib/fast_rcnn/config.py's defaults for the net's phase (a cfg
  file given to the original's scripts can change them; protoseg cannot see it).
* ENet's `spatial_dropout.SpatialDropoutLayer`: param_str is a Python dict, `'p'` the drop
  probability and `'phase'` its own phase (not the net's). With 'TRAIN' it zeroes whole
  channels at random and scales by 1 / (1 - p); otherwise it scales by 1 / (1 - p) (the
  original does so also at test: its output is not its input).
"""
from __future__ import annotations

import ast
import re

from ..geometry import f32
from ..spec import LayerSpec, free, local, same_axes, same_shape
from .. import python_type
from ..data import unknown_shape

# lib/fast_rcnn/config.py: __C.TRAIN / __C.TEST RPN_PRE_NMS_TOP_N, RPN_POST_NMS_TOP_N,
# RPN_NMS_THRESH, RPN_MIN_SIZE
RPN_CONFIG = {"TRAIN": (12000, 2000, 0.7, 16), "TEST": (6000, 300, 0.7, 16)}
ANCHOR_SCALES = (8, 16, 32)       # generate_anchors' default; 3 aspect ratios (0.5, 1, 2) each


def register_hint(layer) -> str:
    """How to teach protoseg the class of a Python layer it does not know."""
    p = layer.params.get("python_param")
    return (f"register its class as layer type {python_type(p.get('module'), p.get('layer'))!r} with "
            f"its shape rule and torch module (README, \"A layer type of your own fork\")")


def param_dict(ctx, yaml: bool) -> dict:
    """python_param.param_str as the class's setup() reads it: a Python dict literal (eval), or
    with `yaml` a YAML mapping of plain scalars and lists (`'feat_stride': 16`, quotes optional)."""
    text = ctx.p.get("param_str").strip()
    if yaml:
        body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
        body = re.sub(r"(^|[,\n])\s*([A-Za-z_]\w*)\s*:", r"\1'\2':", body)   # quote bare keys
        text = "{" + body.replace("\n", ",") + "}"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, dict):
        kind = "a YAML mapping such as 'feat_stride': 16" if yaml else "a Python dict such as {'p': 0.5}"
        ctx.fail(f"param_str {ctx.p.get('param_str')!r} is not {kind}: the layer's setup() cannot "
                 f"read it", "param_str")
    return value


def _required(ctx, params: dict, key: str):
    if key not in params:
        ctx.fail(f"param_str has no {key!r}, which the layer's setup() reads", "param_str")
    return params[key]


# -- rpn.proposal_layer.ProposalLayer

def proposal_conf(ctx, bottoms) -> dict:
    params = param_dict(ctx, yaml=True)
    stride, scales = _required(ctx, params, "feat_stride"), params.get("scales", ANCHOR_SCALES)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        ctx.fail(f"feat_stride must be a positive integer, got {stride!r}", "param_str")
    if not isinstance(scales, (list, tuple)) or not scales or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in scales):
        ctx.fail(f"scales must be a list of positive numbers, got {scales!r}", "param_str")
    return {"feat_stride": stride, "scales": tuple(scales)}


def proposal_shape(ctx, bottoms):
    """setup(): rois (1, 5), scores (1, 1, 1, 1); forward() gives (R, 5) and (R, 1). The
    bottoms are what forward() slices: scores (1, 2A, H, W), box deltas (1, 4A, H, W), im_info
    (1, 3+) with A = 3 * len(scales) anchors per cell."""
    scores, deltas, info = bottoms
    a = 3 * len(ctx.conf["scales"])
    if len(scores) != 4 or len(deltas) != 4 or scores[0] != 1 or deltas[0] != 1:
        ctx.fail(f"the scores and box deltas must be (1, C, H, W) (forward() supports one image), got "
                 f"{tuple(scores)} and {tuple(deltas)}")
    if scores[1] != 2 * a or deltas[1] != 4 * a or scores[2:] != deltas[2:]:
        ctx.fail(f"with {a} anchors per cell the scores need {2 * a} channels and the box deltas {4 * a}, "
                 f"on the same H x W; got {tuple(scores)} and {tuple(deltas)}")
    if len(info) != 2 or info[1] < 3:
        ctx.fail(f"im_info must be (N, 3): image height, width and scale (forward() reads row 0); "
                 f"got {tuple(info)}")
    post = RPN_CONFIG[ctx.phase][1]
    ctx.note(f"{scores[2]}x{scores[3]} cells x {a} anchors = {scores[2] * scores[3] * a} boxes; at most "
             f"{post} after NMS ({ctx.phase} config); (1, 5) at set-up, (R, 5) after forward")
    return [(1, 5), (1, 1, 1, 1)][:len(ctx.layer.tops)]


def proposal_lower(ctx):
    """CaffeProposal with the anchors' settings and the phase's config (lib/fast_rcnn/config.py)."""
    pre, post, nms, min_size = RPN_CONFIG[ctx.phase]
    kw = {"feat_stride": ctx.conf["feat_stride"]}
    if ctx.conf["scales"] != ANCHOR_SCALES:
        kw["scales"] = ctx.conf["scales"]
    kw.update(pre_nms_top_n=pre, post_nms_top_n=post, nms_thresh=f32(nms), min_size=min_size)
    if len(ctx.layer.tops) == 2:
        kw["scores_top"] = True
    return ctx.module(local(__name__, "CaffeProposal"), **kw)


# -- spatial_dropout.SpatialDropoutLayer

def spatial_dropout_conf(ctx, bottoms) -> dict:
    params = param_dict(ctx, yaml=False)
    phase, p = _required(ctx, params, "phase"), _required(ctx, params, "p")
    try:
        p = float(p)
    except (TypeError, ValueError):
        ctx.fail(f"'p' must be a number, got {p!r}", "param_str")
    if not 0 < p < 1:
        ctx.fail(f"'p' must be between 0 and 1 (exclusive), got {p}", "param_str")
    return {"train": phase == "TRAIN", "p": p}


def spatial_dropout_lower(ctx):
    """CaffeSpatialDropout: x * (1 / (1 - p)) as numpy does it for a float32 blob, or with the
    layer's own phase TRAIN whole channels dropped at random (F.dropout2d)."""
    kw = {"train": True} if ctx.conf["train"] else {}
    return ctx.module(local(__name__, "CaffeSpatialDropout"), ctx.conf["p"], **kw)


SPECS = [
    # A Python layer of an unknown class computes whatever its module does: its tops always
    # come from --input, and its cost is unknown.
    LayerSpec("Python", unknown_shape, param="python_param", bottoms=(0, None), tops=(0, None),
              source=True, inference=False),
    LayerSpec(python_type("rpn.proposal_layer", "ProposalLayer"), proposal_shape, param="python_param",
              conf=proposal_conf, bottoms=(3, 3), tops=(1, 2), in_place=False, lower=proposal_lower,
              cost=free, dynamic=True, fork="py-faster-rcnn, py-R-FCN"),
    LayerSpec(python_type("spatial_dropout", "SpatialDropoutLayer"), same_shape, param="python_param",
              conf=spatial_dropout_conf, lower=spatial_dropout_lower, cost=free, axes=same_axes,
              fork="enet"),
]
