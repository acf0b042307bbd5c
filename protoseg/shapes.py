"""infer: the Net IR -> every blob's shape, by Caffe's per-layer rules in file order.

Pure integer arithmetic; no torch. Data layers give their tops from their params, or from
`inputs` (the CLI's --input), which also overrides any of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InputError, ProtosegError, ShapeError
from .layers import ShapeContext, registry
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
    """'data=1,3,500,500' -> ('data', (1, 3, 500, 500))."""
    name, eq, dims = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise InputError(f"--input {text!r}: expected NAME=N,C,H,W (e.g. data=1,3,500,500)")
    try:
        shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip() != "")
    except ValueError:
        raise InputError(f"--input {text!r}: the dimensions must be integers, e.g. data=1,3,500,500") from None
    if not shape or any(d < 1 for d in shape):
        raise InputError(f"--input {text!r}: give one or more positive dimensions, e.g. data=1,3,500,500")
    return name, shape


def source_shapes(net: Net, inputs: dict | None = None) -> dict:
    """SSA value -> shape for every top of a data layer: from `inputs` (the CLI's --input, by
    blob name) where given, else from the layer's params; an error names the blobs that have
    neither."""
    inputs = {k: tuple(v) for k, v in (inputs or {}).items()}
    reg = registry()
    sources = {}        # value name -> shape, for data-layer tops
    missing = []        # (blob, layer)
    source_blobs = set()
    for layer in net.layers:
        spec = reg[layer.type]
        if not spec.source:
            continue
        ctx = ShapeContext(layer, spec)
        try:
            given = spec.shape(ctx, [])
        except ProtosegError as e:
            raise e.locate(layer.span, layer.name, layer.type)
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
        raise InputError(f"the shapes of these blobs are not given by the net and must be given "
                         f"with --input: {lines}", span=missing[0][1].span, hint=f"e.g. {example}")
    return sources


def layer_tops(layer, spec, bottoms: list) -> tuple[list, ShapeContext]:
    """Run one (non-data) layer's rule on its bottom shapes: its top shapes, and its context (the
    parsed parameters in `conf`, the arithmetic in `notes`). Raises the rule's error, located at
    the layer."""
    ctx = ShapeContext(layer, spec)
    try:
        if spec.conf is not None:
            ctx.conf = spec.conf(ctx, bottoms)
        tops = spec.shape(ctx, bottoms)
    except ProtosegError as e:
        raise e.locate(layer.span, layer.name, layer.type)
    if len(tops) != len(layer.tops):
        raise ShapeError(f"the rule for {layer.type} gave {len(tops)} tops for "
                         f"{len(layer.tops)} named tops").locate(layer.span, layer.name, layer.type)
    for t, shape in zip(layer.tops, tops):
        if any(d < 1 for d in shape):
            raise ShapeError(
                f"top '{t}' would have shape {fmt_shape(shape)}: a dimension below 1 "
                f"(the input is too small for this layer: bottoms {', '.join(fmt_shape(b) for b in bottoms)})"
                + (f"; {ctx.notes[-1]}" if ctx.notes else "")).locate(layer.span, layer.name, layer.type)
    return [tuple(t) for t in tops], ctx


def infer_shapes(net: Net, inputs: dict | None = None) -> Shapes:
    inputs = {k: tuple(v) for k, v in (inputs or {}).items()}
    reg = registry()
    sources = source_shapes(net, inputs)
    values: dict = {}
    out = []
    net_inputs = {}
    for layer in net.layers:
        spec = reg[layer.type]
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
        else:
            tops, ctx = layer_tops(layer, spec, bottoms)
        for v, shape in zip(layer.top_values, tops):
            values[v] = tuple(shape)
        out.append(LayerShapes(layer, bottoms, [tuple(t) for t in tops], ctx.notes, ctx.conf))
    return Shapes(net, out, values, net_inputs)
