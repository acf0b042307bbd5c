"""The options every command that reads a net takes, defined once."""
from __future__ import annotations

import argparse

from ..shapes import parse_input_spec


def add_net_options(p: argparse.ArgumentParser, *, prototxt: str = "positional") -> None:
    """The prototxt (positional, or `--prototxt` with prototxt="option"), --input, --phase,
    --stage and --level."""
    if prototxt == "positional":
        p.add_argument("prototxt", help="the net definition (.prototxt)")
    else:
        p.add_argument("--prototxt", required=True, help="the net definition (.prototxt)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=N,C,H,W",
                   help="set or override the shape of a net input or data-layer top (repeatable)")
    p.add_argument("--phase", default="test", choices=["test", "train"], type=str.lower,
                   help="which phase's layers to keep (default: test)")
    p.add_argument("--stage", action="append", default=[], help="add a net state stage (repeatable)")
    p.add_argument("--level", type=int, default=0, help="net state level (default 0)")


def memory_size(text: str) -> int:
    """An argparse type: '16G', '512M', bytes."""
    from ..text import parse_bytes
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_outputs_option(p: argparse.ArgumentParser, what: str = "module") -> None:
    p.add_argument("--outputs", action="append", default=[], metavar="BLOB[,BLOB...]",
                   help=f"the blobs the {what} returns (default: the tops no layer reads)")


def output_names(args) -> list | None:
    """--outputs BLOB[,BLOB...] (repeatable) as a list, None when not given."""
    return [o.strip() for spec in args.outputs for o in spec.split(",") if o.strip()] or None


def input_shapes(args) -> dict:
    """--input NAME=N,C,H,W (repeatable) as {name: shape}."""
    return dict(parse_input_spec(s) for s in args.input)


def net_state(args) -> dict:
    """The keyword arguments of load_net / plan_net for --phase, --stage and --level."""
    return {"phase": args.phase, "level": args.level, "stages": args.stage}


def load_shapes(args):
    """Load the net and infer its shapes with the net options."""
    from ..net import load_net
    from ..shapes import infer_shapes
    net = load_net(args.prototxt, **net_state(args))
    return infer_shapes(net, input_shapes(args))


def plan(args, outputs=None, optimize=False):
    """Plan the net's module with the net options (optimize: the inference mode's plan)."""
    from ..optimize import optimize_plan
    from ..plan import plan_net
    p = plan_net(args.prototxt, input_shapes(args), outputs, **net_state(args))
    return optimize_plan(p) if optimize else p
