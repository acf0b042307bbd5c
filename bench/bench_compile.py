"""Benchmark: the compiled FCN-8s (`protoseg.compile_net("prototxts/fcn8s.prototxt")`) against a
hand-written PyTorch FCN-8s (bench/fcn8s_reference.py) with the same weights, and OpenCV's Caffe
importer (cv2.dnn.readNetFromCaffe) on the same prototxt and the same weights as a caffemodel.

    python bench/bench_compile.py [--size 500] [--repeats 7] [--warmup 2] [--mem-runs 3]
                                  [--threads N] [--seed 0] [--no-opencv] [--profile] [--json PATH]

What it does, in order:

1. Weights, seeded: He-normal convolutions (std sqrt(2 / fan_in), so activations keep their scale
   through 15 ReLU layers), small random biases, and FCN's bilinear upsampling kernels for the
   three deconvolutions. They are written as a caffemodel (a small wire writer below: NetParameter
   field 100 = layer {1 name, 2 type, 7 blobs {7 shape {1 packed int64 dims}, 5 packed float
   data}}) into a temporary directory, removed at the end.
2. Models: the compiled module loads that caffemodel through protoseg
   (`compile_net(..., weights=path)`: strict matching); the hand-written FCN8s gets the compiled
   module's state_dict through its key map; OpenCV reads the prototxt and the caffemodel.
3. Outputs are compared before anything is timed: compiled vs hand-written must agree to float32
   rounding (they run the same torch kernels: in practice bit for bit), OpenCV within 1e-4 of
   the output's range (other convolution code).
4. Time: one forward at 1x3xSIZExSIZE on CPU in float32 under `torch.inference_mode()`, with
   torch.set_num_threads (and cv2.setNumThreads) fixed to the usable cores. Each round runs
   A B O O B A (A, B: compiled and hand-written, swapped every round; O: OpenCV), so each
   round gives a compiled / hand-written ratio in which a linear drift of the machine's speed
   cancels (this machine is shared: single forwards vary by 2-3x). `--warmup` rounds are
   dropped, then `--repeats` rounds. Reported: the median of the per-round ratios (the bound
   is checked on it), and each model's median and min time.
5. Peak memory: each model in its own fresh child process (this file with --child), `--mem-runs`
   times each, alternating. The child builds its model, collects garbage and trims the malloc
   heap, resets the kernel's high-water mark (writing 5 to /proc/self/clear_refs), reads VmRSS
   as the baseline, runs one forward and reads VmHWM: peak = VmHWM - baseline (the model's own
   weights are in the baseline). That is repeated for a second forward in the same child
   (steady state: caches and one-time allocations made). Medians over the runs. Every child
   runs twice: under glibc's default malloc settings (what a user gets; the bound is checked
   on it) and with MALLOC_MMAP_THRESHOLD_=131072, under which every tensor of 128 KiB or more
   is returned to the kernel when freed, so that VmHWM follows the live tensors and not what
   the heap happens to keep (see MALLOC below).
6. `--profile`: torch.profiler over one forward of each torch model, the top operators by self
   CPU time side by side (to see where a difference comes from).

Bound: compiled within 5 % of hand-written in time, peak memory within 10 %.
Prints a markdown table (and writes JSON with --json).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FCN8S = os.path.join(REPO, "prototxts", "fcn8s.prototxt")
sys.path[:0] = [REPO, HERE]

from protoseg import caffemodel  # noqa: E402

KINDS = ("compiled", "hand-written", "opencv")


# -- weights -----------------------------------------------------------------------------------

def fcn8s_blob_shapes(num_classes: int = 21) -> list:
    """[(layer name, Caffe type, [blob shapes])] of the learnable layers of prototxts/fcn8s.prototxt."""
    out, c_in = [], 3
    for s, (c_out, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(1, n + 1):
            out.append((f"conv{s}_{i}", "Convolution", [(c_out, c_in, 3, 3), (c_out,)]))
            c_in = c_out
    k = num_classes
    out += [("fc6", "Convolution", [(4096, 512, 7, 7), (4096,)]),
            ("fc7", "Convolution", [(4096, 4096, 1, 1), (4096,)]),
            ("score_fr", "Convolution", [(k, 4096, 1, 1), (k,)]),
            ("upscore2", "Deconvolution", [(k, k, 4, 4)]),
            ("score_pool4", "Convolution", [(k, 512, 1, 1), (k,)]),
            ("upscore_pool4", "Deconvolution", [(k, k, 4, 4)]),
            ("score_pool3", "Convolution", [(k, 256, 1, 1), (k,)]),
            ("upscore8", "Deconvolution", [(k, k, 16, 16)])]
    return out


def bilinear_kernel(channels: int, size: int) -> np.ndarray:
    """FCN's upsampling initialisation (surgery.interp): channel c -> c gets the bilinear filter."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    w = np.zeros((channels, channels, size, size), np.float32)
    w[range(channels), range(channels)] = filt
    return w


