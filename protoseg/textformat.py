"""parse: protobuf text -> a generic tree of entries, each value with its file:line:col.

The grammar (grammars/prototxt.lark) is generic protobuf text format. This module only builds
data: `TextMessage` holds `Entry(name, value, span)` in file order; values are `Scalar`s (with
their lexical kind), lists of them, or nested `TextMessage`s. The schema (protoseg/schema.py)
gives them types afterwards.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import PrototxtSyntaxError, Span
from .resources import grammar_path


@dataclass(slots=True)
class Scalar:
    kind: str          # 'int', 'float', 'string', 'name' (identifier: enum, true, inf...)
    value: object      # int, float, str
    span: Span
    text: str          # as written, for messages


@dataclass(slots=True)
class TextList:
    items: list        # of Scalar or TextMessage
    span: Span


@dataclass(slots=True)
class Entry:
    name: str
    value: object      # Scalar | TextList | TextMessage
    span: Span         # where the field name is


@dataclass(slots=True)
class TextMessage:
    entries: list = field(default_factory=list)
    span: Span | None = None    # the opening brace (None for the file itself)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "?": "?"}
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body

    def one(m: re.Match) -> str:
        e = m.group(1)
        if e[0] in "xuU":
            return chr(int(e[1:], 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        if e in _ESCAPES:
            return _ESCAPES[e]
        raise ValueError(f"unknown escape sequence '\\{e}'")
    return _ESCAPE_RE.sub(one, body)


def _number(text: str) -> tuple[str, object]:
    t = text
    if re.fullmatch(r"-?0[xX][0-9a-fA-F]+", t):
        return "int", int(t, 16)
    if t[-1] in "fF" and not t.lower().startswith(("0x", "-0x")):
        return "float", float(t[:-1])
    if re.fullmatch(r"-?[0-9]+", t):
        return "int", int(t, 10)
    return "float", float(t)


class _Builder:
    """Lark callbacks: build TextMessage trees while parsing (no intermediate parse tree)."""

    def __init__(self, file: str):
        self.file = file

    def span(self, tok) -> Span:
        return Span(self.file, tok.line, tok.column)

    # values
    def string(self, toks):
        parts = []
        for t in toks:
            try:
                parts.append(_unescape(t.value[1:-1]))
            except ValueError as e:
                raise PrototxtSyntaxError(str(e), span=self.span(t)) from None
        return Scalar("string", "".join(parts), self.span(toks[0]), toks[0].value)

    def number(self, toks):
        t = toks[0]
        kind, value = _number(t.value)
        return Scalar(kind, value, self.span(t), t.value)

    def negative_name(self, toks):
        minus, name = toks
        low = name.value.lower()
        if low in ("inf", "infinity"):
            return Scalar("float", float("-inf"), self.span(minus), "-" + name.value)
        if low == "nan":
            return Scalar("float", float("nan"), self.span(minus), "-" + name.value)
        raise PrototxtSyntaxError(f"'-' must be followed by a number, not '{name.value}'",
                                  span=self.span(minus))

    def name(self, toks):
        t = toks[0]
        return Scalar("name", t.value, self.span(t), t.value)

    def list(self, toks):
        items = [t for t in toks if not hasattr(t, "type")]
        return TextList(items, self.span(toks[0]))

    def message(self, toks):
        entries = [t for t in toks[1:-1] if isinstance(t, Entry)]
        return TextMessage(entries, self.span(toks[0]))

    # fields
    def scalar_field(self, toks):
        return Entry(toks[0].value, toks[2], self.span(toks[0]))

    def message_field(self, toks):
        return Entry(toks[0].value, toks[-1], self.span(toks[0]))

    def list_field(self, toks):
        return Entry(toks[0].value, toks[2], self.span(toks[0]))

    def start(self, toks):
        return TextMessage([t for t in toks if isinstance(t, Entry)], None)


@lru_cache(maxsize=1)
def _lark():
    from lark import Lark
    with open(grammar_path("prototxt.lark"), encoding="utf-8") as f:
        grammar = f.read()
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=False,
                cache=_cache_file())


def cache_dir() -> str | None:
    """A writable folder for protoseg's caches (compiled grammar, schema), or None."""
    import os
    import tempfile
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for d in (os.path.join(base, "protoseg"), os.path.join(tempfile.gettempdir(), "protoseg-cache")):
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    return None


def _cache_file() -> str | bool:
    """Lark can cache the compiled grammar (it keys the cache by the grammar's own hash)."""
    import os
    d = cache_dir()
    if d is None:
        return False
    from . import __version__
    return os.path.join(d, f"prototxt-lark-{__version__}.cache")


_TOKEN_WORDS = {
    "NAME": "a field name", "COLON": "':'", "LBRACE": "'{'", "RBRACE": "'}'", "LANGLE": "'<'",
    "RANGLE": "'>'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "SEMICOLON": "';'",
    "NUMBER": "a number", "STRING": "a quoted string", "MINUS": "'-'", "$END": "end of file",
}


