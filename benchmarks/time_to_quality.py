"""How fast the conditional GAN reaches quality: judge label accuracy and judge-FID against wall-clock seconds.

    python -m benchmarks.time_to_quality                         # full Fashion-MNIST and the mini set
    python -m benchmarks.time_to_quality --data fashion-mnist-mini --seconds 60
    python -m benchmarks.time_to_quality --quick                 # smoke run: tiny budget, not a measurement

Each run trains one class-conditional GAN on the same data on this machine, one run at a time. Every
``--eval-every`` seconds of training the clock stops and the model (its EMA weights when it keeps them, in
eval mode) draws ``--eval-samples`` images, an equal number per class; the shipped judge scores them:
label accuracy = the fraction the judge assigns to the requested class, judge-FID = Fréchet distance of
the judge's features to the data's test split (genlab.metrics.frechet_distance; Heusel et al. 2017, Eq. 6).
Evaluation time is not counted as training time. At the end each run is scored once more with
``--final-samples`` images.

Runs:
- ``genlab defaults``: ``GAN(GANConfig(num_classes=10))`` with ``TrainConfig`` defaults and the CLI's GAN
  batch size — what ``genlab train gan --conditional`` does (per-epoch checkpoints and sample grids included).
- ``genlab before``: the defaults before this benchmark retuned them (NS loss, batch norm in D,
  lr_g 4e-4, lr_d 1e-4, Adam β = (0.5, 0.999), batch 64, fp32, no EMA).
- ``plain PyTorch``: a conditional DCGAN in the style of the PyTorch DCGAN example (BCE, Adam 2e-4,
  β1 = 0.5, batch 128, BN in G and D, N(0, 0.02) init), labels as one-hot inputs to G and as one-hot planes
  beside D's input (the common cDCGAN form), a plain loop over the in-memory data.

Results: benchmarks/results/time_to_quality.{json,md} and docs/images/time_to_quality.png (``--name`` to change).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import genlab
from benchmarks import harness
from genlab.cli.train import BATCH_SIZES, TRAIN_DEFAULTS
from genlab.config import TrainConfig
from genlab.data.dataset import Dataset
from genlab.io.checkpoints import read_run_config
from genlab.metrics import frechet_distance
from genlab.models.gan.model import GAN, GANConfig
from genlab.models.judge import load_judge
from genlab.training.callbacks import Callback
from genlab.training.precision import choose_precision

# GANConfig and the CLI's TrainConfig before issue 16 retuned them.
BEFORE = dict(loss="ns", d_norm="batch", lr_g=4e-4, lr_d=1e-4, betas=(0.5, 0.999), label_inputs=False)
BEFORE_TRAIN = dict(precision="fp32", ema_decay=None)
RUNS = ("genlab defaults", "genlab before", "plain PyTorch")
TARGET_ACCURACY = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["fashion-mnist", "fashion-mnist-mini"])
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--seconds", type=float, default=None,
                        help="training seconds per run (default: 450 on fashion-mnist, 100 on the mini set; "
                             "'genlab before' always trains its 10 epochs)")
    parser.add_argument("--max-steps", type=int, default=None, help="also stop each run after this many steps")
    parser.add_argument("--eval-every", type=float, default=None, help="seconds of training between evaluations "
                                                                        "(default: the budget / 16)")
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--final-samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mini-seeds", type=int, default=3, help="seeds per run on the small sets (*-mini); 1 elsewhere")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", type=harness.parse_option,
                        help="override a GANConfig/TrainConfig field of 'genlab defaults' (for tuning; named in the results)")
    parser.add_argument("--quick", action="store_true", help="smoke run: the mini set, 6 s per run, few samples")
    parser.add_argument("--name", default=None)
    parser.add_argument("--rerender", default=None, metavar="JSON", help="rewrite the Markdown of an earlier results file")
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.seconds, args.eval_samples, args.final_samples = ["fashion-mnist-mini"], 6.0, 200, 500
        args.mini_seeds, args.max_steps = 1, args.max_steps or 60
    return args


class Scorer:
    """Judge label accuracy and judge-FID of a sampler's images against a dataset's test split."""

    def __init__(self, data: str) -> None:
        self.judge = load_judge()
        test = genlab.load_dataset(data, split="test")
        self.real_features = self.judge.features(test.float_images(slice(None)))
        self.classes = len(test.classes)

    def __call__(self, sample: Any, n: int, seed: int) -> tuple[float, float]:
        labels = torch.arange(n) % self.classes
        images = sample(n, labels, seed)
        accuracy = (self.judge.predict(images) == labels).float().mean().item()
        return accuracy, frechet_distance(self.judge.features(images), self.real_features)


class Curve(Callback):
    """Every ``every`` seconds of training, scores the model (its EMA weights when it keeps them); the time
    that takes is taken out of the run's clock (``run.seconds_before``), so ``max_seconds`` counts training only."""

    def __init__(self, scorer: Scorer, every: float, samples: int) -> None:
        self.scorer, self.every, self.samples = scorer, every, samples
        self.points: list[list[float]] = []

    def on_step_end(self, run: Any) -> None:
        if run.elapsed() >= self.every * (len(self.points) + 1):
            paused = time.perf_counter()
            scored = copy.deepcopy(run.model).to(memory_format=torch.contiguous_format)
            if run.ema is not None:
                scored.load_state_dict(run.ema.state_dict(run.model))
            self.add(run.elapsed(), run.step, lambda n, labels, seed: scored.sample(n, labels=labels, seed=seed))
            run.seconds_before -= time.perf_counter() - paused

    def add(self, seconds: float, step: int, sample: Any) -> None:
        accuracy, fid = self.scorer(sample, self.samples, seed=12345)
        self.points.append([round(seconds, 2), step, round(accuracy, 4), round(fid, 3)])
        print(f"  {seconds:7.1f} s  step {step:6d}  label accuracy {accuracy:.3f}  judge-FID {fid:8.2f}", flush=True)