def make_weights(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, type_, shapes in fcn8s_blob_shapes():
        if type_ == "Deconvolution":
            out[name] = [bilinear_kernel(shapes[0][0], shapes[0][2])]
            continue
        w_shape, b_shape = shapes
        fan_in = int(np.prod(w_shape[1:]))
        w = rng.standard_normal(w_shape, dtype=np.float32)
        w *= np.float32(np.sqrt(2.0 / fan_in))
        out[name] = [w, (0.01 * rng.standard_normal(b_shape)).astype(np.float32)]
    return out


def write_caffemodel(path: str, weights: dict, name: str = "fcn8s") -> None:
    types = {n: t for n, t, _ in fcn8s_blob_shapes()}
    caffemodel.write_caffemodel(path, ((layer, types[layer], arrays) for layer, arrays in weights.items()),
                                name=name)


# -- models ------------------------------------------------------------------------------------

def build(kind: str, size: int, caffemodel: str, state_path: str | None = None):
    """One model, ready to run: ('compiled' | 'hand-written' | 'opencv')."""
    if kind == "compiled":
        from protoseg import compile_net
        if state_path is None:
            return compile_net(FCN8S, weights=caffemodel, inputs={"data": (1, 3, size, size)})
        from safetensors.torch import load_file
        model = compile_net(FCN8S, inputs={"data": (1, 3, size, size)})
        model.load_state_dict(load_file(state_path), strict=True)
        return model
    if kind == "hand-written":
        from fcn8s_reference import FCN8s, from_compiled_state_dict
        from safetensors.torch import load_file
        model = FCN8s().eval()
        model.load_state_dict(from_compiled_state_dict(load_file(state_path)), strict=True)
        return model
    if kind == "opencv":
        import cv2
        return cv2.dnn.readNetFromCaffe(FCN8S, caffemodel)
    raise ValueError(kind)


def forward(kind: str, model, x):
    """x: a torch tensor; returns a torch tensor."""
    import torch
    if kind == "opencv":
        model.setInput(x.numpy())
        return torch.from_numpy(model.forward())
    with torch.inference_mode():
        return model(x)


def make_input(size: int, seed: int):
    import torch
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))


# -- memory (child process) --------------------------------------------------------------------

def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))


def _settle():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    if args.child == "opencv":
        import cv2
        cv2.setNumThreads(args.threads)
    x = make_input(args.size, args.seed)
    model = build(args.child, args.size, args.caffemodel, args.state)
    out = {"kind": args.child, "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}, "after_build_kb": _status_kb("VmRSS"), "hwm_build_kb": _status_kb("VmHWM")}
    for label in ("first", "second"):
        _settle()
        out["hwm_reset"] = _reset_hwm()
        base = _status_kb("VmRSS")
        y = forward(args.child, model, x)
        out[f"{label}_peak_kb"] = _status_kb("VmHWM") - base
        out[f"{label}_base_kb"] = base
        del y
    print(json.dumps(out))


# the allocator settings the children run under: glibc's default (a freed block may stay in the
# heap: its mmap threshold rises up to 32 MiB as large blocks are freed, so the RSS also depends
# on the order of allocations and frees), and a fixed 128 KiB mmap threshold (every block of
# 128 KiB or more is its own mapping, returned to the kernel when freed: VmHWM is then the peak
# of the live tensors plus small change)
MALLOC = {"default": {}, "mmap128k": {"MALLOC_MMAP_THRESHOLD_": "131072"}}


def measure_memory(kind: str, args, caffemodel: str, state: str, malloc: str = "default") -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--size", str(args.size),
           "--threads", str(args.threads), "--seed", str(args.seed), "--caffemodel", caffemodel,
           "--state", state]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**env, **MALLOC[malloc], "PYTHONPATH": REPO})
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- profile -----------------------------------------------------------------------------------

