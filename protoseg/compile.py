"""compile: a Caffe net -> a torch.fx.GraphModule that computes what Caffe computes.

`compile_net` plans the net (protoseg.plan, no torch), builds the module with the fx backend
(protoseg.backends.fx) and loads the weights protoseg.weights matched to it. `check_shapes`
runs a compiled module and compares every value's shape with the inferred one.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.fx as fx

from .backends.fx import build_module
from .errors import WeightsError
from .optimize import optimize_plan
from .plan import Plan, check_memory, plan_net
from .text import fmt_shape
from .weights import state_dict

__all__ = ["compile_net", "build_module", "load_weights", "check_shapes"]


def compile_net(prototxt=None, weights=None, inputs: dict | None = None, outputs=None, *,
                text: str | None = None, phase: str = "TEST", level: int = 0, stages=(),
                strict: bool = True, optimize: bool = False,
                max_memory: int | None = None) -> fx.GraphModule:
    """Compile a Caffe net into a torch module (an fx.GraphModule, in eval mode).

    prototxt: a path (str or os.PathLike), a loaded `Net`, or None with `text=` the prototxt
      itself.
    weights: None, a .caffemodel path, or {layer name: [blob arrays]}; matched by layer name and
      checked by protoseg.weights (strict: every learnable layer must get its blobs and every
      layer of the weights must exist; all mismatches are reported at once). Blobs the prototxt
      itself holds (`blobs { }` in a layer) are loaded for the layers the weights lack. Without
      weights, the layers whose blobs are fixed by constant fillers get them; the rest keep
      torch's initial values.
    inputs: {blob: shape} overriding the input shapes (as --input).
    outputs: the blobs to return, by Caffe name (default: the tops no kept layer reads).
    optimize: the inference mode (protoseg.optimize): identities dropped, BatchNorm / Scale /
      Bias / Power folded into the convolution before them, channels_last for 2-D conv nets.
      Same outputs to float32 rounding (not bit for bit); the parameters are the folded ones.
    max_memory: the bytes the parameters may take (default: the memory available now); a net
      that needs more is refused with a ResourceError before anything is allocated.
    The module takes the inputs positionally in declaration order or by name, and returns a
    tensor (one output) or {blob name: tensor}. `model.protoseg_dropped` lists what was left
    out: (layer or blob, type, reason).
    """
    if not isinstance(optimize, bool):
        raise TypeError(f"optimize must be True or False, not {optimize!r}")
    plan = plan_net(prototxt, inputs, outputs, text=text, phase=phase, level=level, stages=stages)
    if optimize:
        plan = optimize_plan(plan)
    check_memory(plan, max_memory, forward=False)
    model = build_module(plan)
    load_weights(model, plan, weights, strict=strict)
    return model


def load_weights(model: torch.nn.Module, plan: Plan, weights, *, strict: bool = True) -> list:
    """Load weights (a .caffemodel path, a CaffeModel, {layer name: [arrays]}, or None: the
    prototxt's own blobs only) into a module built from `plan`, through
    protoseg.weights.state_dict; returns the keys set. strict=False: layers missing on either
    side are ignored (and keep their values), as in Caffe."""
    state = state_dict(plan, weights, strict=strict)
    own = model.state_dict()
    for key, value in state.items():
        if key not in own:
            raise WeightsError(f"the module has no parameter or buffer '{key}'")
        if tuple(own[key].shape) != tuple(np.shape(value)):
            raise WeightsError(f"'{key}': the module holds {fmt_shape(own[key].shape)}, the blobs "
                               f"give {fmt_shape(np.shape(value))}")
    with torch.no_grad():
        for key, value in state.items():
            # (ascontiguousarray makes 0-axis arrays 1-axis: reshape back)
            arr = np.ascontiguousarray(value, dtype=np.float32).reshape(np.shape(value))
            own[key].copy_(torch.from_numpy(arr if arr.flags.writeable else arr.copy()))
    return sorted(state)


def check_shapes(model: fx.GraphModule, *args, seed: int = 0) -> tuple[int, list]:
    """Run the module (on random inputs in [0, 1) of the inferred shapes unless given) and compare
    the shape of every value it computes with the inferred one; for a value whose sizes depend on
    the data (Plan.runtime: detections, proposals and what follows them) only the number of
    axes. Returns (number of values checked, [(node name, Caffe layer, inferred, executed)] for
    every mismatch)."""
    if not args:
        gen = torch.Generator().manual_seed(seed)
        args = tuple(torch.rand(s, generator=gen) for s in model.protoseg_input_shapes.values())
    checked, bad = 0, []

    class Recorder(fx.Interpreter):
        def run_node(self, node):
            nonlocal checked
            result = super().run_node(node)
            expected = node.meta.get("protoseg_shapes")
            if expected is not None:
                got = [tuple(r.shape) for r in result]
            elif "tensor_meta" in node.meta:
                expected = tuple(node.meta["tensor_meta"].shape)
                got = tuple(result.shape)
            else:
                return result
            checked += 1
            same = (_ranks(got) == _ranks(expected) if node.meta.get("protoseg_runtime")
                    else got == expected)
            if not same:
                bad.append((node.name, node.meta.get("caffe_layer", ""), expected, got))
            return result

    with torch.no_grad():
        Recorder(model).run(*args)
    return checked, bad


def _ranks(shape):
    """The number of axes of a shape, or of each shape of a list."""
    return [len(s) for s in shape] if isinstance(shape, list) else len(shape)
