"""What each speed option of the training loop buys, measured side by side in one process.

    python -m benchmarks.loop_options                    # VAE and DCGAN-32: layout, precision, compile
    python -m benchmarks.loop_options --quick            # smoke run
    python -m benchmarks.loop_options --device cuda --models vae dcgan64 \
        --variants "fp32 NCHW" "fp32 channels-last (default)" "bf16 autocast, channels-last" "fp16 autocast, channels-last"
                                                         # the GPU figures (VAE and DCGAN-64, bf16/fp16)

Every variant runs genlab's own training step (``genlab.training.loop.run_step``: batch drawn by
indexing the in-memory uint8 data, every phase's forward/backward/optimizer step, metrics summed
on the device) on the default network, from the same initial weights. Variants take turns in
rotating order, ``--steps`` steps per turn, so background load hits all alike; the table gives the
median images/s and its ratio to fp32 NCHW (the loop's behaviour before channels-last became the
default). ``compile`` reports its compile time (the first step) separately: it pays only when
(compile seconds) < (steps in the run) × (seconds saved per step).
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks import harness
from genlab.training.loop import StepParts, compile_children, run_step
from genlab.training.precision import Precision
from genlab.training.sampler import BatchSampler

VARIANTS = {  # name → (channels_last, precision, compile)
    "fp32 NCHW": (False, "fp32", False),
    "fp32 channels-last (default)": (True, "fp32", False),
    "bf16 autocast, channels-last": (True, "bf16", False),
    "compile, channels-last": (True, "fp32", True),
    "fp16 autocast, channels-last": (True, "fp16", False),  # CUDA only (loss scaling)
}
DEFAULT_VARIANTS = [v for v in VARIANTS if VARIANTS[v][1] != "fp16"]
MODELS = {"vae": "default VAE, 28×28", "dcgan32": "DCGAN-32 (D and G phases)", "dcgan64": "DCGAN-64 (D and G phases)"}
BASELINE = "fp32 NCHW"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_options", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["vae", "dcgan32"])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where to train (cuda: the data lives on the GPU, cudnn.benchmark on, timing synchronises)")
    parser.add_argument("--steps", type=int, default=5, help="steps per turn (default 5)")
    parser.add_argument("--rounds", type=int, default=6, help="timed turns per variant (default 6)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warm-cache", action="store_true",
                        help="let torch.compile reuse its on-disk cache (default: a fresh one, so compile time is the cold one)")
    parser.add_argument("--quick", action="store_true", help="smoke run: VAE only, no compile, 2 rounds of 2 steps")
    parser.add_argument("--name", default=None, help="results file name (default loop_options, or loop_options_quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.steps, args.rounds = ["vae"], 2, 2
        args.variants = [v for v in args.variants if not VARIANTS[v][2]]
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.device == "cpu" and any(VARIANTS[v][1] == "fp16" for v in args.variants):
        parser.error("fp16 autocast needs --device cuda (on CPU use the bf16 variant)")
    if BASELINE not in args.variants:
        parser.error(f"{BASELINE!r} (the baseline of the ratios) must be among --variants")
    args.name = args.name or ("loop_options_quick" if args.quick else "loop_options")
    return args


def build(model_name: str) -> Any:
    from genlab.models import GAN, VAE, GANConfig, VAEConfig

    torch.manual_seed(0)
    if model_name == "vae":
        return VAE(VAEConfig())
    # The DCGAN recipe of benchmarks/dcgan_throughput (the rates do not change a step's cost).
    size = 64 if model_name == "dcgan64" else 32
    return GAN(GANConfig(image_shape=(1, size, size), lr_g=2e-4, lr_d=2e-4))


def make_stepper(model_name: str, variant: str, batch_size: int, steps: int,
                 device: str = "cpu") -> tuple[Callable[[], int], float]:
    """A callable running ``steps`` training steps of ``variant`` (returns the images it used),
    and the seconds its first step took (compile time, for ``compile``)."""
    from genlab.config import TrainConfig

    channels_last, precision_name, compile_ = VARIANTS[variant]
    model = build(model_name)
    size = model.image_shape[-1]
    where = torch.device(device)
    if where.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as genlab.train does
    images = torch.randint(0, 256, (batch_size * 32, 1, size, size), dtype=torch.uint8, device=where)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    model.to(device=where, memory_format=memory_format).train()
    optimizers = model.make_optimizers(TrainConfig())
    parts = StepParts(model.training_phases(), optimizers, BatchSampler(len(images), batch_size, 0, where), images, None,
                      Precision(precision_name, where), memory_format)
    if compile_:
        compile_children(model)
    state = {"step": 0}

    def run(n: int = steps) -> int:
        for _ in range(n):
            run_step(parts, state["step"])
            state["step"] += 1
        parts.running.clear()
        if where.type == "cuda":
            torch.cuda.synchronize(where)  # the turn ends when the GPU has done the work
        return n * batch_size

    start = time.perf_counter()
    run(1)
    first = time.perf_counter() - start
    run(1)
    return run, first


def markdown_report(args: argparse.Namespace, results: dict[str, Any], machine: dict[str, Any]) -> str:
    lines = [f"# Training-loop options, side by side{' (QUICK SMOKE RUN — not a measurement)' if args.quick else ''}", ""]
    for model_name, entry in results.items():
        title = MODELS[model_name]
        lines += [f"## {title}, batch {args.batch_size}", "",
                  f"| variant | images/s | × {BASELINE} | first step (s) |", "|---|---:|---:|---:|"]
        for variant, t in entry["throughput"].items():
            lines.append(f"| {variant} | {t['median_images_per_s']:.1f} | {t[f'median_ratio_vs_{BASELINE}']:.2f} | "
                         f"{entry['first_step_s'][variant]:.2f} |")
        ranges = ", ".join(f"{v}: {t['min_images_per_s']:.0f}–{t['max_images_per_s']:.0f}" for v, t in entry["throughput"].items())
        lines += ["", f"Ranges over the turns: {ranges}.", ""]
    lines += [
        f"Each variant: genlab's training step (`run_step`) on the default network from the same initial weights, "
        f"{args.steps} steps per turn, {args.rounds} timed turns in rotating order after one untimed; images/s is the median "
        f"turn. `first step` includes one-time work: for `compile`, torch.compile's compilation of every sub-network "
        f"({'with the on-disk cache of earlier runs' if args.warm_cache else 'cold: a fresh inductor cache'}).",
        "",
        f"Device: {args.device}{' (' + str(machine.get('gpu')) + ')' if args.device == 'cuda' else ''}. "
        f"torch threads: {machine['torch_threads']}. CPU capability reported by torch: "
        f"{machine.get('cpu_capability', '?')} (bf16 autocast is fast only on CPUs with native bf16 instructions: "
        "AVX512-BF16 or AMX).",
    ]
    lines += ["", f"{harness.load_sentence(machine)}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.warm_cache:
        # A fresh inductor cache: `first step` of compile is then the compilation a new user waits for,
        # not a lookup in the on-disk cache an earlier run left behind.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache = tempfile.mkdtemp(prefix="genlab-inductor-")
        atexit.register(shutil.rmtree, cache, True)
    machine = harness.machine_info()
    machine["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    print(f"{machine['cpu']} ({machine['cpu_capability']}) · torch {machine['torch']} ({machine['torch_threads']} threads) · "
          f"load {machine['load_average_at_start']}", flush=True)
    results = {}
    for model_name in args.models:
        runs, first = {}, {}
        for variant in args.variants:
            runs[variant], first[variant] = make_stepper(model_name, variant, args.batch_size, args.steps, args.device)
            print(f"  {model_name} · {variant}: first step {first[variant]:.2f} s", flush=True)
        throughput = harness.run_interleaved(runs, args.rounds, warmup=0, baseline=BASELINE)
        for variant, t in throughput.items():
            print(f"  {model_name} · {variant:30s} {t['median_images_per_s']:8.1f} images/s "
                  f"(× {t[f'median_ratio_vs_{BASELINE}']:.2f})", flush=True)
        results[model_name] = {"throughput": throughput, "first_step_s": first}
    machine["load_average_at_end"] = os.getloadavg()
    harness.publish(args.name, {"settings": vars(args), "models": results}, markdown_report(args, results, machine),
                    machine=machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
