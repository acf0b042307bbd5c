"""The Caffe schema (grammars/caffe.proto) and typed messages bound to it.

`grammars/caffe.proto` is written by us in a proto2 subset: messages (flat), enums (top level or
inside a message), fields `optional|repeated|required TYPE NAME = NUMBER [default = V, packed = true,
fork = "..."]`. `bind()` gives a parsed text tree its types: every field checked against the
schema, every value converted, presence kept (Caffe decides on `has_xxx()` in many places).
Unknown fields are collected for the whole file, so one error lists them all.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import SchemaError, Span, clip
from .resources import grammar_path
from .text import did_you_mean
from .textformat import Entry, Scalar, TextList, TextMessage

SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
           "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}
_INT_RANGE = {
    "int32": (-2**31, 2**31 - 1), "sint32": (-2**31, 2**31 - 1), "sfixed32": (-2**31, 2**31 - 1),
    "int64": (-2**63, 2**63 - 1), "sint64": (-2**63, 2**63 - 1), "sfixed64": (-2**63, 2**63 - 1),
    "uint32": (0, 2**32 - 1), "fixed32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1), "fixed64": (0, 2**64 - 1),
}


@dataclass
class EnumType:
    name: str
    values: dict            # name -> number (first definition wins for lookups by number)
    options: dict           # name -> {option: value} of the values that have options

    @property
    def forks(self) -> dict:
        """name -> fork note, for values that exist only in a fork."""
        return {k: o["fork"] for k, o in self.options.items() if "fork" in o}

    def name_of(self, number: int) -> str | None:
        for k, v in self.values.items():
            if v == number:
                return k
        return None


@dataclass
class FieldDef:
    name: str
    number: int
    label: str              # optional | repeated | required
    type: str               # scalar type name, enum name or message name
    default: object = None  # converted python value, or None
    packed: bool = False
    fork: str | None = None
    kind: str = ""          # 'scalar' | 'enum' | 'message' (resolved after loading)

    @property
    def repeated(self) -> bool:
        return self.label == "repeated"


@dataclass
class MessageType:
    name: str
    fields: dict = field(default_factory=dict)      # name -> FieldDef
    enums: dict = field(default_factory=dict)       # nested enums, name -> EnumType


class Schema:
    def __init__(self, messages: dict, enums: dict):
        self.messages = messages
        self.enums = enums      # every enum, nested ones included, by simple name

    def message(self, name: str) -> MessageType:
        return self.messages[name]


_TOKEN = re.compile(r'\s+|//[^\n]*|"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_.]*|-?[0-9][0-9.eExX+-]*|[{}\[\];=,]')


def _tokens(text: str, name: str = "caffe.proto"):
    pos = 0
    line = 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"{name}:{line}: cannot read {text[pos:pos + 20]!r}")
        tok = m.group(0)
        if not (tok.isspace() or tok.startswith("//")):
            yield tok, line
        line += tok.count("\n")
        pos = m.end()


def _literal(tok: str):
    if tok.startswith('"'):
        return tok[1:-1]
    if tok in ("true", "false"):
        return tok == "true"
    try:
        return int(tok, 0)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok       # an enum identifier, resolved later


def load_schema_text(text: str, name: str = "caffe.proto") -> Schema:
    """A schema from proto2 text (the subset described above); ValueError names the line."""
    messages, enums = _parse_schema(text, name)
    _resolve(messages.values(), messages, enums, name)
    return Schema(messages, enums)


def extend_schema(schema: Schema, text: str, name: str = "<proto>") -> None:
    """Add the messages and enums of `text` to `schema`; a message of `text` that the schema has
    already (`message LayerParameter { optional MyParameter my_param = 9001; }`) adds its fields
    to it, as a fork's edit of caffe.proto does. Names and numbers must not clash."""
    messages, enums = _parse_schema(text, name)
    added = []
    for msg in messages.values():
        old = schema.messages.get(msg.name)
        if old is None:
            schema.messages[msg.name] = msg
            added += msg.fields.values()
            continue
        numbers = {f.number: f for f in old.fields.values()}
        for f in list(msg.fields.values()):
            same = old.fields.get(f.name)
            if same is not None and (same.number, same.type, same.label) == (f.number, f.type, f.label):
                del msg.fields[f.name]          # declared again, identically: nothing to add
                continue
            clash = same or numbers.get(f.number)
            if clash is not None:
                raise ValueError(f"{name}: {msg.name}.{f.name} = {f.number} clashes with "
                                 f"{msg.name}.{clash.name} = {clash.number}")
        old.fields.update(msg.fields)
        old.enums.update(msg.enums)
        added += msg.fields.values()
    for e in enums.values():
        schema.enums.setdefault(e.name, e)
    _resolve_fields(added, schema.messages, schema.enums, name)


