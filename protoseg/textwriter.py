"""write: a schema-bound message (protoseg.schema.Msg) as protobuf text format, in canonical form,
keeping the comments of the file it was read from. Imports no torch.

The canonical form is what protobuf's TextFormat::Printer writes (text_format.cc), but for the
order of the fields: two-space indent; one field per line, each value of a repeated field on a
line of its own; `name {` ... `}` for messages; enums by name, bools as true / false; integers in
decimal; float fields as SimpleFtoa writes them (%.6g, or %.9g where that is needed to read the
same float back), double fields as SimpleDtoa does (%.15g, else %.17g), inf / -inf / nan; strings
double-quoted with CEscape's escapes (\\n \\r \\t \\" \\' \\\\, every other byte outside
0x20..0x7e as three octal digits, UTF-8 included). The fields keep the file's order (protobuf
prints them by field number), so that comments stay beside what they describe.

Comments are found by a scan of their own over the source text, after the parse (the parser skips
them and stays as fast as it is). Each is written before the first field that comes after it in
the file, at that field's indent; one that follows a token on its line (`kernel_size: 3  # 7 in
the paper`) goes at the end of the line written last; one just before a `}` stays inside that
message. A blank line before a comment is kept; other blank lines are not. Fields made by an
upgrade (a ParamSpec from blobs_lr) carry the position of what they replace.
"""
from __future__ import annotations

import bisect
import math
import re

from .schema import FieldDef, Msg, _c_float

INDENT = "  "

# What the comment scan steps over: strings (a '#' in them is text), comments, brackets.
_LEXEME = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\#[^\n]*|[{}<>\[\]]""")
# From a field name to the bracket that opens its message: the name, then spaces, comments and
# an optional ':'.
_TO_BRACKET = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\s|#[^\n]*)*:?(?:\s|#[^\n]*)*(?=[{<])")


class _Comments:
    """The comments of a source text (offset, text, trailing, blank line before) in file order,
    and where each bracket closes."""

    def __init__(self, text: str):
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.items = []
        self.closes = {}         # offset of an opening bracket -> offset of its closing one
        opened = []
        for m in _LEXEME.finditer(text):
            c = m.group()[0]
            if c == "#":
                start = m.start()
                line_start = text.rfind("\n", 0, start) + 1
                trailing = text[line_start:start].strip() != ""
                before = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
                blank = line_start > 0 and text[before:line_start].strip() == ""
                self.items.append((start, m.group().rstrip(), trailing, blank))
            elif c in "{<[":
                opened.append(m.start())
            elif c in "}>]" and opened:
                self.closes[opened.pop()] = m.start()
        self.next = 0

    def offset(self, span) -> int | None:
        if span is None or not span.line or span.line > len(self.line_starts):
            return None
        return self.line_starts[span.line - 1] + span.col - 1

    def before(self, offset: int) -> list:
        """The comments not yet taken that start before `offset`."""
        end = self.next
        while end < len(self.items) and self.items[end][0] < offset:
            end += 1
        taken, self.next = self.items[self.next:end], end
        return taken

    def close_of(self, msg: Msg, names: tuple) -> int | None:
        """Where the message written at msg.span closes, when that span is the opening bracket
        or a field name of `names` before it (a message made by an upgrade has its parent's
        span: it has no brackets of its own in the file)."""
        at = self.offset(msg.span)
        if at is None or at >= len(self.text):
            return None
        if self.text[at] not in "{<":
            m = _TO_BRACKET.match(self.text, at)
            if m is None or m.group("name") not in names:
                return None
            at = m.end()
        return self.closes.get(at)


