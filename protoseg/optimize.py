"""optimize: the inference mode, a Plan -> Plan rewrite. No torch.

`optimize_plan(plan)` gives the plan `compile_net(..., optimize=True)`, `protoseg compile
--optimize` and `protoseg export` build from:

1. identities are dropped: Dropout at test (nn.Dropout), Split, a Power of power 1, scale 1 and
   shift 0. Their readers read the value they pass on.
2. per-channel affine maps are folded into the Convolution or InnerProduct before them:
   BatchNorm with its stored statistics (and the forks' BN), learned Scale and Bias whose
   operand is one value per channel (or one value), Power with power 1 (scale, shift). A map is
   folded only when the value between the two layers is read by that map alone and is not an
   output of the module: the convolution then computes the map's output, under the
   convolution's variable name. The convolution gets a bias if it had none.
3. `channels_last` is set where it pays: every convolution is 2-D (oneDNN runs them on NHWC
   without reordering activations; measured in docs/benchmarks.md).

The folded layers stay on their convolution's Step (`step.folded`); `fold_state` turns the
state_dict of the unfolded layers into the folded one (W' = a W per output channel, b' = a b +
c), computed in float64 and stored as float32. protoseg.weights calls it, so a caffemodel, the
safetensors file of `compile -o --optimize --weights` and `compile_net(optimize=True, weights=)`
all get the same folded weights.
"""
from __future__ import annotations

import dataclasses

from .errors import WeightsError
from .layers.spec import local, nn
from .plan import Plan, Step

__all__ = ["optimize_plan", "fold_state"]

_SPLIT = local("protoseg.layers.split", "CaffeSplit")
_POWER = local("protoseg.layers.neuron", "CaffePower")
_SCALE = local("protoseg.layers.scale", "CaffeScale")
_BIAS = local("protoseg.layers.scale", "CaffeBias")
_BATCH_NORMS = {nn("BatchNorm1d"), nn("BatchNorm2d"), nn("BatchNorm3d")}
_FOLD_TARGETS = {nn("Conv1d"), nn("Conv2d"), nn("Conv3d"), nn("Linear"),
                 local("protoseg.layers.inner_product", "CaffeInnerProduct")}


def optimize_plan(plan: Plan) -> Plan:
    """The plan of the inference mode (see the module docstring): same inputs, outputs and
    attribute names; fewer steps."""
    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a protoseg Plan, not {type(plan).__name__}")
    steps, outputs = _drop_identities(plan.steps, plan.outputs)
    steps, outputs = _fold_affine(steps, outputs)
    convs = [s for s in steps if s.call.ref.name.startswith(("Conv", "ConvTranspose"))]
    channels_last = bool(convs) and all(s.call.ref.name.endswith("2d") for s in convs)
    return dataclasses.replace(plan, steps=steps, outputs=outputs, channels_last=channels_last)


def _identity(step: Step) -> bool:
    ref = step.call.ref
    return ref in (nn("Dropout"), _SPLIT) or (ref == _POWER and not step.call.kwargs)


def _drop_identities(steps, outputs):
    rename: dict = {}
    kept = []
    for step in steps:
        inputs = [rename.get(v, v) for v in step.inputs]
        if _identity(step):
            for v in step.outputs:
                rename[v] = inputs[0]
            continue
        kept.append(dataclasses.replace(step, inputs=inputs))
    return kept, [(b, rename.get(v, v)) for b, v in outputs]


def _per_channel(step: Step) -> bool:
    """Is the step y = a * x + b with a, b one value per channel (axis 1) or one value?"""
    call, ndim = step.call, len(step.ctx.bottoms[0])
    if len(step.inputs) != 1 or len(step.outputs) != 1 or call.call != "single":
        return False
    if call.ref in _BATCH_NORMS:
        return call.kwargs.get("track_running_stats", True)
    if call.ref in (_SCALE, _BIAS):
        if call.kwargs.get("learned", True) is False:
            return False
        view = tuple(call.args[0]) + (1,) * call.kwargs.get("trailing", 0)
        full = (1,) * (ndim - len(view)) + view
        return len(full) == ndim and all(d == 1 for i, d in enumerate(full) if i != 1)
    if call.ref == _POWER:
        return call.kwargs.get("power", 1.0) == 1.0
    return False


def _fold_target(step: Step) -> bool:
    """A Convolution or InnerProduct whose output channels are axis 1 of its only top."""
    if step.call.ref not in _FOLD_TARGETS or step.call.call != "single":
        return False
    return step.call.kwargs.get("axis", 1) == 1