def _parse_schema(text: str, name: str) -> tuple[dict, dict]:
    try:
        return _parse_tokens(list(_tokens(text, name)), name)
    except IndexError:
        raise ValueError(f"{name}: the text ends inside a definition") from None


def _resolve(messages, all_messages: dict, enums: dict, name: str) -> None:
    for msg in messages:
        _resolve_fields(msg.fields.values(), all_messages, enums, name, msg)


def _resolve_fields(fields, messages: dict, enums: dict, name: str, owner=None) -> None:
    for f in fields:
        owner_enums = owner.enums if owner is not None else {}
        if f.type in SCALARS:
            f.kind = "scalar"
            if f.default is not None and f.type in ("float", "double"):
                f.default = float(f.default)
        elif f.type in owner_enums or f.type in enums:
            f.kind = "enum"
        elif f.type in messages:
            f.kind = "message"
        else:
            raise ValueError(f"{name}: field {f.name}: unknown type {f.type!r}")


def _parse_tokens(toks: list, name: str) -> tuple[dict, dict]:
    i = 0
    i = 0
    messages: dict[str, MessageType] = {}
    enums: dict[str, EnumType] = {}

    def expect(want):
        nonlocal i
        tok, line = toks[i]
        if tok != want:
            raise ValueError(f"{name}:{line}: expected {want!r}, got {tok!r}")
        i += 1

    def parse_options():
        nonlocal i
        opts = {}
        if toks[i][0] != "[":
            return opts
        i += 1
        while True:
            key = toks[i][0]
            expect_eq = toks[i + 1][0]
            if expect_eq != "=":
                raise ValueError(f"{name}:{toks[i][1]}: bad option")
            opts[key] = _literal(toks[i + 2][0])
            i += 3
            if toks[i][0] == ",":
                i += 1
                continue
            expect("]")
            return opts

    def parse_enum() -> EnumType:
        nonlocal i
        name = toks[i][0]
        i += 1
        expect("{")
        values, options = {}, {}
        while toks[i][0] != "}":
            vname = toks[i][0]
            i += 1
            expect("=")
            num = int(toks[i][0], 0)
            i += 1
            opts = parse_options()
            expect(";")
            values.setdefault(vname, num)
            if opts:
                options[vname] = opts
        i += 1
        e = EnumType(name, values, options)
        enums.setdefault(name, e)
        return e

    while i < len(toks):
        tok, line = toks[i]
        if tok in ("syntax", "package"):
            while toks[i][0] != ";":
                i += 1
            i += 1
        elif tok == "enum":
            i += 1
            parse_enum()
        elif tok == "message":
            i += 1
            msg = MessageType(toks[i][0])
            i += 1
            expect("{")
            while toks[i][0] != "}":
                if toks[i][0] == "enum":
                    i += 1
                    e = parse_enum()
                    msg.enums[e.name] = e
                    continue
                label, ftype, fname = toks[i][0], toks[i + 1][0], toks[i + 2][0]
                if label not in ("optional", "repeated", "required"):
                    raise ValueError(f"{name}:{toks[i][1]}: expected a field, got {label!r}")
                i += 3
                expect("=")
                number = int(toks[i][0])
                i += 1
                opts = parse_options()
                expect(";")
                msg.fields[fname] = FieldDef(fname, number, label, ftype, opts.get("default"),
                                             bool(opts.get("packed", False)), opts.get("fork"))
            i += 1
            messages[msg.name] = msg
        else:
            raise ValueError(f"{name}:{line}: unexpected {tok!r}")
    return messages, enums


