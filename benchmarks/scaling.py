"""How genlab's training step scales with image size and batch size, and how close it runs to the CPU's peak.

    python -m benchmarks.scaling                      # VAE and DCGAN at 28/32/64 px × batch 32/64/128/256
    python -m benchmarks.scaling --quick              # two small configurations, a few seconds each

For every (model, image size, batch size) one fresh process (so peak RSS is its own):
- builds the default network for that shape (``VAE(VAEConfig(image_shape=...))``; the DCGAN of
  ``GAN(GANConfig(image_shape=...))``) on random uint8 images (timing does not depend on the pixels);
- counts the FLOPs of one training step (every phase's forward + backward, optimizer excluded)
  with ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add = 2 FLOPs);
- runs ``genlab.train`` itself (TrainConfig defaults, no sample grids, no progress bar) for
  ``--seconds`` and times every step from the loop's own calls into the first phase's loss; the
  median step time gives images/s, time per 60,000-image epoch and achieved GFLOP/s;
- draws samples with ``model.sample(batch)`` (inference images/s);
- reports the process's peak resident memory (``ru_maxrss``: torch, the data and the step's
  activations together).

The peak is measured here, not assumed: the median GFLOP/s of a 2048×2048 fp32 matrix product
(``torch.mm``) with the same thread count, the best this CPU does on the most favourable kernel.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import harness

SIZES = (28, 32, 64)
BATCHES = (32, 64, 128, 256)
MODELS = ("vae", "dcgan")
EPOCH_IMAGES = 60_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, choices=SIZES, default=list(SIZES))
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--seconds", type=float, default=8.0, help="training time per configuration (default 8)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke run: VAE and DCGAN at 28 px, batch 32, 2 s each")
    parser.add_argument("--name", default=None, help="results file name (default scaling, or scaling_quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batches, args.seconds = [28], [32], min(args.seconds, 2.0)
    args.name = args.name or ("scaling_quick" if args.quick else "scaling")
    return args


# ----- the machine's peak -----
def matmul_peak_gflops(threads: int, size: int = 2048, repeats: int = 7) -> dict[str, Any]:
    """Median fp32 GFLOP/s of ``size``² matrix products: 2·n³ FLOPs each."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return {"median_gflops": statistics.median(rates), "max_gflops": max(rates), "size": size, "threads": threads}


# ----- one configuration, in its own process -----
def build(model_name: str, size: int) -> Any:
    from genlab.models import GAN, VAE, GANConfig, VAEConfig

    torch.manual_seed(0)
    if model_name == "vae":
        return VAE(VAEConfig(image_shape=(1, size, size)))
    return GAN(GANConfig(image_shape=(1, size, size)))


def step_flops(model_name: str, size: int, batch: int) -> int:
    """FLOPs of one training step's phases (forward + backward), counted on a fresh copy."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(model_name, size).train()
    x = torch.rand(batch, 1, size, size)
    counter = FlopCounterMode(display=False)
    with counter:
        for phase in model.training_phases():
            phase.loss(x, None)["loss"].backward()
    return int(counter.get_total_flops())


def measure_configuration(model_name: str, size: int, batch: int, seconds: float, threads: int, work_dir: str) -> dict[str, Any]:
    import genlab
    from genlab.data.dataset import Dataset

    torch.set_num_threads(threads)
    flops = step_flops(model_name, size, batch)
    steps_wanted = 10_000  # max_seconds ends the run long before
    # At least ~6 steps even where a step is slow: guess its time at 20 GFLOP/s (this 2-core CPU
    # reached 35-60 on one thread; the scaling.json of 2026-11-21 used 5, so its largest rows ran longer).
    seconds = max(seconds, 6 * flops / 20e9)
    images = torch.randint(0, 256, (batch * 64, 1, size, size), dtype=torch.uint8)
    dataset = Dataset(images, None, (), f"random{size}")
    model = build(model_name, size)
    stamps: list[float] = []

    class StepClock(genlab.Callback):
        """The clock at the end of every step: a step's time is the difference from the one before."""

        def on_step_end(self, run: Any) -> None:
            stamps.append(time.perf_counter())

    config = genlab.TrainConfig(epochs=steps_wanted, batch_size=batch, out_dir=str(Path(work_dir) / f"{model_name}{size}b{batch}"),
                                device="cpu", progress=False, tensorboard=False, num_sample_images=0, max_seconds=seconds)
    genlab.train(model, dataset, config, callbacks=[StepClock()])
    durations = [b - a for a, b in itertools.pairwise(stamps)]
    durations = durations[2:] if len(durations) > 3 else durations  # the first steps warm caches and allocators
    step_s = statistics.median(durations)
    model.eval()
    model.sample(batch, seed=0)  # warm-up
    sample_times = []
    for _ in range(3):
        start = time.perf_counter()
        model.sample(batch, seed=0)
        sample_times.append(time.perf_counter() - start)
    return {
        "model": model_name, "size": size, "batch": batch, "steps_timed": len(durations),
        "step_ms": step_s * 1e3, "images_per_s": batch / step_s,
        "epoch_s": EPOCH_IMAGES / batch * step_s,
        "step_gflop": flops / 1e9, "gflops_per_s": flops / step_s / 1e9,
        "sample_images_per_s": batch / statistics.median(sample_times),
        "peak_rss_mib": harness.peak_rss_mib(),
    }


