"""plan: the Net IR and its shapes -> the Plan every backend reads. No torch.

All is decided here, before anything runs:

1. select: which layers stay. Data layers become the module's inputs; layers with no meaning at
   inference (losses, Accuracy, Silence, ...) are left out, and so are the inputs nobody reads
   any more (`label`) and, when `outputs` are named, the layers they do not need.
2. infer: the shapes of what stays (a train_val file plans without a shape for its `label`).
3. lower: every remaining layer's spec gives its `Call` (which torch module, with which
   constructor literals); one naming service gives every value its variable name and every
   layer its attribute name; a ReLU is marked in place only where Caffe's own buffer would have
   been overwritten and nothing else reads it. Every layer that cannot be lowered is reported
   at once (UnsupportedLayerError).
4. share: parameters named by `param { name }` are shared as Caffe's Net::AppendParam shares
   them: the first step naming a parameter owns it, later ones use it (`Step.shares`); a step
   sharing all its blobs, index for index, with one step of its own type uses that step's
   parameters and buffers as its own (`Step.tied`: one tensor in the module, tied in __init__).

The backends (protoseg.backends: the fx GraphModule, the standalone source file) and the weight
port (protoseg.weights) read the Plan and nothing else.
"""
from __future__ import annotations

import builtins
import keyword
import math
import os
import re
import sys
from dataclasses import dataclass, field

from .errors import GraphError, ProtosegError, ResourceError, UnsupportedLayerError
from .layers import Call, LowerContext, ShapeContext, spec_of
from .layers.python_layer import register_hint
from .net import SUPPORTED, Layer, Net, load_net
from .shapes import Shapes, infer_shapes
from .text import did_you_mean, fmt_shape, human_bytes

__all__ = ["Input", "Plan", "Share", "Step", "plan_net", "clean_identifier"]


# ---------------------------------------------------------------------------------------------
# names

# Attributes of torch.nn.Module and torch.fx.GraphModule (torch 2.13): a submodule of that name
# would be hidden by them. Kept here so that planning needs no torch; tests/test_plan.py checks
# that it covers the installed torch.
TORCH_ATTRS = frozenset("""
T_destination _apply _boxed_call _buffers _call_impl _code _compiled_call_impl _deepcopy_init
_get_backward_hooks _get_backward_pre_hooks _get_name _graph _load_from_state_dict
_maybe_warn_non_full_backward_hook _modules _named_members _parameters _recompile_submodules
_register_create_node_hook _register_deepcopy_hook _register_erase_node_hook
_register_load_state_dict_pre_hook _register_replace_node_hook _register_state_dict_hook
_replicate_for_data_parallel _save_to_state_dict _set_replace_hook _slow_forward _tracer_cls
_tracer_extras _unregister_create_node_hook _unregister_deepcopy_hook _unregister_erase_node_hook
_unregister_replace_node_hook _version _wrapped_call_impl add_module add_submodule apply bfloat16
buffers call_super_init children code compile cpu cuda delete_all_unused_submodules
delete_submodule double dump_patches eval extra_repr float forward get_buffer get_extra_state
get_parameter get_submodule graph half ipu load_state_dict meta modules mtia named_buffers
named_children named_modules named_parameters parameters print_readable recompile
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty to_folder train training type xpu zero_grad
""".split())

# Names a variable of forward() must not take: the generated file's own, and Python's builtins
# (torch.fx renames a node that would shadow one).
_MODULE_NAMES = frozenset({"self", "torch", "nn", "F", "math"}) | frozenset(dir(builtins))


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


class Names:
    """Unique identifiers made from Caffe names: a name in `reserved` gets a '_' after it, a
    name given before a number (conv, conv_2, ...)."""

    def __init__(self, reserved=()):
        self.reserved = frozenset(reserved)
        self.taken: set = set()

    def get(self, name: str, default: str = "x") -> str:
        base = clean_identifier(name, default)
        if base in self.reserved:
            base += "_"
        out, i = base, 2
        while out in self.taken:
            out, i = f"{base}_{i}", i + 1
        self.taken.add(out)
        return out


