"""lower / compile: the Net IR -> a torch.fx.GraphModule, one call_module per kept Caffe layer.

The driver works in three steps, all decided before anything runs:

1. plan (`plan_net`): which layers stay. Data layers become the module's inputs; layers with no
   meaning at inference (losses, Accuracy, Silence, ...) are left out, and so are the inputs
   nobody reads any more (`label`) and, when `outputs` are named, the layers they do not need.
   Every remaining layer is lowered by its spec's `lower(ctx) -> Lowered` (in its file under
   protoseg/layers/), which names a torch module (`nn.Conv2d`, or a `Caffe<Type>` class from
   protoseg.modules where Caffe's arithmetic differs) and its constructor arguments. Every layer
   that cannot be lowered is reported at once (UnsupportedLayerError).
2. build (`build_module`): an fx.Graph over those modules, with node names after the Caffe blobs,
   the inferred shapes in node.meta["tensor_meta"] (so `print_readable()` shows them without
   running anything) and the Caffe layer in node.meta["caffe_layer"]. In-place Caffe layers are
   plain SSA values; a ReLU runs in place only where Caffe's own buffer would have been
   overwritten and nothing else reads it.
3. weights (`load_weights`, through protoseg.port.match_weights): each spec's
   `weights(ctx, blobs) -> {name: ndarray}` maps a layer's caffemodel blobs onto its module's
   parameters and buffers.

The same plan feeds `protoseg.export`, which writes it out as a standalone Python file.
"""
from __future__ import annotations

import difflib
import keyword
import math
import operator
import os
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .errors import GraphError, ProtosegError, UnsupportedLayerError, WeightsError
from .layers import ShapeContext, registry
from .net import Layer, Net, load_net
from .shapes import Shapes, infer_shapes

__all__ = ["compile_net", "compile_program", "plan_net", "build_module", "Lowered", "LowerContext",
           "Program", "load_weights", "apply_weights", "state_dict_from_blobs", "check_shapes",
           "clean_identifier", "class_name_for"]


# ---------------------------------------------------------------------------------------------
# what a layer lowers to

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
    raise TypeError(f"cannot write {value!r} as a constructor argument")


@dataclass
class Lowered:
    """A layer's torch module: the class (`nn.Conv2d` or a protoseg.modules `Caffe*` name) and its
    constructor arguments, which must be plain literals (they are also written out as code).

    call: "single" (module(*bottoms) gives the top, or a tuple of the tops); "each" (one call
    per bottom, giving the top of the same index: Convolution with several bottoms shares its
    weights); "alias" (module(bottom) gives a value that every top names: Split).
    fresh: the output is new memory, which a following in-place layer may overwrite (False for
    views and pass-throughs: Crop, Slice, Reshape, Dropout at test, ...).
    """

    cls: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    call: str = "single"
    fresh: bool = True

    def module_class(self):
        if self.cls.startswith("nn."):
            return getattr(nn, self.cls[3:])
        from . import modules
        return getattr(modules, self.cls)

    def build(self) -> nn.Module:
        return self.module_class()(*self.args, **self.kwargs)

    def code(self) -> str:
        parts = [py_literal(a) for a in self.args]
        parts += [f"{k}={py_literal(v)}" for k, v in self.kwargs.items()]
        return f"{self.cls}({', '.join(parts)})"


