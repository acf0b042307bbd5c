"""infer: the Net IR -> every blob's shape, by Caffe's per-layer rules in file order.

Pure integer arithmetic; no torch. Data layers give their tops from their params, or from
`inputs` (the CLI's --input), which also overrides any of them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .errors import InputError, ProtosegError, ShapeError
from .layers import ShapeContext, spec_of
from .layers.python_layer import register_hint
from .layers.geometry import INT_MAX
from .net import Net
from .text import fmt_shape


@dataclass
class LayerShapes:
    layer: object               # net.Layer
    bottoms: list               # bottom shapes
    tops: list                  # top shapes
    notes: list = field(default_factory=list)   # the arithmetic, for --explain
    conf: object = None         # the layer's parsed parameters (its spec's `conf`), if any


@dataclass
class Shapes:
    net: Net
    layers: list                # LayerShapes, file order
    values: dict                # SSA value name -> shape
    inputs: dict                # net input blob -> shape (tops of data layers)

    @property
    def blobs(self) -> dict:
        """Caffe blob name -> shape of its last version (what pycaffe's net.blobs shows)."""
        out = {}
        for ls in self.layers:
            for name, shape in zip(ls.layer.tops, ls.tops):
                out[name] = shape
        return out

    def of(self, layer_name: str) -> LayerShapes:
        for ls in self.layers:
            if ls.layer.name == layer_name:
                return ls
        raise KeyError(layer_name)


def parse_input_spec(text: str) -> tuple[str, tuple]:
    """'data=1,3,500,500' (or 'data=1x3x500x500') -> ('data', (1, 3, 500, 500)). Every dimension
    is a positive decimal integer; anything else is an InputError."""
    if not isinstance(text, str):
        raise TypeError(f"an input spec is a str like 'data=1,3,500,500', not {type(text).__name__}")
    name, eq, dims = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise InputError(f"--input {text!r}: expected NAME=N,C,H,W (e.g. data=1,3,500,500)")
    fields = re.split(r"[,x]", dims.strip())
    bad = [f for f in fields if not re.fullmatch(r"[0-9]{1,10}", f.strip())]
    if bad:
        what = "an empty dimension" if any(not f.strip() for f in bad) else f"{bad[0].strip()!r}"
        raise InputError(f"--input {text!r}: {what} is not a dimension: give positive integers "
                         f"separated by commas, e.g. {name}=1,3,500,500")
    shape = tuple(int(f) for f in fields)
    if any(d < 1 or d > INT_MAX for d in shape):
        raise InputError(f"--input {text!r}: every dimension must be between 1 and {INT_MAX:,} "
                         f"(Caffe's int)")
    return name, shape


def _check_inputs(inputs) -> dict:
    """{blob name: shape} as given to infer_shapes, checked: names are str, dims ints >= 1."""
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be a dict {{blob name: shape}}, not {type(inputs).__name__}")
    out = {}
    for name, shape in inputs.items():
        if not isinstance(name, str):
            raise TypeError(f"input names must be str, not {name!r}")
        if not isinstance(shape, (tuple, list)) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise TypeError(f"the shape of input {name!r} must be a tuple of ints, not {shape!r}")
        if not shape or any(d < 1 or d > INT_MAX for d in shape):
            raise ValueError(f"the shape of input {name!r} must have one or more dimensions "
                             f"between 1 and {INT_MAX:,}, not {tuple(shape)}")
        if math.prod(shape) > INT_MAX:
            raise InputError(f"input '{name}' {fmt_shape(shape)} has {math.prod(shape):,} elements: "
                             f"Caffe's blobs hold at most INT_MAX = {INT_MAX:,}")
        out[name] = tuple(shape)
    return out


def source_shapes(net: Net, inputs: dict | None = None) -> dict:
    """SSA value -> shape for every top of a data layer: from `inputs` (the CLI's --input, by
    blob name) where given, else from the layer's params; an error names the blobs that have
    neither."""
    inputs = _check_inputs(inputs)
    sources = {}        # value name -> shape, for data-layer tops
    missing = []        # (blob, layer)
    source_blobs = set()
    for layer in net.layers:
        spec = spec_of(layer)
        if not spec.source:
            continue
        ctx = ShapeContext(layer, spec)
        try:
            given = spec.shape(ctx, [])
        except ProtosegError as e:
            raise ctx.locate(e)
        for blob, value, shape in zip(layer.tops, layer.top_values, given):
            source_blobs.add(blob)
            if blob in inputs:
                sources[value] = inputs[blob]
            elif shape is None:
                missing.append((blob, layer))
            else:
                sources[value] = tuple(shape)
    unknown = [k for k in inputs if k not in source_blobs]
    if unknown:
        have = ", ".join(sorted(source_blobs)) or "none"
        raise InputError(f"--input names {', '.join(repr(u) for u in unknown)}, which "
                         f"{'is' if len(unknown) == 1 else 'are'} not an input of this net "
                         f"(its inputs and data-layer tops: {have})")
    if missing:
        lines = ", ".join(f"'{b}' (layer '{l.name}', {l.type})" for b, l in missing)
        example = " ".join(f"--input {b}=N,C,H,W" for b, _ in missing)
        python = [l for _, l in missing if l.type == "Python" and l.bottoms]
        raise InputError(f"the shapes of these blobs are not given by the net and must be given "
                         f"with --input: {lines}", span=missing[0][1].span, hint=f"e.g. {example}"
                         + (f"; or, for Python layer '{python[0].name}', {register_hint(python[0])}"
                            if python else ""))
    return sources


def layer_tops(layer, spec, bottoms: list, hint: str | None = None) -> tuple[list, ShapeContext]:
    """Run one (non-data) layer's rule on its bottom shapes: its top shapes, and its context (the
    parsed parameters in `conf`, the arithmetic in `notes`). Raises the rule's error, located at
    the layer (`hint`: added to it when it has none)."""
    ctx = ShapeContext(layer, spec)
    try:
        if spec.conf is not None:
            ctx.conf = spec.conf(ctx, bottoms)
        tops = spec.shape(ctx, bottoms)
    except ProtosegError as e:
        if hint and not e.hint:
            e.hint = hint
        raise ctx.locate(e)
    if len(tops) != len(layer.tops):
        raise ctx.locate(ShapeError(f"the rule for {layer.type} gave {len(tops)} tops for "
                                    f"{len(layer.tops)} named tops"))
    for t, shape in zip(layer.tops, tops):
        _check_top(ctx, t, tuple(shape), bottoms)
    return [tuple(t) for t in tops], ctx


def infer_shapes(net: Net, inputs: dict | None = None) -> Shapes:
    """Every blob's shape, layer by layer in file order, by Caffe's rules. `inputs`: {blob:
    shape} for net inputs and data-layer tops (overrides what the net gives)."""
    if not isinstance(net, Net):
        raise TypeError(f"infer_shapes takes a Net (from load_net), not {type(net).__name__}")
    inputs = _check_inputs(inputs)
    sources = source_shapes(net, inputs)
    values: dict = {}
    out = []
    net_inputs = {}
    hint = _batch_hint(net, inputs, sources)
    for layer in net.layers:
        spec = spec_of(layer)
        bottoms = [values[v] for v in layer.bottom_values]
        if spec.source:
            ctx = ShapeContext(layer, spec)
            tops = [sources[v] for v in layer.top_values]
            for blob, shape in zip(layer.tops, tops):
                net_inputs[blob] = shape
                if blob in inputs:
                    ctx.note(f"{blob}: {fmt_shape(shape)} (from --input)")
            if not ctx.notes:
                spec.shape(ctx, [])     # for its notes
            for blob, shape in zip(layer.tops, tops):
                _check_top(ctx, blob, shape, [])
        else:
            tops, ctx = layer_tops(layer, spec, bottoms, hint)
        for v, shape in zip(layer.top_values, tops):
            values[v] = tuple(shape)
        out.append(LayerShapes(layer, bottoms, [tuple(t) for t in tops], ctx.notes, ctx.conf))
    return Shapes(net, out, values, net_inputs)


def _check_top(ctx, top: str, shape: tuple, bottoms: list) -> None:
    """A top's shape must be one Caffe can hold: every dimension >= 1, at most INT_MAX elements
    (Blob::Reshape checks count <= INT_MAX)."""
    if any(d < 1 for d in shape):
        if bottoms:
            why = f"the input is too small for this layer: bottoms {', '.join(fmt_shape(b) for b in bottoms)}"
        else:
            why = "the layer's own parameters give it"
        raise ctx.locate(ShapeError(f"top '{top}' would have shape {fmt_shape(shape)}: a dimension "
                                    f"below 1 ({why})" + (f"; {ctx.notes[-1]}" if ctx.notes else "")))
    count = math.prod(shape)
    if count > INT_MAX:
        raise ctx.locate(ShapeError(
            f"top '{top}' would have shape {fmt_shape(shape)}, {count:,} elements: Caffe's blobs "
            f"hold at most INT_MAX = {INT_MAX:,} (Blob::Reshape refuses more)"))


def _batch_hint(net: Net, inputs: dict, sources: dict) -> str | None:
    """When --input changes the batch of some tops of a data layer and not of the others (data
    but not label), a later shape error most likely comes from that: say so."""
    for layer in net.layers:
        if not spec_of(layer).source:
            continue
        given = [(b, sources[v]) for b, v in zip(layer.tops, layer.top_values) if b in inputs]
        kept = [(b, sources[v]) for b, v in zip(layer.tops, layer.top_values)
                if b not in inputs and v in sources and sources[v]]
        for blob, shape in kept:
            if given and shape[0] != given[0][1][0]:
                new = ",".join(str(d) for d in (given[0][1][0],) + tuple(shape[1:]))
                return (f"--input gave '{given[0][0]}' of layer '{layer.name}' batch "
                        f"{given[0][1][0]}, but its top '{blob}' keeps the layer's batch {shape[0]}: "
                        f"also give --input {blob}={new}")
    return None
