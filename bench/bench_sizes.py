"""Benchmark: `protoseg sizes`' analysis (protoseg.analysis.input_sizes, every size of 1..1024
along H, then along W) against the plain way to the same answer, one full shape pass
(protoseg.infer_shapes) per size and axis, in one process, run side by side (alternating),
medians reported; also a single shape pass, for scale.

    python bench/bench_sizes.py [PROTOTXT] [--repeat N] [--hi 1024]

Prints a markdown table; docs/benchmarks.md records the result.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protoseg.analysis import input_sizes  # noqa: E402
from protoseg.errors import ProtosegError  # noqa: E402
from protoseg.net import load_net  # noqa: E402
from protoseg.shapes import infer_shapes  # noqa: E402


def shape_passes(net, name: str, shape: tuple, hi: int) -> int:
    """The naive analysis: one shape pass per size and axis; returns how many sizes pass."""
    taken = 0
    for axis in range(2, len(shape)):
        for n in range(1, hi + 1):
            try:
                infer_shapes(net, {name: shape[:axis] + (n,) + shape[axis + 1:]})
                taken += 1
            except ProtosegError:
                pass
    return taken


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("prototxt", nargs="?", default=str(ROOT / "prototxts" / "fcn8s.prototxt"))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--hi", type=int, default=1024)
    args = ap.parse_args()
    net = load_net(args.prototxt)
    base = infer_shapes(net)
    name, shape = next(iter(base.inputs.items()))
    report = input_sizes(net, hi=args.hi)           # warm up
    # the two agree where no layer's weights fix a size (the shape pass does not hold an
    # InnerProduct's K to its weights)
    print(f"sizes taken: {sum(len(ax.accepted) for ax in report.axes)} by the analysis, "
          f"{shape_passes(net, name, shape, args.hi)} by the shape passes")

    def timed(f) -> float:
        t = time.perf_counter()
        f()
        return time.perf_counter() - t
    runs = {"one shape pass": [], f"input_sizes, 1..{args.hi} on each axis": [],
            f"{2 * args.hi} shape passes": []}
    for _ in range(args.repeat):
        runs["one shape pass"].append(timed(lambda: infer_shapes(net)))
        runs[f"input_sizes, 1..{args.hi} on each axis"].append(
            timed(lambda: input_sizes(net, hi=args.hi)))
        runs[f"{2 * args.hi} shape passes"].append(
            timed(lambda: shape_passes(net, name, shape, args.hi)))
    naive = statistics.median(runs[f"{2 * args.hi} shape passes"])
    print(f"\n{Path(args.prototxt).name}: {len(net.layers)} layers; {args.repeat} alternating "
          f"runs, median wall time\n")
    print(f"| operation | median ms | min ms | ratio to {2 * args.hi} shape passes |")
    print("|---|---|---|---|")
    for what, times in runs.items():
        m = statistics.median(times)
        print(f"| {what} | {m * 1000:.1f} | {min(times) * 1000:.1f} | {m / naive:.4f} |")


if __name__ == "__main__":
    main()