class LowerContext(ShapeContext):
    """What a layer's `lower` and `weights` functions see: the layer and its param message (as in
    ShapeContext), the inferred bottom and top shapes, the layer's phase, and whether the module
    may overwrite its input (`inplace`: Caffe runs the layer in place and no other layer reads
    the old value)."""

    def __init__(self, layer: Layer, spec, bottoms: list, tops: list, inplace: bool = False):
        super().__init__(layer, spec)
        self.bottoms = [tuple(b) for b in bottoms]
        self.tops = [tuple(t) for t in tops]
        self.phase = layer.phase
        self.inplace = inplace

    # -- lowering
    def module(self, cls: str, *args, call: str = "single", fresh: bool = True, **kwargs) -> Lowered:
        return Lowered(cls, tuple(args), dict(kwargs), call, fresh)

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
    def expect_blobs(self, blobs: list, expected: list) -> list:
        """Check a layer's caffemodel blobs against the `expected` shapes (in blob order) and
        return them as float32 arrays of exactly those shapes.

        As Caffe's Blob::ShapeEquals: shapes must match, except that a legacy 4-axis blob (the
        num/channels/height/width of old files, e.g. an InnerProduct weight stored (1, 1, N, K))
        is accepted by its element count; a one-element blob fits any one-element shape."""
        if len(blobs) != len(expected):
            want = ", ".join(_fmt(s) for s in expected) or "none"
            got = ", ".join(_fmt(np.shape(b)) for b in blobs) or "none"
            raise WeightsError(f"expected {len(expected)} blob{'s' if len(expected) != 1 else ''} "
                               f"({want}), got {len(blobs)} ({got})")
        out = []
        for i, (blob, shape) in enumerate(zip(blobs, expected)):
            arr = np.asarray(blob)
            shape = tuple(int(d) for d in shape)
            count = math.prod(shape)
            ok = arr.shape == shape or (arr.size == count and (arr.ndim == 4 or count == 1))
            if not ok:
                raise WeightsError(f"blob {i}: expected shape {_fmt(shape)}, got {_fmt(arr.shape)}")
            out.append(np.ascontiguousarray(arr, dtype=np.float32).reshape(shape))
        return out


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


# ---------------------------------------------------------------------------------------------
# names

_RESERVED = {"self", "torch", "nn", "F", "math", "forward"}


def _reserved_attrs() -> set:
    import torch.fx as fx
    names = set(dir(fx.GraphModule)) | set(dir(nn.Module))
    names |= {"graph", "code", "meta", "training", "_graph", "_code", "_modules", "_parameters",
              "_buffers", "_tracer_cls", "_tracer_extras"}
    return names


def clean_identifier(name: str, default: str = "x") -> str:
    """A Caffe name as a Python identifier: other characters become '_', a leading digit gets a
    '_' in front, keywords get a '_' after."""
    out = re.sub(r"[^0-9A-Za-z_]", "_", name or "")
    if not out or out.strip("_") == "":
        out = default
    if out[0].isdigit():
        out = "_" + out
    if keyword.iskeyword(out) or keyword.issoftkeyword(out):
        out += "_"
    return out


class _Names:
    """Unique identifiers from Caffe names, avoiding `reserved`."""

    def __init__(self, reserved=()):
        self.taken = set(reserved)

    def get(self, name: str, default: str = "x") -> str:
        base = clean_identifier(name, default)
        if base in _RESERVED:
            base += "_"
        out, i = base, 2
        while out in self.taken:
            out, i = f"{base}_{i}", i + 1
        self.taken.add(out)
        return out


def class_name_for(net: Net) -> str:
    """The module class name: the net name in CamelCase (fcn8s -> Fcn8s), else the file stem."""
    name = net.name or os.path.splitext(os.path.basename(net.file or ""))[0]
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    out = "".join(p[0].upper() + p[1:] for p in parts) or "CaffeNet"
    if out[0].isdigit():
        out = "Net" + out
    from . import modules
    if out in _RESERVED or out in modules.__all__:     # F, or a Caffe* class of the file
        out += "Net"
    return out


def file_stem_for(net: Net) -> str:
    """The exported file's name (without .py): the net name as an identifier, else the stem."""
    stem = os.path.splitext(os.path.basename(net.file or ""))[0]
    name = net.name or stem
    out = clean_identifier(name, clean_identifier(stem, "net"))
    return out


# ---------------------------------------------------------------------------------------------
# plan

@dataclass
class Input:
    blob: str
    value: str
    arg: str                    # the forward() argument name
    shape: tuple
    layer: Layer


@dataclass
class Step:
    layer: Layer
    attr: str                   # the submodule's attribute name
    lowered: Lowered
    ctx: LowerContext
    inplace: bool = False


