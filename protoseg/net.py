"""load: a parsed, schema-bound NetParameter -> the Net IR.

Follows Caffe's upgrade_proto.cpp (V0 -> V1 -> V2, net-level inputs -> an Input layer named
"input" placed first), net.cpp's state filtering (phase, level, stages; include/exclude rules) and
its blob bookkeeping (in-place tops rebind a name; any other second producer is an error).
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field

from .errors import GraphError, ProtosegError, SchemaError, Span, UnsupportedLayerError
from .legacy import v0_types, v1_types
from .schema import Msg, bind, caffe_schema
from .text import did_you_mean, plural
from .textformat import collector_paused, parse_file, parse_text

@dataclass
class Layer:
    """One kept layer, in V2 form. `bottoms`/`tops` are Caffe blob names; `bottom_values` /
    `top_values` are SSA value names (an in-place top gets a fresh value `name@layer`)."""

    name: str
    type: str
    bottoms: list
    tops: list
    params: Msg                 # the LayerParameter
    span: Span
    phase: str                  # the layer's own phase (TEST / TRAIN)
    bottom_values: list = field(default_factory=list)
    top_values: list = field(default_factory=list)
    in_place: list = field(default_factory=list)   # per top: True when it rewrites a bottom
    format: str = "V2"          # the file's format (DeepLab v1's Interp rules differ for V1 files)

    def __repr__(self):
        return f"Layer({self.name!r}, {self.type!r}, {self.bottoms} -> {self.tops})"

    @property
    def settings(self) -> dict:
        """The parameter messages the layer writes, {field: Msg} in file order:
        convolution_param, transform_param, a fork's own, ... (not `param`, the learning rates)."""
        return {k: v for k, v in self.params.fields() if k.endswith("_param") and isinstance(v, Msg)}


@dataclass
class Net:
    name: str
    layers: list                # kept layers, file order
    file: str
    text: str
    phase: str
    dropped: list = field(default_factory=list)     # (name, type, reason) of filtered-out layers
    format: str = "V2"          # V2, V1 or V0: what the file was written in
    params: Msg | None = None   # the NetParameter

    def layer(self, name: str) -> Layer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# upgrades

def _new(type_name: str, span: Span | None) -> Msg:
    schema = caffe_schema()
    return Msg(schema.message(type_name), schema, span)


def _v0_to_v1(net: Msg) -> None:
    """V0 `layers { layer { name type ... } bottom top }` -> V1 layers (upgrade_proto.cpp)."""
    old = net.get("layers")
    # 1. fold "padding" layers into their consumer
    pad_of: dict[str, tuple[int, str]] = {}   # padding top -> (pad, padding bottom)
    kept = []
    for l in old:
        v0 = l.get("layer")
        if v0.get("type") == "padding":
            if len(l.get("bottom")) != 1 or len(l.get("top")) != 1:
                raise SchemaError("a V0 padding layer must have one bottom and one top",
                                  span=l.span, layer=v0.get("name"), layer_type="padding")
            pad_of[l.get("top")[0]] = (v0.get("pad"), l.get("bottom")[0])
            continue
        kept.append(l)
    new_layers = []
    for l in kept:
        v0 = l.get("layer")
        v1 = _new("V1LayerParameter", l.span)
        name, t0 = v0.get("name"), v0.get("type")
        v1.set("name", name, v0.span_of("name"))
        if t0 not in v0_types():
            raise SchemaError(f"unknown V0 layer type '{t0}'", span=v0.span_of("type"), layer=name,
                              hint="known V0 types: " + ", ".join(sorted(v0_types())))
        t1 = v0_types()[t0]
        v1.set("type", t1, v0.span_of("type"))
        bottoms = list(l.get("bottom"))
        padding = None
        if bottoms and bottoms[0] in pad_of:
            if t1 not in ("CONVOLUTION", "POOLING"):
                raise SchemaError("a V0 padding layer may only feed a conv or pool layer",
                                  span=l.span, layer=name, layer_type=t0)
            padding, bottoms[0] = pad_of[bottoms[0]]
        v1.set("bottom", bottoms)
        v1.set("top", list(l.get("top")))
        for k in ("include", "exclude"):
            if l.has(k):
                v1.set(k, l.get(k))
        for k in ("blobs", "blobs_lr", "weight_decay"):     # the V0 layer's own (Caffe reads them there)
            if v0.has(k):
                v1.set(k, v0.get(k), v0.span_of(k))
                v1.item_spans[k] = v0.item_spans.get(k, [])
        _v0_params(v0, v1, t1, name, padding)
        new_layers.append(v1)
    net.set("layers", new_layers)


