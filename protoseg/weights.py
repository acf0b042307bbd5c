"""weights: caffemodel blobs -> the state_dict of a plan's module, checked, written safely.

The one place weights go through: `state_dict(plan, weights)` reads a caffemodel (or takes
{layer name: [arrays]}), matches its layers to the plan's steps by name, as Caffe's
Net::CopyTrainedLayersFrom does, and maps each layer's blobs through its spec's `weights`
function to {'<attr>.<parameter>': ndarray}. Strict by default: every learnable layer of the
prototxt must get its blobs, every caffemodel layer with blobs must exist in the prototxt, blob
counts and shapes must agree (legacy 4-D blobs such as an InnerProduct weight stored (1, 1, N, K)
are accepted by element count); all mismatches are reported at once, as one WeightsError whose
`.errors` carry `kind` "missing", "extra" or "mismatch". `compile_net` loads the result into the
module; `port` writes it as safetensors or a torch state_dict. Needs numpy, not torch (except
to write a .pt file).
"""
from __future__ import annotations

import json
import math
import os

from . import __version__
from .errors import ProtosegError, WeightsError
from .files import Outputs
from .plan import Plan, plan_net
from .text import fmt_shape, plural

__all__ = ["state_dict", "embedded_blobs", "write_state_dict", "metadata", "port"]


def _layers_of(weights):
    """{layer name: (type or None, [arrays])} and the name of the source, for messages."""
    from .caffemodel import CaffeModel, read_caffemodel
    if isinstance(weights, (str, os.PathLike)):
        weights = read_caffemodel(weights)
    if isinstance(weights, CaffeModel):
        layers = {}
        for l in weights.layers:          # a later layer of the same name wins, as in Caffe
            layers[l.name] = (l.type, list(l.blobs))     # Blobs: the shape check needs `legacy`
        return layers, os.path.basename(weights.path)
    if isinstance(weights, dict):
        return {name: (None, list(blobs)) for name, blobs in weights.items()}, "the weights"
    raise TypeError(f"weights must be a .caffemodel path, a CaffeModel or {{layer name: [arrays]}}, "
                    f"not {type(weights).__name__}")


def embedded_blobs(net) -> dict:
    """{layer name: (type, [Blob])} for the layers whose prototxt entry holds blobs (`blobs { shape
    { dim: 2 } data: 0.5 data: 1 }`): Caffe's Layer constructor loads them as the layer's
    parameters (Blob::FromProto: num/channels/height/width when any is given, else shape;
    double_data when given, else data), and a caffemodel layer of the same name replaces them."""
    import numpy as np

    from .caffemodel import Blob
    out = {}
    for layer in net.layers:
        blobs = []
        for i, proto in enumerate(layer.params.get("blobs")):
            legacy = any(proto.has(k) for k in ("num", "channels", "height", "width"))
            shape = (tuple(proto.get(k) for k in ("num", "channels", "height", "width")) if legacy
                     else tuple(proto.get("shape").get("dim")))
            doubles = proto.get("double_data")
            values = doubles or proto.get("data")
            if any(d < 0 for d in shape) or len(values) != math.prod(shape):
                raise WeightsError(f"blob {i} of the prototxt: shape {fmt_shape(shape)} needs "
                                   f"{math.prod(shape)} values, it holds {len(values)}", span=proto.span,
                                   kind="mismatch").locate(layer.span, layer.name, layer.type)
            data = np.array(values, np.float64 if doubles else np.float32).reshape(shape)
            blobs.append(Blob(data=data, shape=shape, legacy=legacy))
        if blobs:
            out[layer.name] = (layer.type, blobs)
    return out


def _expected_text(step) -> str | None:
    """What a learnable layer expects, from its weights rule given no blobs (None: no blobs)."""
    try:
        step.ctx.spec.weights(step.ctx, [])
    except WeightsError as e:
        return e.message
    return None