@dataclass
class Program:
    """Everything needed to build (or write out) the module; no torch objects in it."""

    net: Net
    shapes: Shapes
    inputs: list                # Input, in declaration order
    steps: list                 # Step, file order
    outputs: list               # (blob, value)
    dropped: list               # (layer or blob, type, reason)
    var: dict                   # SSA value -> variable name (one per Caffe blob)
    class_name: str


def compile_program(prototxt, inputs: dict | None = None, outputs=None, *, phase: str = "TEST",
                    level: int = 0, stages=()) -> Program:
    """Load a net (a path, or the text itself), infer its shapes and plan its module.

    Only the layers the module keeps are shape-checked: a train_val file compiles without a
    shape for its `label` input, and a loss layer's checks do not stop it."""
    net = _load(prototxt, phase, level, stages)
    sel = _select(net, outputs)
    shapes = _infer_kept(net, sel, dict(inputs or {}))
    return _lower(net, shapes, sel)


def _load(prototxt, phase, level=0, stages=()) -> Net:
    if isinstance(prototxt, Net):
        return prototxt
    text = os.fspath(prototxt) if isinstance(prototxt, os.PathLike) else prototxt
    if isinstance(text, str) and ("\n" in text or "{" in text):
        return load_net("<string>", phase=phase, level=level, stages=stages, text=text)
    return load_net(text, phase=phase, level=level, stages=stages)


def plan_net(net: Net, shapes: Shapes, outputs=None) -> Program:
    """Plan the module of a net whose shapes are already inferred (infer_shapes on the whole net)."""
    return _lower(net, shapes, _select(net, outputs))


@dataclass
class _Selection:
    sources: list                # data layers (no bottoms)
    inputs: list                 # (blob, value, layer) the outputs need
    layers: list                 # the layers the outputs need, file order
    outputs: list                # (blob, value)
    dropped: list                # (layer or blob, type, reason)
    problems: list               # (layer, message): cannot be lowered, found without shapes
    blocked: set                 # ids of problem layers and of every layer fed by them
    producer: dict               # value -> ("input" | "kept" | "dropped", layer)
    attrs: dict                  # id(layer) -> attribute name


def _select(net: Net, outputs) -> _Selection:
    """Which layers and inputs the module keeps; needs no shapes."""
    reg = registry()
    dropped: list = []
    inputs: list = []            # (blob, value, layer)
    sources: list = []
    kept: list = []              # Layers that compute something
    producer: dict = {}

    for layer in net.layers:
        spec = reg[layer.type]
        if spec.source and not layer.bottoms:
            sources.append(layer)
            for blob, value in zip(layer.tops, layer.top_values):
                inputs.append((blob, value, layer))
                producer[value] = ("input", layer)
        elif spec.inference or spec.source:      # a Python layer with bottoms: reported below
            kept.append(layer)
            for v in layer.top_values:
                producer[v] = ("kept", layer)
        else:
            dropped.append((layer.name, layer.type, "not part of inference (loss, accuracy, sink "
                                                    "or post-processing layer)"))
            for v in layer.top_values:
                producer[v] = ("dropped", layer)

    # -- outputs: by Caffe blob name (its last version), default the tops nobody reads
    last: dict = {}              # blob -> value, among inputs and kept layers
    for blob, value, _ in inputs:
        last[blob] = value
    for layer in net.layers:
        for blob, value in zip(layer.tops, layer.top_values):
            if producer.get(value, ("",))[0] == "kept":
                last[blob] = value
    if outputs is None:
        consumed = {v for l in kept for v in l.bottom_values}
        out_values = [(b, v) for l in kept for b, v in zip(l.tops, l.top_values)
                      if v not in consumed and b != "(automatic)"]
        if not out_values:
            raise GraphError("the net computes nothing at inference: every layer is a data layer "
                             "or has no inference meaning")
    else:
        if isinstance(outputs, str):
            outputs = [outputs]
        out_values = []
        for name in outputs:
            if name not in last:
                raise _unknown_output(name, net, last, producer)
            if (name, last[name]) not in out_values:
                out_values.append((name, last[name]))
        if not out_values:
            raise GraphError("outputs is empty: name at least one blob")

    # -- keep only what the outputs need
    needed = {v for _, v in out_values}
    layers = []
    for layer in reversed(kept):
        if any(v in needed for v in layer.top_values):
            layers.append(layer)
            needed.update(layer.bottom_values)
        else:
            dropped.append((layer.name, layer.type, "not needed for the requested outputs"))
    layers.reverse()
    used_inputs = []
    for blob, value, layer in inputs:
        if value in needed:
            used_inputs.append((blob, value, layer))
        else:
            dropped.append((blob, "input", f"not used (top of data layer '{layer.name}', "
                                           f"{layer.type})"))

    # -- what cannot be lowered whatever the shapes
    problems = []
    for layer in layers:
        spec = reg[layer.type]
        for b, v in zip(layer.bottoms, layer.bottom_values):
            kind, src = producer.get(v, ("", None))
            if kind == "dropped":
                problems.append((layer, f"bottom '{b}' comes from layer '{src.name}' ({src.type}), "
                                        f"which is left out (no inference lowering)"))
        if spec.source:
            problems.append((layer, "a Python layer with bottoms runs Python code of its own "
                                    "(python_param module/layer), which protoseg cannot compile"))
        elif spec.lower is None:
            problems.append((layer, f"no PyTorch lowering for layer type {layer.type}"))
    blocked = {id(l) for l, _ in problems}
    bad_values = set()
    for layer in layers:
        if id(layer) in blocked or bad_values & set(layer.bottom_values):
            blocked.add(id(layer))
            bad_values.update(layer.top_values)

    names = _Names(_reserved_attrs())
    attrs = {id(l): names.get(l.name, "layer") for l in kept}
    return _Selection(sources, used_inputs, layers, out_values, dropped, problems, blocked,
                      producer, attrs)


