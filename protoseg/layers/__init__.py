"""The layer registry: one Caffe type (or a small family Caffe itself groups), one package.

Each package of this folder holds, for its Caffe type(s): the Caffe source it follows, the
parameters parsed once (`conf`), the shape rule, the lowering and the weight mapping, all
torch-free, in its `__init__.py`, which exports `SPECS`, a list of `LayerSpec`s; and, where
Caffe's arithmetic differs from torch's own modules, the `Caffe<Type>` torch modules in its
`modules.py` beside it. The registry is the explicit list below (no import side effects, no
subclass scans). A user adds a custom layer with `register(LayerSpec(...))`.
"""
from __future__ import annotations

from .spec import (AxisRule, Call, Cost, LayerSpec, LowerContext, ModuleRef, ShapeContext, free,
                   local, nn, no_tops, same_axes, same_shape)

_PACKAGES = (
    "data", "convolution", "pooling", "inner_product", "neuron", "prelu", "lrn", "mvn",
    "batch_norm", "scale", "eltwise", "concat", "slice", "split", "crop", "softmax", "flatten",
    "reshape", "reduction", "argmax", "tile", "embed", "loss", "interp", "bn", "upsample",
    "normalize", "permute", "prior_box", "detection", "roi_pooling", "python_layer", "meanfield",
)

_BUILTIN: dict[str, LayerSpec] | None = None
_PACKAGE: dict[str, str] = {}               # type -> the package that defines it
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
                    _PACKAGE[t] = package.__name__
        _BUILTIN = reg
    return _BUILTIN


def registry() -> dict[str, LayerSpec]:
    """Caffe type -> LayerSpec: protoseg's own types, then the ones `register` added."""
    return {**builtin(), **_CUSTOM}


def python_type(module: str, layer: str) -> str:
    """The registry key of a Python layer (python_param module and layer): the class Caffe runs,
    e.g. 'Python:rpn.proposal_layer.ProposalLayer'. register(LayerSpec(python_type(...), ...))
    gives one a shape rule and a lowering."""
    return f"Python:{module}.{layer}"


def spec_of(layer) -> LayerSpec:
    """The spec that computes a layer (net.Layer): its type's, or for a Python layer the one
    registered for its python_param module and layer, where there is one."""
    reg = registry()
    if layer.type == "Python":
        p = layer.params.get("python_param")
        return reg.get(python_type(p.get("module"), p.get("layer")), reg["Python"])
    return reg[layer.type]


def package_of(type_: str) -> str | None:
    """The package of protoseg that defines a type (None for a type `register` added)."""
    builtin()
    return None if type_ in _CUSTOM else _PACKAGE.get(type_)


def register(spec: LayerSpec, proto: str | None = None) -> None:
    """Add (or replace) a layer type, e.g. a custom layer of your own Caffe fork.

    proto: the fork's additions to caffe.proto that the type's parameters need, in proto2
    syntax. A `message LayerParameter { ... }` block adds its fields to Caffe's LayerParameter,
    e.g. `message LayerParameter { optional MyNormParameter my_norm_param = 9001; }` beside
    `message MyNormParameter { optional float eps = 1 [default = 0.001]; }`.
    """
    if not isinstance(spec, LayerSpec):
        raise TypeError(f"register() takes a LayerSpec, not {type(spec).__name__}")
    from ..schema import caffe_schema, extend_schema
    schema = caffe_schema()
    if proto is not None:
        if not isinstance(proto, str):
            raise TypeError(f"proto must be proto2 text, not {type(proto).__name__}")
        extend_schema(schema, proto, f"the proto of layer type {spec.type}")
    if spec.param is not None and spec.param not in schema.message("LayerParameter").fields:
        raise ValueError(f"layer type {spec.type}: LayerParameter has no field {spec.param!r}; "
                         f"declare it with register(..., proto=...)")
    _CUSTOM[spec.type] = spec
    for a in spec.aliases:
        _CUSTOM[a] = spec


def unregister(type_: str) -> None:
    """Remove a type `register` added (protoseg's own types stay)."""
    spec = _CUSTOM.pop(type_, None)
    for a in spec.aliases if spec else ():
        _CUSTOM.pop(a, None)


__all__ = ["AxisRule", "Call", "Cost", "LayerSpec", "LowerContext", "ModuleRef", "ShapeContext",
           "builtin", "free", "local", "nn", "no_tops", "package_of", "python_type", "register",
           "registry", "same_axes", "same_shape", "spec_of", "unregister"]
