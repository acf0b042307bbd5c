"""Benchmark: loading a caffemodel vs reading its bytes.

    python bench/bench_caffemodel_load.py [--size-mb N] [--repeats R] [--unpacked]

Writes an FCN-8s-sized caffemodel (VGG16-FCN8s blob shapes, about 134 M float32 values, 538 MB)
into a temporary directory with a small hand-written protobuf wire writer, warms the page cache,
then times in fresh child processes, alternating, ``R`` times each:

  (a) ``open(path, 'rb').read()``
  (b) ``protoseg.caffemodel.load_caffemodel(path)``

and prints a markdown table of the medians: time of (b) / time of (a), and each child's peak RSS
relative to the file size: ``VmHWM`` from /proc/self/status (includes the interpreter and, for (b),
numpy), and ``getrusage().ru_maxrss`` alongside -- on Linux that one also keeps the parent's RSS at
fork time across exec, so it can only over-report (it is the fallback where /proc is missing).
Only the operation itself is timed, not interpreter start-up or imports. The bound the loader must
meet: time ratio <= 1.5 and peak RSS < 1.5 x file size. ``--size-mb`` scales fc6 so the file has
about N MB; ``--unpacked`` writes the values unpacked (one field per float, as old files did).
The temporary file is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from protoseg import caffemodel  # noqa: E402


# -- FCN-8s layer list: (name, type, [blob shapes]) -------------------------------------------------
def fcn8s_layers(fc6_out: int = 4096) -> list[tuple[str, str, list[tuple[int, ...]]]]:
    layers: list[tuple[str, str, list[tuple[int, ...]]]] = [("input", "Input", [])]
    c_in = 3
    for stage, (c_out, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(1, n + 1):
            layers.append((f"conv{stage}_{i}", "Convolution", [(c_out, c_in, 3, 3), (c_out,)]))
            layers.append((f"relu{stage}_{i}", "ReLU", []))
            c_in = c_out
        layers.append((f"pool{stage}", "Pooling", []))
    layers += [
        ("fc6", "Convolution", [(fc6_out, 512, 7, 7), (fc6_out,)]), ("relu6", "ReLU", []),
        ("drop6", "Dropout", []),
        ("fc7", "Convolution", [(4096, fc6_out, 1, 1), (4096,)]), ("relu7", "ReLU", []),
        ("drop7", "Dropout", []),
        ("score_fr", "Convolution", [(21, 4096, 1, 1), (21,)]),
        ("upscore2", "Deconvolution", [(21, 21, 4, 4)]),
        ("score_pool4", "Convolution", [(21, 512, 1, 1), (21,)]),
        ("score_pool4c", "Crop", []), ("fuse_pool4", "Eltwise", []),
        ("upscore_pool4", "Deconvolution", [(21, 21, 4, 4)]),
        ("score_pool3", "Convolution", [(21, 256, 1, 1), (21,)]),
        ("score_pool3c", "Crop", []), ("fuse_pool3", "Eltwise", []),
        ("upscore8", "Deconvolution", [(21, 21, 16, 16)]),
        ("score", "Crop", []),
    ]
    return layers


def n_values(layers) -> int:
    return sum(int(np.prod(s)) for _, _, shapes in layers for s in shapes)


def write_caffemodel(path: str, layers, *, unpacked: bool = False, seed: int = 0) -> int:
    """The FCN-8s-shaped model with standard-normal weights, through protoseg's own writer (layer
    by layer, so at most one layer's values are in memory)."""
    rng = np.random.default_rng(seed)

    def filled():
        for name, type_, shapes in layers:
            yield name, type_, [rng.standard_normal(int(np.prod(s)), dtype=np.float32).reshape(s)
                                for s in shapes]
    return caffemodel.write_caffemodel(path, filled(), name="FCN8s-bench", packed=not unpacked)


