"""Data augmentation by synthesis: does a conditional generator help a classifier that has few labels?

    python -m benchmarks.augmentation --jobs 2         # Fashion-MNIST, k = 10, 50, 100, 500 labels a class, 5 seeds
    python -m benchmarks.augmentation --quick          # smoke run on the bundled mini set; not a measurement

Protocol (issue 18). For each k and seed: k labelled training images per class are drawn by the seed
(``genlab.data.subsets``, exact); the rest of the training set is used by no arm. From those k, round(k/5)
per class (at least 1) are carved off as the validation split; the other k − v per class are the
training part. Both generators, a class-conditional GAN and a conditional VAE (genlab's defaults, as
``genlab train gan|vae --conditional`` builds them), train on the training part only, so validation stays
unseen by every model. The classifier is the same small CNN in every arm (genlab's judge network:
2 conv blocks of widths 24, 48 + 128 features, no built-in augmentation), trained from scratch with Adam by a
plain PyTorch loop until the validation loss has not improved for ``--patience`` evaluations (or
``--max-steps``); the weights with the best validation loss are scored once on the whole test split.

Arms: real only; real + classic augmentation (random horizontal flips and shifts of up to 2 px, i.e. crops
of the 2-px-padded image); real + cGAN and real + cVAE samples (synthetic : real = 1, drawn fresh each pass
over the data by ``genlab.data.MixedDataset``); real + classic + best synthetic; and a ratio sweep with the
best generator (0.5, 1, 4). "Best" is chosen per seed by validation accuracy of the two real + synthetic arms
(never by test accuracy). The classification accuracy score (CAS, Ravuri & Vinyals 2019) of each generator: the
same classifier trained on its samples only (``genlab.tools.augment.synthesize``: as many of each class as the
real training part holds), early-stopped on the real validation split. Every arm is compared per seed with
"real + classic" (paired differences, 95% t interval).

Each (k, seed) cell is written to ``--cells-dir`` as it ends and reused by a later run with the same settings,
so a killed run loses at most the cells it was in; ``--jobs N`` trains N cells at a time in spawned processes
of one torch thread each, largest k first.

Results: benchmarks/results/augmentation.{json,md} and docs/images/augmentation.png; --quick writes into a
temporary folder instead (printed), leaving the published results alone.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import copy
import hashlib
import json
import math
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import genlab
from benchmarks import harness
from genlab.cli.train import BATCH_SIZES, TRAIN_DEFAULTS
from genlab.data import Dataset, MixedDataset, split_per_class
from genlab.io.files import atomic_write
from genlab.models.judge import Judge, JudgeConfig, shift_and_flip
from genlab.tools.augment import synthesize

GENERATORS = ("cGAN", "cVAE")
BASELINE = "real + classic"
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]  # t quantiles, 1..10 degrees of freedom


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.augmentation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 50, 100, 500], help="labelled images per class")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.5, 1.0, 4.0], help="synthetic : real of the sweep")
    parser.add_argument("--gan-steps", type=int, default=2000, help="training steps of each conditional GAN")
    parser.add_argument("--vae-steps", type=int, default=2000, help="training steps of each conditional VAE")
    parser.add_argument("--max-steps", type=int, default=6000, help="classifier steps at most (batch 64)")
    parser.add_argument("--eval-every", type=int, default=50, help="classifier steps between validation checks")
    parser.add_argument("--patience", type=int, default=10, help="validation checks without a better loss before stopping")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--jobs", type=int, default=1, help="cells trained at a time, each in its own process of one thread")
    parser.add_argument("--cells-dir", default="runs/augmentation-cells",
                        help="where each finished (k, seed) cell is kept and reused by a run with the same settings")
    parser.add_argument("--available", action="store_true",
                        help="report the cells already in --cells-dir (each k with the seeds it has), training nothing")
    parser.add_argument("--quick", action="store_true", help="smoke run: the mini set, k = 10, 2 seeds, a few steps")
    parser.add_argument("--name", default=None)
    parser.add_argument("--rerender", default=None, metavar="JSON",
                        help="rewrite the Markdown and the plot of an earlier results file, training nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.ks, args.seeds, args.gan_steps, args.vae_steps = "fashion-mnist-mini", [10], 2, 20, 20
        args.max_steps, args.eval_every, args.patience = 40, 10, 2
    args.name = args.name or ("augmentation_quick" if args.quick else "augmentation")
    if args.jobs < 1 or args.seeds < 1:
        parser.error("--jobs and --seeds must be >= 1")
    return args


# ----- the pieces -----
def replicated(data: Dataset, at_least: int) -> Dataset:
    """``data`` repeated a whole number of times to hold >= ``at_least`` items: the same distribution, but epochs
    (and the loop's per-epoch checkpoints) long enough not to dominate a generator's training on 80 images."""
    copies = max(1, math.ceil(at_least / len(data)))
    return Dataset(data.images.repeat(copies, 1, 1, 1), data.labels.repeat(copies), data.classes, data.name)


def train_generator(kind: str, data: Dataset, *, seed: int, steps: int, device: str) -> Any:
    """A conditional GAN or VAE as `genlab train gan|vae --conditional` builds and trains it (its CLI batch size and
    defaults: the GAN keeps an EMA of its weights), for ``steps`` steps on ``data``."""
    cli_kind = {"cGAN": "gan", "cVAE": "vae"}[kind]
    torch.manual_seed(seed)
    if kind == "cGAN":
        model = genlab.GAN(genlab.GANConfig(image_shape=data.image_shape, num_classes=data.num_classes))
    else:
        model = genlab.VAE(genlab.VAEConfig(image_shape=data.image_shape, num_classes=data.num_classes))
    batch = BATCH_SIZES[cli_kind]
    with tempfile.TemporaryDirectory(prefix="augmentation-") as out_dir:
        config = genlab.TrainConfig(epochs=10**6, max_steps=steps, batch_size=batch, seed=seed, out_dir=out_dir, device=device,
                                    progress=False, tensorboard=False, plots=False, num_sample_images=0,
                                    log_every=max(1, steps), **TRAIN_DEFAULTS.get(cli_kind, {}))
        genlab.train(model, replicated(data, 100 * batch), config)
    return model.eval()


def images_and_labels(data: Dataset) -> torch.utils.data.TensorDataset:
    return torch.utils.data.TensorDataset(data.float_images(), data.labels)


@torch.no_grad()
def loss_and_accuracy(net: Judge, data: Dataset, device: torch.device) -> tuple[float, float]:
    net.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(data), 1000):
        x, y = data.float_images(slice(start, start + 1000)).to(device), data.labels[start:start + 1000].to(device)
        logits = net(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    return total_loss / len(data), correct / len(data)


def train_classifier(train_set: torch.utils.data.Dataset, val: Dataset, test: Dataset, *, seed: int, classic: bool,
                     args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The small CNN from scratch on ``train_set`` (any map-style dataset of (image, label); a MixedDataset is told
    each new pass), early-stopped on ``val``'s loss; test accuracy of the best-validation weights."""
    torch.manual_seed(seed)
    net = Judge(JudgeConfig(image_shape=val.image_shape, num_classes=val.num_classes, max_shift=0, flip=False)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(train_set, batch_size=min(64, len(train_set)), shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    best = (math.inf, 0.0, 0, copy.deepcopy(net.state_dict()))  # val loss, val accuracy, step, weights
    step, checks_since_best, passes, started = 0, 0, 0, time.perf_counter()
    while step < args.max_steps and checks_since_best < args.patience:
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(passes)  # a MixedDataset's fresh synthetic images for this pass
        for x, y in loader:
            net.train()
            x, y = x.to(device), y.to(device)
            if classic:
                x = shift_and_flip(x, 2, True)
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.eval_every == 0:
                val_loss, val_accuracy = loss_and_accuracy(net, val, device)
                if val_loss < best[0]:
                    best, checks_since_best = (val_loss, val_accuracy, step, copy.deepcopy(net.state_dict())), 0
                else:
                    checks_since_best += 1
            if step >= args.max_steps or checks_since_best >= args.patience:
                break
        passes += 1
    net.load_state_dict(best[3])
    _, test_accuracy = loss_and_accuracy(net, test, device)
    return {"test_accuracy": test_accuracy, "val_accuracy": best[1], "val_loss": best[0], "best_step": best[2], "steps": step,
            "seconds": time.perf_counter() - started}


# ----- one (k, seed) cell -----
def run_cell(train: Dataset, test: Dataset, k: int, seed: int, args: argparse.Namespace,
             device: torch.device) -> dict[str, Any]:
    labelled, _unused = split_per_class(train, k, seed=seed)
    val, part = split_per_class(labelled, max(1, round(k / 5)), seed=seed + 10_000)
    generators, seconds = {}, {}
    for kind in GENERATORS:
        started = time.perf_counter()
        generators[kind] = train_generator(kind, part, seed=seed, steps=args.gan_steps if kind == "cGAN" else args.vae_steps,
                                           device=args.device)
        seconds[kind] = time.perf_counter() - started
        print(f"  k={k} seed {seed}: {kind} trained in {seconds[kind]:.0f} s", flush=True)

    def classify(name: str, train_set: torch.utils.data.Dataset, classic: bool = False) -> dict[str, Any]:
        result = train_classifier(train_set, val, test, seed=seed, classic=classic, args=args, device=device)
        print(f"  k={k} seed {seed}: {name:<34} test {result['test_accuracy']:.4f}  val {result['val_accuracy']:.3f}  "
              f"({result['steps']} steps, {result['seconds']:.0f} s)", flush=True)
        return result

    def mixed(kind: str, ratio: float) -> MixedDataset:
        return MixedDataset(part, generators[kind], ratio=ratio, fresh=True, seed=seed)

    arms = {"real": classify("real", images_and_labels(part)),
            BASELINE: classify(BASELINE, images_and_labels(part), classic=True)}
    for kind in GENERATORS:
        arms[f"real + {kind}"] = classify(f"real + {kind}", mixed(kind, 1.0))
    best = max(GENERATORS, key=lambda kind: arms[f"real + {kind}"]["val_accuracy"])  # validation, never test
    arms["real + classic + best synthetic"] = classify("real + classic + best synthetic", mixed(best, 1.0), classic=True)
    for ratio in args.ratios:
        name = f"real + best synthetic ×{ratio:g}"
        arms[name] = arms[f"real + {best}"] if ratio == 1.0 else classify(name, mixed(best, ratio))
    cas = {}
    for kind in GENERATORS:  # synthetic only: as many images of each class as the real training part (Ravuri & Vinyals)
        synthetic, _ = synthesize(generators[kind], k - len(val) // val.num_classes, seed=seed + 1, classes=train.classes)
        cas[kind] = classify(f"CAS {kind}", images_and_labels(synthetic))
    return {"arms": arms, "cas": cas, "best_generator": best, "generator_seconds": seconds,
            "sizes": {"labelled": len(labelled), "validation": len(val), "train": len(part)}}


# ----- summaries, the report, the plot -----
def mean_std_seeds(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "seeds": values}


def paired(arm: list[float], baseline: list[float]) -> dict[str, Any]:
    """Per-seed differences arm − baseline: mean, 95% t interval, wins, and a verdict in words."""
    differences = [a - b for a, b in zip(arm, baseline, strict=True)]
    mean = statistics.mean(differences)
    n = len(differences)
    half = T_975[min(n - 2, len(T_975) - 1)] * statistics.stdev(differences) / math.sqrt(n) if n > 1 else math.nan
    low, high = mean - half, mean + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "no clear difference"
    if n < 2:
        verdict = "one seed: no interval"
    return {"mean_difference": mean, "ci95": [low, high], "wins": sum(d > 0 for d in differences),
            "losses": sum(d < 0 for d in differences), "differences": differences, "verdict": verdict}


def summarize(cells: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    results, cas, comparisons, best = {}, {}, {}, {}
    for k, runs in cells.items():
        arms = list(runs[0]["arms"])
        accuracy = {arm: [run["arms"][arm]["test_accuracy"] for run in runs] for arm in arms}
        results[str(k)] = {arm: mean_std_seeds(values) for arm, values in accuracy.items()}
        cas[str(k)] = {kind: mean_std_seeds([run["cas"][kind]["test_accuracy"] for run in runs]) for kind in GENERATORS}
        comparisons[str(k)] = {arm: paired(accuracy[arm], accuracy[BASELINE]) for arm in arms if arm != BASELINE}
        best[str(k)] = [run["best_generator"] for run in runs]
    return {"results": results, "cas": cas, "paired": comparisons, "best_generator": best}


def seeds_text(summary: dict[str, Any]) -> str:
    """"k = 10: 3 seeds (0…2), ..." from the summary's per-arm seed lists."""
    counts = {k: len(next(iter(arms.values()))["seeds"]) for k, arms in summary["results"].items()}
    return ", ".join(f"k = {k}: {n} seed{'s' if n > 1 else ''} (0…{n - 1})" for k, n in counts.items())


def markdown(summary: dict[str, Any], args: argparse.Namespace, plot_name: str | None) -> str:
    quick = " (QUICK SMOKE RUN: not a measurement)" if args.quick else ""
    lines = [f"# Data augmentation by synthesis on label-scarce {args.data}{quick}", ""]
    if plot_name:
        lines += [f"![Test accuracy against labelled images per class](../../docs/images/{plot_name})", ""]
    lines += ["Test accuracy (mean ± std over seeds) of the same small CNN; Δ: the paired difference per seed against "
              f"**{BASELINE}**, mean with its 95% t interval, and wins/losses out of the seeds of that k "
              f"({seeds_text(summary)}).", ""]
    ks = list(summary["results"])
    lines += ["| arm | " + " | ".join(f"k = {k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for arm in summary["results"][ks[0]]:
        lines.append(f"| {arm} | " + " | ".join(f"{100 * summary['results'][k][arm]['mean']:.2f} ± "
                                               f"{100 * summary['results'][k][arm]['std']:.2f}" for k in ks) + " |")
    for kind in GENERATORS:
        lines.append(f"| CAS: {kind} samples only | " + " | ".join(
            f"{100 * summary['cas'][k][kind]['mean']:.2f} ± {100 * summary['cas'][k][kind]['std']:.2f}" for k in ks) + " |")
    lines += ["", "Test accuracy in %, mean ± std over seeds; CAS: the classifier trained on the generator's samples "
              "alone. Per k below: each arm against real + classic, seed by seed.", ""]
    not_helping = []
    for k, arms in summary["results"].items():
        lines += [f"## k = {k} labelled images per class", "",
                  "| arm | test accuracy | Δ vs real + classic | wins / losses | verdict |", "|---|---:|---:|---:|---|"]
        for arm, cell in arms.items():
            row = f"| {arm} | {100 * cell['mean']:.2f} ± {100 * cell['std']:.2f} % |"
            if arm == BASELINE:
                lines.append(row + " (baseline) | | |")
                continue
            comparison = summary["paired"][k][arm]
            low, high = comparison["ci95"]
            lines.append(row + f" {100 * comparison['mean_difference']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}] | "
                               f"{comparison['wins']} / {comparison['losses']} | {comparison['verdict']} |")
            if ("synthetic" in arm or "cGAN" in arm or "cVAE" in arm) and comparison["verdict"] != "better":
                not_helping.append(f"{arm} at k = {k} ({comparison['verdict']})")
        cas = summary["cas"][k]
        lines += ["", "Classification accuracy score (trained on synthetic images only): "
                  + "; ".join(f"{kind} {100 * cell['mean']:.2f} ± {100 * cell['std']:.2f} %" for kind, cell in cas.items())
                  + f" (real only: {100 * arms['real']['mean']:.2f} %). Best generator by validation, per seed: "
                  + ", ".join(summary["best_generator"][k]) + ".", ""]
    lines += ["## Where synthesis does not help", "",
              ("Against real + classic augmentation, these synthetic arms are not better (95% interval): "
               + "; ".join(not_helping) + ".") if not_helping else "Every synthetic arm beat real + classic augmentation.", "",
              "## Protocol", "", *[paragraph.replace("\n", " ") + "\n" for paragraph in __doc__.split("\n\n")[2:4]],
              f"Settings: GAN {args.gan_steps} steps, VAE {args.vae_steps} steps; classifier: Adam 1e-3, batch 64, "
              f"at most {args.max_steps} steps, validation every {args.eval_every} steps, patience {args.patience}; "
              f"ratios {', '.join(f'{r:g}' for r in args.ratios)}; seeds: {seeds_text(summary)}; {args.jobs} cell(s) at a time"
              f"{', each in a process of one torch thread' if args.jobs > 1 else ''}. No arm uses the "
              "training images outside the k labelled ones (no semi-supervised arm was run)."]
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> Path:
    """Test accuracy against k (log axis), one line per arm, error bars of one std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [int(k) for k in summary["results"]]
    figure, axis = plt.subplots(figsize=(8, 5))
    arms = list(summary["results"][str(ks[0])])
    for index, arm in enumerate(arms):
        cells = [summary["results"][str(k)][arm] for k in ks]
        dodge = 1.03 ** (index - (len(arms) - 1) / 2)  # side by side at each k, so the error bars stay apart
        axis.errorbar([k * dodge for k in ks], [100 * c["mean"] for c in cells], yerr=[100 * c["std"] for c in cells],
                      marker="o", capsize=3, label=arm, linestyle="--" if "×" in arm else "-")
    axis.set(xscale="log", xlabel="labelled images per class (k)", ylabel="test accuracy (%)",
             title="Label-scarce classification: real, classic augmentation and synthetic data")
    axis.set_xticks(ks, [str(k) for k in ks])
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ----- cells: cached, and trained a few at a time -----
CELL_SETTINGS = ("data", "ratios", "gan_steps", "vae_steps", "max_steps", "eval_every", "patience")


def cell_path(args: argparse.Namespace, k: int, seed: int) -> Path:
    """Where the (k, seed) cell is kept: the name holds a hash of every setting that changes its result."""
    settings = json.dumps({name: getattr(args, name) for name in CELL_SETTINGS}, sort_keys=True)
    return Path(args.cells_dir) / f"k{k}-seed{seed}-{hashlib.sha256(settings.encode()).hexdigest()[:12]}.json"


def device_of(args: argparse.Namespace) -> torch.device:
    return torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                        "cpu" if args.device == "auto" else args.device)


def cached_cell(args: argparse.Namespace, k: int, seed: int) -> dict[str, Any]:
    """The (k, seed) cell from ``--cells-dir``, or trained now and written there (not for --quick)."""
    path = cell_path(args, k, seed)
    if not args.quick and path.is_file():
        print(f"  k={k} seed {seed}: reused {path}", flush=True)
        return json.loads(path.read_text())
    train, test = genlab.load_dataset(args.data, split="train"), genlab.load_dataset(args.data, split="test")
    cell = run_cell(train, test, k, seed, args, device_of(args))
    if not args.quick:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as file:
            file.write(json.dumps(cell).encode())
    return cell


def _cell_in_worker(args: argparse.Namespace, k: int, seed: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    return cached_cell(args, k, seed)


def all_cells(args: argparse.Namespace) -> dict[int, list[dict[str, Any]]]:
    """Every (k, seed) cell; with --jobs > 1, in a pool of spawned processes, seed by seed (so a run cut short
    leaves every k with about as many seeds), the costliest (largest k) first within a seed. ``--available``:
    only the cells already in --cells-dir, training nothing (each k keeps the seeds it has; a k with none is left out)."""
    order = [(k, seed) for k in args.ks for seed in range(args.seeds)]
    if args.available:
        found = {key: json.loads(cell_path(args, *key).read_text()) for key in order if cell_path(args, *key).is_file()}
        cells = {k: [found[(k, seed)] for seed in range(args.seeds) if (k, seed) in found] for k in args.ks}
        return {k: runs for k, runs in cells.items() if runs}
    if args.jobs == 1:
        done = {key: cached_cell(args, *key) for key in order}
    else:
        context = multiprocessing.get_context("spawn")  # no forked OpenMP state
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = {key: pool.submit(_cell_in_worker, args, *key) for key in sorted(order, key=lambda key: (key[1], -key[0]))}
            done = {key: futures[key].result() for key in order}
    return {k: [done[(k, seed)] for seed in range(args.seeds)] for k in args.ks}


def rerender(json_path: str) -> None:
    """The Markdown and the plot again from a results file (e.g. after a change to the report's wording)."""
    payload = json.loads(Path(json_path).read_text())
    results = payload["results"]
    args = argparse.Namespace(**results["settings"])
    plot(results, harness.REPOSITORY / "docs" / "images" / f"{args.name}.png")
    print(harness.rerender(json_path, lambda saved: markdown(saved["results"], args, f"{args.name}.png")))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.rerender:
        rerender(args.rerender)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = harness.machine_info()
    started = time.perf_counter()
    cells = all_cells(args)
    summary = summarize(cells)
    machine["load_average_at_end"] = harness.machine_info()["load_average_at_start"]
    directory = Path(tempfile.mkdtemp(prefix="genlab-augmentation-")) if args.quick else harness.RESULTS_DIR
    picture = (directory if args.quick else harness.REPOSITORY / "docs" / "images") / f"{args.name}.png"
    plot(summary, picture)
    results = {"settings": vars(args), **summary, "cells": {str(k): runs for k, runs in cells.items()},
               "plot": str(picture), "total_seconds": time.perf_counter() - started}
    text = markdown(summary, args, None if args.quick else picture.name)
    json_path, md_path = harness.write_results(args.name, results, text, machine=machine, directory=directory)
    print("\n" + md_path.read_text())
    print(f"wrote {json_path}, {md_path} and {picture}")


if __name__ == "__main__":
    main()