def _class_name(net: Net, reserved) -> str:
    """The module class name: the net name in CamelCase (fcn8s -> Fcn8s), else the file stem."""
    name = net.name or os.path.splitext(os.path.basename(net.file or ""))[0]
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    out = "".join(p[0].upper() + p[1:] for p in parts) or "CaffeNet"
    if out[0].isdigit():
        out = "Net" + out
    if out in reserved:
        out += "Net"
    return out


# Modules a generated file must not be named after: importing it would shadow them.
_SHADOWED = frozenset(sys.stdlib_module_names) | {"torch", "numpy", "safetensors", "protoseg",
                                                  "torchvision", "typing_extensions", "nn", "F"}


def _file_stem(net: Net) -> str:
    """The standalone file's name (without .py): the net name as an identifier, else the stem;
    `_net` appended when it would shadow a module the file imports (a net named "torch")."""
    stem = os.path.splitext(os.path.basename(net.file or ""))[0]
    out = clean_identifier(net.name or stem, clean_identifier(stem, "net"))
    return out + "_net" if out in _SHADOWED else out


# ---------------------------------------------------------------------------------------------
# the plan

@dataclass
class Input:
    blob: str
    var: str                    # the forward() argument
    shape: tuple
    layer: Layer


@dataclass(frozen=True)
class Share:
    """A blob a step does not own (Caffe `param { name }`): it is blob `owner_blob` of the step
    whose attribute is `owner`."""

    name: str
    owner: str
    owner_blob: int


@dataclass
class Step:
    """One kept layer: module attribute `attr`, built by `call`, reading the variables `inputs`
    and defining `outputs` (one per top; the tops of an "alias" call share one variable)."""

    layer: Layer
    attr: str
    call: Call
    ctx: LowerContext           # what its lowering saw: conf, bottom and top shapes, phase
    inputs: list
    outputs: list
    inplace: bool = False
    packed: str | None = None   # the name of the tuple a several-top "single" call returns
    folded: tuple = ()          # Steps folded into this one (protoseg.optimize)
    shares: dict = field(default_factory=dict)   # blob index -> Share (blobs owned elsewhere)
    tied: str | None = None     # the step whose module's parameters and buffers this one uses

    @property
    def shapes(self) -> list:
        return self.ctx.tops


@dataclass
class Plan:
    """Everything a backend needs, and nothing from torch."""

    net: Net
    shapes: Shapes
    inputs: list                # Input, in declaration order
    steps: list                 # Step, file order
    outputs: list               # (blob, var)
    dropped: list               # (layer or blob, type, reason)
    class_name: str
    file_stem: str
    var_shapes: dict = field(default_factory=dict)   # var -> shape
    runtime: set = field(default_factory=set)   # vars whose sizes depend on the values (the
    # tops of a DetectionOutput or a proposal layer, and what is computed from them): their
    # shapes here are Caffe's set-up shapes
    channels_last: bool = False  # run in torch.channels_last (protoseg.optimize)

    @property
    def read(self) -> set:
        """The variables some step or the output reads."""
        return {v for s in self.steps for v in s.inputs} | {v for _, v in self.outputs}

    def memory(self, itemsize: int = 4) -> tuple[int, int, str | None]:
        """An estimate of what running the module takes, in bytes: (parameters, the peak of the
        live values during one forward, the layer at that peak). Values are freed after their
        last reader; views (Crop, Slice, Reshape, ...) and in-place layers take no memory."""
        params = sum(math.prod(shape) for step in self.steps for shape in step.ctx.blob_shapes())
        last = {}
        for i, step in enumerate(self.steps):
            for v in step.inputs:
                last[v] = i
        kept = {v for _, v in self.outputs}
        buffer = {i.var: i.var for i in self.inputs}        # variable -> the buffer it is
        size = {i.var: math.prod(i.shape) for i in self.inputs}   # buffer -> elements
        peak, at = sum(size.values()), None
        for i, step in enumerate(self.steps):
            for v, shape in zip(step.outputs, step.shapes):
                if step.call.fresh and not step.inplace:
                    buffer[v] = v
                    size[v] = math.prod(shape)
                else:               # a view or an in-place result: its input's buffer
                    buffer[v] = buffer[step.inputs[0]] if step.inputs else v
                    size.setdefault(buffer[v], math.prod(shape))
            if sum(size.values()) > peak:
                peak, at = sum(size.values()), step.layer.name
            for v in set(step.inputs):
                if last[v] == i and v not in kept:
                    b = buffer.pop(v)
                    if b not in buffer.values():
                        size.pop(b, None)
        return params * itemsize, peak * itemsize, at

    def refs(self) -> list:
        """The module classes the plan uses, in first-use order."""
        out = []
        for s in self.steps:
            if s.call.ref not in out:
                out.append(s.call.ref)
        return out


