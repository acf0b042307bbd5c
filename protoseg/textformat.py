"""parse: protobuf text -> a generic tree of entries, each value with its file:line:col.

The language is protobuf's text format as Caffe reads it: protobuf's C++ tokenizer and text parser
(io/tokenizer.cc, text_format.cc) are the reference, and grammars/prototxt.lark states the same
grammar (the tests check this parser against it). This module only builds data: `TextMessage`
holds `Entry(name, value, span)` in file order; values are `Scalar`s (with their lexical kind),
lists of them, or nested `TextMessage`s. The schema (protoseg/schema.py) gives them types.

The parser is hand-written (one regular expression for the tokens, recursive descent for the
grammar) for speed: on a 5 MB net, lark's LALR parser building these same nodes read 0.45 MB/s, this
one 1.7 MB/s, side by side (bench/bench_large_parse.py measures this one).
"""
from __future__ import annotations

import contextlib
import gc
import re
import sys
from dataclasses import dataclass

from .errors import ProtosegError, PrototxtSyntaxError, Span, clip


class _Located:
    """A node of the tree knows its file, line and column; its `span` is made when asked for (a
    large file has millions of nodes, and most spans are never shown)."""

    __slots__ = ()

    @property
    def span(self) -> Span:
        return Span(self.file, self.line, self.col)


@dataclass(slots=True)
class Scalar(_Located):
    kind: str          # 'int', 'float', 'string', 'name' (identifier: enum, true, inf...)
    value: object      # int (None: beyond 64 bits), float, str
    text: str          # as written, for messages ('-' included)
    file: str
    line: int
    col: int


@dataclass(slots=True)
class TextList(_Located):
    items: list        # of Scalar or TextMessage
    file: str
    line: int
    col: int


@dataclass(slots=True)
class Entry(_Located):
    name: str
    value: object      # Scalar | TextList | TextMessage
    file: str          # where the field name is
    line: int
    col: int


@dataclass(slots=True)
class TextMessage(_Located):
    entries: list
    file: str          # where the opening brace is (line 0 for the file itself)
    line: int = 0
    col: int = 0

    @property
    def span(self) -> Span | None:
        return Span(self.file, self.line, self.col) if self.line else None


MAX_DEPTH = 100          # nested messages: protobuf's default recursion limit (of its binary parser)
MAX_FILE_BYTES = 256 << 20   # read from a device or a pipe at most; real nets are a few MB

# One token per match, after skipping whitespace and comments (inside a lookahead, so that the
# skip is never undone to find a token inside a comment). Numbers follow protobuf's tokenizer: a
# leading 0 means octal, "0x" hex; a number may not run into a letter or a '.'.
_TOKEN = re.compile(r"""
    (?=(?P<skip>(?:[ \t\n\v\f\r]+|\#[^\n]*)*))(?P=skip)
    (?:
      (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<int>(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(?![A-Za-z0-9_.]))
    | (?P<float>(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*(?:[eE][+-]?[0-9]+)?[fF]?|[eE][+-]?[0-9]+[fF]?|[fF])
                 |\.[0-9]+(?:[eE][+-]?[0-9]+)?[fF]?)(?![A-Za-z0-9_.]))
    | (?P<badnumber>\.?[0-9](?:[eE][+-]|[A-Za-z0-9_.])*)
    | (?P<string>"[^"\\\n]*(?:\\[^\n][^"\\\n]*)*"|'[^'\\\n]*(?:\\[^\n][^'\\\n]*)*')
    | (?P<symbol>[{}<>\[\]:,;-])
    | (?P<end>\Z)
    )""", re.X)
_SKIP = re.compile(r"(?:[ \t\n\v\f\r]+|#[^\n]*)*")
_CLOSE = {"{": "}", "<": ">", "[": "]"}


