"""What a layer type is made of, and what its functions see.

A `LayerSpec` holds, for one Caffe type: its counts and flags, `conf` (its parameters parsed once
into a small frozen object), `shape` (the shape rule), `lower` (which torch module computes it),
`weights` (how its caffemodel blobs become that module's parameters), and for the analysis
(protoseg/analysis): `cost` (its blobs and multiply-accumulates, a `Cost`) and `axes` (how each
axis of its tops follows from the same axis of its bottoms: sizes and coordinate maps, an
`AxisRule` per axis). The stages call them with a context: `ShapeContext` while inferring shapes,
`LowerContext` (the same plus the inferred shapes) while planning, porting weights and analysing.

Nothing here imports torch or numpy at import time: a lowering names its module with a
`ModuleRef`, an import path that only the torch backends resolve.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from ..errors import ShapeError, UnsupportedLayerError, WeightsError
from ..text import fmt_shape


@dataclass(frozen=True)
class ModuleRef:
    """Where a torch module class lives: `torch.nn`, a layer package's `modules.py`, or a
    user's own module. `obj` keeps the class itself when the caller had it (a user's class
    defined in a script), so resolving it needs no import."""

    module: str
    name: str
    obj: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, module_class) -> "ModuleRef":
        return cls(module_class.__module__, module_class.__qualname__, module_class)

    @property
    def code(self) -> str:
        """How generated code names the class: `nn.Conv2d`, or the class name itself."""
        return f"nn.{self.name}" if self.module == "torch.nn" else self.name

    def resolve(self):
        """The class (imports its module, and so torch)."""
        if self.obj is not None:
            return self.obj
        value = importlib.import_module(self.module)
        for part in self.name.split("."):
            value = getattr(value, part)
        return value


def nn(name: str) -> ModuleRef:
    """A module of torch.nn, e.g. nn("Conv2d")."""
    return ModuleRef("torch.nn", name)


def local(package: str, name: str) -> ModuleRef:
    """A module class of a layer package's own `modules.py`: local(__name__, "CaffeCrop")."""
    return ModuleRef(f"{package}.modules", name)


def py_literal(value) -> str:
    """Python source for a constructor argument (ints, floats, bools, strings, None, tuples and
    lists of those). Floats keep their exact value (repr round-trips)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "float('-inf')"
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    raise TypeError(f"a constructor argument must be a literal (int, float, bool, str, None, "
                    f"tuple or list of those), not {value!r}")


@dataclass(frozen=True)
class Call:
    """A layer's torch module: the class and its constructor arguments, plain literals (they are
    also written out as code).

    call: "single" (module(*bottoms) gives the top, or a tuple of the tops); "each" (one call
    per bottom, giving the top of the same index: Convolution with several bottoms shares its
    weights); "alias" (module(bottom) gives a value that every top names: Split).
    fresh: the output is new memory, which a following in-place layer may overwrite (False for
    views and pass-throughs: Crop, Slice, Reshape, Dropout at test, ...).
    """

    ref: ModuleRef
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    call: str = "single"
    fresh: bool = True

    def __post_init__(self):
        if self.call not in ("single", "each", "alias"):
            raise ValueError(f"call must be 'single', 'each' or 'alias', not {self.call!r}")
        for v in (*self.args, *self.kwargs.values()):
            py_literal(v)           # raises TypeError for anything code cannot hold

    @property
    def inplace(self) -> bool:
        return bool(self.kwargs.get("inplace", False))

    def code(self) -> str:
        parts = [py_literal(a) for a in self.args]
        parts += [f"{k}={py_literal(v)}" for k, v in self.kwargs.items()]
        return f"{self.ref.code}({', '.join(parts)})"

    def build(self):
        """The torch module (imports torch)."""
        return self.ref.resolve()(*self.args, **self.kwargs)


@dataclass(frozen=True)
class LayerSpec:
    """One Caffe layer type. Only `type` and `shape` are required; a type without `lower` has
    shapes but does not compile, one without `weights` takes no caffemodel blobs."""

    type: str                            # Caffe's type string, e.g. "Convolution"
    shape: Callable                      # (ctx, bottoms: list[tuple]) -> list[tuple | None]
    param: str | None = None             # its LayerParameter field, e.g. "convolution_param"
    conf: Callable | None = None         # (ctx, bottoms) -> frozen parameters, as ctx.conf
    bottoms: tuple = (1, 1)              # (min, max) bottom count; max None = unbounded
    tops: tuple = (1, 1)                 # (min, max) top count
    in_place: bool = True                # may a top reuse its bottom's name
    source: bool = False                 # a data layer: its tops are net inputs (--input overrides)
    auto_tops: bool = False              # Caffe adds unnamed tops up to the minimum (loss layers)
    inference: bool = True               # False: no meaning at inference (losses, Accuracy, ...)
    lower: Callable | None = None        # (ctx: LowerContext) -> Call (use ctx.module)
    weights: Callable | None = None      # (ctx, blobs: list[ndarray]) -> {parameter name: ndarray}
    fillers: tuple = ()                  # the param fields that fill blob 0, 1, ... (e.g.
                                         # "weight_filler"): explicit constant fillers give the
                                         # blobs of a layer the caffemodel lacks
    aliases: tuple = field(default_factory=tuple)
    fork: str = ""                       # the Caffe fork that defines the type, where its param
                                         # field's `fork` option in caffe.proto does not say
    cost: Callable | None = None         # (ctx: LowerContext) -> Cost; None: unknown (analysis
                                         # shows '?')
    axes: Callable | None = None         # (ctx: LowerContext) -> {axis: AxisRule}; None: no axis
                                         # follows its bottoms' (no coordinate map)
    dynamic: bool = False                # its tops' sizes depend on the values (detections,
                                         # proposals): the rule gives Caffe's set-up shape
    uncompiled: str = ""                 # why a type with inference meaning has no `lower`

    def __post_init__(self):
        if not isinstance(self.type, str) or not self.type:
            raise TypeError(f"LayerSpec.type must be a non-empty string, not {self.type!r}")
        for name in ("shape", "conf", "lower", "weights", "cost", "axes"):
            f = getattr(self, name)
            if f is not None and not callable(f):
                raise TypeError(f"LayerSpec.{name} must be a function, not {f!r}")


class ShapeContext:
    """What a shape rule sees besides the bottom shapes: the layer, its param message (`p`), its
    parsed parameters (`conf`, when the spec has a `conf` function) and a place to write the
    arithmetic for `--explain`."""

    def __init__(self, layer, spec: LayerSpec):
        self.layer = layer
        self.spec = spec
        self.params = layer.params
        self.p = layer.params.get(spec.param) if spec.param else None
        self.phase = layer.phase
        self.conf = None
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def fail(self, message: str, field: str | None = None, hint: str | None = None, *,
             span=None):
        """Raise a ShapeError pointing at `field` of the layer's param message (or at `span`)."""
        raise self.locate(ShapeError(message, span=span, hint=hint, field=field))

    def locate(self, err):
        """Point an error that names a parameter (`err.field`) at where the layer writes it, then
        at the layer: `file:line:col: layer 'name' (Type): ...`."""
        p = self.p
        if err.span is None and err.field and p is not None and err.field in p.type.fields:
            err.span = p.span_of(err.field)
        return err.locate(self.layer.span, self.layer.name, self.layer.type)


