"""Every error protoseg raises on bad input.

Library code raises these; only the CLI turns them into stderr text and exit code 2.
Layer code raises without a location; the driver fills in ``span`` and ``layer``
so the message reads ``file:line:col: layer 'pool2' (Pooling): ...``.
"""
from __future__ import annotations

import os
import re
import unicodedata
from array import array
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Span:
    """A position in a source file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def source_line(file: str, line: int) -> str | None:
    """The text of one line of a file, or None if it cannot be read. Lines end at '\\n' only, as
    the parser counts them; bytes that are not UTF-8 come back as lone surrogates. Only regular
    files are read (a device or a pipe may never end, or be read already)."""
    if not os.path.isfile(file):
        return None
    try:
        with open(file, "rb") as f:
            for i, raw in enumerate(f, 1):
                if i == line:
                    return raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
    except OSError:
        return None
    return None


@lru_cache(maxsize=1)
def _line_starts(text: str) -> array:
    """Where each line of `text` starts (kept for the last text, for errors listed together)."""
    starts = array("q", [0])
    i = text.find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = text.find("\n", i + 1)
    return starts


EXCERPT = 200       # characters of a long source line shown around the caret


def clip(text: str, limit: int = 40) -> str:
    """A value from the user's file, for a message: at most `limit` characters, then '…'."""
    return text if len(text) <= limit else text[:limit] + "…"


_LONG_QUOTED = re.compile(r"'([^'\s]{81,})'")


def clip_quoted(message: str) -> str:
    """`message` with every quoted name longer than 80 characters clipped (a 10 MB blob name is
    named, not printed). Only names without blanks (nearly all are) are seen as names: between
    two quoted names a message has words and spaces."""
    return _LONG_QUOTED.sub(lambda m: f"'{clip(m.group(1), 80)}'", message) if len(message) > 90 else message


def printable(text: str) -> str:
    """`text` safe to print: spaces for tabs and other blanks, U+FFFD for control and format
    characters and lone surrogates (bytes that were not UTF-8), one character for one, so that
    columns stay where they were. Line breaks are kept."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else " " if c.isspace() else "\ufffd" for c in text)


def excerpt(line: str, col: int) -> tuple[str, int]:
    """The part of a source line shown under an error: at most EXCERPT characters around column
    `col`, '…' where the line is cut; and the caret's offset in it."""
    start = max(0, min(col - 1 - EXCERPT // 2, len(line) - EXCERPT))
    shown = printable(line[start:start + EXCERPT])
    caret = col - 1 - start
    if start > 0:
        shown, caret = "…" + shown, caret + 1
    if start + EXCERPT < len(line):
        shown += "…"
    return shown, caret


def width(text: str) -> int:
    """How many terminal columns `text` takes: East Asian wide and fullwidth characters two."""
    return len(text) if text.isascii() else sum(1 + (unicodedata.east_asian_width(c) in "WF") for c in text)


class ProtosegError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""

    def __init__(self, message: str, *, span: Span | None = None, layer: str | None = None,
                 layer_type: str | None = None, hint: str | None = None,
                 text: str | None = None, kind: str | None = None, blob=None, expected=None,
                 got=None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.layer = layer
        self.layer_type = layer_type
        self.hint = hint
        self.text = text  # the source text, when it did not come from a file
        # structured fields for programs: what kind of problem (e.g. "missing", "extra",
        # "mismatch" for weights), the blob concerned, what was expected and what was found
        self.kind = kind
        self.blob = blob
        self.expected = expected
        self.got = got
        self.field = field      # the layer parameter the error is about, when one is
        self.errors: list[ProtosegError] = []   # the errors one error of this class groups

    @classmethod
    def group(cls, errors: list, summary: str) -> "ProtosegError":
        """One error of this class reporting every error of `errors` (the only one when there is
        one): `except WeightsError` catches it, and `.errors` lists them."""
        if len(errors) == 1:
            return errors[0]
        err = cls(summary)
        err.errors = list(errors)
        return err

    def locate(self, span: Span | None = None, layer: str | None = None,
               layer_type: str | None = None, text: str | None = None) -> "ProtosegError":
        """Fill in location details the raiser did not know; returns self for `raise e.locate(...)`."""
        self.span = self.span or span
        self.layer = self.layer or layer
        self.layer_type = self.layer_type or layer_type
        self.text = self.text or text
        return self

    def _source_line(self) -> str | None:
        if self.span is None:
            return None
        if self.text is not None:
            starts = _line_starts(self.text)
            if not 0 < self.span.line <= len(starts):
                return None
            start = starts[self.span.line - 1]
            end = self.text.find("\n", start)
            return self.text[start:end if end >= 0 else len(self.text)].rstrip("\r")
        return source_line(self.span.file, self.span.line)

    def __str__(self) -> str:
        if self.errors:
            return "\n".join([clip_quoted(self.message)] + [str(e) for e in self.errors]
                             + ([f"hint: {clip_quoted(self.hint)}"] if self.hint else []))
        head = []
        if self.span is not None:
            head.append(f"{self.span}:")
        if self.layer is not None:
            head.append(f"layer '{clip(self.layer, 80)}'"
                        + (f" ({clip(self.layer_type, 80)}):" if self.layer_type else ":"))
        out = printable(" ".join(head + [clip_quoted(self.message)]))
        line = self._source_line()
        if line is not None:
            shown, caret = excerpt(line, self.span.col)
            out += f"\n  {shown}\n  {' ' * width(shown[:caret])}^"
        if self.hint:
            out += f"\nhint: {printable(clip_quoted(self.hint))}"
        return out


class PrototxtSyntaxError(ProtosegError):
    """The text is not valid protobuf text format."""


class SchemaError(ProtosegError):
    """A field the schema does not know, a value of the wrong type, or conflicting fields."""


class GraphError(ProtosegError):
    """Unknown bottom, top produced twice, cycle, wrong number of bottoms or tops."""


class UnsupportedLayerError(ProtosegError):
    """Layer types protoseg cannot handle (all of them listed at once)."""


class ShapeError(ProtosegError):
    """A shape rule's check failed (expected vs got, with the arithmetic)."""


class InputError(ProtosegError):
    """A net input whose shape is unknown or malformed (--input)."""


class WeightsError(ProtosegError):
    """A caffemodel that cannot be read or does not fit the net (every mismatch at once)."""


class ResourceError(ProtosegError):
    """Running the net would need more memory than it may use (checked before anything is
    allocated)."""


class ToolError(ProtosegError):
    """A program or library a command needs is missing or failed (Graphviz's `dot` for drawings,
    OpenCV for `protoseg diff`); the message says how to install it."""
