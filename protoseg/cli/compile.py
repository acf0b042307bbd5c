"""`protoseg compile`: a Caffe net -> a PyTorch module (a standalone .py file, its code, or a check
that running it gives every blob the inferred shape). Only --check imports torch."""
from __future__ import annotations

import sys

from ..errors import ProtosegError
from ..text import plural
from .options import add_net_options, add_outputs_option, memory_size, output_names, plan


def register(sub):
    p = sub.add_parser("compile", help="compile a net into a PyTorch module",
                       description="Compile a Caffe net into a PyTorch module whose outputs match "
                                   "Caffe's: write it as a standalone Python file (-o), print its "
                                   "code (--print-code), or run it once and compare every blob's "
                                   "shape with the inferred one (--check).")
    add_net_options(p)
    p.add_argument("-o", "--out-dir", metavar="DIR",
                   help="write DIR/<net>.py, a module file that needs only torch")
    p.add_argument("--print-code", action="store_true", help="print that module file")
    p.add_argument("--check", action="store_true",
                   help="run the module on random input and compare every blob's shape with the "
                        "inferred one")
    add_outputs_option(p)
    p.add_argument("--weights", metavar="CAFFEMODEL",
                   help="with -o: also write DIR/<net>.safetensors for the module; with --check: "
                        "run it with these weights")
    p.add_argument("--no-strict", action="store_true",
                   help="with --weights: ignore layers missing on either side (Caffe's behaviour)")
    p.add_argument("--max-memory", type=memory_size, metavar="SIZE",
                   help="with --check: the memory the run may take, e.g. 16G (default: the memory "
                        "available); a net that needs more is refused before anything runs")
    p.add_argument("--optimize", action="store_true",
                   help="the inference mode: BatchNorm/Scale/Bias/Power folded into the "
                        "convolutions (and into the weights), identities dropped, channels_last")
    return p


def run(args) -> int:
    from ..backends.source import generate_code
    from ..export import write_module
    from ..weights import state_dict

    if args.weights and not (args.check or args.out_dir):
        raise ProtosegError("--weights goes with -o DIR (writes DIR/<net>.safetensors beside the "
                            "module) or --check (runs the module with them)")
    p = plan(args, output_names(args), args.optimize)
    info = sys.stderr if args.print_code else sys.stdout
    if args.optimize:
        folded = sum(len(s.folded) for s in p.steps)
        print(f"optimized: {plural(folded, 'layer')} folded into the convolutions"
              + (", channels_last" if p.channels_last else ""), file=info)
    if p.dropped:
        print("left out: " + "; ".join(f"{n} ({t}): {r}" for n, t, r in p.dropped), file=info)
    if args.print_code:
        sys.stdout.write(generate_code(p))
    # the weights are read and checked first: a mismatch writes nothing at all
    state = state_dict(p, args.weights, strict=not args.no_strict)
    if not (args.weights or state):     # no caffemodel, and no blobs in the prototxt
        state = None
    if args.out_dir:
        paths = write_module(p, args.out_dir, state, prototxt=args.prototxt, caffemodel=args.weights)
        print(f"wrote {paths[0]} (class {p.class_name})", file=info)
        if state is not None:
            print(f"wrote {paths[1]} ({len(state)} tensors; load with "
                  f"model.load_state_dict(safetensors.torch.load_file(...)))", file=info)
    if args.check:
        return _check(p, state, info, args.max_memory)
    if not (args.print_code or args.out_dir):
        print(f"{p.class_name}: {len(p.steps)} layers compiled; inputs "
              + ", ".join(f"{i.blob} {tuple(i.shape)}" for i in p.inputs) + "; outputs "
              + ", ".join(b for b, _ in p.outputs))
        print("use -o DIR to write the module, --print-code to see it, --check to run it")
    return 0


def _check(p, state, info, max_memory) -> int:
    import torch

    from ..backends.fx import build_module
    from ..compile import check_shapes
    from ..plan import check_memory
    check_memory(p, max_memory)
    model = build_module(p)
    if state is not None:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    checked, bad = check_shapes(model)
    if bad:
        for name, layer, want, got in bad:
            print(f"protoseg: shape mismatch at {name} ({layer}): inferred {want}, "
                  f"executed {got}", file=sys.stderr)
        return 1
    runtime = (f"; the {len(p.runtime)} computed from detections or proposals by their number of "
               f"axes only (their sizes depend on the data)" if p.runtime else "")
    print(f"check: ok, {checked} values have their inferred shapes "
          f"({', '.join(f'{i.blob} {tuple(i.shape)}' for i in p.inputs)}){runtime}", file=info)
    return 0
