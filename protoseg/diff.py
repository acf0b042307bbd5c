"""diff: run the compiled module and a reference Caffe implementation (protoseg.reference) on the
same input and compare them blob by blob in execution order, up to the first blob over tolerance.
Imports torch.

Each value the module computes is compared as soon as it is computed (before an in-place layer
after it overwrites it), with the reference's output of the same layer and top:

    max|diff| = max |ours - reference|,  max|ref| = max |reference|,  rel = max|diff| / max|ref|

and a blob is over tolerance when max|diff| > atol + rtol * max|ref| (NaN where the other side is
not NaN counts as infinitely different; equal infinities and NaN against NaN as equal). Every
earlier blob agrees, so the layer of the first blob over tolerance is the first one that computes
something else from the same bottoms.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx

from .backends.fx import build_module
from .compile import load_weights
from .errors import InputError, ResourceError, ToolError
from .plan import Plan, available_memory, check_memory, plan_net
from .reference import INSTALL_OPENCV, OpenCV, Reference
from .text import dims, human_bytes

__all__ = ["BlobDiff", "Diff", "diff_net"]


@dataclass
class BlobDiff:
    """One top of one layer, compared. status: "ok", "over" (over tolerance), "shape" (the
    reference's shape differs) or "missing" (the reference does not give this top)."""

    layer: str
    type: str
    blob: str
    shape: tuple
    status: str
    max_abs: float | None = None
    max_ref: float | None = None
    rel: float | None = None
    reference_shape: tuple | None = None


@dataclass
class Diff:
    """What `diff_net` found: `rows` in execution order up to and including the first blob over
    tolerance (`first`, with its Layer and the reference's known deviation there, if any)."""

    reference: str
    inputs: dict                # blob -> (shape, how it was made)
    rtol: float
    atol: float
    rows: list
    first: BlobDiff | None = None
    layer: object = None        # the net.Layer of `first`
    deviation: str | None = None

    @property
    def ok(self) -> bool:
        return self.first is None


def diff_net(prototxt, weights, inputs: dict | None = None, *, image=None,
             reference: Reference | None = None, rtol: float = 1e-4, atol: float = 0.0,
             seed: int = 0, strict: bool = True, phase: str = "TEST", level: int = 0, stages=(),
             max_memory: int | None = None) -> Diff:
    """Compare the compiled module with a reference on one input, blob by blob.

    prototxt, weights: the .prototxt and .caffemodel paths (str or os.PathLike; the reference
      reads the files themselves).
    inputs: {blob: shape} overriding the net's input shapes (as compile_net's).
    image: an image file for the first 4-axis input (1 or 3 channels) instead of random values:
      read as Caffe's data layers read it (OpenCV, BGR, 0-255), resized to the input's height
      and width, then the input's data layer's transform_param applied: (pixel - mean_value) *
      scale. Every other input is random: uniform in [-1, 1), from `seed`.
    reference: a protoseg.reference.Reference (default: OpenCV's Caffe importer).
    rtol, atol: a blob is over tolerance when max|diff| > atol + rtol * max|reference|.
    strict: the weights must match the net layer for layer (as compile_net's); False ignores
      layers missing on either side, as Caffe does.
    max_memory: the bytes the run may take (default: the memory available now); both sides'
      weights, one forward of the module and every output of the reference, which keeps them all.
    """
    paths = {"prototxt": prototxt, "weights": weights, **({"image": image} if image is not None else {})}
    for name, path in paths.items():
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{name} must be a path (str or os.PathLike), not {type(path).__name__}")
    if reference is not None and not isinstance(reference, Reference):
        raise TypeError(f"reference must be a protoseg.reference.Reference, not "
                        f"{type(reference).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, not {seed}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, not {value!r}")
    reference = reference or OpenCV()
    plan = plan_net(prototxt, inputs, phase=phase, level=level, stages=stages)
    _check_memory(plan, max_memory)
    arrays, made = _inputs(plan, image, seed)
    model = build_module(plan)
    load_weights(model, plan, os.fspath(weights), strict=strict)
    ref = reference.run(os.fspath(prototxt), os.fspath(weights), plan.net, arrays)
    result = Diff(reference.name, made, float(rtol), float(atol), [])
    step = _compare_run(model, plan, arrays, ref, result)
    if step is not None:
        result.layer = step.layer
        result.deviation = reference.deviation(step.layer, step.ctx)
    return result


class _Stop(Exception):
    """Raised inside the module's run at the first blob over tolerance (`step`: its step; fx's
    Interpreter rewrites an exception's args)."""

    def __init__(self, step):
        super().__init__()
        self.step = step


def _compare_run(model, plan: Plan, arrays: dict, ref: dict, result: Diff):
    """Run the module, comparing as it goes (rows into `result`); the step of the first blob
    over tolerance, or None."""
    index = {id(l): i for i, l in enumerate(plan.net.layers)}
    watch: dict = {}            # fx node name -> [(step, top index, the node gives all tops)]
    for step in plan.steps:
        if step.packed:
            watch[step.packed] = [(step, i, True) for i in range(len(step.outputs))]
        else:
            for i, var in enumerate(step.outputs):
                watch.setdefault(var, []).append((step, i, False))

    class Compare(fx.Interpreter):
        def run_node(self, node):
            value = super().run_node(node)
            for step, i, packed in watch.get(node.name, ()):
                ours = (value[i] if packed else value).detach().numpy()
                tops = ref.get(index[id(step.layer)]) or [None] * len(step.outputs)
                row = _compare(step.layer, i, ours, tops[i], result.rtol, result.atol)
                result.rows.append(row)
                if row.status in ("over", "shape"):
                    result.first = row
                    raise _Stop(step)
            return value

    with torch.no_grad():
        try:
            Compare(model).run(*[torch.from_numpy(arrays[i.blob]) for i in plan.inputs])
        except _Stop as stop:
            return stop.step
    return None


def _compare(layer, i: int, ours: np.ndarray, theirs, rtol: float, atol: float) -> BlobDiff:
    row = BlobDiff(layer.name, layer.type, layer.tops[i], tuple(ours.shape), "missing")
    if theirs is None:
        return row
    row.reference_shape = tuple(theirs.shape)
    if ours.shape != theirs.shape:
        row.status = "shape"
        return row
    same = (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))
    d = np.where(same, np.float32(0), np.abs(ours - theirs))
    row.max_abs = float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0
    finite = np.abs(theirs[np.isfinite(theirs)])
    row.max_ref = float(finite.max()) if finite.size else 0.0
    row.rel = row.max_abs / row.max_ref if row.max_ref else (0.0 if row.max_abs == 0 else math.inf)
    row.status = "over" if row.max_abs > atol + rtol * row.max_ref else "ok"
    return row