class LowerContext(ShapeContext):
    """What a layer's `lower` and `weights` functions see: everything a ShapeContext has, the
    inferred bottom and top shapes, and whether the module may overwrite its input (`inplace`:
    Caffe runs the layer in place and no other layer reads the old value)."""

    def __init__(self, layer, spec: LayerSpec, bottoms: list, tops: list, conf=None,
                 inplace: bool = False):
        super().__init__(layer, spec)
        self.bottoms = [tuple(b) for b in bottoms]
        self.tops = [tuple(t) for t in tops]
        self.conf = conf
        self.inplace = inplace

    # -- lowering
    def module(self, cls, *args, call: str = "single", fresh: bool = True, **kwargs) -> Call:
        """The Call of a module class: a ModuleRef, or the class itself (a user's own)."""
        ref = cls if isinstance(cls, ModuleRef) else ModuleRef.of(cls)
        return Call(ref, tuple(args), dict(kwargs), call, fresh)

    def unsupported(self, message: str):
        raise UnsupportedLayerError(message)

    def constant_filler(self, field_name: str, default: float, owner=None) -> float:
        """The value of a constant filler (e.g. Scale's `filler`), `default` when the filler is
        unset. Other filler types fill randomly in Caffe; protoseg then uses `default` (the
        weights are expected to come from a caffemodel)."""
        owner = self.p if owner is None else owner
        if owner is None or not owner.has(field_name):
            return default
        filler = owner.get(field_name)
        if filler.get("type") == "constant":
            return float(filler.get("value"))
        return default

    # -- weights
    def blob_shapes(self) -> list:
        """The shapes of the layer's parameter blobs: its type's cost rule says them; for a type
        without one (a user's own), the check `expect_blobs` makes when `weights` gets none."""
        if self.spec.weights is None:
            return []
        if self.spec.cost is not None:
            return [tuple(s) for s in self.spec.cost(self).blobs]
        try:
            self.spec.weights(self, [])
        except WeightsError as e:
            return [tuple(s) for s in e.expected or []]
        return []

    def expect_blobs(self, blobs: list, expected: list) -> list:
        """Check a layer's blobs against the `expected` shapes (in blob order) and return them
        as float32 arrays of exactly those shapes.

        A blob read from a caffemodel (protoseg.caffemodel.Blob) is checked as Caffe's
        Blob::ShapeEquals does: a blob with a `shape` must have exactly the expected shape; a
        legacy blob (num/channels/height/width, always 4 values) must equal the expected shape
        right-aligned and padded with 1s (an InnerProduct weight (N, K) stored (1, 1, N, K)). A
        plain array (`{layer: [arrays]}` given in Python, which no longer says how the file stored
        it) is accepted with the expected shape, or with 4 axes and the expected element count,
        or as one element for any one-element shape."""
        import numpy as np
        shapes = [tuple(np.shape(getattr(b, "data", b))) for b in blobs]
        if len(blobs) != len(expected):
            want = ", ".join(fmt_shape(s) for s in expected) or "none"
            got = ", ".join(fmt_shape(s) for s in shapes) or "none"
            raise WeightsError(f"expected {len(expected)} blob{'s' if len(expected) != 1 else ''} "
                               f"({want}), got {len(blobs)} ({got})", kind="mismatch",
                               expected=list(expected), got=shapes)
        out = []
        for i, (blob, shape) in enumerate(zip(blobs, expected)):
            shape = tuple(int(d) for d in shape)
            legacy = getattr(blob, "legacy", None)
            arr = np.asarray(getattr(blob, "data", blob))
            if legacy is None:
                ok = arr.shape == shape or (arr.size == math.prod(shape) and (arr.ndim == 4 or arr.size == 1))
            elif legacy:
                ok = len(shape) <= 4 and (1,) * (4 - len(shape)) + shape == arr.shape
            else:
                ok = arr.shape == shape
            if not ok:
                stored = " (stored as legacy num/channels/height/width)" if legacy else ""
                raise WeightsError(f"blob {i}: expected shape {fmt_shape(shape)}, got "
                                   f"{fmt_shape(arr.shape)}{stored}", kind="mismatch", blob=i,
                                   expected=shape, got=tuple(arr.shape))
            out.append(np.ascontiguousarray(arr, dtype=np.float32).reshape(shape))
        return out