@lru_cache(maxsize=1)
def caffe_schema() -> Schema:
    """The schema of grammars/caffe.proto, cached as a pickle keyed by the file's hash (loading
    the text costs ~50 ms per run; the pickle ~2 ms)."""
    import hashlib
    import os
    import pickle

    from .textformat import cache_dir
    with open(grammar_path("caffe.proto"), "rb") as f:
        raw = f.read()
    key = hashlib.sha256(raw).hexdigest()[:16]
    d = cache_dir()
    path = os.path.join(d, f"caffe-schema-{key}.pickle") if d else None
    if path and os.path.exists(path):
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except Exception:       # a stale or broken cache is rebuilt below
            pass
    schema = load_schema_text(raw.decode("utf-8"))
    if path:
        try:
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                pickle.dump(schema, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass
    return schema


# ---------------------------------------------------------------------------------------------
# Typed messages

class Msg:
    """A message bound to the schema. `m.get(name)` returns the value or the schema default;
    `m.has(name)` tells presence; repeated fields give lists. Spans are kept per field."""

    __slots__ = ("type", "values", "spans", "item_spans", "span", "schema")

    def __init__(self, type: MessageType, schema: Schema, span: Span | None = None):
        self.type = type
        self.schema = schema
        self.values: dict[str, object] = {}   # name -> value (list for repeated)
        self.spans: dict[str, Span] = {}      # name -> span of the first occurrence
        self.item_spans: dict[str, list] = {} # repeated field -> span of each value
        self.span = span

    def has(self, name: str) -> bool:
        self._check(name)
        return name in self.values

    def get(self, name: str, default=None):
        f = self._check(name)
        if name in self.values:
            return self.values[name]
        if f.repeated:
            return []
        if f.kind == "message":
            return Msg(self.schema.message(f.type), self.schema, self.span)
        if default is not None:
            return default
        return f.default if f.default is not None else _zero(f)

    def span_of(self, name: str, index: int | None = None) -> Span | None:
        """Where a field is written (its first occurrence), or with `index` where item `index`
        of a repeated field is (the value itself for scalars); the message's span if unknown."""
        if index is not None:
            items = self.item_spans.get(name, [])
            if 0 <= index < len(items):
                return items[index]
        return self.spans.get(name, self.span)

    def set(self, name: str, value, span: Span | None = None):
        self._check(name)
        self.values[name] = value
        if span is not None:
            self.spans.setdefault(name, span)

    def clear(self, name: str):
        self.values.pop(name, None)

    def _check(self, name: str) -> FieldDef:
        try:
            return self.type.fields[name]
        except KeyError:
            raise KeyError(f"{self.type.name} has no field {name!r}") from None

    def fields(self):
        return self.values.items()

    def __repr__(self):
        return f"<{self.type.name} {self.values}>"


def msg_text(msg: Msg) -> str:
    """A message as one line of protobuf text format, its fields in the order given:
    `num_output: 64 kernel_size: 3 weight_filler { type: "xavier" }`."""
    return " ".join(field_text(msg, name) for name, _ in msg.fields())


def field_text(msg: Msg, name: str) -> str:
    """One field of a message in protobuf text format (`kernel_size: 3 kernel_size: 5` when
    repeated)."""
    value = msg.get(name)
    f = msg.type.fields[name]
    return " ".join(f"{name} {{ {msg_text(v)} }}" if f.kind == "message"
                    else f"{name}: {v}" if f.kind == "enum" else f"{name}: {_text_value(v, f.type)}"
                    for v in (value if isinstance(value, list) else [value]))


def msg_data(msg: Msg) -> dict:
    """A message as JSON-ready data: {field: value}, nested messages as dicts, repeated fields as
    lists, enum values by name."""
    def data(v):
        if isinstance(v, Msg):
            return msg_data(v)
        if isinstance(v, float) and not math.isfinite(v):
            return repr(v)      # JSON has no inf or nan
        return v
    return {name: [data(v) for v in value] if isinstance(value, list) else data(value)
            for name, value in msg.fields()}


def float_text(v: float, type_: str = "double") -> str:
    """A float or double field's value as protobuf's text format writes it (SimpleFtoa /
    SimpleDtoa): the shorter of %.6g / %.9g (%.15g / %.17g for a double) that reads back to the
    value (a float field's 9.999999747378752e-06 is `1e-05`); inf, -inf, nan."""
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else "inf" if v > 0 else "-inf"
    short, full = (6, 9) if type_ == "float" else (15, 17)
    text = f"{v:.{short}g}"
    back = _c_float(float(text)) if type_ == "float" else float(text)
    return text if back == v else f"{v:.{full}g}"


def _text_value(v, type_: str) -> str:
    """A scalar for a one-line message text (strings keep their characters; textwriter writes
    files with protobuf's byte escapes)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return float_text(v, type_)
    if isinstance(v, str):
        out = ""
        for c in v:
            if c in '"\\':
                out += "\\" + c
            elif ord(c) < 32 or ord(c) == 127:
                out += f"\\{ord(c):03o}"
            else:
                out += c
        return f'"{out}"'
    return str(v)


def _zero(f: FieldDef):
    if f.kind == "enum":
        return None
    t = f.type
    if t == "bool":
        return False
    if t in ("string", "bytes"):
        return ""
    if t in ("float", "double"):
        return 0.0
    return 0


_BOOL_WORDS = {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}

# Fields that Caffe's C++ reads into a C `int` although protobuf lets them hold any uint32 (or, for
# BlobShape.dim, int64) value: a value beyond INT_MAX reaches Caffe wrapped around (`pad: 4294967295`
# becomes -1), so protoseg refuses it. From the layer sources: BVLC Caffe's base_conv_layer.cpp,
# pooling_layer.hpp, inner_product/embed/lstm/rnn/lrn/crop/slice/concat/spp/accuracy/data layers,
# data_transformer.cpp, blob.cpp (Reshape from a BlobShape) and upgrade_proto.cpp (V0 fields become
# the V2 ones); SegNet's upsample_layer.hpp, SSD's permute_layer.cpp and prior_box_layer.cpp, Fast
# R-CNN's roi_pooling_layer. Not listed: fields Caffe reads into unsigned or size_t types
# (ArgMaxParameter.top_k, rand_skip, prefetch) and fork fields whose source was not checked.
CAFFE_READS_AS_INT = {
    "BlobShape": {"dim"},
    "ConvolutionParameter": {"num_output", "pad", "kernel_size", "stride", "dilation", "pad_h", "pad_w",
                             "kernel_h", "kernel_w", "stride_h", "stride_w", "group"},
    "PoolingParameter": {"pad", "pad_h", "pad_w", "kernel_size", "kernel_h", "kernel_w", "stride",
                         "stride_h", "stride_w"},
    "InnerProductParameter": {"num_output"},
    "EmbedParameter": {"num_output", "input_dim"},
    "RecurrentParameter": {"num_output"},
    "LRNParameter": {"local_size"},
    "CropParameter": {"offset"},
    "SliceParameter": {"slice_point", "slice_dim"},
    "ConcatParameter": {"concat_dim"},
    "SPPParameter": {"pyramid_height"},
    "AccuracyParameter": {"top_k"},
    "DummyDataParameter": {"num", "channels", "height", "width"},
    "TransformationParameter": {"crop_size"},
    "DataParameter": {"batch_size", "crop_size"},
    "ImageDataParameter": {"batch_size", "new_height", "new_width", "crop_size"},
    "MemoryDataParameter": {"batch_size", "channels", "height", "width"},
    "HDF5DataParameter": {"batch_size"},
    "WindowDataParameter": {"batch_size", "crop_size", "context_pad"},
    "V0LayerParameter": {"num_output", "pad", "kernelsize", "group", "stride", "local_size", "batchsize",
                         "cropsize", "det_context_pad", "concat_dim"},
    "UpsampleParameter": {"scale", "scale_h", "scale_w", "upsample_h", "upsample_w"},
    "PermuteParameter": {"order"},
    "PriorBoxParameter": {"img_size", "img_h", "img_w"},
    "ROIPoolingParameter": {"pooled_h", "pooled_w"},
}


def _convert(f: FieldDef, v, schema: Schema, enclosing: MessageType, errors: list, path: str):
    """Convert one text value for field f as protobuf's text parser does (text_format.cc);
    returns the value, or None after recording an error."""
    if f.kind == "message":
        if not isinstance(v, TextMessage):
            errors.append(SchemaError(f"field '{path}' is a message ({f.type}): write {f.name} {{ ... }}",
                                      span=v.span))
            return None
        return bind_message(v, schema.message(f.type), schema, errors, path)
    if isinstance(v, TextMessage):
        errors.append(SchemaError(f"field '{path}' takes a {f.type} value, not a {{ }} block", span=v.span))
        return None
    s: Scalar = v
    if f.kind == "enum":
        enum = enclosing.enums.get(f.type) or schema.enums[f.type]
        if s.kind == "name" and s.value in enum.values:
            return s.value
        if s.kind == "int" and s.value is not None:
            name = enum.name_of(s.value)
            if name is not None:
                return name
        allowed = ", ".join(enum.values)
        errors.append(SchemaError(f"field '{path}' has no value {clip(s.text)}; allowed values of "
                                  f"{f.type}: {allowed}", span=s.span,
                                  hint=did_you_mean(s.text, enum.values, n=3)))
        return None
    t = f.type
    if t == "bool":
        if s.kind == "name" and s.value in _BOOL_WORDS:
            return _BOOL_WORDS[s.value]
        if s.kind == "int" and s.value in (0, 1) and s.text[0] != "-":
            return bool(s.value)
        errors.append(SchemaError(f"field '{path}' is a bool: expected true or false (or 0 or 1), "
                                  f"got {clip(s.text)}", span=s.span))
        return None
    if t in ("string", "bytes"):
        if s.kind == "string":
            return s.value
        errors.append(SchemaError(f"field '{path}' is a string: expected a quoted value, got {clip(s.text)}",
                                  span=s.span, hint=f'write {f.name}: "{clip(s.text)}"'))
        return None
    if t in ("float", "double"):
        value = _float_value(s)
        if value is None:
            what = "decimal " if s.kind == "int" else ""
            errors.append(SchemaError(f"field '{path}' is a {t}: expected a {what}number, got {clip(s.text)}",
                                      span=s.span))
            return None
        return _c_float(value) if t == "float" else value
    lo, hi = _INT_RANGE[t]
    if s.kind != "int":
        what = "a non-negative integer" if lo == 0 else "an integer"
        errors.append(SchemaError(f"field '{path}' is {t}: expected {what}, got {clip(s.text)}", span=s.span))
        return None
    if s.value is None or not lo <= s.value <= hi or (lo == 0 and s.text[0] == "-"):
        sign = " (an unsigned field takes no sign, not even -0)" if lo == 0 and s.value == 0 else ""
        errors.append(SchemaError(f"field '{path}' is {t}: {clip(s.text)} is out of range [{lo}, {hi}]{sign}",
                                  span=s.span))
        return None
    if f.name in CAFFE_READS_AS_INT.get(enclosing.name, ()) and not -2**31 <= s.value < 2**31:
        wrapped = (s.value + 2**31) % 2**32 - 2**31
        errors.append(SchemaError(
            f"field '{path}' is {t}: protobuf accepts {clip(s.text)}, but Caffe reads {f.name} into a C int, "
            f"where it becomes {wrapped}; the values Caffe reads as written end at 2147483647", span=s.span))
        return None
    return s.value


def _c_float(value: float) -> float:
    """A `float` field's value: a C float, as protobuf stores it (the nearest one; an infinity
    beyond their range). `eps: 1e-5` holds 9.999999747378752e-06, as Caffe sees it."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def _float_value(s: Scalar) -> float | None:
    """A float or double field's value before rounding: protobuf takes integers in decimal only,
    and the words inf, infinity and nan in any case."""
    if s.kind == "float":
        return s.value
    if s.kind == "int":
        digits = s.text.lstrip("-")
        return float(s.text) if digits == "0" or digits[0] != "0" else None
    if s.kind == "name" and s.value.lower() in ("inf", "infinity", "nan"):
        return float(s.value.lower().replace("infinity", "inf"))
    return None


