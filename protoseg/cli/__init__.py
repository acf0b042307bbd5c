"""The `protoseg` command line: one module per command in this package, each with
`register(subparsers)` and `run(args)`; the net options (`--input`, `--phase`, `--stage`,
`--level`) come from `options`, tables and JSON from `output`. This module holds the list of
commands and the one error boundary:

- exit 0: done;
- exit 2: bad input or usage (a ProtosegError, a file that cannot be read or written): the
  message on stderr, no traceback;
- exit 1: a bug in protoseg: a short message asking to report it (`--debug` shows the
  traceback of any error).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import ProtosegError

COMMANDS = ("shapes", "compile", "port", "inspect", "layers", "check", "sizes", "draw", "diff",
            "export", "segment", "upgrade", "fmt")

BUG_REPORT = ("this is a bug in protoseg {version}; please report it with the command and the "
              "files that caused it (run again with --debug to see the traceback)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="protoseg", description="Read Caffe nets without Caffe: "
                                     "shapes, PyTorch compilation and weight porting.")
    parser.add_argument("--version", action="version", version=f"protoseg {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of any error (for bug reports)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        p = module.register(sub)
        p.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):    # a name the terminal cannot show is escaped, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ProtosegError as e:
        if args.debug:
            raise
        print(f"protoseg: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:     # output piped into `head`
        return 0
    except OSError as e:        # a file the user named cannot be read or written: bad input
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"protoseg: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:      # noqa: BLE001 -- the boundary: anything else is a bug
        if args.debug:
            raise
        print(f"protoseg: internal error: {type(e).__name__}: {e}\n"
              f"{BUG_REPORT.format(version=__version__)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
