"""GPU benchmark, all of it in one run of a few minutes (for a short loan of a GPU machine):
FCN-8s and DeepLab v2 ResNet-101 (MSc) at 513x513 in fp32 (strict and TF32), fp16 and bf16
autocast, channels_last, cuDNN benchmark mode, the inference mode (folded BatchNorm) and CUDA
graphs through torch.compile(mode="reduce-overhead"); images/s and the fraction of the GPU's peak
each reaches.

    python bench/gpu.py [--nets fcn8s,deeplab] [--size 513] [--batches 1,8] [--iters 20]
                        [--json PATH] [--device cuda]

Peak: measured here, as the best of a few 8192x8192 matrix products per precision (fp32 without
TF32, TF32, fp16, bf16), and, where the GPU is in the table below, its datasheet dense peak too.
The work of one forward is counted by torch.utils.flop_counter (convolutions and matrix products,
2 FLOPs per multiply-add), so fraction of peak = FLOPs per image * images/s / peak.

Weights: the modules' own initial values (no caffemodel is needed for timing); outputs in reduced
precision are compared with the strict fp32 output (max |diff| relative to the largest |value|).

`--device cpu` runs every configuration that does not need CUDA at a small size, to check the
script itself on a machine without a GPU (the numbers mean nothing there).
Prints Markdown tables for docs/benchmarks.md; --json writes everything.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import torch  # noqa: E402

import protoseg  # noqa: E402

NETS = {"fcn8s": os.path.join(REPO, "prototxts", "fcn8s.prototxt"),
        "deeplab": os.path.join(REPO, "prototxts", "deeplab_v2_resnet101_msc.prototxt")}

# Dense peaks from the vendors' datasheets, TFLOPS: (fp32, tf32, fp16, bf16).
DATASHEET = {"H200": (67, 494.7, 989.4, 989.4), "H100 SXM": (67, 494.7, 989.4, 989.4),
             "H100 PCIe": (51, 378, 756, 756), "A100": (19.5, 156, 312, 312),
             "L40S": (91.6, 183, 362, 362), "A10": (31.2, 62.5, 125, 125), "T4": (8.1, 0, 65, 0)}

# (name, precision of the peak it is measured against, autocast dtype, channels_last,
#  cudnn.benchmark, optimize, reduce-overhead, strict fp32)
CONFIGS = [
    ("fp32 strict (no TF32)", "fp32", None, False, False, False, False, True),
    ("fp32 (TF32 convolutions)", "tf32", None, False, False, False, False, False),
    ("fp32 + cudnn.benchmark", "tf32", None, False, True, False, False, False),
    ("fp32 + channels_last + benchmark", "tf32", None, True, True, False, False, False),
    ("fp16 autocast", "fp16", torch.float16, False, False, False, False, False),
    ("fp16 autocast + channels_last + benchmark", "fp16", torch.float16, True, True, False, False, False),
    ("bf16 autocast + channels_last + benchmark", "bf16", torch.bfloat16, True, True, False, False, False),
    ("optimized + fp16 + channels_last + benchmark", "fp16", torch.float16, True, True, True, False, False),
    ("optimized + fp16 + CUDA graphs (reduce-overhead)", "fp16", torch.float16, True, True, True, True, False),
]


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, iters: int) -> list:
    """Seconds per call, `iters` calls (CUDA events on the GPU)."""
    out = []
    for _ in range(iters):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return out


def matmul_peak(device, iters: int) -> dict:
    """Best TFLOPS of an n x n matrix product per precision."""
    n = 8192 if device == "cuda" else 512
    out = {}
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                              ("fp16", torch.float16, False), ("bf16", torch.bfloat16, False)):
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b
        sync(device)
        out[name] = 2 * n ** 3 / min(timed(lambda: a @ b, device, iters)) / 1e12
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    return out


def datasheet_peak(device) -> dict | None:
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    for key, peaks in DATASHEET.items():
        if key.replace(" ", "").lower() in name.replace(" ", "").lower():
            return dict(zip(("fp32", "tf32", "fp16", "bf16"), peaks))
    return None


def count_flops(model, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return counter.get_total_flops()


def he_init_(model, seed: int = 0):
    """Weights N(0, 2 / fan_in), biases N(0, 0.01^2), seeded: activations keep their scale
    through the net, so reduced-precision errors mean something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / p[0].numel()) ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.01)
    return model