def available_memory() -> int | None:
    """The memory the system can still give, in bytes (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(plan: Plan, limit: int | None = None, *, forward: bool = True) -> None:
    """Refuse (ResourceError) a module whose parameters (and, with `forward`, one forward's
    values at their peak) would need more than `limit` bytes; `limit` None: the memory
    available now. Nothing is allocated to find out."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                              or limit <= 0):
        raise ValueError(f"max_memory must be a positive number of bytes, not {limit!r}")
    params, peak, at = plan.memory()
    need = params + (peak if forward else 0)
    where = "memory available now" if limit is None else "--max-memory"
    limit = available_memory() if limit is None else limit
    if limit is None or need <= limit:
        return
    inputs = ", ".join(f"{i.blob} {fmt_shape(i.shape)}" for i in plan.inputs)
    detail = f"parameters {human_bytes(params)}"
    if forward:
        detail += f", values of one forward {human_bytes(peak)} at their peak (layer '{at}')"
    raise ResourceError(f"this net with {inputs} needs about {human_bytes(need)} ({detail}), more "
                        f"than the {human_bytes(limit)} allowed ({where})",
                        hint="use a smaller --input, or set --max-memory (e.g. --max-memory 64G) "
                             "if you know the memory is there")


def plan_net(prototxt=None, inputs: dict | None = None, outputs=None, *, text: str | None = None,
             phase: str = "TEST", level: int = 0, stages=()) -> Plan:
    """Load a net (a path, a `Net`, or `text=` the prototxt itself), infer the shapes of what
    it keeps and plan its module.

    Only the layers the module keeps are shape-checked: a train_val file plans without a shape
    for its `label` input, and a loss layer's checks do not stop it."""
    if text is not None:
        if prototxt is not None:
            raise TypeError("give the prototxt as a path or as text=, not both")
        net = load_net(text=text, phase=phase, level=level, stages=stages)
    elif isinstance(prototxt, Net):
        net = prototxt
    else:
        net = load_net(prototxt, phase=phase, level=level, stages=stages)
    sel = _select(net, _output_names(outputs))
    shapes = _infer_kept(net, sel, _input_shapes(inputs))
    return _lower(net, shapes, sel)


def _output_names(outputs):
    if outputs is None:
        return None
    if isinstance(outputs, str):
        return [outputs]
    if not isinstance(outputs, (list, tuple)) or not all(isinstance(o, str) for o in outputs):
        raise TypeError(f"outputs must be a blob name or a list of blob names, not {outputs!r}")
    return list(outputs)


def _input_shapes(inputs) -> dict:
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be a dict {{blob name: shape}}, not {type(inputs).__name__}")
    return dict(inputs)


@dataclass
class _Selection:
    sources: list                # data layers (no bottoms)
    inputs: list                 # (blob, value, layer) the outputs need
    layers: list                 # the layers the outputs need, file order
    outputs: list                # (blob, value)
    dropped: list                # (layer or blob, type, reason)
    problems: list               # (layer, message): cannot be lowered, found without shapes
    blocked: set                 # ids of problem layers and of every layer fed by them
    attrs: dict                  # id(layer) -> attribute name


