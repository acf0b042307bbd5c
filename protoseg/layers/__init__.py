"""The layer registry: one Caffe type (or a small family Caffe itself groups), one package.

Each package of this folder holds, for its Caffe type(s): the Caffe source it follows, the
parameters parsed once (`conf`), the shape rule, the lowering and the weight mapping, all
torch-free, in its `__init__.py`, which exports `SPECS`, a list of `LayerSpec`s; and, where
Caffe's arithmetic differs from torch's own modules, the `Caffe<Type>` torch modules in its
`modules.py` beside it. The registry is the explicit list below (no import side effects, no
subclass scans). A user adds a custom layer with `register(LayerSpec(...))`.
"""
from __future__ import annotations

from .spec import (Call, LayerSpec, LowerContext, ModuleRef, ShapeContext, local, nn, no_tops,
                   same_shape)

_PACKAGES = (
    "data", "convolution", "pooling", "inner_product", "neuron", "prelu", "lrn", "mvn",
    "batch_norm", "scale", "eltwise", "concat", "slice", "split", "crop", "softmax", "flatten",
    "reshape", "reduction", "argmax", "tile", "embed", "loss", "interp", "bn", "upsample",
    "normalize", "permute", "prior_box", "detection", "roi_pooling",
)

_BUILTIN: dict[str, LayerSpec] | None = None
_CUSTOM: dict[str, LayerSpec] = {}


def builtin() -> dict[str, LayerSpec]:
    """Caffe type -> LayerSpec for protoseg's own types, built once from the package list."""
    global _BUILTIN
    if _BUILTIN is None:
        import importlib
        reg: dict[str, LayerSpec] = {}
        for name in _PACKAGES:
            package = importlib.import_module(f"{__name__}.{name}")
            for spec in package.SPECS:
                for t in (spec.type, *spec.aliases):
                    if t in reg:
                        raise RuntimeError(f"layer type {t!r} registered twice")
                    reg[t] = spec
        _BUILTIN = reg
    return _BUILTIN


def registry() -> dict[str, LayerSpec]:
    """Caffe type -> LayerSpec: protoseg's own types, then the ones `register` added."""
    return {**builtin(), **_CUSTOM}


def register(spec: LayerSpec) -> None:
    """Add (or replace) a layer type, e.g. a custom layer of your own Caffe fork."""
    if not isinstance(spec, LayerSpec):
        raise TypeError(f"register() takes a LayerSpec, not {type(spec).__name__}")
    _CUSTOM[spec.type] = spec
    for a in spec.aliases:
        _CUSTOM[a] = spec


def unregister(type_: str) -> None:
    """Remove a type `register` added (protoseg's own types stay)."""
    spec = _CUSTOM.pop(type_, None)
    for a in spec.aliases if spec else ():
        _CUSTOM.pop(a, None)


__all__ = ["Call", "LayerSpec", "LowerContext", "ModuleRef", "ShapeContext", "builtin", "local",
           "nn", "no_tops", "register", "registry", "same_shape", "unregister"]
