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

Two things come from the prototxt rather than the caffemodel, as in Caffe:
- shared parameters (`param { name }`, planned in `Step.shares`): Caffe's caffemodel holds every
  sharing layer's copy, and loading writes each copy into the one shared blob, so the copy that
  comes last in the file is the one used. Strict: the copies must be equal; a sharing layer the
  file lacks gets the shared values (not "missing").
- fixed parameters: a layer the file lacks whose every blob has an explicitly given constant
  filler (`weight_filler { type: "constant" value: 1 }`, the spec's `fillers`) gets its blobs from
  the fillers (not "missing"). An unset filler (Caffe's constant 0) is never taken as a value.
"""
from __future__ import annotations

import json
import math
import os

from . import __version__
from .errors import ProtosegError, WeightsError
from .files import Outputs
from .optimize import fold_state
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


def _shared_values(plan: Plan, layers: dict, source: str, strict: bool, errors: list) -> dict:
    """{(owner attr, owner blob index): array} for every shared parameter some layer of `layers`
    holds a copy of: the copy latest in the file, as Caffe's loading leaves it. Strict: every
    other copy must be equal (else an error in `errors`)."""
    import numpy as np
    steps = {s.attr: s for s in plan.steps}
    groups: dict = {}            # (owner attr, blob) -> [(step, blob index, name)]
    for step in plan.steps:
        for i, share in step.shares.items():
            key = (share.owner, share.owner_blob)
            groups.setdefault(key, [(steps[share.owner], share.owner_blob, share.name)])
            groups[key].append((step, i, share.name))
    order = {name: k for k, name in enumerate(layers)}
    values = {}
    for key, members in groups.items():
        copies = sorted(((order[s.layer.name], s, i, name, layers[s.layer.name][1][i])
                         for s, i, name in members if len(layers.get(s.layer.name, (None, []))[1]) > i),
                        key=lambda c: c[0])
        if not copies:
            continue
        *others, (_, last, j, _, value) = copies
        for _, step, i, name, copy in others if strict else ():
            a, b = (np.asarray(getattr(x, "data", x), np.float32).ravel() for x in (copy, value))
            if a.shape == b.shape and np.array_equal(a, b):
                continue
            diff = f"max difference {np.abs(a - b).max():.3g}" if a.shape == b.shape else \
                f"{a.size} and {b.size} values"
            errors.append(WeightsError(
                f"{source}: blob {i} is the shared parameter '{name}', but its copy here differs "
                f"from layer '{last.layer.name}''s (blob {j}; {diff}). Caffe loads every copy into "
                f"the one shared blob and keeps the last in the file, layer '{last.layer.name}''s",
                kind="mismatch", blob=i, hint="--no-strict does the same").locate(
                    step.layer.span, step.layer.name, step.layer.type))
        values[key] = getattr(value, "data", value)     # the data: each layer has its own shape
    return values


def _with_shared(step, blobs: list, shared: dict) -> list:
    """The step's blobs with the shared ones replaced by the values Caffe would hold; when the
    file lacks the layer, all of them from `shared` if every blob is shared, else []."""
    import numpy as np
    if not step.shares and not any(a == step.attr for a, _ in shared):
        return blobs
    shapes = step.ctx.blob_shapes()
    out = list(blobs)
    for i, shape in enumerate(shapes):
        share = step.shares.get(i)
        value = shared.get((share.owner, share.owner_blob) if share else (step.attr, i))
        if value is not None and np.size(value) == math.prod(shape):
            value = np.reshape(value, shape)          # PERMISSIVE: the count is what must agree
        if blobs and i < len(out) and value is not None:
            out[i] = value
        elif not blobs:
            if value is None:
                return []
            out.append(value)
    return out


def _filled(step) -> list | None:
    """The layer's blobs from its fillers when the spec names them and every blob has an
    explicitly given constant filler (Caffe fills every layer a caffemodel does not cover from
    its fillers); None otherwise."""
    import numpy as np
    spec, p = step.ctx.spec, step.ctx.p
    shapes = step.ctx.blob_shapes()
    if not spec.fillers or not shapes or len(shapes) > len(spec.fillers):
        return None
    blobs = []
    for name, shape in zip(spec.fillers, shapes):
        if not p.has(name) or p.get(name).get("type") != "constant":
            return None
        blobs.append(np.full(shape, p.get(name).get("value"), np.float32))
    return blobs


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
    shared = _shared_values(plan, layers, source, strict, errors)
    out: dict = {}
    for step in (s for t in plan.steps for s in (t, *t.folded)):   # folded: protoseg.optimize
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
        blobs = _with_shared(step, blobs, shared) or _filled(step) or []
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
    return fold_state(plan, out)


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
