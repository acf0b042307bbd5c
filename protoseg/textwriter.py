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
from dataclasses import dataclass

from .schema import FieldDef, Msg, float_text

INDENT = "  "

# What the comment scan steps over: strings (a '#' in them is text), comments, brackets.
_LEXEME = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\#[^\n]*|[{}<>\[\]]""")
# From a field name to the bracket that opens its message: the name, then spaces, comments and
# an optional ':'.
_TO_BRACKET = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\s|#[^\n]*)*:?(?:\s|#[^\n]*)*(?=[{<])")


class _Comments:
    """The comments of a source text, in file order, and where each bracket closes."""

    def __init__(self, text: str):
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.items: list[_Comment] = []
        self.closes = {}         # offset of an opening bracket -> offset of its closing one
        opened = []
        for m in _LEXEME.finditer(text):
            c = m.group()[0]
            if c == "#":
                start = m.start()
                line_start = text.rfind("\n", 0, start) + 1
                before = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
                self.items.append(_Comment(start, m.group().rstrip(),
                                           trailing=text[line_start:start].strip() != "",
                                           blank=line_start > 0 and not text[before:line_start].strip()))
            elif c in "{<[":
                opened.append(m.start())
            elif c in "}>]" and opened:
                self.closes[opened.pop()] = m.start()

    def offset(self, span) -> int | None:
        if span is None or not span.line or span.line > len(self.line_starts):
            return None
        return self.line_starts[span.line - 1] + span.col - 1

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

    def place(self, lines: list) -> list[str]:
        """The lines written, [text, source offset or None, indent of a comment before it], with
        the comments: one after a token on its line goes at the end of the line written for the
        last field (or closing bracket) before it on that source line, when there is one; any
        other before the first line written for a source position after it."""
        anchors = sorted((pos, i) for i, (_, pos, _) in enumerate(lines) if pos is not None)
        keys = [pos for pos, _ in anchors]
        after: dict[int, list] = {}
        own = []
        for c in self.items:
            k = bisect.bisect_left(keys, c.offset) - 1
            if c.trailing and k >= 0 and "\n" not in self.text[keys[k]:c.offset]:
                after.setdefault(anchors[k][1], []).append(c.text)
            else:
                own.append(c)
        out: list[str] = []
        pending = iter(own)
        c = next(pending, None)
        for i, (text, pos, indent) in enumerate(lines + [["", math.inf, ""]]):
            while c is not None and pos is not None and c.offset < pos:
                if c.trailing and out:
                    out[-1] += "  " + c.text
                else:
                    if c.blank and out and out[-1]:
                        out.append("")
                    out.append(indent + c.text)
                c = next(pending, None)
            if i < len(lines):
                out.append(text + "".join("  " + t for t in after.get(i, ())))
        return out


@dataclass(slots=True)
class _Comment:
    offset: int
    text: str
    trailing: bool      # a token precedes it on its line
    blank: bool         # a blank line precedes it


def _lines(msg: Msg, indent: str, comments: _Comments | None, out: list) -> None:
    """Append msg's lines to `out` as [text, source offset or None, indent of a comment before]."""
    def offset(span):
        return comments.offset(span) if comments is not None else None
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
            if f.kind != "message":
                out.append([f"{indent}{name}: {_value_text(f, v)}", offset(span), indent])
                continue
            out.append([f"{indent}{name} {{", offset(span), indent])
            _lines(v, indent + INDENT, comments, out)
            close = comments.close_of(v, _SOURCE_NAMES.get(name, (name,))) if comments else None
            out.append([indent + "}", close, indent + INDENT])


# The field an upgraded message was written as in the source: a V2 `layer` was a V1 `layers`.
_SOURCE_NAMES = {"layer": ("layer", "layers")}


def _format_message(msg: Msg, source: str | None = None) -> str:
    """`msg` in canonical protobuf text format (see the module's docstring), with the comments of
    `source`, the text it was read from, when given."""
    if not isinstance(msg, Msg):
        raise TypeError(f"msg must be a protoseg.schema.Msg, not {type(msg).__name__}")
    if source is not None and not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    comments = _Comments(source) if source is not None else None
    lines: list = []
    _lines(msg, "", comments, lines)
    text = comments.place(lines) if comments is not None else [line[0] for line in lines]
    return "".join(line.rstrip() + "\n" for line in text)


def _value_text(f: FieldDef, v) -> str:
    """One scalar or enum value as protobuf's text format writes it."""
    if f.kind == "enum":
        return v
    if f.type == "bool":
        return "true" if v else "false"
    if f.type in ("string", "bytes"):
        return '"' + _c_escape(v.encode("utf-8", "surrogateescape")) + '"'
    if f.type in ("float", "double"):
        return float_text(v, f.type)
    return str(v)


_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("'"): "\\'",
            ord("\\"): "\\\\"}


def _c_escape(data: bytes) -> str:
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
    return fmt, _format_message(params, text)
