"""`protoseg compile -o DIR`: the standalone module file, and with weights its safetensors beside
it, written as one transaction (both files or neither). No torch. `protoseg export`: the ONNX
file (export_onnx, which imports torch and onnx when called)."""
from __future__ import annotations

import os

from .backends.source import generate_code
from .files import Outputs, make_folder, write_text
from .optimize import optimize_plan
from .plan import Plan, plan_net
from .weights import metadata, state_dict, write_state_dict

__all__ = ["export_module", "write_module", "export_onnx"]


def write_module(plan: Plan, out_dir, state: dict | None = None, *, prototxt=None,
                 caffemodel=None) -> list[str]:
    """Write DIR/<net>.py (and DIR/<net>.safetensors when `state` is given) for a plan; returns
    the paths written. `prototxt` and `caffemodel` are recorded in the safetensors metadata and
    are never overwritten."""
    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a protoseg Plan, not {type(plan).__name__}")
    code = generate_code(plan)
    folder = make_folder(out_dir)
    stem = os.path.join(folder, plan.file_stem)
    paths = [stem + ".py"]
    with Outputs() as out:
        out.add(paths[0], lambda tmp: write_text(tmp, code), protect=(prototxt,))
        if state is not None:
            paths.append(write_state_dict(state, stem + ".safetensors", outputs=out,
                                          metadata=metadata(plan, prototxt, caffemodel),
                                          protect=(prototxt, caffemodel)))
    return paths


def export_module(prototxt=None, out_dir=".", weights=None, inputs: dict | None = None,
                  outputs=None, *, text: str | None = None, phase: str = "TEST", level: int = 0,
                  stages=(), strict: bool = True, optimize: bool = False) -> list[str]:
    """Plan a net and write its standalone module file into `out_dir` (with `weights`, a
    .caffemodel path, or blobs in the prototxt, also the safetensors file for it, checked first:
    a mismatch writes nothing). optimize=True writes the inference mode's module
    (protoseg.optimize) and its folded weights. Returns the paths written."""
    if not isinstance(optimize, bool):
        raise TypeError(f"optimize must be True or False, not {optimize!r}")
    plan = plan_net(prototxt, inputs, outputs, text=text, phase=phase, level=level, stages=stages)
    if optimize:
        plan = optimize_plan(plan)
    state = state_dict(plan, weights, strict=strict)
    if weights is None and not state:   # no caffemodel, and no blobs in the prototxt
        state = None
    def path(x):
        return x if isinstance(x, (str, os.PathLike)) else None
    return write_module(plan, out_dir, state, prototxt=path(prototxt), caffemodel=path(weights))


def export_onnx(prototxt=None, path="net.onnx", weights=None, inputs: dict | None = None,
                outputs=None, *, text: str | None = None, phase: str = "TEST", level: int = 0,
                stages=(), strict: bool = True, optimize: bool = True, dynamic: bool = True,
                opset: int = 18):
    """Write a net as an ONNX model (opset >= 17) checked by onnx.checker; with `weights` (a
    .caffemodel path or {layer: [arrays]}) its initializers hold them, else the module's own
    initial values. optimize: export the inference mode's plan (folded BatchNorm / Scale).
    dynamic: symbolic height and width where the net allows them. Values are named after the
    Caffe blobs. Returns a backends.onnx.OnnxResult (the model, the inputs with dynamic sizes,
    and why the others are fixed). Needs the `onnx` extra (onnx, onnxscript)."""
    for name, value in (("optimize", optimize), ("dynamic", dynamic), ("strict", strict)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, not {value!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    from .backends import onnx as backend
    backend.require()
    plan = plan_net(prototxt, inputs, outputs, text=text, phase=phase, level=level, stages=stages)
    if optimize:
        plan = optimize_plan(plan)
    state = state_dict(plan, weights, strict=strict) if weights is not None else None
    result = backend.onnx_model(plan, state, dynamic=dynamic, opset=opset)
    with Outputs() as out:
        backend.save(result, path, out)
    return result
