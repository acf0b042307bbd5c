"""The plan as an ONNX model (`protoseg export`, protoseg.export_onnx). Imports torch and onnx.

The fx module of the plan (protoseg.backends.fx) goes through torch's own ONNX exporter
(torch.export, then ONNX Script's operator set), so every protoseg module class exports as the
aten operations it runs: Crop as Slice, Interp as Resize (align_corners), Caffe's pooling sizes
as the explicit padding CaffePooling computes. Then the values are named after Caffe's blobs:
the exporter names values after aten operations (`conv2d_3`, `relu_1`); the operations of one
layer carry that layer's module attribute in their metadata (`pkg.torch.onnx.name_scopes`), and
the values a layer hands to other layers (or to the graph's outputs) take the names of its tops.

Height and width are dynamic where the net allows it: when the plan of the same net at another
size has the same modules (an InnerProduct over spatial axes has another `in_features`: the size
is fixed), and torch.export keeps them symbolic. Otherwise the model is exported at the planned
sizes and `OnnxResult.fixed_by` says why.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import logging
import os
import warnings

from ..errors import ProtosegError, UnsupportedLayerError
from ..optimize import optimize_plan
from ..plan import Plan, plan_net

OPSET = 18
_SCOPES = "pkg.torch.onnx.name_scopes"


@dataclasses.dataclass
class OnnxResult:
    """What export gave: the model (onnx.ModelProto), the inputs whose height and width are
    dynamic, and why the others are not."""

    model: object
    dynamic: list               # input blob names with symbolic height and width
    fixed_by: list              # reasons the sizes are fixed (empty when dynamic)


def require() -> None:
    """A clear error when the packages ONNX export needs are not installed."""
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ProtosegError(f"ONNX export needs {' and '.join(missing)}: pip install "
                            f"'protoseg[onnx]'")


def size_dependent_layers(plan: Plan) -> list:
    """Why a plan's module works at its planned input sizes only: the layers whose module
    differs when the 4-axis inputs grow by 32 pixels per side, or the error that size gives.
    Empty: the same module serves both sizes."""
    grown = {i.blob: tuple(i.shape[:2]) + tuple(d + 32 for d in i.shape[2:])
             for i in plan.inputs if len(i.shape) == 4}
    if not grown:
        return ["no input has 4 axes"]
    net = plan.net
    try:
        other = plan_net(net, {**{i.blob: i.shape for i in plan.inputs}, **grown},
                         [b for b, _ in plan.outputs])
    except ProtosegError as e:
        return [f"at {_sizes(grown)} the net does not plan: {e.message}"]
    if any(s.folded for s in plan.steps):
        other = optimize_plan(other)
    calls = {s.attr: s for s in other.steps}
    out = []
    for step in plan.steps:
        there = calls.get(step.attr)
        if there is None or there.call != step.call:
            out.append(f"layer '{step.layer.name}' ({step.layer.type}) is "
                       f"{step.call.code()} at {_sizes({i.blob: i.shape for i in plan.inputs})} "
                       f"but {there.call.code() if there else 'absent'} at {_sizes(grown)}")
    return out[:3] + ([f"and {len(out) - 3} more layers"] if len(out) > 3 else [])


def _sizes(shapes: dict) -> str:
    return ", ".join(f"{b} {'x'.join(map(str, s[2:]))}" for b, s in shapes.items() if len(s) == 4)


def onnx_model(plan: Plan, state: dict | None = None, *, dynamic: bool = True,
               opset: int = OPSET) -> OnnxResult:
    """Export a plan's module (with `state`, {key: ndarray}, loaded) as ONNX."""
    import torch
    from torch.export import Dim

    from .fx import build_module

    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a protoseg Plan, not {type(plan).__name__}")
    if not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be an int >= 17, not {opset!r}")
    plan = dataclasses.replace(plan, channels_last=False)    # a memory format means nothing there
    model = build_module(plan)
    if state is not None:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    gen = torch.Generator().manual_seed(0)
    args = tuple(torch.rand(i.shape, generator=gen) for i in plan.inputs)
    fixed_by = size_dependent_layers(plan) if dynamic else ["dynamic sizes were not asked for"]
    program = None
    if not fixed_by:
        shapes = tuple({2: Dim.AUTO, 3: Dim.AUTO} if len(i.shape) == 4 else None for i in plan.inputs)
        try:
            program = _export(model, args, shapes, opset)
        except Exception as e:       # noqa: BLE001 -- torch's symbolic-shape solver gave up
            fixed_by = [f"torch.export could not keep the sizes symbolic ({type(e).__name__})"]
    if program is None:
        program = _export(model, args, None, opset)
    graph = program.model.graph
    dynamic_inputs = [i.blob for i, v in zip(plan.inputs, graph.inputs)
                      if len(i.shape) == 4 and not all(isinstance(d, int) for d in v.shape[2:])]
    if not fixed_by and len(dynamic_inputs) < sum(len(i.shape) == 4 for i in plan.inputs):
        fixed_by = ["torch.export specialised the sizes to the planned ones"]
    _name_values(plan, graph)
    return OnnxResult(program.model_proto, dynamic_inputs, fixed_by)