def _infer_kept(net: Net, sel: _Selection, inputs: dict) -> Shapes:
    """infer_shapes over the data layers and the kept layers that can be lowered. Data-layer tops
    the module does not use get a dummy shape when the net does not give one."""
    reg = registry()
    used = {v for _, v, _ in sel.inputs}
    for layer in sel.sources:
        spec = reg[layer.type]
        try:
            given = spec.shape(ShapeContext(layer, spec), [])
        except ProtosegError:
            given = [None] * len(layer.tops)
        for blob, value, shape in zip(layer.tops, layer.top_values, given):
            if value not in used and shape is None and blob not in inputs:
                inputs[blob] = (1,)
    kept = [l for l in net.layers if l in sel.sources
            or (id(l) not in sel.blocked and any(l is k for k in sel.layers))]
    for layer in net.layers:        # --input for a top of a Python layer that is not compiled
        if id(layer) in sel.blocked and reg[layer.type].source:
            for blob in layer.tops:
                inputs.pop(blob, None)
    sub = Net(net.name, kept, net.file, net.text, net.phase, list(net.dropped), net.format,
              net.params)
    try:
        return infer_shapes(sub, inputs)
    except ProtosegError:
        if sel.problems:            # say first what cannot be compiled at all
            raise _unsupported(sel.problems) from None
        raise


