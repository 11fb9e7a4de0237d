"""Where a training step's time goes, and how much faster any change outside the heavy kernels could make it.

    python -m benchmarks.step_profile                 # VAE 28×28 and DCGAN-32, batch 128, 1 thread
    python -m benchmarks.step_profile --quick         # smoke run

For each model, genlab's own training step (``run_step`` with the TrainConfig defaults:
fp32, channels-last, fused Adam; the step of ``benchmarks.loop_options``) runs ``--steps`` times
under ``torch.profiler``, and every operator's *self* time is put in one class:

- convolutions & matrix products: ``aten::convolution*``, ``aten::mm``/``addmm``/``bmm`` (oneDNN/
  MKL kernels; a plain PyTorch loop on the same networks calls exactly these, with the same shapes);
- element-wise, normalisation and losses (activations and their gradients, batch norm, BCE, ...);
- optimizer (``aten::_fused_adam_`` and the rest of ``Optimizer.step``);
- memory (copies, layout changes, indexing, allocation);
- other (autograd bookkeeping and everything else).

It prints each class's share, the FLOP rate of the first class (FLOPs of the step counted by
``torch.utils.flop_counter.FlopCounterMode``, which counts only convolutions and matrix products)
against this machine's measured peak (a 2048² fp32 ``torch.mm``), and the Amdahl ceiling:
step time ÷ time in convolutions & matrix products, the most a loop-level change (data path,
optimizer, fusing element-wise work, fewer syncs) could speed a step up while those kernels stay
as they are. Making them faster means lower precision or other kernels, not a better loop.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import torch

from benchmarks import harness

CLASSES = ("convolutions & matrix products", "element-wise, norms, losses", "optimizer", "memory", "other")
HEAVY = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
# Operator-name tokens (``aten::native_batch_norm_backward`` → native, batch, norm, backward).
MEMORY = {"copy", "contiguous", "clone", "index", "empty", "cat", "stack", "strided", "resize", "zero", "fill",
          "set", "split", "view", "reshape", "permute", "transpose", "expand", "slice", "select", "unsqueeze",
          "squeeze", "flatten", "detach", "t", "alias", "unbind", "narrow", "chunk"}
ELEMENTWISE = {"relu", "threshold", "leaky", "sigmoid", "tanh", "norm", "cross", "entropy", "log", "exp", "add", "sub",
               "mul", "div", "neg", "sum", "mean", "pow", "sqrt", "rsqrt", "clamp", "where", "max", "min", "abs",
               "softplus", "lerp", "addcmul", "addcdiv", "square", "eq", "ne", "gt", "lt", "ge", "le", "like", "randn",
               "normal", "uniform", "isfinite", "all", "any", "logical", "mse", "nll", "softmax", "dropout", "foreach",
               "bernoulli", "reciprocal", "rsub", "sign", "masked", "tril", "triu"}
MODELS = {"vae": "default VAE, 28×28", "dcgan32": "DCGAN-32 (G and D phases per step)"}


def classify(name: str, in_optimizer: bool) -> str:
    """The class of a profiler event's self time (``in_optimizer``: the event runs inside Optimizer.step)."""
    if (name.startswith("aten::") and "conv" in name) or name in HEAVY:  # aten::convolution_backward, ...
        return CLASSES[0]
    if in_optimizer or name.startswith("Optimizer.") or name == "aten::_fused_adam_":
        return CLASSES[2]
    if not name.startswith("aten::"):
        return CLASSES[4]  # autograd engine bookkeeping, Python-level spans
    tokens = set(name.removeprefix("aten::").strip("_").split("_"))
    if tokens & MEMORY:
        return CLASSES[3]
    if tokens & ELEMENTWISE:
        return CLASSES[1]
    return CLASSES[4]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--steps", type=int, default=10, help="profiled steps per model (default 10)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 steps")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 2
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1")
    args.name = args.name or ("step_profile_quick" if args.quick else "step_profile")
    return args