def genlab_run(name: str, dataset: Dataset, scorer: Scorer, args: argparse.Namespace, budget: float,
               every: float, seed: int) -> dict[str, Any]:
    overrides = dict(args.set) if name == "genlab defaults" else {}
    gan_fields = {f.name for f in dataclasses.fields(GANConfig)}
    gan = {k: v for k, v in overrides.items() if k in gan_fields}
    train_fields = {k: v for k, v in overrides.items() if k not in gan_fields}
    if name == "genlab before":
        gan, train_fields = dict(BEFORE), dict(BEFORE_TRAIN)
    config = GANConfig(**{"image_shape": dataset.image_shape, "num_classes": len(dataset.classes), **gan})
    curve, end = Curve(scorer, every, args.eval_samples), RunEnd()
    with tempfile.TemporaryDirectory(prefix="genlab-ttq-") as work:
        # "genlab before" trains its 10 epochs (TrainConfig's default) whatever the budget: the reference curve.
        limits = {"epochs": 10} if name == "genlab before" else {"epochs": 10_000, "max_seconds": budget}
        train = TrainConfig(**{"batch_size": BATCH_SIZES["gan"], **TRAIN_DEFAULTS["gan"], "seed": seed, "out_dir": work,
                               "progress": False, "max_steps": args.max_steps, **limits, **train_fields})
        torch.manual_seed(seed)
        model = genlab.train(GAN(config), dataset, train, callbacks=[curve, end])
        saved = read_run_config(work)["train"]
    return {"config": {"gan": dataclasses.asdict(config), "train": saved},
            **_final(curve, model, scorer, args, end.seconds, end.steps)}


class RunEnd(Callback):
    """Where a genlab run ended: its training seconds (the loop's own clock) and steps."""

    seconds, steps = 0.0, 0

    def on_train_end(self, run: Any) -> None:
        self.seconds, self.steps = run.elapsed(), run.step


def _final(curve: Curve, model: Any, scorer: Scorer, args: argparse.Namespace, seconds: float, steps: int) -> dict[str, Any]:
    points = curve.points
    reached = next((p for p in points if p[2] >= TARGET_ACCURACY), None)
    reached_08 = next((p for p in points if p[2] >= 0.8), None)
    by_1000 = [p for p in points if p[1] <= 1000]
    accuracy, fid = scorer(lambda n, labels, seed: _sample(model, n, labels, seed), args.final_samples, seed=54321)
    return {"curve": points, "seconds_to_accuracy_0_9": reached[0] if reached else None,
            "steps_to_accuracy_0_9": reached[1] if reached else None,
            "seconds_to_accuracy_0_8": reached_08[0] if reached_08 else None,
            "steps_to_accuracy_0_8": reached_08[1] if reached_08 else None,
            "best_accuracy_within_1000_steps": max((p[2] for p in by_1000), default=None),
            "final": {"seconds": round(seconds, 1), "steps": steps,
                      "label_accuracy": round(accuracy, 4), "fid": round(fid, 3), "samples": args.final_samples}}