def _lower(net: Net, shapes: Shapes, sel: _Selection) -> Program:
    reg = registry()
    layer_shapes = {id(ls.layer): ls for ls in shapes.layers}
    problems = list(sel.problems)

    from . import modules
    var_names = _Names(modules.__all__)
    var_of_blob: dict = {}
    class_name = class_name_for(net)
    var_names.taken.add(class_name)

    def var(blob):
        if blob not in var_of_blob:
            var_of_blob[blob] = var_names.get(blob, "blob")
        return var_of_blob[blob]

    input_objs = [Input(blob, value, var(blob), tuple(shapes.values[value]), layer)
                  for blob, value, layer in sel.inputs]

    # -- consumers, for the in-place decision
    readers: dict = {}
    for layer in sel.layers:
        for v in layer.bottom_values:
            readers[v] = readers.get(v, 0) + 1
    for _, v in sel.outputs:
        readers[v] = readers.get(v, 0) + 1

    fresh: dict = {}             # value -> output is memory no one else holds
    steps = []
    for layer in sel.layers:
        for b in layer.tops:
            var(b)
        if id(layer) in sel.blocked:
            continue
        ls = layer_shapes[id(layer)]
        spec = reg[layer.type]
        inplace = bool(layer.in_place and layer.in_place[0] and layer.bottom_values
                       and readers.get(layer.bottom_values[0], 0) == 1
                       and fresh.get(layer.bottom_values[0], False))
        ctx = LowerContext(layer, spec, ls.bottoms, ls.tops, inplace)
        try:
            lowered = spec.lower(ctx)
        except UnsupportedLayerError as e:
            problems.append((layer, e.message))
            continue
        except ProtosegError as e:
            raise e.locate(layer.span, layer.name, layer.type)
        used_inplace = bool(inplace and lowered.kwargs.get("inplace", False))
        for v in layer.top_values:
            fresh[v] = used_inplace or lowered.fresh
        steps.append(Step(layer, sel.attrs[id(layer)], lowered, ctx, used_inplace))

    if problems:
        order = {id(l): i for i, l in enumerate(net.layers)}
        raise _unsupported(sorted(problems, key=lambda p: order.get(id(p[0]), 0)))
    values = {v: var_of_blob[b] for l in sel.layers for b, v in zip(l.tops, l.top_values)}
    values.update({i.value: i.arg for i in input_objs})
    return Program(net, shapes, input_objs, steps, sel.outputs, sel.dropped, values, class_name)


def _unknown_output(name, net, last, producer) -> ProtosegError:
    for layer in net.layers:
        if name in layer.tops:
            v = layer.top_values[layer.tops.index(name)]
            kind = producer.get(v, ("",))[0]
            if kind == "dropped":
                return GraphError(f"output '{name}' comes from layer '{layer.name}' ({layer.type}), "
                                  f"which has no meaning at inference and is left out")
    blobs = sorted(last)
    close = difflib.get_close_matches(name, blobs, n=2, cutoff=0.6)
    hint = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else None
    return GraphError(f"unknown output blob '{name}'; the blobs of this net: {', '.join(blobs)}",
                      hint=hint)


def _unsupported(problems) -> UnsupportedLayerError:
    lines = []
    for layer, what in problems:
        where = f"{layer.span}: " if layer.span else ""
        lines.append(f"  {where}layer '{layer.name}' ({layer.type}): {what}")
    # name the types at the root of each problem: a layer reading a left-out ROIPooling top is
    # there because of ROIPooling, not because of its own type
    causes = sorted({(re.search(r"from layer '[^']*' \((\w+)\), which is left out", w) or
                      [None, l.type])[1] for l, w in problems})
    n = len(problems)
    err = UnsupportedLayerError(f"cannot compile {n} layer{'s' if n != 1 else ''} "
                                f"(because of: {', '.join(causes)}):\n" + "\n".join(lines))
    err.layers = [(l.name, l.type, w) for l, w in problems]
    return err


# ---------------------------------------------------------------------------------------------
# build

def _tensor_meta(shape):
    from torch.fx.passes.shape_prop import TensorMetadata
    size = torch.Size(shape)
    stride, acc = [], 1
    for d in reversed(size):
        stride.append(acc)
        acc *= max(d, 1)
    return TensorMetadata(size, torch.float32, False, tuple(reversed(stride)),
                          torch.contiguous_format, False, {})


