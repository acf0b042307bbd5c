"""Benchmark: `protoseg segment` throughput (images/s) vs a hand-written infer.py loop, CPU.

    python bench/bench_segment.py [--images 64] [--size 500x375] [--rounds 1] [--workers 2] [--batch-size 4]

Generates `--images` random JPEGs of `--size` (seeded) and an FCN-8s caffemodel with random
weights (tests/opencv_helpers.py), then runs, each in a fresh child process, alternating (A B,
then B A, ...), `--rounds` times:

  (a) loop: FCN's infer.py as a user writes it with protoseg: `compile_net` with the caffemodel,
      then per image PIL decode, BGR minus the mean, one forward (batch 1), argmax, an indexed
      PNG with the VOC palette, all in one process;
  (b) segment: `protoseg.segment_images` (DataLoader with `--workers` decoding processes,
      batches of `--batch-size` images of one size, the same files written).

Both times include loading the caffemodel and building the module (the child reports the loop's
load time apart). The label maps of (a) and (b) of the first round are compared: at least 99.9 %
of the pixels must agree (a batch of 4 rounds differently from a batch of 1, about 1e-7 of the
scores' range, which flips the argmax where two random-weight scores nearly tie). Prints a markdown table of medians: seconds, images/s, and the ratio to (a).
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
NET = os.path.join(REPO, "prototxts", "fcn8s.prototxt")
FCN_MEAN = np.array([104.00698793, 116.66876762, 122.67891434], np.float32)


def make_inputs(folder, n, size):
    from PIL import Image
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from opencv_helpers import write_fcn_caffemodel
    images = os.path.join(folder, "images")
    os.makedirs(images)
    w, h = size
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(images, f"{i:04d}.jpg"), quality=90)
    write_fcn_caffemodel(os.path.join(folder, "fcn8s.caffemodel"), "fcn8s", seed=0)
    return images, os.path.join(folder, "fcn8s.caffemodel")


def run_loop(images, weights, out):
    """FCN's infer.py with protoseg's module."""
    import torch
    from PIL import Image

    import protoseg
    from protoseg.images import voc_palette
    start = time.perf_counter()
    model = protoseg.compile_net(NET, weights=weights)
    loaded = time.perf_counter() - start
    palette = voc_palette()
    with torch.inference_mode():
        for name in sorted(os.listdir(images)):
            x = np.asarray(Image.open(os.path.join(images, name)).convert("RGB"), np.float32)
            x = (x[:, :, ::-1] - FCN_MEAN).transpose(2, 0, 1)
            scores = model(torch.from_numpy(np.ascontiguousarray(x))[None])
            labels = Image.fromarray(scores[0].argmax(0).to(torch.uint8).numpy())
            labels.putpalette(palette)
            labels.save(os.path.join(out, os.path.splitext(name)[0] + ".png"))
    return time.perf_counter() - start, loaded


def run_segment(images, weights, out, workers, batch_size):
    import protoseg
    from protoseg.segmentation import list_images
    start = time.perf_counter()
    protoseg.segment_images(NET, weights, list_images([images]), out, workers=workers,
                            batch_size=batch_size, progress=False, log=lambda m: None)
    return time.perf_counter() - start, None


def child(args):
    os.makedirs(args.out, exist_ok=True)
    if args.child == "loop":
        total, loaded = run_loop(args.images_dir, args.weights, args.out)
    else:
        total, loaded = run_segment(args.images_dir, args.weights, args.out, args.workers, args.batch_size)
    print(json.dumps({"total": total, "loaded": loaded}))


def spawn(kind, images, weights, out, args):
    r = subprocess.run([sys.executable, __file__, "--child", kind, "--images-dir", images, "--weights",
                        weights, "--out", out, "--workers", str(args.workers), "--batch-size",
                        str(args.batch_size)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{kind} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def agreement(a, b) -> float:
    """The fraction of pixels with the same label in the two folders' label maps."""
    from PIL import Image
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        sys.exit(f"the loop wrote {names}, protoseg segment {sorted(os.listdir(b))}")
    same = total = 0
    for n in names:
        x, y = (np.asarray(Image.open(os.path.join(d, n))) for d in (a, b))
        same, total = same + int((x == y).sum()), total + x.size
    return same / total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--size", default="500x375", help="WIDTHxHEIGHT")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--child", choices=["loop", "segment"], help=argparse.SUPPRESS)
    p.add_argument("--images-dir", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    size = tuple(int(v) for v in args.size.split("x"))
    import torch
    with tempfile.TemporaryDirectory() as tmp:
        images, weights = make_inputs(tmp, args.images, size)
        times = {"loop": [], "segment": []}
        loads = []
        for r in range(args.rounds):
            for kind in (("loop", "segment") if r % 2 == 0 else ("segment", "loop")):
                out = os.path.join(tmp, f"{kind}{r}")
                result = spawn(kind, images, weights, out, args)
                times[kind].append(result["total"])
                if result["loaded"] is not None:
                    loads.append(result["loaded"])
                print(f"round {r} {kind}: {result['total']:.1f} s", file=sys.stderr)
            if r == 0:
                agree = agreement(os.path.join(tmp, "loop0"), os.path.join(tmp, "segment0"))
                if agree < 0.999:
                    sys.exit(f"the label maps of the loop and of protoseg segment differ ({agree:.5f} agree)")
    n = args.images
    base = statistics.median(times["loop"])
    print(f"{n} images {size[0]}x{size[1]}, FCN-8s, CPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{args.rounds} round(s); label maps: {agree:.6f} of the pixels agree")
    print("| run | median s | images/s | time / loop |")
    print("|---|---:|---:|---:|")
    for kind in ("loop", "segment"):
        t = statistics.median(times[kind])
        print(f"| {kind} | {t:.1f} | {n / t:.3f} | {t / base:.3f} |")
    print(f"loading the caffemodel and building the module (loop): median {statistics.median(loads):.1f} s")


if __name__ == "__main__":
    main()
