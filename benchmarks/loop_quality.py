"""Does a speed option of the loop change what training reaches? Test ELBO and FID, option against seeds.

    python -m benchmarks.loop_quality                 # channels-last vs NCHW, seeds 0 and 1
    python -m benchmarks.loop_quality --quick         # smoke run

For each seed and each variant, ``genlab.train`` trains the default VAE on Fashion-MNIST (test
ELBO on all 10,000 test images, one posterior sample with a fixed seed, KL in closed form) and the
default 28×28 DCGAN on a subset (FID against the test split in the shipped judge's features,
``genlab.evaluate(..., metrics="fid")``). A variant keeps quality when its difference from the
default is within the spread between seeds: the run-to-run noise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks import harness

VARIANTS = {"fp32 NCHW": {"channels_last": False}, "fp32 channels-last (default)": {"channels_last": True}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--vae-epochs", type=int, default=2)
    parser.add_argument("--gan-epochs", type=int, default=2)
    parser.add_argument("--gan-subset", type=int, default=12800, help="DCGAN train images (default 12,800)")
    parser.add_argument("--fid-samples", type=int, default=5000)
    parser.add_argument("--models", nargs="+", choices=("vae", "gan"), default=["vae", "gan"])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch on 1,024 images, 500 FID samples")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.vae_epochs = args.gan_epochs = 1
        args.gan_subset, args.fid_samples, args.vae_subset = 1024, 500, 1024
    else:
        args.vae_subset = None
    args.name = args.name or ("loop_quality_quick" if args.quick else "loop_quality")
    return args


def train_and_score(model_name: str, variant: str, seed: int, args: argparse.Namespace, work_dir: Path) -> float:
    import genlab

    train = genlab.load_dataset("fashion-mnist", split="train")
    test = genlab.load_dataset("fashion-mnist", split="test")
    torch.manual_seed(seed)
    if model_name == "vae":
        model = genlab.VAE(genlab.VAEConfig())
        data, epochs = (train.subset(slice(0, args.vae_subset)) if args.vae_subset else train), args.vae_epochs
    else:
        model = genlab.GAN(genlab.GANConfig())
        data, epochs = train.subset(slice(0, args.gan_subset)), args.gan_epochs
    config = genlab.TrainConfig(epochs=epochs, batch_size=128, seed=seed, device="cpu", progress=False, tensorboard=False,
                                num_sample_images=0, out_dir=str(work_dir / f"{model_name}-{seed}-{variant}"),
                                **VARIANTS[variant])
    model = genlab.train(model, data, config)
    with torch.no_grad():
        if model_name == "vae":
            torch.manual_seed(0)  # elbo() draws its posterior sample from the global RNG
            x = test.float_images()
            return torch.cat([model.elbo(x[i:i + 500]) for i in range(0, len(x), 500)]).mean().item()
        return genlab.evaluate(model, test, metrics="fid", num_samples=args.fid_samples, progress=False)["fid"]


def markdown_report(args: argparse.Namespace, scores: dict[str, dict[str, dict[int, float]]], machine: dict[str, Any]) -> str:
    lines = [f"# Quality under the loop's speed options{' (QUICK SMOKE RUN — not a measurement)' if args.quick else ''}", ""]
    labels = {"vae": ("test ELBO (nats, higher is better)", f"default VAE, {args.vae_epochs} epochs on "
                      f"{args.vae_subset or 60000:,} Fashion-MNIST images"),
              "gan": ("FID (judge features, lower is better)", f"default 28×28 DCGAN, {args.gan_epochs} epochs on "
                      f"{args.gan_subset:,} images, {args.fid_samples:,} samples vs the test split")}
    for model_name, by_variant in scores.items():
        metric, setup = labels[model_name]
        lines += [f"## {setup}: {metric}", "", "| variant | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |",
                  "|---|" + "---:|" * (len(args.seeds) + 1)]
        for variant, by_seed in by_variant.items():
            values = [by_seed[s] for s in args.seeds]
            lines.append(f"| {variant} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {statistics.mean(values):.2f} |")
        variants = list(by_variant)
        option_gaps = [abs(by_variant[variants[0]][s] - by_variant[variants[1]][s]) for s in args.seeds] if len(variants) > 1 else []
        seed_gaps = [max(v.values()) - min(v.values()) for v in by_variant.values()] if len(args.seeds) > 1 else []
        lines += ["", f"- largest difference between variants at the same seed: {max(option_gaps, default=float('nan')):.2f}; "
                      f"spread between seeds within a variant: {', '.join(f'{g:.2f}' for g in seed_gaps) or 'n/a'}.", ""]
    lines.append("Same seed = same initial weights, data order and noise; only the option differs.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = harness.machine_info()
    work_dir = Path(tempfile.mkdtemp(prefix="genlab-loop-quality-"))
    scores: dict[str, dict[str, dict[int, float]]] = {}
    try:
        for model_name in args.models:
            scores[model_name] = {variant: {} for variant in VARIANTS}
            for seed in args.seeds:
                for variant in VARIANTS:
                    scores[model_name][variant][seed] = train_and_score(model_name, variant, seed, args, work_dir)
                    print(f"  {model_name} seed {seed} {variant}: {scores[model_name][variant][seed]:.3f}", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    machine["load_average_at_end"] = os.getloadavg()
    harness.publish(args.name, {"settings": vars(args), "scores": scores}, markdown_report(args, scores, machine), machine=machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
