"""fp32 against bf16 autocast, and what ``precision="auto"`` picks: speed and quality after the same steps.

    python -m benchmarks.precision                 # VAE, DCGAN-32, conditional GAN; 3 seeds each
    python -m benchmarks.precision --quick         # smoke run: 1 seed, a few steps, not a measurement

For each model, seed and precision, ``genlab.train`` runs the same number of steps from the same initial
weights and data order (so only the precision differs), and the run reports its training images/s (the
loop's own clock, ``TrainingRun.elapsed``, first step included) and its quality:

- **VAE** (the default VAE, full Fashion-MNIST, batch 128): the ELBO on 2,000 test images, in nats
  (genlab.VAE.elbo; Kingma & Welling 2014, Eq. 3), higher is better.
- **DCGAN-32** (the default DCGAN on Fashion-MNIST resized to 32×32, batch 64): judge-FID of 5,000 samples,
  reduced to 28×28 by area averaging, against the 28×28 test split.
- **Conditional GAN** (28×28, fashion-mnist-mini, batch 64, EMA 0.99 as the CLI trains it): judge-FID of
  5,000 samples and judge label accuracy (the fraction the shipped judge assigns to the class asked for).

Precisions take turns within each seed (fp32 first on even seeds, bf16 first on odd ones), so background
load hits both alike. The table gives the median over seeds of images/s and its ratio, and the mean ± std of
the quality, the run-to-run noise the precision's effect must be compared with. ``auto`` is what
genlab.training.precision.choose_precision picks on this machine.

Results: benchmarks/results/precision.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from typing import Any

import torch
import torch.nn.functional as F

import genlab
from benchmarks import harness
from benchmarks.time_to_quality import RunEnd
from genlab.cli.train import BATCH_SIZES, TRAIN_DEFAULTS
from genlab.config import TrainConfig
from genlab.metrics import frechet_distance
from genlab.models.gan.model import GAN, GANConfig
from genlab.models.judge import load_judge
from genlab.models.vae import VAE, VAEConfig
from genlab.training.precision import choose_precision

MODELS = {  # name → (description, data, image size, steps)
    "vae": ("default VAE, 28×28, full Fashion-MNIST", "fashion-mnist", None, 468),
    "dcgan32": ("default DCGAN at 32×32, full Fashion-MNIST", "fashion-mnist", 32, 400),
    "cgan": ("conditional DCGAN, 28×28, fashion-mnist-mini", "fashion-mnist-mini", None, 600),
}
PRECISIONS = ("fp32", "bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps-factor", type=float, default=1.0, help="scale every model's step count")
    parser.add_argument("--samples", type=int, default=5000, help="samples scored per GAN run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 5%% of the steps, 500 samples")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.steps_factor, args.samples = 1, 0.05, 500
    return args


def build(name: str, data: genlab.Dataset) -> tuple[Any, dict[str, Any]]:
    if name == "vae":
        return VAE(VAEConfig(image_shape=data.image_shape)), {"batch_size": BATCH_SIZES["vae"]}
    classes = len(data.classes) if name == "cgan" else 0
    train = {"batch_size": BATCH_SIZES["gan"], **(TRAIN_DEFAULTS["gan"] if name == "cgan" else {})}
    return GAN(GANConfig(image_shape=data.image_shape, num_classes=classes)), train


def quality(name: str, model: Any, test: genlab.Dataset, judge: Any, real_features: torch.Tensor, samples: int,
            seed: int) -> dict[str, float]:
    if name == "vae":
        x = test.float_images(slice(0, 2000))
        return {"elbo_nats": round(float(model.elbo(x).mean()), 3)}
    labels = torch.arange(samples) % 10 if model.config.num_classes else None
    images = model.sample(samples, labels=labels, seed=10_000 + seed)
    if images.shape[-1] != 28:
        images = F.adaptive_avg_pool2d(images, 28)
    out = {"fid": round(frechet_distance(judge.features(images), real_features), 3)}
    if labels is not None:
        out["label_accuracy"] = round(float((judge.predict(images) == labels).float().mean()), 4)
    return out


def run_one(name: str, precision: str, seed: int, data: genlab.Dataset, steps: int, scoring: dict[str, Any],
            samples: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model, train_fields = build(name, data)
    end = RunEnd()
    with tempfile.TemporaryDirectory(prefix="genlab-precision-") as work:
        config = TrainConfig(**{**train_fields, "epochs": 10_000, "max_steps": steps, "seed": seed, "out_dir": work,
                                "precision": precision, "progress": False, "num_sample_images": 0, "plots": False,
                                "tensorboard": False})
        model = genlab.train(model, data, config, callbacks=[end])
    images_per_s = end.steps * config.batch_size / end.seconds
    result = {"seed": seed, "precision": precision, "steps": end.steps, "seconds": round(end.seconds, 2),
              "images_per_s": round(images_per_s, 1), **quality(name, model, scoring["test"], scoring["judge"],
                                                                 scoring["real_features"], samples, seed)}
    print(f"  {name} {precision} seed {seed}: {result}", flush=True)
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for precision in PRECISIONS:
        mine = [r for r in runs if r["precision"] == precision]
        if not mine:
            continue
        summary = {"images_per_s_median": statistics.median(r["images_per_s"] for r in mine)}
        for key in ("elbo_nats", "fid", "label_accuracy"):
            values = [r[key] for r in mine if key in r]
            if values:
                summary[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                "values": values}
        out[precision] = summary
    if "fp32" in out and "bf16" in out:
        out["bf16_speedup"] = out["bf16"]["images_per_s_median"] / out["fp32"]["images_per_s_median"]
    return out


def _quality(summary: dict[str, Any], precision: str) -> str:
    parts = []
    for key, label, digits in (("elbo_nats", "ELBO", 1), ("fid", "FID", 1), ("label_accuracy", "acc", 3)):
        if key in summary.get(precision, {}):
            value = summary[precision][key]
            parts.append(f"{label} {value['mean']:.{digits}f} ± {value['std']:.{digits}f}")
    return ", ".join(parts)


def markdown(results: dict[str, Any]) -> str:
    auto, why = results["auto"]
    lines = ["# Precision: fp32 against bf16 autocast, and what `auto` picks", "",
             f"On this machine `--precision auto` picks **{auto}** ({why}).", "",
             "| model | steps | fp32 images/s | bf16 images/s | bf16 ÷ fp32 | quality fp32 | quality bf16 | auto |",
             "|---|---:|---:|---:|---:|---|---|---|"]
    for record in results["models"].values():
        summary = record["summary"]
        speedup = summary.get("bf16_speedup")
        auto_speed = 1.0 if auto == "fp32" else speedup
        lines.append(f"| {record['description']} | {record['steps']} | {summary['fp32']['images_per_s_median']:.0f} | "
                     f"{summary['bf16']['images_per_s_median']:.0f} | {speedup:.2f}× | {_quality(summary, 'fp32')} | "
                     f"{_quality(summary, 'bf16')} | {auto} ({auto_speed:.2f}× fp32) |")
    lines += ["", f"Quality: mean ± sample std over {results['seeds']} seeds (seed = initial weights, data order and noise; "
              "the std is the run-to-run noise). ELBO in nats on 2,000 test images (higher is better); FID in the shipped "
              f"judge's features on {results['samples']} samples against the test split (lower is better); acc = judge "
              "label accuracy. images/s: median over seeds of the loop's training throughput (first step included).",
              "", "Every run: per-run values in the JSON file."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = harness.machine_info()
    judge = load_judge()
    results: dict[str, Any] = {"auto": list(choose_precision(torch.device("cpu"))), "seeds": args.seeds,
                               "samples": args.samples, "models": {}}
    for name in args.models:
        description, data_name, size, steps = MODELS[name]
        steps = max(2, round(steps * args.steps_factor))
        data = genlab.load_dataset(data_name, image_size=size) if size else genlab.load_dataset(data_name)
        test = genlab.load_dataset(data_name, split="test")
        scoring = {"test": test, "judge": judge, "real_features": judge.features(test.float_images(slice(None)))}
        runs = [run_one(name, precision, seed, data, steps, scoring, args.samples)
                for seed in range(args.seeds) for precision in (PRECISIONS if seed % 2 == 0 else PRECISIONS[::-1])]
        results["models"][name] = {"description": description, "steps": steps, "runs": runs, "summary": summarize(runs)}
    machine["load_average_at_end"] = list(os.getloadavg())
    harness.publish(args.name or ("precision_quick" if args.quick else "precision"), results, markdown(results), machine=machine)


if __name__ == "__main__":
    main()