def _select(net: Net, outputs) -> _Selection:
    """Which layers and inputs the module keeps; needs no shapes."""
    dropped: list = []
    inputs: list = []            # (blob, value, layer)
    sources: list = []
    kept: list = []              # Layers that compute something
    producer: dict = {}          # value -> ("input" | "kept" | "dropped", layer)

    for layer in net.layers:
        spec = spec_of(layer)
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
        spec = spec_of(layer)
        for b, v in zip(layer.bottoms, layer.bottom_values):
            kind, src = producer.get(v, ("", None))
            if kind == "dropped":
                problems.append((layer, f"bottom '{b}' comes from layer '{src.name}' ({src.type}), "
                                        f"which is left out (no inference lowering)"))
        if spec.source:
            problems.append((layer, "a Python layer with bottoms runs Python code of its own "
                                    "(python_param module/layer), which protoseg cannot compile; "
                                    + register_hint(layer)))
        elif spec.lower is None:
            problems.append((layer, f"no PyTorch lowering for layer type {layer.type}"
                                    + (f": {spec.uncompiled}" if spec.uncompiled else "")))
    blocked = {id(l) for l, _ in problems}
    bad_values = set()
    for layer in layers:
        if id(layer) in blocked or bad_values & set(layer.bottom_values):
            blocked.add(id(layer))
            bad_values.update(layer.top_values)

    names = Names(TORCH_ATTRS)
    attrs = {id(l): names.get(l.name, "layer") for l in kept}
    return _Selection(sources, used_inputs, layers, out_values, dropped, problems, blocked, attrs)


def _infer_kept(net: Net, sel: _Selection, inputs: dict) -> Shapes:
    """infer_shapes over the data layers and the kept layers that can be lowered. Data-layer tops
    the module does not use get a dummy shape when the net does not give one."""
    used = {v for _, v, _ in sel.inputs}
    for layer in sel.sources:
        spec = spec_of(layer)
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
        if id(layer) in sel.blocked and spec_of(layer).source:
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


def _lower(net: Net, shapes: Shapes, sel: _Selection) -> Plan:
    layer_shapes = {id(ls.layer): ls for ls in shapes.layers}
    problems = list(sel.problems)

    # -- calls (and the in-place decisions, which depend on the calls before). An in-place Caffe
    # layer is its bottom value's only reader (load_net refuses anything else, as Caffe does), so
    # its module may overwrite that value when it is memory of its own (not an input or a view).
    fresh: dict = {}             # value -> output is memory no one else holds
    lowered = []                 # (layer, call, ctx, inplace)
    for layer in sel.layers:
        if id(layer) in sel.blocked:
            continue
        ls = layer_shapes[id(layer)]
        spec = spec_of(layer)
        inplace = bool(layer.in_place and layer.in_place[0] and layer.bottom_values
                       and fresh.get(layer.bottom_values[0], False))
        ctx = LowerContext(layer, spec, ls.bottoms, ls.tops, ls.conf, inplace)
        try:
            call = spec.lower(ctx)
        except UnsupportedLayerError as e:
            problems.append((layer, e.message))
            continue
        except ProtosegError as e:
            raise ctx.locate(e)
        if not isinstance(call, Call):
            raise TypeError(f"the lowering of {layer.type} returned {call!r}: a lowering returns "
                            f"ctx.module(ModuleClass, *args, **kwargs)")
        for v in layer.top_values:
            fresh[v] = (inplace and call.inplace) or call.fresh
        lowered.append((layer, call, ctx, inplace and call.inplace))
    if problems:
        order = {id(l): i for i, l in enumerate(net.layers)}
        raise _unsupported(sorted(problems, key=lambda p: order.get(id(p[0]), 0)))

    # -- names: one variable per value, after its blob; a value an in-place layer wrote gets the
    # layer's attribute too (conv1_1 -> conv1_1_relu1_1), so no name is ever renumbered
    class_name = _class_name(net, _MODULE_NAMES | {c.ref.name for _, c, _, _ in lowered})
    names = Names(_MODULE_NAMES | {class_name} | {c.ref.name for _, c, _, _ in lowered})
    var: dict = {}               # value -> variable
    of_blob: dict = {}           # blob -> its first variable

    def blob_var(blob):
        if blob not in of_blob:
            of_blob[blob] = names.get(blob, "blob")
        return of_blob[blob]

    plan_inputs = []
    for blob, value, layer in sel.inputs:
        var[value] = blob_var(blob)
        plan_inputs.append(Input(blob, var[value], tuple(shapes.values[value]), layer))
    for layer in sel.layers:         # every kept blob's own name first, in file order
        for blob in layer.tops:
            blob_var(blob)
    steps = []
    for layer, call, ctx, inplace in lowered:
        attr = sel.attrs[id(layer)]
        outs = []
        for blob, value in zip(layer.tops, layer.top_values):
            if call.call == "alias" and outs:
                name = outs[0]
            elif value == blob:
                name = blob_var(blob)
            else:
                name = names.get(f"{blob_var(blob)}_{attr}")
            var[value] = name
            outs.append(name)
        packed = names.get(f"{outs[0]}_tops") if call.call == "single" and len(outs) > 1 else None
        steps.append(Step(layer, attr, call, ctx, [var[v] for v in layer.bottom_values], outs,
                          inplace, packed))
    var_shapes = {var[v]: tuple(s) for v, s in shapes.values.items() if v in var}
    runtime: set = set()
    for step in steps:
        if step.ctx.spec.dynamic or runtime & set(step.inputs):
            runtime.update(step.outputs)
    _share_params(steps)
    return Plan(net, shapes, plan_inputs, steps, [(b, var[v]) for b, v in sel.outputs],
                sel.dropped, class_name, _file_stem(net), var_shapes, runtime)