# -- timing in fresh children ----------------------------------------------------------------------
CHILD = r"""
import json, resource, sys, time

def peak_kib():
    # VmHWM: the peak RSS of this process image. getrusage's ru_maxrss is not used as the primary
    # number because Linux carries the parent's RSS at fork over exec into it (the bench parent
    # holds numpy and the generator's buffers), so it can only over-report.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss

mode, path = sys.argv[1], sys.argv[2]
if mode == "load":
    from protoseg.caffemodel import load_caffemodel
    base = peak_kib()
    t0 = time.perf_counter()
    weights = load_caffemodel(path)
    seconds = time.perf_counter() - t0
    values = sum(a.size for blobs in weights.values() for a in blobs)
else:
    base = peak_kib()
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    seconds = time.perf_counter() - t0
    values = len(data)
print(json.dumps({"seconds": seconds, "peak_kib": peak_kib(), "base_kib": base,
                  "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "values": int(values)}))
"""


def run_child(mode: str, path: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = subprocess.run([sys.executable, "-c", CHILD, mode, path], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def warm(path: str) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=None,
                    help="scale fc6 so the file has about this many MB "
                         "(at least ~60 MB; default: real FCN-8s, 538 MB)")
    ap.add_argument("--repeats", type=int, default=7, help="runs of each child (default 7)")
    ap.add_argument("--unpacked", action="store_true", help="write unpacked floats (old-style files)")
    args = ap.parse_args(argv)

    fc6_out = 4096
    if args.size_mb is not None:
        base = n_values(fcn8s_layers(0))            # everything that does not scale with fc6
        per_out = 512 * 7 * 7 + 1 + 4096            # fc6 weight row + bias + fc7 column
        target = args.size_mb * 1e6 / (5 if args.unpacked else 4)
        fc6_out = max(1, int((target - base) / per_out))
    layers = fcn8s_layers(fc6_out)

    with tempfile.TemporaryDirectory(prefix="protoseg-bench-") as tmp:
        path = os.path.join(tmp, "fcn8s.caffemodel")
        t0 = time.perf_counter()
        size = write_caffemodel(path, layers, unpacked=args.unpacked)
        print(f"wrote {path}: {size:,} bytes, {n_values(layers):,} float32 values, "
              f"{'unpacked' if args.unpacked else 'packed'}, in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        warm(path)
        warm(path)
        results: dict[str, list[dict]] = {"read": [], "load": []}
        for i in range(args.repeats):
            for mode in (("read", "load") if i % 2 == 0 else ("load", "read")):
                r = run_child(mode, path)
                results[mode].append(r)
                print(f"  run {i + 1} {mode}: {r['seconds']:.3f} s, peak RSS {r['peak_kib'] / 1024:.0f} MiB",
                      file=sys.stderr)
        assert all(r["values"] == n_values(layers) for r in results["load"]), "wrong value count"

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results[mode])

    t_read, t_load = med("read", "seconds"), med("load", "seconds")
    rss = {m: med(m, "peak_kib") * 1024 / size for m in results}
    base = {m: med(m, "base_kib") * 1024 / size for m in results}
    maxrss = {m: med(m, "ru_maxrss") * 1024 / size for m in results}
    ratio = t_load / t_read
    ok = ratio <= 1.5 and rss["load"] < 1.5
    print(f"\nFile: {size / 1e6:.0f} MB, {n_values(layers) / 1e6:.1f} M float32 values "
          f"({'unpacked' if args.unpacked else 'packed'}); {args.repeats} runs each, medians; "
          f"Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs.\n")
    print("| operation | time (s) | time / read() | peak RSS / file size | RSS before op / file size "
          "| ru_maxrss / file size |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = (("read", "(a) `open(path,'rb').read()`", 1.0), ("load", "(b) `load_caffemodel(path)`", ratio))
    for mode, label, r in rows:
        t = t_read if mode == "read" else t_load
        print(f"| {label} | {t:.3f} | {r:.2f} | {rss[mode]:.3f} | {base[mode]:.3f} | {maxrss[mode]:.3f} |")
    print(f"\nBound: time ratio <= 1.5 and peak RSS < 1.5 x file size: {'met' if ok else 'NOT MET'}.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