def _v0_params(v0: Msg, v1: Msg, t1: str, name: str, padding) -> None:
    def sub(field_name: str) -> Msg:
        if not v1.has(field_name):
            v1.set(field_name, _new(v1.type.fields[field_name].type, v0.span))
        return v1.get(field_name)

    def bad(f):
        raise SchemaError(f"V0 field '{f}' does not apply to a {t1} layer", span=v0.span_of(f),
                          layer=name, layer_type=t1)

    conv_like = t1 == "CONVOLUTION"
    for f, value in v0.fields():
        span = v0.span_of(f)
        if f in ("name", "type", "blobs", "blobs_lr", "weight_decay"):
            continue
        if f in ("num_output", "biasterm", "weight_filler", "bias_filler"):
            target = {"CONVOLUTION": "convolution_param", "INNER_PRODUCT": "inner_product_param"}.get(t1)
            if target is None:
                bad(f)
            sub(target).set({"biasterm": "bias_term"}.get(f, f), value, span)
        elif f in ("pad", "kernelsize", "stride"):
            key = {"kernelsize": "kernel_size"}.get(f, f)
            if conv_like:
                sub("convolution_param").set(key, [value], span)
            elif t1 == "POOLING":
                sub("pooling_param").set(key, value, span)
            else:
                bad(f)
        elif f == "group":
            if not conv_like:
                bad(f)
            sub("convolution_param").set("group", value, span)
        elif f == "pool":
            if t1 != "POOLING":
                bad(f)
            sub("pooling_param").set("pool", value, span)
        elif f == "dropout_ratio":
            if t1 != "DROPOUT":
                bad(f)
            sub("dropout_param").set("dropout_ratio", value, span)
        elif f in ("local_size", "alpha", "beta", "k"):
            if t1 != "LRN":
                bad(f)
            sub("lrn_param").set(f, value, span)
        elif f in ("source", "batchsize", "rand_skip", "shuffle_images", "new_height", "new_width",
                   "new_num", "new_channels"):
            target = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                      "HDF5_DATA": "hdf5_data_param", "WINDOW_DATA": "window_data_param"}.get(t1)
            key = {"batchsize": "batch_size", "shuffle_images": "shuffle"}.get(f, f)
            if target is None or key not in caffe_schema().message(v1.type.fields[target].type).fields:
                bad(f)
            sub(target).set(key, value, span)
        elif f in ("scale", "meanfile", "cropsize", "mirror"):
            key = {"meanfile": "mean_file", "cropsize": "crop_size"}[f] if f in ("meanfile", "cropsize") else f
            sub("transform_param").set(key, value, span)
        elif f == "concat_dim":
            if t1 != "CONCAT":
                bad(f)
            sub("concat_param").set("concat_dim", value, span)
        elif f.startswith("det_"):
            key = f[4:]
            sub("window_data_param").set(key, value, span)
        elif f == "hdf5_output_param":
            v1.set("hdf5_output_param", value, span)
        else:
            bad(f)
    if padding is not None:
        if conv_like:
            sub("convolution_param").set("pad", [padding])
        else:
            sub("pooling_param").set("pad", padding)


_PARAM_FIELDS = ("blobs_lr", "weight_decay", "param", "blob_share_mode")
_DATA_TYPES = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
               "WINDOW_DATA": "window_data_param"}


def _v1_data_transformation(net: Msg) -> None:
    """V1 data layers' scale, mean_file, crop_size and mirror move from their data parameter into
    transform_param (UpgradeNetDataTransformation)."""
    for layer in net.get("layers"):
        target = _DATA_TYPES.get(layer.get("type"))
        if target is None or not layer.has(target):
            continue
        data = layer.get(target)
        for f in ("scale", "mean_file", "crop_size", "mirror"):
            if data.has(f):
                if not layer.has("transform_param"):
                    layer.set("transform_param", _new("TransformationParameter", data.span))
                layer.get("transform_param").set(f, data.get(f), data.span_of(f))
                data.clear(f)