class _Parser:
    def __init__(self, text: str, file: str):
        self.text, self.file = text, file
        self.tokens = self._scan()
        self.open: list = []         # (bracket, line, col) of each bracket not yet closed
        self.depth = 0               # messages open
        self.advance()

    # -- tokens ----------------------------------------------------------------------------------
    def _scan(self):
        """(kind, text, line, col) for each token; kind is a symbol itself for '{', ':'..."""
        text, match, count, rfind = self.text, _TOKEN.match, self.text.count, self.text.rfind
        pos, line, line_start = 0, 1, 0
        while True:
            m = match(text, pos)
            if m is None:
                start = _SKIP.match(text, pos).end()
            else:
                kind = m.lastgroup
                start = m.start(kind)
                if kind == "end":       # the end of the last line, not after its newline
                    start -= text.endswith("\n")
            newlines = count("\n", pos, start)
            if newlines:
                line += newlines
                line_start = rfind("\n", pos, start) + 1
            if m is None:
                raise self._bad_character(start, line, start - line_start + 1)
            value = m.group(kind)
            if kind == "symbol":
                kind = value
            elif kind == "badnumber":
                raise PrototxtSyntaxError(_bad_number(value),
                                          span=Span(self.file, line, start - line_start + 1))
            yield kind, value, line, start - line_start + 1
            pos = m.end()

    def advance(self):
        self.kind, self.value, self.line, self.col = next(self.tokens)

    def error(self, message: str, line: int = 0, col: int = 0) -> PrototxtSyntaxError:
        """An error at the current token (or at line:col); at the end of the file, an error at
        the innermost bracket still open."""
        if self.kind == "end" and self.open and not line:
            bracket, line, col = self.open[-1]
            message = f"'{bracket}' is never closed: the file ends before its matching '{_CLOSE[bracket]}'"
        return PrototxtSyntaxError(message, span=Span(self.file, line or self.line, col or self.col))

    def shown(self) -> str:
        return "end of file" if self.kind == "end" else repr(clip(self.value))

    def _bad_character(self, pos: int, line: int, col: int) -> PrototxtSyntaxError:
        span = Span(self.file, line, col)
        rest = self.text[pos:pos + 200]
        m = re.match(r"\$\{([A-Za-z0-9_]*)\}?", rest)
        if m:
            return PrototxtSyntaxError(
                f"unfilled template variable '{m.group(0)}': this file is a template, not a net",
                span=span, hint="substitute the variable (the experiment scripts do this with sed) "
                                "or replace it with a value")
        ch = rest[0]
        if ch in "\"'":
            return PrototxtSyntaxError("unterminated string: a quoted string must end on the same line",
                                       span=span)
        if "\udc80" <= ch <= "\udcff":
            return PrototxtSyntaxError(f"byte 0x{ord(ch) - 0xDC00:02x} is not UTF-8 text (protobuf "
                                       "reads .prototxt files as UTF-8)", span=span)
        if ch == "\ufeff" and pos == 0:
            return PrototxtSyntaxError("the file starts with a byte-order mark, which protobuf's text "
                                       "parser (and so Caffe) rejects: save it as UTF-8 without BOM",
                                       span=span)
        return PrototxtSyntaxError(f"unexpected character {ch!r}", span=span)

    # -- grammar ---------------------------------------------------------------------------------
    def fields(self, close: str) -> list:
        """Fields up to the token `close` ('}', '>' or 'end')."""
        entries = []
        while self.kind == "name":
            entries.append(self.field())
            if self.kind == "," or self.kind == ";":
                self.advance()
        if self.kind == close:
            return entries
        if self.kind in ("}", ">", "]") and not self.open:
            raise self.error(f"'{self.kind}' closes nothing: there is no open bracket here")
        if self.kind in ("}", ">", "]"):
            bracket, line, col = self.open[-1]
            raise self.error(f"'{self.kind}' does not close the '{bracket}' of line {line}, "
                             f"column {col}; expected '{close}'")
        raise self.error(f"unexpected {self.shown()}; expected a field name"
                         + (f" or '{close}'" if close != "end" else ""))

    def field(self) -> Entry:
        name, line, col = sys.intern(self.value), self.line, self.col   # few names, many fields
        self.advance()
        colon = self.kind == ":"
        if colon:
            self.advance()
        kind = self.kind
        if kind == "{" or kind == "<":
            return Entry(name, self.message(), self.file, line, col)
        if kind == "[":
            return Entry(name, self.list(colon), self.file, line, col)
        if not colon:
            if kind in ("name", "int", "float", "string", "-"):
                raise self.error(f"expected ':' between the field name and its value, got {self.shown()}")
            raise self.error(f"unexpected {self.shown()} after field name '{name}'; expected ':' or '{{'")
        return Entry(name, self.scalar(), self.file, line, col)

    def message(self) -> TextMessage:
        bracket, line, col = self.kind, self.line, self.col
        if self.depth == MAX_DEPTH:
            raise self.error(f"messages nested more than {MAX_DEPTH} deep (protobuf's default "
                             "recursion limit)")
        self.open.append((bracket, line, col))
        self.depth += 1
        self.advance()
        entries = self.fields(_CLOSE[bracket])
        self.open.pop()
        self.depth -= 1
        self.advance()
        return TextMessage(entries, self.file, line, col)

    def list(self, colon: bool) -> TextList:
        line, col = self.line, self.col
        self.open.append(("[", line, col))
        self.advance()
        items = []
        if self.kind != "]":
            while True:
                items.append(self.message() if self.kind == "{" or self.kind == "<" else self.scalar())
                if self.kind == "]":
                    break
                if self.kind != ",":
                    raise self.error(f"unexpected {self.shown()} in a list; expected ',' or ']'")
                self.advance()
        self.open.pop()
        self.advance()
        if not colon and any(isinstance(i, Scalar) for i in items):
            raise self.error("expected ':' before a list of values", line, col)
        return TextList(items, self.file, line, col)

    def scalar(self) -> Scalar:
        kind, text, line, col = self.kind, self.value, self.line, self.col
        if kind == "string":
            return self.string()
        if kind not in ("int", "float", "name", "-"):
            raise self.error(f"unexpected {self.shown()}; expected a value")
        self.advance()
        if kind == "int":
            return Scalar("int", _int_value(text), text, self.file, line, col)
        if kind == "float":
            return Scalar("float", float(text.rstrip("fF")), text, self.file, line, col)
        if kind == "name":
            text = sys.intern(text)
            return Scalar("name", text, text, self.file, line, col)
        return self.negative(line, col)

    def negative(self, line: int, col: int) -> Scalar:
        """'-' then a number, or inf / infinity / nan (any case): protobuf's tokenizer has no
        negative numbers, the sign is a token of its own."""
        kind, text = self.kind, self.value
        if kind == "int":
            value = _int_value(text)
            value = None if value is None else -value
        elif kind == "float":
            value = -float(text.rstrip("fF"))
        elif kind == "name" and text.lower() in ("inf", "infinity", "nan"):
            kind, value = "float", -float(text.lower().replace("infinity", "inf"))
        else:
            raise self.error(f"'-' must be followed by a number, not {self.shown()}", line, col)
        self.advance()
        return Scalar(kind, value, "-" + text, self.file, line, col)

    def string(self) -> Scalar:
        """Adjacent quoted strings concatenate; escapes give bytes, which must be UTF-8."""
        first, line, col = self.value, self.line, self.col
        self.advance()
        body = first[1:-1]
        if self.kind != "string" and body.isascii() and "\\" not in body:
            return Scalar("string", body, first, self.file, line, col)
        parts = [(body, line, col)]
        while self.kind == "string":
            parts.append((self.value[1:-1], self.line, self.col))
            self.advance()
        data = b"".join(self._unescape(*part) for part in parts)
        try:
            return Scalar("string", data.decode("utf-8"), first, self.file, line, col)
        except UnicodeDecodeError as e:
            raise self._not_utf8(parts, e.start) from None

    def _unescape(self, body: str, line: int, col: int, trace: list | None = None) -> bytes:
        """The bytes of one string literal, escapes resolved as protobuf's tokenizer does (a
        \\u head surrogate followed by a \\u trail surrogate makes one character). Escapes that
        C++ protobuf would wrap or turn into invalid UTF-8 are refused. `trace` collects
        (output offset, source offset) at the start of each piece, to locate errors."""
        try:
            raw = body.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as e:    # only text given as a str can hold such a character
            raise PrototxtSyntaxError(f"character U+{ord(body[e.start]):04X} is a lone surrogate, not "
                                      "text", span=Span(self.file, line, col + 1 + e.start)) from None
        out = bytearray()
        pos = 0
        for m in _ESCAPE.finditer(raw):
            if m.start() < pos:          # the trail surrogate of a pair, already used
                continue
            if trace is not None:
                trace.extend([(len(out), pos), (len(out) + m.start() - pos, m.start())])
            out += raw[pos:m.start()]
            pos = m.end()
            octal, hex_, code, simple = m.group("octal", "hex", "code", "simple")
            if simple is not None:
                out += _SIMPLE_ESCAPES[simple]
            elif octal is not None:
                if int(octal, 8) > 0o377:
                    raise self._bad_escape(raw, m, line, col, "octal escapes go up to \\377")
                out.append(int(octal, 8))
            elif hex_ is not None:
                out.append(int(hex_, 16))
            elif code is not None:
                point = int(code[1:], 16)
                trail = _TRAIL.match(raw, pos) if 0xD800 <= point < 0xDC00 else None
                if trail:
                    point = 0x10000 + ((point - 0xD800) << 10) + int(trail.group(1), 16) - 0xDC00
                    pos = trail.end()
                elif 0xD800 <= point < 0xE000:
                    raise self._bad_escape(raw, m, line, col, "a lone UTF-16 surrogate is not a "
                                           "character (a pair \\ud83d\\ude00 is)")
                elif point > 0x10FFFF:
                    raise self._bad_escape(raw, m, line, col, "beyond U+10FFFF")
                out += chr(point).encode("utf-8")
            else:
                raise self._bad_escape(raw, m, line, col)
        if trace is not None:
            trace.append((len(out), pos))
        out += raw[pos:]
        return bytes(out)

    def _bad_escape(self, raw: bytes, m, line: int, col: int, why: str = "") -> PrototxtSyntaxError:
        written = m.group().decode("utf-8", "surrogateescape")
        return PrototxtSyntaxError(f"invalid escape {written}" + (f": {why}" if why else ""),
                                   span=Span(self.file, line, _column(raw, m.start(), col)))

    def _not_utf8(self, parts: list, bad: int) -> PrototxtSyntaxError:
        """Locate output byte `bad` of a string that is not UTF-8 after its escapes."""
        for body, line, col in parts:
            trace: list = []
            data = self._unescape(body, line, col, trace)
            if bad < len(data):
                out_at, src_at = max((o, s) for o, s in trace if o <= bad)
                raw = body.encode("utf-8", "surrogateescape")
                escaped = raw[src_at:src_at + 1] == b"\\"
                where = src_at if escaped else src_at + bad - out_at
                what = "its escapes give" if escaped else "it holds"
                return PrototxtSyntaxError(
                    f"this string is not valid UTF-8: {what} byte 0x{data[bad]:02x} here (protobuf "
                    "reads string fields as UTF-8)", span=Span(self.file, line, _column(raw, where, col)))
            bad -= len(data)
        raise AssertionError("the bad byte lies in one of the parts")