def profile(models: dict, x) -> str:
    from torch.profiler import ProfilerActivity, profile as tprofile
    tables = {}
    for kind in ("compiled", "hand-written"):
        forward(kind, models[kind], x)
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            forward(kind, models[kind], x)
        rows = {}
        for e in prof.key_averages():
            rows[e.key] = (e.self_cpu_time_total / 1e3, e.count)
        tables[kind] = rows
    keys = sorted(set(tables["compiled"]) | set(tables["hand-written"]),
                  key=lambda k: -max(tables["compiled"].get(k, (0, 0))[0], tables["hand-written"].get(k, (0, 0))[0]))
    lines = ["| op | compiled self ms (calls) | hand-written self ms (calls) |", "|---|---:|---:|"]
    for k in keys[:25]:
        c = tables["compiled"].get(k, (0.0, 0))
        h = tables["hand-written"].get(k, (0.0, 0))
        lines.append(f"| {k} | {c[0]:.1f} ({c[1]}) | {h[0]:.1f} ({h[1]}) |")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mem-runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-opencv", action="store_true")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--json")
    p.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--caffemodel", help=argparse.SUPPRESS)
    p.add_argument("--state", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0

    import torch
    torch.set_num_threads(args.threads)
    kinds = [k for k in KINDS if not (k == "opencv" and args.no_opencv)]
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": np.__version__, "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(), "cpu": _cpu_name()}
    if "opencv" in kinds:
        import cv2
        cv2.setNumThreads(args.threads)
        versions["opencv"] = cv2.__version__
    print(f"# {json.dumps(versions)}", flush=True)

    with tempfile.TemporaryDirectory(prefix="protoseg-bench-") as tmp:
        caffemodel = os.path.join(tmp, "fcn8s.caffemodel")
        state = os.path.join(tmp, "fcn8s.safetensors")
        write_caffemodel(caffemodel, make_weights(args.seed))
        models = {"compiled": build("compiled", args.size, caffemodel)}
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in models["compiled"].state_dict().items()}, state)
        for k in kinds[1:]:
            models[k] = build(k, args.size, caffemodel, state)
        x = make_input(args.size, args.seed)

        # -- outputs agree before anything is timed
        outs = {k: forward(k, models[k], x) for k in kinds}
        ref = outs["compiled"]
        scale = float(ref.abs().max())
        agree = {}
        for k in kinds[1:]:
            diff = float((outs[k] - ref).abs().max())
            agree[k] = {"max_abs_diff": diff, "rel_to_range": diff / scale, "equal": bool(torch.equal(outs[k], ref))}
        print(f"# output {tuple(ref.shape)}, max |y| {scale:.4g}; agreement: {json.dumps(agree)}", flush=True)
        assert agree["hand-written"]["rel_to_range"] <= 1e-6, agree
        if "opencv" in agree:
            assert agree["opencv"]["rel_to_range"] <= 1e-4, agree
        del outs, ref

        # -- time: rounds of A B O O B A (A, B = compiled, hand-written, swapped every round;
        #    O = OpenCV): each round gives a compiled / hand-written ratio in which a linear
        #    drift of the machine's speed cancels
        times = {k: [] for k in kinds}
        faults = {k: [] for k in kinds}           # minor page faults per forward (incl. the free)
        pair_ratios, cv_ratios = [], []
        for r in range(args.warmup + args.repeats):
            a, b = ("compiled", "hand-written") if r % 2 == 0 else ("hand-written", "compiled")
            order = [a, b] + (["opencv", "opencv"] if "opencv" in kinds else []) + [b, a]
            took = {k: [] for k in kinds}
            for k in order:
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                y = forward(k, models[k], x)
                took[k].append(time.perf_counter() - t0)
                del y
                if r >= args.warmup:
                    faults[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            if r >= args.warmup:
                for k in kinds:
                    times[k] += took[k]
                pair_ratios.append(sum(took["compiled"]) / sum(took["hand-written"]))
                if "opencv" in kinds:
                    cv_ratios.append(sum(took["opencv"]) / sum(took["compiled"]))
            print(f"# round {r}{' (warm-up)' if r < args.warmup else ''}: "
                  + ", ".join(f"{k} " + "/".join(f"{t:.2f}" for t in took[k]) + "s" for k in kinds),
                  flush=True)

        prof_table = profile(models, x) if args.profile else None
        del models
        gc.collect()

        # -- memory: a fresh child per run, alternating kinds, under each allocator setting
        mem = {m: {k: [] for k in kinds} for m in MALLOC}
        for r in range(args.mem_runs):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for malloc in MALLOC:
                for k in order:
                    mem[malloc][k].append(measure_memory(k, args, caffemodel, state, malloc))

    h = "hand-written"
    med = {k: statistics.median(v) for k, v in times.items()}
    mins = {k: min(v) for k, v in times.items()}
    flt = {k: statistics.median(v) for k, v in faults.items()}

    def mib(malloc, k, key):
        return statistics.median(m[key] for m in mem[malloc][k]) / 1024

    peaks = {m: {k: {"first": mib(m, k, "first_peak_kb"), "second": mib(m, k, "second_peak_kb"),
                     "base": mib(m, k, "first_base_kb")} for k in kinds} for m in MALLOC}
    result = {"versions": versions, "size": args.size, "repeats": args.repeats, "warmup": args.warmup,
              "mem_runs": args.mem_runs, "agreement": agree, "times_s": times, "median_s": med,
              "min_s": mins, "minor_faults": faults, "round_ratios": pair_ratios,
              "memory_runs": mem, "peak_mib": peaks,
              "time_ratio": statistics.median(pair_ratios),
              "time_ratio_of_medians": med["compiled"] / med[h], "time_ratio_of_mins": mins["compiled"] / mins[h],
              "mem_ratio": peaks["default"]["compiled"]["first"] / peaks["default"][h]["first"],
              "mem_ratio_mmap128k": peaks["mmap128k"]["compiled"]["first"] / peaks["mmap128k"][h]["first"]}
    if "opencv" in kinds:
        result["opencv_time_ratio"] = statistics.median(cv_ratios)

    print()
    print(f"FCN-8s forward, 1x3x{args.size}x{args.size}, CPU float32, torch {torch.__version__}, "
          f"{versions['threads']} threads; {args.repeats} rounds (ABBA: 2 forwards of each model "
          f"per round) after {args.warmup} warm-up rounds")
    print()
    print("| model | median s | min s | median / hand-written | minor page faults per forward |")
    print("|---|---:|---:|---:|---:|")
    for k in kinds:
        print(f"| {k} | {med[k]:.3f} | {mins[k]:.3f} | {med[k] / med[h]:.3f} | {flt[k]:.0f} |")
    q = statistics.quantiles(pair_ratios, n=4) if len(pair_ratios) >= 2 else [pair_ratios[0]] * 3
    print()
    print(f"compiled / hand-written, per round: median {result['time_ratio']:.3f}, quartiles "
          f"{q[0]:.3f} .. {q[2]:.3f}; all: " + " ".join(f"{r:.3f}" for r in pair_ratios))
    print()
    print(f"Peak memory of one forward (VmHWM - VmRSS before it, MiB), median of {args.mem_runs} fresh "
          f"processes per model and allocator setting")
    print()
    print("| model | RSS before (weights) | 1st forward | / hand-written | 2nd forward "
          "| 1st, mmap threshold 128 KiB | / hand-written | 2nd, mmap threshold 128 KiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in kinds:
        d, t = peaks["default"][k], peaks["mmap128k"][k]
        print(f"| {k} | {d['base']:.0f} | {d['first']:.0f} | {d['first'] / peaks['default'][h]['first']:.3f} "
              f"| {d['second']:.0f} | {t['first']:.0f} | {t['first'] / peaks['mmap128k'][h]['first']:.3f} "
              f"| {t['second']:.0f} |")
    print()
    ok_t, ok_m = result["time_ratio"] <= 1.05, result["mem_ratio"] <= 1.10
    print(f"bound: time ratio {result['time_ratio']:.3f} (<= 1.05: {'met' if ok_t else 'MISSED'}), "
          f"peak memory ratio {result['mem_ratio']:.3f} (<= 1.10: {'met' if ok_m else 'MISSED'}; "
          f"{result['mem_ratio_mmap128k']:.3f} with the 128 KiB mmap threshold)")
    if "opencv" in kinds:
        print(f"OpenCV dnn / compiled time (per round): {result['opencv_time_ratio']:.3f}")
    if prof_table:
        print()
        print(prof_table)
        result["profile"] = prof_table
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if ok_t and ok_m else 1


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            return m.group(1) if m else platform.processor()
    except OSError:
        return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