def _share_params(steps: list) -> None:
    """Caffe's Net::AppendParam over the steps in order: blob i of a layer whose `param[i]` has a
    name already seen is the blob of the step that named it first. STRICT share_mode (the
    default) needs equal shapes, PERMISSIVE equal element counts. Sets `shares`, and `tied` where
    a step shares every blob at its own index with one step of its own type and shape."""
    first: dict = {}             # param name -> (owner step, blob index, shape)
    blob_shapes: dict = {}       # attr -> the blob shapes of a step that names parameters
    for step in steps:
        specs = step.layer.params.get("param")
        if not any(s.get("name") for s in specs):
            continue
        shapes = step.ctx.blob_shapes()
        for i, (spec, shape) in enumerate(zip(specs, shapes)):
            name = spec.get("name")
            if not name:
                continue
            if name not in first:
                first[name] = (step, i, shape)
                continue
            owner, j, owner_shape = first[name]
            permissive = spec.get("share_mode") == "PERMISSIVE"
            if shape != owner_shape and not (permissive and math.prod(shape) == math.prod(owner_shape)):
                need = "the same number of values (PERMISSIVE)" if permissive else \
                    "the same shape (share_mode STRICT, the default)"
                raise GraphError(f"cannot share parameter '{name}' owned by layer '{owner.layer.name}' "
                                 f"(blob {j}, {fmt_shape(owner_shape)}): blob {i} of this layer is "
                                 f"{fmt_shape(shape)}; shared blobs need {need}",
                                 span=spec.spans.get("name")).locate(
                                     step.layer.span, step.layer.name, step.layer.type)
            step.shares[i] = Share(name, owner.attr, j)
        blob_shapes[step.attr] = shapes
        owners = {s.owner for s in step.shares.values()}
        if (shapes and len(step.shares) == len(shapes) and len(owners) == 1
                and all(s.owner_blob == i for i, s in step.shares.items())):
            owner = next(s for s in steps if s.attr in owners)
            if owner.layer.type == step.layer.type and blob_shapes[owner.attr] == shapes:
                step.tied = owner.attr


def _unknown_output(name, net, last, producer) -> ProtosegError:
    for layer in net.layers:
        if name in layer.tops:
            v = layer.top_values[layer.tops.index(name)]
            if producer.get(v, ("",))[0] == "dropped":
                return GraphError(f"output '{name}' comes from layer '{layer.name}' ({layer.type}), "
                                  f"which has no meaning at inference and is left out")
    blobs = sorted(last)
    return GraphError(f"unknown output blob '{name}'; the blobs of this net: {', '.join(blobs)}",
                      hint=did_you_mean(name, blobs))


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
                                f"(because of: {', '.join(causes)}):\n" + "\n".join(lines),
                                hint=SUPPORTED)
    err.layers = [(l.name, l.type, w) for l, w in problems]
    return err
