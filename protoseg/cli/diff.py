"""`protoseg diff`: the compiled module against a reference Caffe implementation (OpenCV's Caffe
importer), blob by blob in execution order, up to the first blob over tolerance. Imports torch.
Exit 0: every blob agrees; 1: a blob differs; 2: bad input, or no reference."""
from __future__ import annotations

import argparse

from ..schema import msg_data, msg_text
from ..text import dims
from .options import add_net_options, input_shapes, memory_size, net_state
from .output import table, to_json


def register(sub):
    p = sub.add_parser("diff", help="compare the compiled module with OpenCV's Caffe importer, "
                                    "blob by blob",
                       description="Run the compiled module and a reference (OpenCV's Caffe "
                                   "importer) on the same input and print, blob by blob in "
                                   "execution order, the largest absolute and relative "
                                   "difference, up to the first blob over tolerance: its layer, "
                                   "type and parameters. Exit 0 when every blob agrees, 1 when "
                                   "one differs.")
    add_net_options(p)
    p.add_argument("--weights", required=True, metavar="CAFFEMODEL", help="the net's weights")
    p.add_argument("--no-strict", action="store_true",
                   help="ignore layers missing on either side of the weights (Caffe's behaviour)")
    p.add_argument("--image", metavar="FILE",
                   help="the first image input from this file (BGR 0-255 as Caffe reads it, "
                        "resized to the input size, the data layer's mean_value and scale "
                        "applied) instead of random values")
    p.add_argument("--seed", type=_at_least_0(int), default=0,
                   help="seed of the random inputs, uniform in [-1, 1) (default 0)")
    p.add_argument("--rtol", type=_at_least_0(float), default=1e-4,
                   help="relative tolerance: a blob differs when max|diff| > atol + rtol * "
                        "max|reference| (default 1e-4)")
    p.add_argument("--atol", type=_at_least_0(float), default=0.0,
                   help="absolute tolerance (default 0)")
    p.add_argument("--max-memory", type=memory_size, metavar="SIZE",
                   help="the memory the run may take, e.g. 16G (default: the memory available)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--pretty", action="store_true", help="indent JSON output")
    return p


def _at_least_0(kind):
    """An argparse type: a number of `kind` >= 0 (not NaN)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value >= 0:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__} >= 0, got {text!r}")
        return value
    return parse


def run(args) -> int:
    from ..diff import diff_net
    d = diff_net(args.prototxt, args.weights, input_shapes(args), image=args.image,
                 rtol=args.rtol, atol=args.atol, seed=args.seed, strict=not args.no_strict,
                 max_memory=args.max_memory,
                 **net_state(args))
    if args.format == "json":
        print(to_json(diff_json(d), args.pretty))
    else:
        print(report(d))
    return 0 if d.ok else 1


def _num(x) -> str:
    return "-" if x is None else f"{x:.2e}"


def _note(r) -> str:
    if r.status == "shape":
        return f"the reference gives {dims(r.reference_shape)}"
    return {"ok": "", "over": "differs", "missing": "not given by the reference"}[r.status]


def report(d) -> str:
    out = [f"reference: {d.reference}"]
    out += [f"input {blob} {dims(shape)}: {how}" for blob, (shape, how) in d.inputs.items()]
    rows = [(r.layer, r.type, r.blob, dims(r.shape), _num(r.max_abs), _num(r.max_ref), _num(r.rel),
             _note(r)) for r in d.rows]
    out += ["", table(("layer", "type", "blob", "shape", "max|diff|", "max|ref|", "rel", "note"), rows,
                      right=(4, 5, 6))]
    compared = [r for r in d.rows if r.status == "ok"]
    tolerance = f"rtol {d.rtol:g}" + (f", atol {d.atol:g}" if d.atol else "")
    if d.ok:
        worst = max(compared, key=lambda r: r.rel, default=None)
        out.append(f"\nall {len(compared)} compared blobs agree ({tolerance})"
                   + (f"; the largest relative difference is {worst.rel:.1e}, at {worst.blob}"
                      if worst else ""))
        return "\n".join(out)
    f, layer = d.first, d.layer
    where = f"{layer.span.file}:{layer.span.line}: " if layer.span else ""
    out.append(f"\n{where}first difference: blob '{f.blob}' {dims(f.shape)} of layer '{f.layer}' "
               f"({f.type})")
    if f.status == "shape":
        out.append(f"  the reference gives shape {dims(f.reference_shape)}")
    else:
        out.append(f"  max|diff| {f.max_abs:.3g} = {f.rel:.3g} x max|reference| {f.max_ref:.3g} "
                   f"(tolerance {tolerance})")
    settings = " ".join(f"{k} {{ {msg_text(m)} }}" for k, m in layer.settings.items())
    out.append(f"  parameters: {settings or '(none)'}")
    out.append(f"  bottoms: {', '.join(layer.bottoms)} (every blob before it agrees)")
    if d.deviation:
        out.append(f"  known difference of the reference from Caffe here: {d.deviation} "
                   f"(docs/opencv.md)")
    return "\n".join(out)


def diff_json(d) -> dict:
    first = None
    if d.first is not None:
        l = d.layer
        first = {**_row(d.first), "line": l.span.line if l.span else None,
                 "bottoms": list(l.bottoms),
                 "params": {k: msg_data(m) for k, m in l.settings.items()},
                 "reference_deviation": d.deviation}
    return {"reference": d.reference, "rtol": d.rtol, "atol": d.atol,
            "inputs": {b: {"shape": list(s), "values": how} for b, (s, how) in d.inputs.items()},
            "ok": d.ok, "blobs": [_row(r) for r in d.rows], "first_difference": first}


def _row(r) -> dict:
    def number(x):             # JSON has no infinity (a NaN against a number)
        return "inf" if x == float("inf") else x
    return {"layer": r.layer, "type": r.type, "blob": r.blob, "shape": list(r.shape),
            "status": r.status, "max_abs": number(r.max_abs), "max_ref": r.max_ref,
            "rel": number(r.rel),
            "reference_shape": list(r.reference_shape) if r.reference_shape else None}