def build_module(program: Program):
    """The fx.GraphModule of a plan, in eval mode, parameters not loaded yet."""
    import torch.fx as fx

    graph = fx.Graph()
    env: dict = {}
    values = program.shapes.values
    for inp in program.inputs:
        node = graph.placeholder(inp.arg)
        node.meta["tensor_meta"] = _tensor_meta(inp.shape)
        node.meta["caffe_blob"] = inp.blob
        node.meta["caffe_layer"] = f"{inp.layer.name} ({inp.layer.type})"
        env[inp.value] = node
    modules: dict = {}
    needed = {v for s in program.steps for v in s.layer.bottom_values} | {v for _, v in program.outputs}
    for step in program.steps:
        layer = step.layer
        module = step.lowered.build()
        if step.lowered.cls == "CaffePooling":       # size-dependent tables, made now
            module.plan(*step.ctx.bottoms[0][-2:], torch.device("cpu"))
        modules[step.attr] = module
        args = [env[v] for v in layer.bottom_values]
        label = f"{layer.name} ({layer.type})"
        # print_readable() shows this above the node: "# File: net.prototxt:12 in conv1_1, code:
        # Convolution" (the Caffe layer behind each line).
        where = (f'File "{layer.span.file if layer.span else program.net.file}", line '
                 f'{layer.span.line if layer.span else 0}, in {layer.name}\n    {layer.type}\n')

        def name_of(blob, value):
            # a blob's first value is named after it; a value an in-place layer wrote gets the
            # layer's name too (conv1_1 -> conv1_1_relu1_1), so no name is ever renumbered
            return program.var[value] if value == blob else f"{program.var[value]}_{step.attr}"

        def make(target_args, name, shape_meta):
            node = graph.create_node("call_module", step.attr, tuple(target_args), name=name)
            node.meta["caffe_layer"] = label
            node.stack_trace = where
            if isinstance(shape_meta, list):
                node.meta["protoseg_shapes"] = shape_meta
            else:
                node.meta["tensor_meta"] = _tensor_meta(shape_meta)
            return node

        call = step.lowered.call
        if call == "each":
            for a, blob, v in zip(args, layer.tops, layer.top_values):
                env[v] = make([a], name_of(blob, v), tuple(values[v]))
                env[v].meta["caffe_blob"] = blob
        elif call == "alias" or len(layer.top_values) == 1:
            v0 = layer.top_values[0]
            node = make(args, name_of(layer.tops[0], v0), tuple(values[v0]))
            node.meta["caffe_blob"] = ", ".join(layer.tops)
            for v in layer.top_values:
                env[v] = node
        else:
            node = make(args, name_of(layer.tops[0], layer.top_values[0]) + "_tops",
                        [tuple(values[v]) for v in layer.top_values])
            for i, (blob, v) in enumerate(zip(layer.tops, layer.top_values)):
                if v not in needed:
                    continue
                item = graph.create_node("call_function", operator.getitem, (node, i),
                                         name=name_of(blob, v))
                item.stack_trace = where
                item.meta["tensor_meta"] = _tensor_meta(tuple(values[v]))
                item.meta["caffe_layer"] = label
                item.meta["caffe_blob"] = blob
                env[v] = item
    if len(program.outputs) == 1:
        graph.output(env[program.outputs[0][1]])
    else:
        graph.output({blob: env[v] for blob, v in program.outputs})
    gm = fx.GraphModule(modules, graph, class_name=program.class_name)
    gm.eval()
    gm.protoseg_layers = {s.attr: (s.layer.name, s.layer.type) for s in program.steps}
    gm.protoseg_inputs = {i.blob: i.arg for i in program.inputs}
    gm.protoseg_input_shapes = {i.blob: tuple(i.shape) for i in program.inputs}
    gm.protoseg_outputs = [b for b, _ in program.outputs]
    gm.protoseg_dropped = list(program.dropped)
    gm.protoseg_net = program.net.name or program.class_name
    return gm


def compile_net(prototxt, weights=None, inputs: dict | None = None, outputs=None, *,
                phase: str = "TEST", level: int = 0, stages=(), strict: bool = True):
    """Compile a Caffe net into a torch module (an fx.GraphModule, in eval mode).

    prototxt: a path, or the prototxt text itself (anything with a newline or '{').
    weights: None, a .caffemodel path, or {layer name: [blob arrays]}; matched by layer name and
      checked by protoseg.port (strict: every learnable layer must get its blobs and every
      layer of the weights must exist; all mismatches are reported at once).
    inputs: {blob: shape} overriding the input shapes (as --input).
    outputs: the blobs to return, by Caffe name (default: the tops no kept layer reads).
    The module takes the inputs positionally in declaration order or by name, and returns a
    tensor (one output) or {blob name: tensor}. `model.protoseg_dropped` lists what was left
    out: (layer or blob, type, reason).
    """
    program = compile_program(prototxt, inputs, outputs, phase=phase, level=level, stages=stages)
    model = build_module(program)
    if weights is not None:
        load_weights(model, program, weights, strict=strict)
    return model


