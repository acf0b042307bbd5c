"""Benchmark: parsing large prototxt files -- speed and peak memory against the file's size.

    python bench/bench_large_parse.py [--layers N] [--string-mb M] [--stage parse|load|shapes]

Writes two files to a temporary folder: a net of N ReLU layers in a chain (by default 340,000
layers, about 50 MB, written the way Caffe's own tools indent), and a net whose name is one quoted
string of M MB. Each is parsed in a fresh child process (`--stage parse`: read + parse; `load`: +
schema binding and net loading; `shapes`: + every blob's shape), run --repeat times; the table gives
the median time, MB/s, and the peak memory the stage added (VmHWM after minus VmRSS before) as a
multiple of the file size. Aims (issue 12): >= 1 MB/s and <= 20x the file size for the parse.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYER = ('layer {{\n    name: "relu{i}"\n    type: "ReLU"\n    bottom: "{bottom}"\n    top: "relu{i}"\n'
         '    relu_param {{\n        negative_slope: 0.1\n    }}\n}}\n')
HEAD = ('name: "chain"\nlayer {\n    name: "data"\n    type: "Input"\n    top: "relu-1"\n'
        '    input_param {\n        shape {\n            dim: 1\n            dim: 3\n            dim: 8\n'
        '            dim: 8\n        }\n    }\n}\n')

CHILD = r"""
import json, sys, time
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
stage, path = sys.argv[1], sys.argv[2]
from protoseg.net import load_net
from protoseg.shapes import infer_shapes
from protoseg.textformat import parse_file
before = status("VmRSS")
start = time.perf_counter()
if stage == "parse":
    parse_file(path)
elif stage == "load":
    load_net(path)
else:
    infer_shapes(load_net(path))
print(json.dumps({"seconds": time.perf_counter() - start, "added": status("VmHWM") - before}))
"""


def write_chain(path: Path, layers: int) -> None:
    with open(path, "w") as f:
        f.write(HEAD)
        for i in range(layers):
            f.write(LAYER.format(i=i, bottom=f"relu{i - 1}"))


def write_long_string(path: Path, megabytes: int) -> None:
    with open(path, "w") as f:
        f.write('name: "' + "a" * (megabytes << 20) + '"\n')


def measure(stage: str, path: Path, repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, stage, str(path)], check=True,
                                      capture_output=True, text=True, env=env).stdout)
            for _ in range(repeat)]
    size = path.stat().st_size
    seconds = statistics.median(r["seconds"] for r in runs)
    return {"size": size, "seconds": seconds, "mb_per_s": size / 1e6 / seconds,
            "memory": statistics.median(r["added"] for r in runs) / size}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=340_000)
    ap.add_argument("--string-mb", type=int, default=10)
    ap.add_argument("--stage", choices=["parse", "load", "shapes"], default="parse")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        chain, string = Path(d) / "chain.prototxt", Path(d) / "string.prototxt"
        write_chain(chain, args.layers)
        write_long_string(string, args.string_mb)
        print(f"stage: {args.stage}; median of {args.repeat} fresh processes\n")
        print("| file | size MB | seconds | MB/s | peak memory added / file size |")
        print("|---|---|---|---|---|")
        for name, path in ((f"{args.layers:,} ReLU layers", chain), (f"one {args.string_mb} MB string", string)):
            r = measure(args.stage, path, args.repeat)
            print(f"| {name} | {r['size'] / 1e6:.1f} | {r['seconds']:.2f} | {r['mb_per_s']:.2f} | {r['memory']:.1f}x |")


if __name__ == "__main__":
    main()