def same_shape(ctx, bottoms):
    """Top shape = bottom shape (every top)."""
    return [bottoms[0]] * len(ctx.layer.tops)


def no_tops(ctx, bottoms):
    return []


# -- analysis: cost and axes

@dataclass(frozen=True)
class Cost:
    """What one layer costs, counted as docs/analysis.md says: the shapes of the blobs it keeps in a
    caffemodel (its parameters), its multiply-accumulates in one forward pass, and whether its
    tops share their bottom's memory instead of owning some (Caffe's ShareData: Split, Reshape,
    Flatten)."""

    blobs: tuple = ()
    macs: int = 0
    shares: bool = False

    @property
    def params(self) -> int:
        return sum(math.prod(s) for s in self.blobs)


def free(ctx) -> Cost:
    """The cost of a layer with no blobs and no multiply-accumulates."""
    return Cost()


def sharing(ctx) -> Cost:
    """The cost of a layer whose tops are its bottom's memory (ShareData)."""
    return Cost(shares=True)


@dataclass(frozen=True)
class AxisRule:
    """How one axis of a layer's tops follows from the same axis of its bottoms.

    size: (*bottom sizes along the axis) -> the tops' size along it, or None where the layer
    refuses those sizes; right for any bottom sizes, the other axes as they are (a type gives a
    rule only for axes its blobs do not depend on).
    scale, shift: the coordinate map x_top = scale * x_bottom + shift of element centres, as
    Caffe's python/caffe/coord_map.py defines it; scale None: no map along this axis.
    reach: how many bottom steps the bottom elements one top element depends on span (a
    convolution's dilated kernel extent - 1).
    mapped: the bottoms the map goes through (None: all; Crop: bottom 0 only).
    """

    size: Callable
    scale: Fraction | None = Fraction(1)
    shift: Fraction = Fraction(0)
    reach: Fraction = Fraction(0)
    mapped: tuple | None = None


def equal_size(*sizes):
    """The size of bottoms that must agree along an axis (Eltwise, Concat off its axis, ...)."""
    return sizes[0] if all(s == sizes[0] for s in sizes) else None


def one_size(f) -> Callable:
    """A size rule for bottoms that must share their size along the axis: f(that size)."""
    return lambda *sizes: None if equal_size(*sizes) is None else f(sizes[0])


def same_axes(ctx) -> dict:
    """Every axis passes through unchanged (element-wise layers): Caffe's PASS_THROUGH_LAYERS."""
    return {a: AxisRule(equal_size) for a in range(len(ctx.bottoms[0]))}


def spatial_axes(ctx) -> dict:
    """The axes after the channel axis pass through unchanged (per-channel layers, whose blobs are
    as long as the channel axis: it keeps no rule)."""
    return {a: AxisRule(equal_size) for a in range(2, len(ctx.bottoms[0]))}


def whole_axes(ctx, axes) -> dict:
    """Like same_axes, but every element of `axes` depends on the whole axis (a softmax, a mean over
    the axis): the reach is the axis' size - 1."""
    b = ctx.bottoms[0]
    return {a: AxisRule(equal_size, reach=Fraction(b[a] - 1) if a in axes else Fraction(0))
            for a in range(len(b))}