_ESCAPE = re.compile(rb"""\\(?:(?P<octal>[0-7]{1,3}) | [xX](?P<hex>[0-9a-fA-F]{1,2})
                              | (?P<code>u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})
                              | (?P<simple>[abfnrtv\\?'"]) | [xXuU][0-9a-fA-F]* | .?)""", re.X | re.S)
_TRAIL = re.compile(rb"\\u([dD][c-fC-F][0-9a-fA-F]{2})")
_SIMPLE_ESCAPES = {b: c.encode() for b, c in zip(
    (b"a", b"b", b"f", b"n", b"r", b"t", b"v", b"\\", b"?", b"'", b'"'),
    ("\a", "\b", "\f", "\n", "\r", "\t", "\v", "\\", "?", "'", '"'))}


def _column(raw: bytes, offset: int, col: int) -> int:
    """The column of byte `offset` of a string literal's body whose quote is at `col`."""
    return col + 1 + len(raw[:offset].decode("utf-8", "surrogateescape"))


def _int_value(text: str) -> int | None:
    """An integer literal's value, or None beyond 64 bits (protobuf's tokenizer cannot read it)."""
    if text[:2] in ("0x", "0X"):
        value = int(text, 16)
    elif text[0] == "0":
        value = int(text, 8)
    elif len(text) > 20:        # more than 2**64 has: and int() would refuse 4,300 digits
        return None
    else:
        value = int(text)
    return value if value < 2**64 else None


