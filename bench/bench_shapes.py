"""Benchmark: `protoseg shapes` on the largest corpus deploy net (ResNet-152) against a bare
`python -c pass`, both as fresh processes, run side by side (alternating), medians reported.

    python bench/bench_shapes.py [PROTOTXT] [--repeat N] [--against DIR]

--against DIR also times `protoseg shapes` from another checkout of protoseg (e.g. a clone of an
earlier commit), in the same alternating rounds, so a change can be compared with what it changed.

Prints a markdown table; docs/benchmarks.md records the result.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "corpus" / "resnet" / "ResNet-152-deploy.prototxt"


def timed(cmd: list, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("prototxt", nargs="?", default=str(DEFAULT if DEFAULT.exists() else
                                                        ROOT / "prototxts" / "fcn8s.prototxt"))
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--against", metavar="DIR", help="another protoseg checkout to time beside this one")
    args = ap.parse_args()

    def env_for(tree):
        return dict(os.environ, PYTHONPATH=str(tree) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env = env_for(ROOT)
    shapes = [sys.executable, "-m", "protoseg", "shapes", args.prototxt]
    bare = [sys.executable, "-c", "pass"]
    imports = [sys.executable, "-c", "import protoseg.cli, protoseg.net, protoseg.shapes"]
    timed(shapes, env)      # warm the page cache and protoseg's grammar/schema caches
    runs = {"python -c pass": [], "import protoseg": [], "protoseg shapes": []}
    other = f"protoseg shapes ({args.against})"
    if args.against:
        timed(shapes, env_for(args.against))
        runs[other] = []
    for _ in range(args.repeat):
        runs["python -c pass"].append(timed(bare, env))
        runs["import protoseg"].append(timed(imports, env))
        runs["protoseg shapes"].append(timed(shapes, env))
        if args.against:
            runs[other].append(timed(shapes, env_for(args.against)))
    base = statistics.median(runs["python -c pass"])
    lines = sum(1 for _ in open(args.prototxt, encoding="utf-8", errors="replace"))
    print(f"{Path(args.prototxt).name}: {lines} lines; {args.repeat} alternating runs, median wall time\n")
    print("| command | median s | min s | ratio to `python -c pass` |")
    print("|---|---|---|---|")
    for name, ts in runs.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {min(ts):.3f} | {m / base:.2f} |")


if __name__ == "__main__":
    main()