def _v1_to_v2(net: Msg) -> list:
    """V1 layers -> V2 LayerParameters (UpgradeV1LayerParameter), each field where the V1 layer
    had it: the type string where the enum was, the ParamSpecs where the first of blobs_lr,
    weight_decay, param and blob_share_mode was."""
    layers = []
    v2_fields = caffe_schema().message("LayerParameter").fields
    for old in net.get("layers"):
        new = _new("LayerParameter", old.span)
        name = old.get("name")
        type_enum = old.get("type") if old.has("type") else "NONE"
        if type_enum not in v1_types():
            raise SchemaError(f"V1 layer type {type_enum} has no known V2 equivalent",
                              span=old.span_of("type"), layer=name)
        if not old.has("type"):
            new.set("type", v1_types()[type_enum])
        for f, value in old.fields():
            span = old.span_of(f)
            if f == "type":
                new.set("type", v1_types()[type_enum], span)
            elif f in _PARAM_FIELDS:
                if not new.has("param"):
                    new.set("param", _param_specs(old), span)
            elif f == "layer":
                continue
            elif f in v2_fields:
                new.set(f, value, span)
                if f in old.item_spans:
                    new.item_spans[f] = old.item_spans[f]
            else:
                raise SchemaError(f"V1 field '{f}' has no place in a V2 layer", span=span, layer=name)
        # DeepLab v1 convolution `hole` = dilation; pooling `ceil_mode` handled by the layer rule.
        layers.append(new)
    return layers


def _param_specs(old: Msg) -> list:
    """A V1 layer's blobs_lr, weight_decay, param (names) and blob_share_mode as ParamSpecs."""
    specs = []
    for i in range(max(len(old.get(f)) for f in _PARAM_FIELDS)):
        ps = _new("ParamSpec", old.span_of("param", i) if i < len(old.get("param")) else
                  old.span_of("blobs_lr", i) if i < len(old.get("blobs_lr")) else old.span)
        for v1_name, v2_name in (("param", "name"), ("blob_share_mode", "share_mode"),
                                 ("blobs_lr", "lr_mult"), ("weight_decay", "decay_mult")):
            if i < len(old.get(v1_name)):
                ps.set(v2_name, old.get(v1_name)[i], old.span_of(v1_name, i))
        specs.append(ps)
    return specs


def _inputs_to_layer(net: Msg) -> Msg | None:
    """Legacy `input:` + `input_dim:` / `input_shape {}` -> a layer "input" of type Input."""
    names = net.get("input")
    if not names:
        return None
    layer = _new("LayerParameter", net.span_of("input"))
    layer.set("name", "input")
    layer.set("type", "Input")
    layer.set("top", list(names), net.span_of("input"))
    layer.item_spans["top"] = net.item_spans.get("input", [])
    ip = _new("InputParameter", net.span_of("input"))
    dims = net.get("input_dim")
    shapes = net.get("input_shape")
    if shapes and dims:
        raise SchemaError("a net gives input_shape or input_dim, not both", span=net.span_of("input_dim"))
    if shapes:
        if len(shapes) != len(names):
            raise SchemaError(f"{len(names)} inputs but {len(shapes)} input_shape blocks",
                              span=net.span_of("input_shape"))
        ip.set("shape", list(shapes))
    elif dims:
        if len(dims) != 4 * len(names):
            raise SchemaError(f"{len(names)} inputs need {4 * len(names)} input_dim values "
                              f"(N, C, H, W each), got {len(dims)}", span=net.span_of("input_dim"))
        out = []
        for i in range(len(names)):
            bs = _new("BlobShape", net.span_of("input_dim"))
            bs.set("dim", list(dims[4 * i:4 * i + 4]))
            bs.item_spans["dim"] = net.item_spans.get("input_dim", [])[4 * i:4 * i + 4]
            out.append(bs)
        ip.set("shape", out)
    # Bare `input:` names without shapes (Caffe strips them) still become the Input layer's tops:
    # their shapes must then come from --input.
    layer.set("input_param", ip)
    return layer


def _batch_norm_params(layers: list) -> None:
    """The old BatchNorm's three ParamSpecs get lr_mult and decay_mult 0 (UpgradeNetBatchNorm)."""
    for layer in layers:
        if layer.get("type") == "BatchNorm" and len(layer.get("param")) == 3:
            for spec in layer.get("param"):
                spec.set("lr_mult", 0.0)
                spec.set("decay_mult", 0.0)


def net_format(params: Msg) -> str:
    """"V2" (`layer`), "V1" (`layers`) or "V0" (`layers` holding a `layer`)."""
    if not params.get("layers"):
        return "V2"
    return "V0" if any(l.has("layer") for l in params.get("layers")) else "V1"