def profile_model(model_name: str, args: argparse.Namespace) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    from benchmarks.loop_options import make_stepper
    from benchmarks.scaling import step_flops

    run, _ = make_stepper(model_name, "fp32 channels-last (default)", args.batch_size, 1)
    run(3)  # warm: oneDNN primitives created, allocator primed
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        run(args.steps)
        walls.append((time.perf_counter() - start) / args.steps)
    wall = statistics.median(walls)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(args.steps)
    events = prof.events()
    # Self time of every event, its class decided by its name and whether it runs inside Optimizer.step.
    optimizer_spans = [(e.time_range.start, e.time_range.end) for e in events if e.name.startswith("Optimizer.step")]
    seconds = dict.fromkeys(CLASSES, 0.0)
    by_name: dict[str, float] = {}
    for event in events:
        inside = any(a <= event.time_range.start and event.time_range.end <= b for a, b in optimizer_spans)
        self_s = event.self_cpu_time_total / 1e6 / args.steps
        seconds[classify(event.name, inside)] += self_s
        by_name[event.name] = by_name.get(event.name, 0.0) + self_s
    profiled = sum(seconds.values())
    size = 28 if model_name == "vae" else 32
    flops = step_flops("vae" if model_name == "vae" else "dcgan", size, args.batch_size)
    heavy = seconds[CLASSES[0]]
    return {
        "wall_ms_per_step": 1e3 * wall, "profiled_ms_per_step": 1e3 * profiled,
        "ms_per_class": {k: 1e3 * v for k, v in seconds.items()},
        "share_per_class": {k: v / profiled for k, v in seconds.items()},
        "gflop_per_step": flops / 1e9, "heavy_gflops": flops / heavy / 1e9 if heavy else float("nan"),
        "amdahl_ceiling": profiled / heavy if heavy else float("nan"),
        "top_ops_ms": dict(sorted(((k, 1e3 * v) for k, v in by_name.items()), key=lambda kv: -kv[1])[:12]),
    }


def markdown_report(args: argparse.Namespace, results: dict[str, Any], peak: dict[str, Any], machine: dict[str, Any]) -> str:
    quick = " (QUICK SMOKE RUN — not a measurement)" if args.quick else ""
    lines = [f"# Where a training step's time goes{quick}", "",
             f"genlab's training step, TrainConfig defaults (fp32, channels-last, fused Adam), batch {args.batch_size}, "
             f"{args.threads} thread(s), {args.steps} profiled steps; shares of the operators' self CPU time "
             "(`torch.profiler`). Peak: fp32 `torch.mm` 2048² at "
             f"{peak['median_gflops']:.0f} GFLOP/s (best {peak['max_gflops']:.0f}).", "",
             "| | " + " | ".join(MODELS[m] for m in results) + " |", "|---|" + "---:|" * len(results)]
    rows = [("ms per step (no profiler)", lambda r: f"{r['wall_ms_per_step']:.1f}")]
    rows += [(f"{name} share", lambda r, name=name: f"{100 * r['share_per_class'][name]:.1f} %") for name in CLASSES]
    rows += [("GFLOP per step (conv & matmul)", lambda r: f"{r['gflop_per_step']:.2f}"),
             ("conv & matmul GFLOP/s (% of peak)",
              lambda r: f"{r['heavy_gflops']:.0f} ({100 * r['heavy_gflops'] / peak['median_gflops']:.0f} %)"),
             ("**Amdahl ceiling** for loop-level changes", lambda r: f"**{r['amdahl_ceiling']:.2f}×**")]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results.values()) + " |")
    lines += ["", "Largest operators by self time (ms per step):", ""]
    for model_name, r in results.items():
        ops = ", ".join(f"`{k}` {v:.1f}" for k, v in list(r["top_ops_ms"].items())[:8])
        lines.append(f"- {MODELS[model_name]}: {ops}")
    lines += ["", "The ceiling is profiled step time ÷ time in convolutions and matrix products: a step cannot get "
                  "faster than those kernels while they stay the same, and a plain PyTorch loop on the same networks "
                  "runs the same kernels. So genlab's speed-up over such a loop is at most its measured ratio × this "
                  "ceiling, unless the kernels change (lower precision on hardware with native bf16/fp16, other "
                  "convolution algorithms, or other networks).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.scaling import matmul_peak_gflops

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = harness.machine_info()
    peak = matmul_peak_gflops(args.threads)
    results = {}
    for model_name in args.models:
        results[model_name] = profile_model(model_name, args)
        r = results[model_name]
        print(f"{model_name}: {r['wall_ms_per_step']:.1f} ms/step; conv & matmul {100 * r['share_per_class'][CLASSES[0]]:.1f} % "
              f"at {r['heavy_gflops']:.0f} GFLOP/s; ceiling {r['amdahl_ceiling']:.2f}×", flush=True)
    machine["load_average_at_end"] = os.getloadavg()
    harness.publish(args.name, {"settings": vars(args), "peak": peak, "models": results},
                    markdown_report(args, results, peak, machine), machine=machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
