"""`protoseg compile`: a Caffe net -> a PyTorch module (a standalone .py file, its code, or a check
that running it gives every blob the inferred shape).

Registered by protoseg.cli through `add_compile_parser(sub)`. torch is imported only when the
command runs, so `protoseg shapes` stays torch-free.
"""
from __future__ import annotations

import argparse
import sys


def add_compile_parser(sub) -> argparse.ArgumentParser:
    from .cli import _add_net_args
    p = sub.add_parser("compile", help="compile a net into a PyTorch module",
                       description="Compile a Caffe net into a PyTorch module whose outputs match "
                                   "Caffe's: write it as a standalone Python file (-o), print its "
                                   "code (--print-code), or run it once and compare every blob's "
                                   "shape with the inferred one (--check).")
    _add_net_args(p)
    p.add_argument("-o", "--out-dir", metavar="DIR",
                   help="write DIR/<net>.py, a module file that needs only torch")
    p.add_argument("--print-code", action="store_true", help="print that module file")
    p.add_argument("--check", action="store_true",
                   help="run the module on random input and compare every blob's shape with the "
                        "inferred one")
    p.add_argument("--outputs", action="append", default=[], metavar="BLOB[,BLOB...]",
                   help="the blobs the module returns (default: the tops no layer reads)")
    p.add_argument("--weights", metavar="CAFFEMODEL",
                   help="with -o: also write DIR/<net>.safetensors for the module; with --check: "
                        "run it with these weights")
    p.add_argument("--no-strict", action="store_true",
                   help="with --weights: ignore layers missing on either side (Caffe's behaviour)")
    p.set_defaults(func=cmd_compile)
    return p


def _dropped_text(dropped) -> str:
    return "left out: " + "; ".join(f"{n} ({t}): {r}" for n, t, r in dropped)


def cmd_compile(args) -> int:
    from .compile import build_module, check_shapes, compile_program
    from .export import generate_code, write_module
    from .shapes import parse_input_spec

    if args.weights and not (args.check or args.out_dir):
        from .errors import ProtosegError
        raise ProtosegError("--weights goes with -o DIR (writes DIR/<net>.safetensors beside the "
                            "module) or --check (runs the module with them)")
    inputs = dict(parse_input_spec(s) for s in args.input)
    outputs = [o.strip() for spec in args.outputs for o in spec.split(",") if o.strip()] or None
    program = compile_program(args.prototxt, inputs, outputs, phase=args.phase, level=args.level,
                              stages=args.stage)
    info = sys.stderr if args.print_code else sys.stdout
    if program.dropped:
        print(_dropped_text(program.dropped), file=info)
    if args.print_code:
        sys.stdout.write(generate_code(program))
    state = None
    if args.weights:        # read and check them first: a mismatch writes nothing at all
        from .caffemodel import read_caffemodel
        from .port import match_weights
        state = match_weights(program, read_caffemodel(args.weights), strict=not args.no_strict)
    if args.out_dir:
        path = write_module(program, args.out_dir)
        print(f"wrote {path} (class {program.class_name})", file=info)
        if state is not None:
            import json
            import os

            from . import __version__
            from .port import write_state_dict
            weights_path = os.path.splitext(path)[0] + ".safetensors"
            write_state_dict(state, weights_path, protect=(args.weights, args.prototxt), metadata={
                "producer": f"protoseg {__version__}", "prototxt": os.path.basename(args.prototxt),
                "caffemodel": os.path.basename(args.weights),
                "caffe_layer_names": json.dumps({st.attr: st.layer.name for st in program.steps})})
            print(f"wrote {weights_path} ({len(state)} tensors; load with "
                  f"model.load_state_dict(safetensors.torch.load_file(...)))", file=info)
    if args.check:
        model = build_module(program)
        if state is not None:
            import torch
            model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
        checked, bad = check_shapes(model)
        if bad:
            for name, layer, want, got in bad:
                print(f"protoseg: shape mismatch at {name} ({layer}): inferred {want}, "
                      f"executed {got}", file=sys.stderr)
            return 1
        print(f"check: ok, {checked} values have their inferred shapes "
              f"({', '.join(f'{i.blob} {tuple(i.shape)}' for i in program.inputs)})", file=info)
    if not (args.print_code or args.out_dir or args.check):
        print(f"{program.class_name}: {len(program.steps)} layers compiled; inputs "
              + ", ".join(f"{i.blob} {tuple(i.shape)}" for i in program.inputs) + "; outputs "
              + ", ".join(b for b, _ in program.outputs))
        print("use -o DIR to write the module, --print-code to see it, --check to run it")
    return 0