def _run_in_fresh_process(job: tuple) -> dict[str, Any]:
    return measure_configuration(*job)


# ----- report -----
def markdown_report(args: argparse.Namespace, rows: list[dict[str, Any]], peak: dict[str, Any], machine: dict[str, Any]) -> str:
    lines = [
        f"# Training-step scaling with image size and batch size{' (QUICK SMOKE RUN — not a measurement)' if args.quick else ''}",
        "",
        f"`genlab.train` with TrainConfig defaults (fp32, channels-last, fused Adam) on CPU, {args.threads} torch thread(s), "
        f"about {args.seconds:g} s of training per row; median step time. Measured peak: fp32 `torch.mm` 2048² at "
        f"{peak['median_gflops']:.0f} GFLOP/s (best {peak['max_gflops']:.0f}).",
        "",
        "| model | px | batch | ms/step | images/s | s/epoch (60k) | GFLOP/step | GFLOP/s | % of peak | sampling images/s "
        "| peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['model']} | {r['size']} | {r['batch']} | {r['step_ms']:.1f} | {r['images_per_s']:.0f} | "
              f"{r['epoch_s']:.1f} | {r['step_gflop']:.2f} | {r['gflops_per_s']:.1f} | "
              f"{100 * r['gflops_per_s'] / peak['median_gflops']:.0f}% | {r['sample_images_per_s']:.0f} | {r['peak_rss_mib']:.0f} |"
              for r in rows]
    lines += [
        "",
        "- GFLOP/step: forward + backward of every phase of one step, counted by `torch.utils.flop_counter.FlopCounterMode` "
        "(convolutions and matrix products; element-wise work and the optimizer are not counted, so % of peak is a floor).",
        "- s/epoch: 60,000 images at the median step time. Sampling: `model.sample(batch)` in eval mode.",
        "- peak RSS: the whole process (torch, random uint8 data of 64 batches, activations).",
        "- dcgan = `GAN(GANConfig(image_shape=(1, px, px)))`, the DCGAN defaults (D and G phases per step); "
        "vae = `VAE(VAEConfig(image_shape=(1, px, px)))`.",
    ]
    lines += ["", f"{harness.load_sentence(machine)} "
                  "(other jobs shared the machine when the load exceeds the thread count; absolute rates then fall)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = harness.machine_info()
    print(f"{machine['cpu']} · {machine['cores']} cores · torch {machine['torch']} ({args.threads} threads) · "
          f"load {machine['load_average_at_start']}", flush=True)
    peak = matmul_peak_gflops(args.threads)
    print(f"peak: fp32 mm {peak['median_gflops']:.1f} GFLOP/s", flush=True)
    work_dir = tempfile.mkdtemp(prefix="genlab-scaling-")
    rows = []
    context = multiprocessing.get_context("spawn")
    try:
        for model_name in args.models:
            for size in args.sizes:
                for batch in args.batches:
                    with context.Pool(1) as pool:  # a fresh process: its own peak RSS
                        row = pool.apply(_run_in_fresh_process, ((model_name, size, batch, args.seconds, args.threads, work_dir),))
                    rows.append(row)
                    print(f"  {model_name:5s} {size:3d}px batch {batch:4d}: {row['step_ms']:8.1f} ms/step "
                          f"{row['images_per_s']:7.0f} images/s {row['gflops_per_s']:6.1f} GFLOP/s "
                          f"sampling {row['sample_images_per_s']:7.0f}/s  RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    peak_end = matmul_peak_gflops(args.threads)
    machine["load_average_at_end"] = os.getloadavg()
    results = {"settings": vars(args), "peak": peak, "peak_at_end": peak_end, "rows": rows}
    harness.publish(args.name, results, markdown_report(args, rows, peak, machine), machine=machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
