"""The layer registry: one Caffe type, one place.

Each module of this package holds, for its Caffe type(s): the Caffe source it follows, the shape
rule, the torch lowering and the weight mapping, and exports `SPECS`, a list of `LayerSpec`s.
The registry is this explicit list of modules (no import side effects, no subclass scans).
A user adds a custom layer with `register(LayerSpec(...))`.

Nothing here imports torch: lowering functions import it when they run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import ShapeError


@dataclass(frozen=True)
class LayerSpec:
    type: str                            # Caffe's type string, e.g. "Convolution"
    shape: Callable                      # (ctx, bottoms: list[tuple]) -> list[tuple | None]
    param: str | None = None             # its LayerParameter field, e.g. "convolution_param"
    bottoms: tuple = (1, 1)              # (min, max) bottom count; max None = unbounded
    tops: tuple = (1, 1)                 # (min, max) top count
    in_place: bool = True                # may a top reuse its bottom's name
    source: bool = False                 # a data layer: its tops are net inputs (--input overrides)
    auto_tops: bool = False              # Caffe adds unnamed tops up to the minimum (loss layers)
    inference: bool = True               # False: no meaning at inference (losses, Accuracy, Silence...)
    lower: Callable | None = None        # (ctx) -> Lowered, see protoseg.compile
    weights: Callable | None = None      # (ctx, blobs: list[ndarray]) -> {state_dict key: ndarray}
    doc: str = ""                        # one line shown by --explain / compile notes
    aliases: tuple = field(default_factory=tuple)


class ShapeContext:
    """What a shape rule sees besides the bottom shapes: the layer, its param message and a place
    to write the arithmetic for `--explain`."""

    def __init__(self, layer, spec: LayerSpec):
        self.layer = layer
        self.spec = spec
        self.params = layer.params
        self.p = layer.params.get(spec.param) if spec.param else None
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def fail(self, message: str, field: str | None = None, hint: str | None = None):
        span = self.p.spans.get(field) if (self.p is not None and field) else None
        raise ShapeError(message, span=span, hint=hint)


_MODULES = (
    "data", "convolution", "deconvolution", "pooling", "inner_product", "neuron", "prelu", "lrn",
    "mvn", "batch_norm", "scale", "bias", "eltwise", "concat", "slice", "split", "crop", "softmax",
    "flatten", "reshape", "reduction", "argmax", "tile", "embed", "loss", "interp", "bn",
    "upsample", "normalize", "permute", "prior_box", "detection", "roi_pooling",
)

_REGISTRY: dict[str, LayerSpec] | None = None
_CUSTOM: dict[str, LayerSpec] = {}


def registry() -> dict[str, LayerSpec]:
    """Caffe type -> LayerSpec, built once from the explicit module list."""
    global _REGISTRY
    if _REGISTRY is None:
        import importlib
        reg: dict[str, LayerSpec] = {}
        for name in _MODULES:
            mod = importlib.import_module(f"{__name__}.{name}")
            for spec in mod.SPECS:
                for t in (spec.type, *spec.aliases):
                    if t in reg:
                        raise RuntimeError(f"layer type {t!r} registered twice")
                    reg[t] = spec
        _REGISTRY = reg
    return {**_REGISTRY, **_CUSTOM}


def register(spec: LayerSpec) -> None:
    """Add (or replace) a layer type, e.g. a custom layer of your own Caffe fork."""
    _CUSTOM[spec.type] = spec
    for a in spec.aliases:
        _CUSTOM[a] = spec


def same_shape(ctx, bottoms):
    """Top shape = bottom shape (every top)."""
    return [bottoms[0]] * len(ctx.layer.tops)


def no_tops(ctx, bottoms):
    return []


__all__ = ["LayerSpec", "ShapeContext", "registry", "register", "same_shape", "no_tops", "ShapeError"]