def models(prototxt, shape) -> dict:
    """{optimize: module}: the faithful module (He-initialised) and the inference mode's, whose
    parameters are the faithful one's folded (protoseg.optimize.fold_state)."""
    from protoseg.compile import build_module
    from protoseg.optimize import fold_state, optimize_plan
    plain = he_init_(protoseg.compile_net(prototxt, inputs={"data": shape}))
    plan = optimize_plan(protoseg.plan_net(prototxt, {"data": shape}))
    fast = build_module(plan)
    state = fold_state(plan, {k: v.numpy() for k, v in plain.state_dict().items()})
    fast.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return {False: plain, True: fast}


def run_config(built, size, batch, config, device, iters, reference):
    name, _, dtype, channels_last, benchmark, optimize, graphs, strict = config
    if device == "cuda":
        torch.backends.cudnn.benchmark = benchmark
        torch.backends.cudnn.allow_tf32 = not strict
        torch.backends.cuda.matmul.allow_tf32 = not strict
    model = copy.deepcopy(built[optimize]).to(device)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    start = time.perf_counter()
    if graphs:
        model = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    cast = torch.autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def forward():
        with torch.inference_mode(), cast:
            return model(x)
    for _ in range(3):                   # warm-up: cuDNN's search, compilation, graph capture
        y = forward()
    sync(device)
    setup = time.perf_counter() - start
    times = timed(forward, device, iters)
    y = forward().float()
    err = None
    if reference is not None:
        ref = reference.to(y.device)
        err = float((y - ref).abs().max() / ref.abs().max())
    return {"config": name, "batch": batch, "median_s": statistics.median(times),
            "min_s": min(times), "images_per_s": batch / statistics.median(times),
            "setup_s": setup, "max_rel_diff_vs_fp32": err}, y


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default="fcn8s,deeplab")
    p.add_argument("--size", type=int, default=513)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--json")
    args = p.parse_args(argv)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure (--device cpu checks the script itself)")
        return 0
    configs = [c for c in CONFIGS if device == "cuda" or not (c[2] or c[4] or c[6])]
    machine = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "torch": torch.__version__, "cuda": torch.version.cuda,
               "cudnn": torch.backends.cudnn.version() if device == "cuda" else None}
    peak = {"measured_matmul_tflops": matmul_peak(device, 5), "datasheet_tflops": datasheet_peak(device)}
    print(f"# {json.dumps(machine)}\n# peak TFLOPS {json.dumps(peak)}\n")
    results = {"machine": machine, "peak": peak, "nets": {}}
    for net in args.nets.split(","):
        prototxt = NETS[net]
        flops = count_flops(protoseg.compile_net(prototxt, inputs={"data": (1, 3, args.size, args.size)})
                            .to(device), torch.randn(1, 3, args.size, args.size, device=device))
        rows = []
        for batch in map(int, args.batches.split(",")):
            reference = None
            built = models(prototxt, (batch, 3, args.size, args.size))
            for config in configs:
                row, y = run_config(built, args.size, batch, config, device, args.iters, reference)
                if config[7]:
                    reference = y
                row["tflops"] = flops * row["images_per_s"] / 1e12
                row["of_measured_peak"] = row["tflops"] / peak["measured_matmul_tflops"][config[1]]
                sheet = peak["datasheet_tflops"]
                row["of_datasheet_peak"] = row["tflops"] / sheet[config[1]] if sheet and sheet[config[1]] else None
                rows.append(row)
                if device == "cuda":
                    torch._dynamo.reset()
                    torch.cuda.empty_cache()
        results["nets"][net] = {"gflops_per_image": flops / 1e9, "rows": rows}
        print(f"### {net} ({os.path.basename(prototxt)}), {args.size}x{args.size}, "
              f"{flops / 1e9:.1f} GFLOPs per image\n")
        print("| configuration | batch | ms / batch | images/s | TFLOPS | of measured peak | "
              "of datasheet peak | max rel. diff vs fp32 | setup s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            sheet = f"{r['of_datasheet_peak']:.1%}" if r["of_datasheet_peak"] is not None else "-"
            diff = f"{r['max_rel_diff_vs_fp32']:.1e}" if r["max_rel_diff_vs_fp32"] is not None else "-"
            print(f"| {r['config']} | {r['batch']} | {r['median_s'] * 1e3:.2f} | "
                  f"{r['images_per_s']:.1f} | {r['tflops']:.1f} | {r['of_measured_peak']:.1%} | "
                  f"{sheet} | {diff} | {r['setup_s']:.1f} |")
        print(flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