def _sample(model: Any, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
    if isinstance(model, GAN):
        return model.sample(n, labels=labels, seed=seed)
    return model.sample(n, labels, seed)


# ----- the plain loop -----
class PlainCDCGAN:
    """A conditional DCGAN as the PyTorch DCGAN example would write it, for 28×28 images."""

    def __init__(self, classes: int, latent: int = 100, width: int = 64) -> None:
        self.classes, self.latent = classes, latent
        self.G = nn.Sequential(
            nn.ConvTranspose2d(latent + classes, 2 * width, 7, 1, 0, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False), nn.Tanh())
        self.D = nn.Sequential(
            nn.Conv2d(1 + classes, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * width, 1, 7, 1, 0, bias=False))
        for m in [*self.G.modules(), *self.D.modules()]:
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def g(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.G(torch.cat([z, F.one_hot(labels, self.classes).float()], 1)[:, :, None, None])

    def d(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        planes = F.one_hot(labels, self.classes).float()[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.D(torch.cat([x, planes], 1)).view(-1)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        self.G.eval()
        z = torch.randn(n, self.latent, generator=torch.Generator().manual_seed(seed))
        images = torch.cat([self.g(z[i:i + 500], labels[i:i + 500]) for i in range(0, n, 500)])
        self.G.train()
        return (images + 1) / 2


def plain_run(dataset: Dataset, scorer: Scorer, args: argparse.Namespace, budget: float, every: float,
              seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model, batch = PlainCDCGAN(len(dataset.classes)), 128
    opt_d = torch.optim.Adam(model.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(model.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    curve = Curve(scorer, every, args.eval_samples)
    started, paused, step = time.perf_counter(), 0.0, 0
    images, labels = dataset.images, dataset.labels

    def seconds() -> float:
        return time.perf_counter() - started - paused

    while seconds() < budget and (args.max_steps is None or step < args.max_steps):
        for index in torch.randperm(len(images)).split(batch):
            if len(index) < batch:
                continue
            x, y = images[index].float() / 127.5 - 1.0, labels[index]
            fake = model.g(torch.randn(batch, model.latent), y)
            opt_d.zero_grad()
            real_logits, fake_logits = model.d(x, y), model.d(fake.detach(), y)
            loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            out = model.d(fake, y)
            F.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
            opt_g.step()
            step += 1
            if seconds() >= every * (len(curve.points) + 1):
                pause = time.perf_counter()
                curve.add(seconds(), step, model.sample)
                paused += time.perf_counter() - pause
            if seconds() >= budget or (args.max_steps is not None and step >= args.max_steps):
                break
    return {"config": {"batch_size": batch, "lr": 2e-4, "betas": [0.5, 0.999], "loss": "bce", "precision": "fp32"},
            **_final(curve, model, scorer, args, seconds(), step)}


# ----- report -----
def markdown(results: dict[str, Any]) -> str:
    lines = ["# Time to quality: the conditional GAN against the clock", ""]
    for data, runs in results["data"].items():
        lines += [f"## {data} ({runs['_budget_s']:.0f} s of training per run; 'genlab before' trains its 10 epochs)", "",
                  "| run | seconds to accuracy 0.9 | steps to 0.9 | seconds to accuracy 0.8 | steps to 0.8 | best accuracy ≤ 1,000 steps "
                  "| final accuracy | final judge-FID | steps | seconds | precision |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for name, run in runs.items():
            if name.startswith("_"):
                continue
            final, precision = run["final"], run["config"].get("train", run["config"]).get("precision")
            lines.append(f"| {name} | {_cell(run['seconds_to_accuracy_0_9'])} | {_cell(run['steps_to_accuracy_0_9'])} | "
                         f"{_cell(run['seconds_to_accuracy_0_8'])} | {_cell(run['steps_to_accuracy_0_8'])} | "
                         f"{_cell(run['best_accuracy_within_1000_steps'], '.3f')} | {final['label_accuracy']:.3f} | "
                         f"{final['fid']:.2f} | {final['steps']} | {final['seconds']:.0f} | {precision} |")
        seeded = {name: run["seeds"] for name, run in runs.items() if not name.startswith("_") and "seeds" in run}
        if seeded:
            lines += ["", "Every seed (the table above shows seed 0):", "",
                      "| run | seed | steps to 0.8 | best accuracy ≤ 1,000 steps | final accuracy | final judge-FID |",
                      "|---|---:|---:|---:|---:|---:|"]
            for name, seeds in seeded.items():
                for record in seeds:
                    lines.append(f"| {name} | {record['seed']} | {_cell(record['steps_to_accuracy_0_8'])} | "
                                 f"{_cell(record['best_accuracy_within_1000_steps'], '.3f')} | "
                                 f"{record['final']['label_accuracy']:.3f} | {record['final']['fid']:.2f} |")
        lines.append("")
    if results.get("plot"):
        lines += [f"![Judge label accuracy and judge-FID against training seconds](../../docs/images/{results['plot']})", ""]
    lines += ["Label accuracy: the shipped judge's class of each sample against the class asked for (chance 0.1; the "
              "judge's own accuracy on the real test images is its ceiling). Judge-FID: Fréchet distance of judge "
              "features to the test split (lower is better). Milestones are read off the curve, whose points use "
              f"{results['eval_samples']} samples (an equal number per class); the final columns use "
              f"{results['final_samples']}. Seconds are training wall clock with the evaluation pauses taken out; "
              "genlab runs include their checkpoints and per-epoch sample grids.", ""]
    for name, text in results["notes"].items():
        lines.append(f"- {name}: {text}")
    return "\n".join(lines)


def _cell(value: Any, spec: str = "") -> str:
    if value is None:
        return "—"
    return format(value, spec) if spec else (f"{value:.1f}" if isinstance(value, float) else str(value))


def plot(results: dict[str, Any], name: str) -> str:
    """Label accuracy and judge-FID against training seconds, one panel pair per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(results["data"])
    figure, axes = plt.subplots(len(datasets), 2, figsize=(11, 3.6 * len(datasets)), squeeze=False)
    for row, data in enumerate(datasets):
        for run, record in results["data"][data].items():
            if run.startswith("_") or not record["curve"]:
                continue
            seconds = [p[0] for p in record["curve"]]
            axes[row][0].plot(seconds, [p[2] for p in record["curve"]], marker=".", label=run)
            axes[row][1].plot(seconds, [p[3] for p in record["curve"]], marker=".", label=run)
        axes[row][0].axhline(TARGET_ACCURACY, color="grey", linestyle=":", linewidth=1)
        axes[row][0].set(title=f"{data}: judge label accuracy", xlabel="training seconds", ylim=(0, 1))
        axes[row][1].set(title=f"{data}: judge-FID (lower is better)", xlabel="training seconds", yscale="log")
        axes[row][0].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = harness.REPOSITORY / "docs" / "images" / f"{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.rerender:  # redraw the plot and rewrite the Markdown from the JSON
        payload = json.loads(Path(args.rerender).read_text())
        payload["results"]["plot"] = plot(payload["results"], payload["name"])
        Path(args.rerender).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {harness.rerender(args.rerender, lambda saved: markdown(saved['results']))}")
        return
    machine = harness.machine_info()
    name = args.name or ("time_to_quality_quick" if args.quick else "time_to_quality")
    results: dict[str, Any] = {"data": {}, "eval_samples": args.eval_samples, "final_samples": args.final_samples,
                               "overrides": dict(args.set), "auto_precision": choose_precision(torch.device("cpu")),
                               "notes": {run: text for run, text in NOTES.items() if run in args.runs}}
    for data in args.data:
        dataset = genlab.load_dataset(data)
        scorer = Scorer(data)
        budget = args.seconds or (450.0 if data == "fashion-mnist" else 100.0)
        every = args.eval_every or budget / 16
        runs: dict[str, Any] = {"_budget_s": budget}
        seeds = [args.seed + i for i in range(args.mini_seeds if data.endswith("-mini") else 1)]
        for run in args.runs:
            records = []
            for seed in seeds:
                print(f"{data}: {run}, seed {seed}", flush=True)
                records.append(plain_run(dataset, scorer, args, budget, every, seed) if run == "plain PyTorch"
                               else genlab_run(run, dataset, scorer, args, budget, every, seed))
            runs[run] = {**records[0], "seed": seeds[0]}
            if len(records) > 1:  # every seed's milestones and final scores (the curves of seed 0 only)
                runs[run]["seeds"] = [{"seed": seed, **{k: v for k, v in r.items() if k not in ("curve", "config")}}
                                      for seed, r in zip(seeds, records, strict=True)]
        results["data"][data] = runs
    results["plot"] = None if args.quick else plot(results, name)
    machine["load_average_at_end"] = list(os.getloadavg())
    harness.publish(name, results, markdown(results), machine=machine)


NOTES = {
    "genlab defaults": "what `genlab train gan --conditional` does: GANConfig(num_classes=10) (labels into G and D, "
                       "lr_g = lr_d = 4e-4), batch 64, EMA 0.99, precision auto.",
    "genlab before": "the defaults before issue 16: projection D and conditional BN only, lr_g 4e-4, lr_d 1e-4, "
                     "β (0.5, 0.999), batch 64, no EMA, fp32.",
    "plain PyTorch": "conditional DCGAN in the PyTorch example's style (see the module docstring), fp32.",
}

if __name__ == "__main__":
    main()