def _words(expected) -> str:
    names = sorted({_TOKEN_WORDS.get(e, e) for e in expected})
    return ", ".join(names)


def _unclosed(text: str) -> tuple[int, int, str] | None:
    """The innermost opening bracket that is never closed: (line, col, char)."""
    stack = []
    pairs = {"}": "{", ">": "<", "]": "["}
    for m in re.finditer(r'"([^"\\\n]|\\.)*"|\'([^\'\\\n]|\\.)*\'|#[^\n]*|[{}<>\[\]]', text):
        c = m.group(0)
        if c in "{<[":
            stack.append(m.start())
        elif c in pairs and stack and text[stack[-1]] == pairs[c]:
            stack.pop()
    if not stack:
        return None
    pos = stack[-1]
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col, text[pos]


def parse_text(text: str, file: str = "<string>") -> TextMessage:
    """Parse protobuf text format; raise PrototxtSyntaxError with file:line:col on bad input."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

    builder = _Builder(file)
    parser = _lark()
    try:
        tree = parser.parse(text)
        return _build(tree, builder)
    except UnexpectedCharacters as e:
        raise _char_error(e, text, file).locate(text=text) from None
    except (UnexpectedToken, UnexpectedEOF) as e:
        raise _token_error(e, text, file).locate(text=text) from None
    except PrototxtSyntaxError as e:
        raise e.locate(text=text) from None
    except VisitError as e:
        if isinstance(e.orig_exc, PrototxtSyntaxError):
            raise e.orig_exc.locate(text=text) from None
        raise


def _build(tree, b: _Builder):
    """Turn lark's tree into TextMessage data, bottom-up through the builder's callbacks
    (recursion depth = nesting depth of the file, a handful of levels)."""
    from lark import Token

    def conv(node):
        if isinstance(node, Token):
            return node
        children = [conv(c) for c in node.children]
        return getattr(b, node.data)(children)
    return conv(tree)


def _char_error(e, text: str, file: str) -> PrototxtSyntaxError:
    span = Span(file, e.line, e.column)
    rest = text[e.pos_in_stream:]
    m = re.match(r"\$\{([A-Za-z0-9_]*)\}?", rest)
    if m:
        return PrototxtSyntaxError(
            f"unfilled template variable '{m.group(0)}': this file is a template, not a net",
            span=span, hint="substitute the variable (the experiment scripts do this with sed) "
                            "or replace it with a value")
    ch = rest[:1]
    if ch in "\"'":
        return PrototxtSyntaxError("unterminated string: a quoted string must end on the same line",
                                   span=span)
    return PrototxtSyntaxError(f"unexpected character {ch!r}", span=span)


def _token_error(e, text: str, file: str) -> PrototxtSyntaxError:
    from lark.exceptions import UnexpectedEOF
    tok = getattr(e, "token", None)
    at_end = isinstance(e, UnexpectedEOF) or (tok is not None and tok.type == "$END")
    if at_end:
        open_ = _unclosed(text)
        if open_:
            line, col, ch = open_
            close = {"{": "}", "<": ">", "[": "]"}[ch]
            return PrototxtSyntaxError(
                f"'{ch}' is never closed: the file ends before its matching '{close}'",
                span=Span(file, line, col))
        lines = text.splitlines() or [""]
        return PrototxtSyntaxError(f"unexpected end of file; expected {_words(e.expected)}",
                                   span=Span(file, len(lines), len(lines[-1]) + 1))
    span = Span(file, tok.line, tok.column)
    expected = set(e.expected)
    if tok.type in ("RBRACE", "RANGLE", "RSQB") and "NAME" in expected and _unclosed(text) is None:
        return PrototxtSyntaxError(f"'{tok.value}' closes nothing: there is no open bracket here",
                                   span=span)
    if "COLON" in expected and tok.type in ("NUMBER", "STRING", "NAME", "MINUS"):
        return PrototxtSyntaxError(f"expected ':' between the field name and its value, got {tok.value!r}",
                                   span=span)
    return PrototxtSyntaxError(f"unexpected {tok.value!r}; expected {_words(expected)}", span=span)


def parse_file(path: str) -> tuple[TextMessage, str]:
    """Read and parse a file; returns (tree, text)."""
    from .errors import ProtosegError
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ProtosegError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        if raw[:8] == b"\x89PNG\r\n\x1a\n" or b"\x00" in raw[:1024]:
            raise PrototxtSyntaxError("this is a binary file, not a text .prototxt "
                                      "(a .caffemodel goes to --weights)", span=Span(path, 1, 1)) from None
        raise PrototxtSyntaxError("the file is not valid UTF-8 text", span=Span(path, line, col)) from None
    return parse_text(text, path), text