def _export(model, args, dynamic_shapes, opset):
    import torch

    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)        # "torchvision is not installed. Skipping ..."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.onnx.export(model, args, dynamo=True, opset_version=opset,
                                     dynamic_shapes=dynamic_shapes, verbose=False)
    except torch.onnx.errors.UnsupportedOperatorError as e:
        raise UnsupportedLayerError(f"ONNX export: {e}") from None
    finally:
        quiet.setLevel(level)


def _name_values(plan: Plan, graph) -> None:
    """Name the graph's inputs, outputs and the values between layers after Caffe's blobs: a
    blob's first value gets the blob's name, a value an in-place layer rewrote the module's
    variable name (conv1_relu1), as in the fx module and the standalone file."""
    names: dict = {}             # var -> ONNX name
    taken: set = set()
    for inp in plan.inputs:
        names[inp.var] = inp.blob
    for blob, var in plan.outputs:
        names.setdefault(var, blob)
    taken.update(names.values())
    for step in plan.steps:
        for blob, var in zip(step.layer.tops, step.outputs):
            if var not in names:
                names[var] = blob if blob not in taken else var
                taken.add(names[var])

    values = {}                  # every named value of the graph: name -> value
    for v in list(graph.inputs) + list(graph.initializers.values()):
        values[v.name] = v
    for node in graph:
        for v in node.outputs:
            values[v.name] = v

    def rename(value, name):
        if value.name == name:
            return
        squatter = values.get(name)
        if squatter is not None and squatter is not value:
            i = 1
            while f"{name}__{i}" in values:
                i += 1
            rename(squatter, f"{name}__{i}")
        values.pop(value.name, None)
        value.name = name
        values[name] = value

    for inp, value in zip(plan.inputs, graph.inputs):
        rename(value, names[inp.var])
    outs = list(graph.outputs)
    for (blob, _), value in zip(plan.outputs, outs):
        if value not in graph.inputs:
            rename(value, blob)
    attrs = {s.attr: s for s in plan.steps}
    produced: dict = {}          # attr -> [values handed to other layers or the graph's outputs]
    for node in graph:
        attr = _attr(node)
        if attr not in attrs:
            continue
        ranks = {len(shape) for shape in attrs[attr].shapes}
        for v in node.outputs:            # blobs, not the size arithmetic of dynamic shapes
            blob_like = v.shape is not None and len(v.shape) in ranks and v.dtype.is_floating_point()
            if blob_like and (v in outs or any(_attr(u.node) != attr for u in v.uses())):
                produced.setdefault(attr, []).append(v)
    for attr, vals in produced.items():
        step = attrs[attr]
        read = [(var, shape) for var, shape in zip(step.outputs, step.shapes)]
        if len(vals) == 1 and len(step.outputs) == 1 or step.call.call == "each":
            pairs = zip(vals, read) if len(vals) == len(read) else ()
        else:                        # several tops: matched by their (distinct, static) shapes
            by_shape = {tuple(s): var for var, s in read}
            pairs = ([(v, (by_shape[_static(v)], None)) for v in vals]
                     if len(by_shape) == len(read) and all(_static(v) in by_shape for v in vals)
                     else ())
        for value, (var, _) in pairs:
            if value not in outs:
                rename(value, names[var])


def _attr(node) -> str | None:
    """The module attribute (= the plan step) a node of the exported graph comes from."""
    scopes = node.metadata_props.get(_SCOPES)
    if not scopes:
        return None
    parts = ast.literal_eval(scopes)
    return parts[1] if len(parts) > 2 and parts[0] == "" else None


def _static(value) -> tuple | None:
    dims = tuple(value.shape) if value.shape is not None else ()
    return dims if all(isinstance(d, int) for d in dims) else None


def save(result: OnnxResult, path, outputs) -> str:
    """Check the model with onnx.checker and write it through `outputs` (files.Outputs)."""
    import onnx

    try:
        onnx.checker.check_model(result.model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ProtosegError(f"the exported ONNX model does not pass onnx.checker: {e}") from None

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(result.model.SerializeToString())
    return outputs.add(os.fspath(path), write)