def load_weights(model, program: Program, weights, *, strict: bool = True) -> list:
    """Load a caffemodel (path), or {layer name: [arrays]}, into a module built from `program`
    through protoseg.port's matching (strict: every mismatch at once); returns the keys set."""
    from .port import match_weights
    if isinstance(weights, (str, os.PathLike)):
        from .caffemodel import read_caffemodel
        weights = read_caffemodel(weights)
    return _copy_into(model, match_weights(program, weights, strict=strict))


# ---------------------------------------------------------------------------------------------
# weights

def state_dict_from_blobs(net: Net, shapes: Shapes, blobs_by_layer: dict, *, outputs=None,
                          program: Program | None = None) -> dict:
    """{'<attr>.<param>': tensor} for every compiled layer that `blobs_by_layer` names, through
    each spec's `weights(ctx, blobs)` (protoseg.port.match_weights, not strict: layers the net
    does not have are ignored, as Caffe does; blobs that do not fit raise WeightsError)."""
    from .port import match_weights
    if program is None:
        program = plan_net(net, shapes, outputs)
    state = match_weights(program, blobs_by_layer, strict=False)
    # (ascontiguousarray makes 0-axis arrays 1-axis: reshape back)
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32).reshape(np.shape(v)))
            for k, v in state.items()}


def apply_weights(model, net: Net, shapes: Shapes, blobs_by_layer: dict, *,
                  program: Program | None = None) -> list:
    """Copy caffemodel blobs into a compiled module's parameters and buffers, as Caffe does
    (layers the blobs do not name keep their values, unknown layers are ignored; a layer whose
    blobs do not fit raises WeightsError); returns the state_dict keys that were set."""
    outputs = getattr(model, "protoseg_outputs", None)
    state = state_dict_from_blobs(net, shapes, blobs_by_layer, outputs=outputs, program=program)
    return _copy_into(model, state)


def _copy_into(model, state: dict) -> list:
    own = model.state_dict()
    for key, value in state.items():
        if key not in own:
            raise WeightsError(f"the module has no parameter or buffer '{key}'")
        if tuple(own[key].shape) != tuple(value.shape):
            raise WeightsError(f"'{key}': the module holds {_fmt(own[key].shape)}, the blobs give "
                               f"{_fmt(value.shape)}")
    with torch.no_grad():
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                value = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32).reshape(np.shape(value)))
            own[key].copy_(value)
    return sorted(state)


# ---------------------------------------------------------------------------------------------
# check

def check_shapes(model, *args, seed: int = 0) -> tuple[int, list]:
    """Run the module (on random inputs in [0, 1) of the inferred shapes unless given) and compare
    the shape of every value it computes with the inferred one. Returns (number of values
    checked, [(node name, Caffe layer, inferred, executed)] for every mismatch)."""
    import torch.fx as fx

    if not args:
        gen = torch.Generator().manual_seed(seed)
        args = tuple(torch.rand(s, generator=gen) for s in model.protoseg_input_shapes.values())
    checked, bad = 0, []

    class Recorder(fx.Interpreter):
        def run_node(self, node):
            nonlocal checked
            result = super().run_node(node)
            expected = node.meta.get("protoseg_shapes")
            if expected is not None:
                got = [tuple(r.shape) for r in result]
            elif "tensor_meta" in node.meta:
                expected = tuple(node.meta["tensor_meta"].shape)
                got = tuple(result.shape)
            else:
                return result
            checked += 1
            if got != expected:
                bad.append((node.name, node.meta.get("caffe_layer", ""), expected, got))
            return result

    with torch.no_grad():
        Recorder(model).run(*args)
    return checked, bad