def upgrade_layers(params: Msg) -> tuple[str, list]:
    """The file's format ("V2", "V1" or "V0") and every layer as a V2 LayerParameter, in file
    order, after the upgrades Caffe's UpgradeNetAsNeeded makes (upgrade_proto.cpp): V0 -> V1
    (padding layers folded into their consumer), the V1 data layers' transformation fields,
    V1 -> V2, the net inputs as a layer "input" of type Input placed first, the old BatchNorm's
    ParamSpecs. A V0 `params` is left in V1 form."""
    fmt = net_format(params)
    if fmt != "V2":
        if params.get("layer"):
            raise SchemaError("a net uses `layer` (current) or `layers` (legacy V1), not both",
                              span=params.span_of("layers"))
        if fmt == "V0":
            _v0_to_v1(params)
        _v1_data_transformation(params)
        layers = _v1_to_v2(params)
    else:
        layers = list(params.get("layer"))
    inp = _inputs_to_layer(params)
    if inp is not None:
        layers.insert(0, inp)
    _batch_norm_params(layers)
    return fmt, layers


_NET_INPUT_FIELDS = ("layer", "layers", "input", "input_dim", "input_shape")


def upgrade_net(params: Msg) -> tuple[str, Msg]:
    """The file's format and the net as a V2 NetParameter (`upgrade_layers`): its fields in file
    order, the layers where the first of the layers and the inputs were."""
    fmt, layers = upgrade_layers(params)
    net = _new("NetParameter", params.span)
    for f, value in params.fields():
        if f in _NET_INPUT_FIELDS:
            if layers and not net.has("layer"):
                net.set("layer", layers, params.span_of(f))
            continue
        net.set(f, value, params.spans.get(f))
        if f in params.item_spans:
            net.item_spans[f] = params.item_spans[f]
    return fmt, net


# ---------------------------------------------------------------------------------------------
# state filtering (net.cpp StateMeetsRule / FilterNet)

def _rule_matches(rule: Msg, phase: str, level: int, stages: set) -> bool:
    if rule.has("phase") and rule.get("phase") != phase:
        return False
    if rule.has("min_level") and level < rule.get("min_level"):
        return False
    if rule.has("max_level") and level > rule.get("max_level"):
        return False
    if any(s not in stages for s in rule.get("stage")):
        return False
    if any(s in stages for s in rule.get("not_stage")):
        return False
    return True


def _kept(layer: Msg, phase: str, level: int, stages: set) -> tuple[bool, str]:
    inc, exc = layer.get("include"), layer.get("exclude")
    if inc and exc:
        raise SchemaError("a layer may have include rules or exclude rules, not both",
                          span=layer.span_of("exclude"), layer=layer.get("name"), layer_type=layer.get("type"))
    if exc:
        for r in exc:
            if _rule_matches(r, phase, level, stages):
                return False, "excluded in this state"
        return True, ""
    if inc:
        if any(_rule_matches(r, phase, level, stages) for r in inc):
            return True, ""
        return False, "not included in this state"
    return True, ""


# ---------------------------------------------------------------------------------------------

def load_net(source=None, *, text: str | None = None, file: str | None = None,
             phase: str = "TEST", level: int = 0, stages=()) -> Net:
    """Parse and load a net: from `source`, a path (str or os.PathLike), or from `text`, the
    prototxt itself (`file` names it in messages; default "<string>")."""
    phase, level, stages = check_state(phase, level, stages)
    tree, text, file = read_tree(source, text, file, "load_net")
    with located(text), collector_paused():
        params = bind(tree, "NetParameter")
        return _build_net(params, file, text, phase, level, stages)


def read_tree(source, text: str | None, file: str | None, caller: str):
    """(tree, text, file) of a net given as a path (`source`, str or os.PathLike) or as `text`
    (`file` names it; default "<string>"); `caller` names the public function in type errors."""
    if text is not None:
        if source is not None:
            raise TypeError(f"{caller} takes a path or text=, not both")
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if file is not None and not isinstance(file, str):
            raise TypeError(f"file must be a str, not {type(file).__name__}")
        file = file or "<string>"
        return parse_text(text, file), text, file
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise TypeError(f"{caller} takes a path (str or os.PathLike) or text=, not "
                        f"{type(source).__name__}")
    tree, text = parse_file(source)
    return tree, text, source


