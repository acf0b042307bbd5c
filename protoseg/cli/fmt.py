"""`protoseg fmt`: a prototxt in canonical form (protoseg/textwriter.py), its comments kept, on
stdout, into a file, or in place. Imports no torch."""
from __future__ import annotations

import sys

from ..files import Outputs


def register(sub):
    p = sub.add_parser("fmt", help="print a prototxt in canonical form, its comments kept",
                       description="Print a net's prototxt in canonical form: two-space indent, one "
                                   "field per line, strings and numbers as protobuf's text format "
                                   "writes them, the fields in the file's order, the comments "
                                   "kept. Running it on its own output changes nothing.")
    add_output_options(p)
    return p


def add_output_options(p) -> None:
    """The prototxt, and where the result goes (stdout by default): --output or --in-place."""
    p.add_argument("prototxt", help="the net definition (.prototxt)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="FILE", help="write FILE (never the input itself)")
    where.add_argument("--in-place", action="store_true", help="rewrite the input file")


def write_result(args, text: str) -> str | None:
    """Print `text`, or write it whole to --output (not the input) or over the input with
    --in-place; returns the path written, None for stdout."""
    data = text.encode("utf-8", "surrogateescape")      # a comment's non-UTF-8 bytes as they were
    if not (args.output or args.in_place):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        return None
    path = args.prototxt if args.in_place else args.output
    with Outputs() as out:
        out.add(path, lambda tmp: _write(tmp, data), protect=[] if args.in_place else [args.prototxt])
    return path


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def run(args) -> int:
    from ..textwriter import format_prototxt
    text = format_prototxt(args.prototxt)
    path = write_result(args, text)
    if path is not None:
        print(f"wrote {path}: {text.count(chr(10))} lines")
    return 0
