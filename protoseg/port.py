"""port: .caffemodel blobs -> the compiled module's state_dict, checked strictly, written safely.

Layers are matched by name, as Caffe's Net::CopyTrainedLayersFrom does. Strict by default: every
learnable layer of the prototxt must get its blobs, every caffemodel layer with blobs must exist
in the prototxt, blob counts and shapes must agree (legacy 4-D blobs such as an InnerProduct
weight stored (1, 1, N, K) are accepted by element count). All mismatches are reported at once.
The output is written to a temporary file beside the target and renamed into place: a failure
leaves no partial file, and the input is never touched.
"""
from __future__ import annotations

import json
import os

from .errors import MultiError, ProtosegError, WeightsError


def _expected_text(step) -> str | None:
    """What a learnable layer expects, from its weights rule given no blobs (None: no blobs)."""
    try:
        step.ctx.spec.weights(step.ctx, [])
    except WeightsError as e:
        return e.message
    return None


def match_weights(program, model, *, strict: bool = True) -> dict:
    """{'<attr>.<param>': np.ndarray} for `program` (compile.Program) from `model` (a
    caffemodel.CaffeModel, or {layer name: [arrays]}). Raises one error listing every mismatch."""
    if isinstance(model, dict):
        layers = {name: (None, list(blobs)) for name, blobs in model.items()}
        source = "the weights"
    else:
        layers = {}
        for l in model.layers:          # a later layer of the same name wins, as in Caffe
            layers[l.name] = (l.type, [b.data for b in l.blobs])
        source = os.path.basename(model.path)
    net = program.net
    errors: list[ProtosegError] = []
    out: dict = {}
    for step in program.steps:
        layer, spec = step.layer, step.ctx.spec
        type_blobs = layers.get(layer.name)
        blobs = type_blobs[1] if type_blobs else []
        if spec.weights is None:
            if blobs:
                errors.append(WeightsError(
                    f"{source}: {len(blobs)} blob{'s' if len(blobs) != 1 else ''} given for a "
                    f"{layer.type} layer, which has no parameters").locate(layer.span, layer.name,
                                                                           layer.type))
            continue
        if type_blobs is None or not blobs:
            need = _expected_text(step)
            if need is not None and strict:
                errors.append(WeightsError(f"missing from {source}: {need}").locate(
                    layer.span, layer.name, layer.type))
            if need is not None:
                continue
        try:
            mapped = spec.weights(step.ctx, blobs)
        except ProtosegError as e:
            e.message = f"{source}: {e.message}"
            errors.append(e.locate(layer.span, layer.name, layer.type))
            continue
        for name, arr in mapped.items():
            out[f"{step.attr}.{name}"] = arr
    if strict:
        known = {l.name for l in net.layers} | {name for name, _, _ in net.dropped}
        for name, (type_, blobs) in layers.items():
            if blobs and name not in known:
                what = f" ({type_})" if type_ else ""
                errors.append(WeightsError(
                    f"layer '{name}'{what} of {source} has {len(blobs)} blob"
                    f"{'s' if len(blobs) != 1 else ''} but the prototxt has no layer of that name",
                    hint="layers are matched by name; pass --no-strict to ignore extra layers"))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        missing = sum("missing from" in e.message for e in errors)
        extra = sum("has no layer of that name" in e.message for e in errors)
        other = len(errors) - missing - extra
        parts = [f"{n} {w}" for n, w in ((missing, "missing"), (extra, "extra"), (other, "mismatched"))
                 if n]
        raise MultiError(errors, f"{len(errors)} weight problems ({', '.join(parts)}) "
                                 f"between {source} and {net.file}:")
    return out


def write_state_dict(state: dict, path: str, *, fmt: str | None = None, metadata: dict | None = None,
                     protect: tuple = ()) -> str:
    """Write {key: ndarray} as safetensors (default) or a torch `.pt` state_dict, atomically.
    `fmt` None: from the extension (.pt/.pth -> pt, else safetensors)."""
    import numpy as np

    path = os.fspath(path)
    if fmt is None:
        fmt = "pt" if path.endswith((".pt", ".pth")) else "safetensors"
    if fmt not in ("safetensors", "pt"):
        raise ProtosegError(f"unknown output format {fmt!r}: use safetensors or pt")
    for p in protect:
        if p and os.path.exists(path) and os.path.samefile(path, p):
            raise ProtosegError(f"{path}: refusing to overwrite an input file")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ProtosegError(f"{path}: the folder {directory} does not exist")
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32).reshape(np.shape(v)) for k, v in state.items()}
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        if fmt == "safetensors":
            from safetensors.numpy import save_file
            save_file(tensors, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})
        else:
            import torch
            torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise ProtosegError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def port(caffemodel: str, prototxt: str, output: str, *, inputs: dict | None = None,
         fmt: str | None = None, strict: bool = True, phase: str = "TEST", progress=None) -> dict:
    """Read `caffemodel`, match it to `prototxt`'s compiled module, write `output`.
    Returns {'<attr>.<param>': ndarray}."""
    from .caffemodel import read_caffemodel
    from .compile import compile_program

    model = read_caffemodel(caffemodel, progress=progress)
    program = compile_program(prototxt, inputs, phase=phase)
    state = match_weights(program, model, strict=strict)
    names = {step.attr: step.layer.name for step in program.steps}
    from . import __version__
    write_state_dict(state, output, fmt=fmt, protect=(caffemodel, prototxt), metadata={
        "producer": f"protoseg {__version__}", "prototxt": os.path.basename(prototxt),
        "caffemodel": os.path.basename(caffemodel), "caffe_layer_names": json.dumps(names)})
    return state