@contextlib.contextmanager
def located(text: str):
    """Errors raised inside show their source lines from `text`, the text that was parsed."""
    try:
        yield
    except ProtosegError as e:
        for err in [e, *e.errors]:
            err.locate(text=text)
        raise


def check_state(phase, level, stages) -> tuple[str, int, set]:
    """The net state arguments, checked: phase "TEST"/"TRAIN" (any case), level an int, stages
    a list or tuple of str."""
    if not isinstance(phase, str) or phase.upper() not in ("TEST", "TRAIN"):
        raise ValueError(f"phase must be 'TEST' or 'TRAIN', not {phase!r}")
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be an int, not {type(level).__name__}")
    if isinstance(stages, str) or not isinstance(stages, (list, tuple, set, frozenset)) \
            or not all(isinstance(s, str) for s in stages):
        raise TypeError(f"stages must be a list of str, not {stages!r}")
    return phase.upper(), level, set(stages)


def _build_net(params: Msg, file: str, text: str, phase: str, level: int, stages: set) -> Net:
    fmt, raw_layers = upgrade_layers(params)
    state = params.get("state")
    level = level or state.get("level")
    stages = set(stages) | set(state.get("stage"))
    from .layers import registry
    layers, dropped, dropped_layers = [], [], []
    for lp in raw_layers:
        name, type_ = lp.get("name"), lp.get("type")
        span = lp.span
        if not lp.has("name"):
            name = f"<unnamed #{len(layers) + len(dropped)}>"
        keep, why = _kept(lp, phase, level, stages)
        if not keep:
            dropped.append((name, type_, why))
            dropped_layers.append((lp, why))
            continue
        layer_phase = lp.get("phase") if lp.has("phase") else phase
        layers.append(Layer(name, type_, list(lp.get("bottom")), list(lp.get("top")), lp, span,
                            layer_phase, format=fmt))
    _check_types(layers, registry(), file)
    _wire(layers, dropped_layers)
    return Net(params.get("name"), layers, file, text, phase, dropped, fmt, params)


def _check_types(layers: list, reg: dict, file: str) -> None:
    unknown: dict[str, list] = {}
    for l in layers:
        if l.type not in reg:
            unknown.setdefault(l.type, []).append(l)
    if not unknown:
        return
    errors = []
    for t, ls in unknown.items():
        close = did_you_mean(t, reg, cutoff=0.7)
        for l in ls:
            fork = _fork_of(l)
            what = f"unknown layer type '{t}'" + (f" (defined in a Caffe fork: {fork})" if fork else "")
            hint = "; ".join(h for h in (close, SUPPORTED) if h)
            errors.append(UnsupportedLayerError(what, span=l.params.span_of("type") or l.span,
                                                layer=l.name, layer_type=t, hint=hint))
    listing = ", ".join(f"{t} ({plural(len(ls), 'layer')})" for t, ls in unknown.items())
    raise UnsupportedLayerError.group(errors, f"{len(errors)} layers of unknown types: {listing}")


SUPPORTED = "`protoseg layers` (docs/layers.md) lists every supported type and what it supports"


def _fork_of(layer: Layer) -> str | None:
    """The fork a layer of an unknown type comes from, where caffe.proto says: a fork-only
    parameter field it sets, or the one its type's name calls for (DenseCRF: dense_crf_param)."""
    fields = layer.params.type.fields
    conventional = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", layer.type).lower() + "_param"
    for name in [n for n, _ in layer.params.fields()] + [conventional]:
        if name in fields and fields[name].fork:
            return fields[name].fork
    return None