def state_dict(plan: Plan, weights=None, *, strict: bool = True) -> dict:
    """{'<attr>.<parameter>': float32 ndarray} for `plan` from `weights` (a .caffemodel path, a
    caffemodel.CaffeModel, or {layer name: [arrays]}) and, for the layers they lack, the blobs the
    prototxt holds (`embedded_blobs`; weights None: those only, and no layer counts as missing).
    Raises one WeightsError listing every mismatch. strict=False does what Caffe does: layers
    missing on either side are ignored."""
    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a protoseg Plan, not {type(plan).__name__}")
    layers, source = _layers_of(weights) if weights is not None else ({}, "the prototxt")
    strict = strict and weights is not None
    embedded = embedded_blobs(plan.net)
    errors: list[ProtosegError] = []
    out: dict = {}
    for step in plan.steps:
        layer, spec = step.layer, step.ctx.spec
        type_blobs, origin = layers.get(layer.name), source
        if type_blobs is None and layer.name in embedded:
            type_blobs, origin = embedded[layer.name], "the prototxt"
        blobs = type_blobs[1] if type_blobs else []
        if spec.weights is None:
            if blobs:
                errors.append(WeightsError(
                    f"{origin}: {plural(len(blobs), 'blob')} given for a {layer.type} layer, which "
                    f"has no parameters", kind="mismatch").locate(layer.span, layer.name, layer.type))
            continue
        if not blobs:
            need = _expected_text(step)
            if need is not None:
                if strict:
                    errors.append(WeightsError(f"missing from {source}: {need}", kind="missing")
                                  .locate(layer.span, layer.name, layer.type))
                continue
        try:
            mapped = spec.weights(step.ctx, blobs)
        except ProtosegError as e:
            e.message = f"{origin}: {e.message}"
            e.kind = e.kind or "mismatch"
            errors.append(e.locate(layer.span, layer.name, layer.type))
            continue
        for name, arr in mapped.items():
            out[f"{step.attr}.{name}"] = arr
    if strict:
        net = plan.net
        known = {l.name for l in net.layers} | {name for name, _, _ in net.dropped}
        extra = [(name, type_, blobs) for name, (type_, blobs) in layers.items()
                 if blobs and name not in known]
        for name, type_, blobs in extra:
            what = f" ({type_})" if type_ else ""
            errors.append(WeightsError(
                f"layer '{name}'{what} of {source} has {plural(len(blobs), 'blob')} but the prototxt "
                f"has no layer of that name", kind="extra", layer=name, layer_type=type_,
                hint=None if len(extra) > 1 else
                "layers are matched by name; pass --no-strict to ignore extra layers"))
    if errors:
        counts = {k: sum(e.kind == k for e in errors) for k in ("missing", "extra", "mismatch")}
        words = {"missing": "missing", "extra": "extra", "mismatch": "mismatched"}
        parts = ", ".join(f"{n} {words[k]}" for k, n in counts.items() if n)
        hint = ("layers are matched by name; pass --no-strict to ignore extra layers"
                if counts["extra"] > 1 else None)
        where = f"between {source} and" if weights is not None else "in the blobs of"
        err = WeightsError.group(errors, f"{len(errors)} weight problems ({parts}) {where} "
                                         f"{plan.net.file}:")
        if err.errors:
            err.hint = hint
        raise err
    return out


def metadata(plan: Plan, prototxt, caffemodel) -> dict:
    """The safetensors metadata protoseg writes: who made the file, from what, and the Caffe
    layer name of each module attribute."""
    return {"producer": f"protoseg {__version__}",
            "prototxt": os.path.basename(os.fspath(prototxt)) if prototxt else "",
            "caffemodel": os.path.basename(os.fspath(caffemodel)) if caffemodel else "",
            "caffe_layer_names": json.dumps({s.attr: s.layer.name for s in plan.steps})}


def write_state_dict(state: dict, path, *, fmt: str | None = None, metadata: dict | None = None,
                     protect: tuple = (), outputs: Outputs | None = None) -> str:
    """Write {key: ndarray} as safetensors (default) or a torch `.pt` state_dict. `fmt` None:
    from the extension (.pt/.pth -> pt, else safetensors). Within `outputs` (a transaction of
    several files) the file is renamed into place when the transaction commits; alone, at once."""
    import numpy as np

    path = os.fspath(path)
    if fmt is None:
        fmt = "pt" if path.endswith((".pt", ".pth")) else "safetensors"
    if fmt not in ("safetensors", "pt"):
        raise ProtosegError(f"unknown output format {fmt!r}: use safetensors or pt")
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32).reshape(np.shape(v)) for k, v in state.items()}

    def write(tmp):
        if fmt == "safetensors":
            from safetensors import SafetensorError
            from safetensors.numpy import save_file
            try:
                save_file(tensors, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})
            except SafetensorError as e:      # what safetensors raises for a full disk
                raise OSError(str(e)) from None
        else:
            import torch
            torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, tmp)

    if outputs is not None:
        return outputs.add(path, write, protect=protect)
    with Outputs() as out:
        out.add(path, write, protect=protect)
    return path


def port(caffemodel, prototxt, output, *, inputs: dict | None = None, fmt: str | None = None,
         strict: bool = True, phase: str = "TEST", level: int = 0, stages=(),
         progress=None) -> dict:
    """Read `caffemodel`, match it to `prototxt`'s planned module, write `output`.
    Returns {'<attr>.<parameter>': ndarray}."""
    from .caffemodel import read_caffemodel
    model = read_caffemodel(caffemodel, progress=progress)
    plan = plan_net(prototxt, inputs, phase=phase, level=level, stages=stages)
    state = state_dict(plan, model, strict=strict)
    write_state_dict(state, output, fmt=fmt, protect=(caffemodel, prototxt),
                     metadata=metadata(plan, prototxt, caffemodel))
    return state