def _fold_affine(steps, outputs):
    readers: dict = {}
    for step in steps:
        for v in step.inputs:
            readers[v] = readers.get(v, 0) + 1
    out_vars = {v for _, v in outputs}
    producer: dict = {}          # var -> index in kept
    rename: dict = {}
    kept = []
    for step in steps:
        step = dataclasses.replace(step, inputs=[rename.get(v, v) for v in step.inputs])
        if _per_channel(step):
            src = step.inputs[0]
            i = producer.get(src)
            if (i is not None and _fold_target(kept[i]) and readers.get(src) == 1
                    and src not in out_vars):
                target = kept[i]
                call = target.call
                if call.kwargs.get("bias") is False:
                    call = dataclasses.replace(call, kwargs={k: v for k, v in call.kwargs.items()
                                                             if k != "bias"})
                kept[i] = dataclasses.replace(target, call=call, folded=target.folded + (step,))
                rename[step.outputs[0]] = src
                readers[src] = readers.get(step.outputs[0], 0)
                continue
        for v in step.outputs:
            producer[v] = len(kept)
        kept.append(step)
    return kept, [(b, rename.get(v, v)) for b, v in outputs]


# ---------------------------------------------------------------------------------------------
# the weights

def _affine(step: Step, params: dict):
    """(a, c) of a folded step, y = a * x + c, as float64 arrays of one value per channel (or
    one value), from its parameters {name: array}."""
    import numpy as np

    call = step.call
    if call.ref in _BATCH_NORMS:
        eps = call.kwargs.get("eps", 1e-5)
        a = 1.0 / np.sqrt(params["running_var"].astype(np.float64) + eps)
        c = -params["running_mean"].astype(np.float64) * a
        if call.kwargs.get("affine", True):           # the forks' BN: slope and bias
            w = params["weight"].astype(np.float64)
            a, c = a * w, c * w + params["bias"].astype(np.float64)
        return a, c
    if call.ref == _SCALE:
        a = params["weight"].astype(np.float64).reshape(-1)
        c = params["bias"].astype(np.float64).reshape(-1) if "bias" in params else np.zeros(1)
        return a, c
    if call.ref == _BIAS:
        return np.ones(1), params["bias"].astype(np.float64).reshape(-1)
    return (np.array([call.kwargs.get("scale", 1.0)]), np.array([call.kwargs.get("shift", 0.0)]))


def _own(state: dict, step: Step) -> dict:
    """{parameter name: array} of one step in a state_dict."""
    prefix = step.attr + "."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _needed(call) -> set:
    """The parameters a folded step's map is made of (Power's are constants of its call)."""
    if call.ref in _BATCH_NORMS:
        return {"running_mean", "running_var"} | ({"weight", "bias"} if call.kwargs.get("affine", True) else set())
    if call.ref == _SCALE:
        return {"weight"} | ({"bias"} if call.kwargs.get("bias_term") else set())
    if call.ref == _BIAS:
        return {"bias"}
    return set()


def _params(state: dict, step: Step, folded_into: Step) -> dict:
    """The parameters of a folded step, all of them, or a WeightsError."""
    out = _own(state, step)
    missing = sorted(_needed(step.call) - set(out))
    if missing:
        raise _no_weights(step, f"no {', '.join(missing)}: the optimized module folds this layer "
                                f"into '{folded_into.layer.name}' ({folded_into.layer.type})")
    return out


def _no_weights(step: Step, message: str) -> WeightsError:
    return WeightsError(message, kind="missing", hint="give its weights, or compile without "
                        "optimize").locate(step.layer.span, step.layer.name, step.layer.type)


def fold_state(plan: Plan, state: dict) -> dict:
    """The state_dict of an optimized plan's module from the parameters of the unfolded layers
    ({'<attr>.<name>': array}, the attributes of the plan before optimize_plan: what
    protoseg.weights maps a caffemodel to, or an unoptimized module's state_dict as numpy).
    Raises WeightsError when a folded layer or its convolution has no weights while the others
    have them (a convolution given none of them keeps its initial values)."""
    import numpy as np

    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a protoseg Plan, not {type(plan).__name__}")
    out = dict(state)
    for step in plan.steps:
        if not step.folded:
            continue
        own = _own(out, step)
        if not own and not any(_own(out, f) for f in step.folded):
            continue            # no weights at all here (compiled without them): initial values
        if "weight" not in own:
            raise _no_weights(step, "no weights: the optimized module folds "
                                    + ", ".join(f"'{s.layer.name}'" for s in step.folded) + " into it")
        weight = np.asarray(own["weight"], np.float64)
        bias = (np.asarray(own["bias"], np.float64) if "bias" in own
                else np.zeros(weight.shape[0]))
        for f in step.folded:
            a, c = _affine(f, _params(out, f, step))
            a = np.broadcast_to(a, bias.shape)
            weight = weight * a.reshape((-1,) + (1,) * (weight.ndim - 1))
            bias = bias * a + c
            for key in [k for k in out if k.startswith(f.attr + ".")]:
                del out[key]
        out[f"{step.attr}.weight"] = weight.astype(np.float32)
        out[f"{step.attr}.bias"] = bias.astype(np.float32)
    return out