class _Writer:
    def __init__(self, source: str | None):
        self.lines: list[str] = []
        self.comments = _Comments(source) if source is not None else None

    def flush(self, offset: int | None, indent: str) -> None:
        if self.comments is None or offset is None:
            return
        for _, text, trailing, blank in self.comments.before(offset):
            if trailing and self.lines:
                self.lines[-1] += "  " + text
                continue
            if blank and self.lines and self.lines[-1]:
                self.lines.append("")
            self.lines.append(indent + text)

    def position(self, span) -> int | None:
        return self.comments.offset(span) if self.comments is not None else None

    def message(self, msg: Msg, indent: str) -> None:
        for name, value in msg.fields():
            f = msg.type.fields[name]
            values = value if f.repeated else [value]
            item_spans = msg.item_spans.get(name, [])
            for i, v in enumerate(values):
                if f.kind == "message":
                    span = v.span
                elif f.repeated and len(item_spans) == len(values):
                    span = item_spans[i]
                else:
                    span = msg.spans.get(name)
                self.flush(self.position(span), indent)
                if f.kind != "message":
                    self.lines.append(f"{indent}{name}: {value_text(f, v)}")
                    continue
                self.lines.append(f"{indent}{name} {{")
                self.message(v, indent + INDENT)
                if self.comments is not None:
                    self.flush(self.comments.close_of(v, _SOURCE_NAMES.get(name, (name,))),
                               indent + INDENT)
                self.lines.append(indent + "}")


# The field an upgraded message was written as in the source: a V2 `layer` was a V1 `layers`.
_SOURCE_NAMES = {"layer": ("layer", "layers")}


def format_message(msg: Msg, source: str | None = None) -> str:
    """`msg` in canonical protobuf text format (see the module's docstring), with the comments of
    `source`, the text it was read from, when given."""
    if not isinstance(msg, Msg):
        raise TypeError(f"msg must be a protoseg.schema.Msg, not {type(msg).__name__}")
    if source is not None and not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    w = _Writer(source)
    w.message(msg, "")
    w.flush(math.inf, "")
    return "".join(line.rstrip() + "\n" for line in w.lines)


def value_text(f: FieldDef, v) -> str:
    """One scalar or enum value as protobuf's text format writes it."""
    if f.kind == "enum":
        return v
    if f.type == "bool":
        return "true" if v else "false"
    if f.type in ("string", "bytes"):
        return '"' + c_escape(v.encode("utf-8", "surrogateescape")) + '"'
    if f.type == "float":
        return _float_text(v, 6, 9, _c_float)
    if f.type == "double":
        return _float_text(v, 15, 17, float)
    return str(v)


def _float_text(v: float, digits: int, more: int, rounded) -> str:
    """SimpleFtoa / SimpleDtoa: %g with `digits`, or `more` digits when that does not read back."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    text = f"{v:.{digits}g}"
    return text if rounded(float(text)) == v else f"{v:.{more}g}"


_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("'"): "\\'",
            ord("\\"): "\\\\"}


def c_escape(data: bytes) -> str:
    """protobuf's CEscape: the escapes above, printable ASCII as is, any other byte in octal."""
    return "".join(_ESCAPES.get(b) or (chr(b) if 0x20 <= b < 0x7f else f"\\{b:03o}") for b in data)


def format_prototxt(source=None, *, text: str | None = None, file: str | None = None,
                    upgrade: bool = False) -> str:
    """A net's prototxt (a path, or `text`) in canonical form with its comments; with `upgrade`,
    written as a V2 net first (`layer {}`, type strings, ParamSpecs, an Input layer), as Caffe's
    upgrade_net_proto_text does."""
    return _formatted(source, text, file, upgrade, "format_prototxt")[1]


def _formatted(source, text, file, upgrade, caller: str) -> tuple[str, str]:
    """(the file's format, the formatted text)."""
    from .net import located, net_format, read_tree, upgrade_net
    from .schema import bind
    from .textformat import collector_paused
    if not isinstance(upgrade, bool):
        raise TypeError(f"upgrade must be a bool, not {type(upgrade).__name__}")
    tree, text, file = read_tree(source, text, file, caller)
    with located(text), collector_paused():
        params = bind(tree, "NetParameter")
        fmt = net_format(params)
        if upgrade:
            fmt, params = upgrade_net(params)
    return fmt, format_message(params, text)