def _check_memory(plan: Plan, limit) -> None:
    """The module's own needs (check_memory), then with the reference's: its copy of the
    weights and every layer's outputs, which it keeps until the end."""
    check_memory(plan, limit)
    params, peak, _ = plan.memory()
    outputs = sum(math.prod(shape) for s in plan.steps for shape in s.shapes) * 4
    need = 2 * params + peak + outputs
    allowed = available_memory() if limit is None else limit
    if allowed is not None and need > allowed:
        raise ResourceError(f"comparing this net needs about {human_bytes(need)} (the weights "
                            f"twice {human_bytes(2 * params)}, every output of the reference "
                            f"{human_bytes(outputs)}, the module's forward {human_bytes(peak)}), "
                            f"more than the {human_bytes(allowed)} allowed",
                            hint="use a smaller --input, or set --max-memory if you know the "
                                 "memory is there")


# ---------------------------------------------------------------------------------------------
# inputs

def _inputs(plan: Plan, image, seed: int) -> tuple[dict, dict]:
    """{blob: float32 array} and {blob: (shape, how it was made)}."""
    rng = np.random.default_rng(seed)
    arrays, made = {}, {}
    target = None
    if image is not None:
        target = next((i for i in plan.inputs if len(i.shape) == 4 and i.shape[1] in (1, 3)), None)
        if target is None:
            raise InputError("--image needs a net input of shape N x C x H x W with 1 or 3 "
                             "channels; this net's inputs: " + ", ".join(
                                 f"{i.blob} {dims(i.shape)}" for i in plan.inputs))
    for inp in plan.inputs:
        if inp is target:
            arrays[inp.blob], how = image_input(image, inp)
        else:
            arrays[inp.blob] = rng.uniform(-1, 1, inp.shape).astype(np.float32)
            how = f"random, uniform in [-1, 1), seed {seed}"
        made[inp.blob] = (tuple(inp.shape), how)
    return arrays, made


def image_input(path, inp) -> tuple[np.ndarray, str]:
    """An image as the value of net input `inp` (a plan Input), and what was done to it: read
    with OpenCV as Caffe's data layers do (BGR, or gray for 1 channel, values 0-255), resized
    (bilinear) to the input's height and width, then the data layer's transform_param:
    (pixel - mean_value) * scale; repeated over the batch."""
    try:
        import cv2
    except ImportError:
        raise ToolError("--image reads the image with OpenCV (cv2), which is not installed",
                        hint=INSTALL_OPENCV) from None
    path = os.fspath(path)
    n, c, h, w = inp.shape
    if not os.path.isfile(path):
        raise InputError(f"--image {path}: no such file")
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE if c == 1 else cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"--image {path}: not an image OpenCV can read")
    how = [f"image {path} ({img.shape[1]}x{img.shape[0]}, {'gray' if c == 1 else 'BGR'} 0-255"]
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        how.append(f"resized to {w}x{h}")
    x = img.astype(np.float32).reshape(h, w, c).transpose(2, 0, 1)
    t = inp.layer.settings.get("transform_param")
    if t is not None:
        if t.has("mean_file"):
            raise InputError(f"--image: the data layer '{inp.layer.name}' subtracts a mean_file, "
                             f"which protoseg diff does not read; give mean_value instead",
                             span=t.span_of("mean_file"), layer=inp.layer.name,
                             layer_type=inp.layer.type)
        mean = t.get("mean_value")
        if mean:
            if len(mean) not in (1, c):
                raise InputError(f"transform_param has {len(mean)} mean_value for {c} channels: "
                                 f"give 1 or {c} (as Caffe's DataTransformer requires)",
                                 span=t.span_of("mean_value"), layer=inp.layer.name,
                                 layer_type=inp.layer.type)
            x -= np.asarray(mean, np.float32).reshape(-1, 1, 1)
            how.append("mean " + ", ".join(f"{m:g}" for m in mean) + " subtracted")
        if t.get("scale") != 1:
            x *= np.float32(t.get("scale"))
            how.append(f"scaled by {t.get('scale'):g}")
    else:
        how.append("no transform_param: the values as read")
    return np.ascontiguousarray(np.broadcast_to(x, (n, c, h, w))), ", ".join(how) + ")"