_HEX_PREFIX = re.compile(r"0[xX][0-9a-fA-F]*")
_OCTAL_PREFIX = re.compile(r"0[0-7]*")
_DECIMAL_PREFIX = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?(?P<exponent>[0-9]*))?[fF]?")


def _bad_number(text: str) -> str:
    """Why a number-like token is not a number, in the words of protobuf's tokenizer: read the
    longest number it starts with as the tokenizer does, then look at what follows. (Each pattern
    reads a run of digits one way only: a long token costs linear time.)"""
    integer = text[:2] in ("0x", "0X") or (text[0] == "0" and text[1:2].isdigit())     # hex, octal
    if text[:2] in ("0x", "0X"):
        end = _HEX_PREFIX.match(text).end()
        whole, why = end > 2, "'0x' must be followed by hex digits"
    elif integer:
        end = _OCTAL_PREFIX.match(text).end()
        whole, why = not text[end:end + 1].isdigit(), "a number starting with 0 is octal, and 8 and 9 are not octal digits"
    else:
        m = _DECIMAL_PREFIX.match(text)
        end = m.end()
        whole, why = m.group("exponent") != "", "'e' must be followed by an exponent"
    if whole:
        why = ("a number must be followed by a space or a symbol" if text[end:end + 1] != "." else
               "hex and octal numbers must be integers" if integer else
               "a number has at most one decimal point, before its exponent")
    return f"invalid number {clip(text)!r}: {why}"


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for a while: the trees and messages built from a
    file have no reference cycles, and on a large file the collector's passes over millions of
    new objects took as long as the parse (and the schema binding) themselves."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def parse_text(text: str, file: str = "<string>") -> TextMessage:
    """Parse protobuf text format; raise PrototxtSyntaxError with file:line:col on bad input."""
    try:
        with collector_paused():
            return TextMessage(_Parser(text, file).fields("end"), file)
    except PrototxtSyntaxError as e:
        raise e.locate(text=text) from None