_LAYER_MESSAGES = ("LayerParameter", "V1LayerParameter", "V0LayerParameter")


def _layer_name_type(node) -> tuple[str | None, str | None]:
    name = type_ = None
    if isinstance(node, TextMessage):
        for e in node.entries:
            if isinstance(e.value, Scalar) and e.name == "name" and name is None:
                name = str(e.value.value)
            elif isinstance(e.value, Scalar) and e.name == "type" and type_ is None:
                type_ = str(e.value.value)
    return name, type_


def _inside(span: Span | None, node) -> bool:
    """Is span inside the braces of node? (Entries are in file order; good enough to compare
    with the node's first and last entries.)"""
    if span is None or not isinstance(node, TextMessage) or node.span is None:
        return False
    end = _last_span(node)
    return (node.span.line, node.span.col) <= (span.line, span.col) <= (end.line, end.col + 10**6)


def _last_span(node) -> Span:
    last = node.span
    while isinstance(node, TextMessage) and node.entries:
        e = node.entries[-1]
        last = e.span
        v = e.value
        node = v.items[-1] if isinstance(v, TextList) and v.items else v
        if isinstance(node, Scalar):
            last = node.span
    return last


def bind_message(node: TextMessage, mtype: MessageType, schema: Schema, errors: list,
                 path: str = "") -> Msg:
    msg = Msg(mtype, schema, node.span)
    for e in node.entries:
        e: Entry
        f = mtype.fields.get(e.name)
        fpath = f"{path}.{e.name}" if path else e.name
        if f is None:
            where = f"{path} ({mtype.name})" if path else mtype.name
            errors.append(SchemaError(f"unknown field '{e.name}' in {where}", kind="unknown field",
                                      span=e.span, hint=did_you_mean(e.name, mtype.fields, n=3)))
            continue
        items = e.value.items if isinstance(e.value, TextList) else [e.value]
        if isinstance(e.value, TextList) and not f.repeated:
            errors.append(SchemaError(f"field '{fpath}' takes one value, not a [list]", span=e.span))
            continue
        if f.kind == "message" and f.type in _LAYER_MESSAGES:
            fpath = ""       # errors inside a layer are located by the layer, not by a path
        first = len(errors)
        converted = [_convert(f, v, schema, mtype, errors, fpath) for v in items]
        if f.kind == "message" and not isinstance(e.value, TextList):
            for m in converted:
                if m is not None:
                    m.span = e.span      # a message is located where its field name is
        if f.type in _LAYER_MESSAGES:
            for v in items:
                name, type_ = _layer_name_type(v)
                for err in errors[first:]:
                    if err.layer is None and _inside(err.span, v):
                        err.layer, err.layer_type = name, type_
        if f.repeated:
            msg.values.setdefault(e.name, []).extend(converted)
            msg.spans.setdefault(e.name, e.span)
            msg.item_spans.setdefault(e.name, []).extend(
                v.span if isinstance(v, Scalar) else e.span for v in items)
        else:
            if e.name in msg.values:
                errors.append(SchemaError(
                    f"field '{fpath}' is not repeated but is given twice "
                    f"(first at line {msg.spans[e.name].line})", span=e.span))
                continue
            msg.values[e.name] = converted[0]
            msg.spans[e.name] = e.span
    return msg


def bind(node: TextMessage, message: str, schema: Schema | None = None) -> Msg:
    """Bind a whole parsed file to `message` (e.g. NetParameter); raise one error listing
    every unknown field and bad value of the file."""
    schema = schema or caffe_schema()
    errors: list = []
    msg = bind_message(node, schema.message(message), schema, errors)
    if errors:
        unknown = sum(e.kind == "unknown field" for e in errors)
        summary = f"{len(errors)} schema errors" + (f" ({unknown} unknown fields)" if unknown else "") + ":"
        raise SchemaError.group(errors, summary)
    return msg