def _wire(layers: list, dropped: list = ()) -> None:
    """Check bottom/top counts and producers; assign SSA values (Caffe's blob versioning)."""
    from .layers import spec_of
    current: dict[str, str] = {}        # blob name -> current value name
    used: set = set()
    producer: dict[str, Layer] = {}      # blob name -> last writer
    reader: dict[str, Layer] = {}        # value -> the first layer that reads it
    for i, l in enumerate(layers):
        spec = spec_of(l)
        if spec.auto_tops and len(l.tops) < spec.tops[0]:
            # net.cpp: layers with AutoTopBlobs() get anonymous tops up to their minimum.
            l.tops = l.tops + ["(automatic)"] * (spec.tops[0] - len(l.tops))
        _check_count(l, "bottom", len(l.bottoms), spec.bottoms)
        _check_count(l, "top", len(l.tops), spec.tops)
        l.bottom_values = []
        for j, b in enumerate(l.bottoms):
            if b not in current:
                raise _unknown_bottom(l, j, b, layers, i, current, dropped)
            l.bottom_values.append(current[b])
            reader.setdefault(current[b], l)
        l.top_values, l.in_place = [], []
        for j, t in enumerate(l.tops):
            in_place = j < len(l.bottoms) and l.bottoms[j] == t
            if t in current and not in_place:
                prev = producer[t]
                where = f"line {prev.span.line}" if prev.span else "earlier"
                raise GraphError(
                    f"top '{t}' is already produced by layer '{prev.name}' ({where}); a layer may "
                    f"only reuse a blob name in place (top {j} == bottom {j})",
                    span=l.params.span_of("top", j) or l.span, layer=l.name, layer_type=l.type)
            if in_place and not spec.in_place:
                raise GraphError(f"{l.type} cannot run in place (top '{t}' == bottom '{t}'): "
                                 "give its top a name of its own", span=l.params.span_of("top", j) or l.span,
                                 layer=l.name, layer_type=l.type)
            if in_place and (reader[l.bottom_values[j]] is not l or l.bottom_values.count(l.bottom_values[j]) > 1):
                other = reader[l.bottom_values[j]]
                who = "this layer reads it twice" if other is l else \
                    f"layer '{other.name}' (line {other.span.line}) reads the same '{t}' before it"
                raise GraphError(
                    f"top '{t}' rewrites its bottom in place, but {who}: Caffe then puts a Split in "
                    f"front of both readers (insert_splits.cpp), this top is no longer in place and "
                    f"Caffe refuses the net (\"Top blob '{t}' produced by multiple sources\")",
                    span=l.params.span_of("top", j) or l.span, layer=l.name, layer_type=l.type,
                    hint="give the top a name of its own")
            if t == "(automatic)":
                l.top_values.append(f"(automatic)@{l.name}")
                l.in_place.append(False)
                continue
            value = t if t not in current else f"{t}@{l.name}"
            while value in used:
                value += "'"
            used.add(value)
            current[t] = value
            producer[t] = l
            l.top_values.append(value)
            l.in_place.append(in_place)


def _check_count(l: Layer, what: str, n: int, bounds) -> None:
    lo, hi = bounds
    if n >= lo and (hi is None or n <= hi):
        return
    if hi == lo:
        need = f"exactly {lo}"
    elif hi is None:
        need = f"at least {lo}"
    else:
        need = f"{lo} to {hi}"
    extra = hi if hi is not None and n > hi else None     # point at the first one too many
    raise GraphError(f"{l.type} takes {need} {what}{'s' if hi != 1 else ''}, got {n}",
                     span=l.params.span_of(what, extra) or l.span, layer=l.name, layer_type=l.type)


def _unknown_bottom(l: Layer, j: int, b: str, layers: list, i: int, current: dict,
                    dropped=()) -> GraphError:
    span = l.params.span_of("bottom", j) or l.span
    for lp, why in dropped:
        if b in lp.get("top"):
            rules = "include" if lp.get("include") else "exclude"
            return GraphError(
                f"bottom '{b}' comes only from layer '{lp.get('name')}' (line {lp.span.line}), which "
                f"is {why} (its {rules} rules); Caffe would stop here too",
                span=span, layer=l.name, layer_type=l.type,
                hint="choose the state with --phase, --stage or --level, or give the net an Input layer")
    later = [m for m in layers[i + 1:] if b in m.tops]
    if later:
        m = later[0]
        # does the later producer depend (transitively) on this layer's tops?
        reach = set(l.tops)
        for k in layers[i + 1:]:
            if reach & set(k.bottoms):
                if k is m:
                    return GraphError(
                        f"bottom '{b}' comes from layer '{m.name}' (line {m.span.line}), which itself "
                        f"depends on this layer's output: the net has a cycle", span=span,
                        layer=l.name, layer_type=l.type)
                reach |= set(k.tops)
        return GraphError(f"bottom '{b}' is produced only later, by layer '{m.name}' (line "
                          f"{m.span.line}); Caffe runs layers in file order, so a bottom must "
                          f"come from an earlier layer", span=span, layer=l.name, layer_type=l.type)
    hint = did_you_mean(b, current)
    return GraphError(f"bottom '{b}' (bottom {j}) is not produced by any layer before this one "
                      f"(and is not a net input)", span=span, layer=l.name, layer_type=l.type,
                      hint=hint)