def read_text(path: str) -> str:
    """A .prototxt file's text. Bytes that are not UTF-8 become lone surrogates (the
    'surrogateescape' error handler) so that comments may hold them; the tokenizer refuses them
    anywhere else. Devices and pipes are read up to MAX_FILE_BYTES."""
    chunks, size = [], 0
    try:
        with open(path, "rb") as f:
            while size <= MAX_FILE_BYTES:
                chunk = f.read(min(1 << 20, MAX_FILE_BYTES + 1 - size))
                if not chunk:
                    break
                if not chunks:
                    _check_text_start(path, chunk)
                chunks.append(chunk)
                size += len(chunk)
    except OSError as e:
        raise ProtosegError(f"{path}: cannot read: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise ProtosegError(f"{path}: more than {MAX_FILE_BYTES >> 20} MiB: too large for a .prototxt "
                            "(protoseg stops reading here)")
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def _check_text_start(path: str, head: bytes):
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise PrototxtSyntaxError(f"{path}: this file is UTF-16 text; protobuf (and so Caffe) reads "
                                  ".prototxt files as UTF-8: save it as UTF-8")
    if head[:8] == b"\x89PNG\r\n\x1a\n" or b"\x00" in head[:1024]:
        raise PrototxtSyntaxError(f"{path}: this is a binary file, not a text .prototxt "
                                  "(a .caffemodel goes to --weights)")


def parse_file(path: str) -> tuple[TextMessage, str]:
    """Read and parse a file; returns (tree, text)."""
    text = read_text(path)
    return parse_text(text, path), text


def cache_dir() -> str | None:
    """A writable folder for protoseg's caches (the parsed schema), or None."""
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
