"""Which training recipe teaches a small SRResNet the most per CPU second on photographs: bf16 autocast or fp32,
and more data (the grayscale photos and 16,000 patches instead of 4,000)? The choices behind
``benchmarks.super_resolution_photos``' defaults, measured with seeds instead of asserted.

Validation, never the test set: two training photos (``VALIDATION``: china, rocket) are taken out of the patches and
scored whole with the photo benchmark's protocol (``held_out_pairs``: bicubic ×4 downsampling quantised to 8 bits,
PSNR on the Y channel with ``scale`` border pixels cropped); the four test photos are not looked at. Each recipe
trains SRResNet (``--config``, default 4 blocks × 32 channels) for ``--budget`` CPU seconds of its own process on
one thread, once per seed (the seed sets the initial weights and the batch order; the patches of a recipe are the
same for every seed), ``--jobs`` at a time.

    python -m benchmarks.sr_recipe --budget 300 --seeds 3 --jobs 2   # 9 runs × 300 CPU s / 2 + patches, scoring ≈ 30 min
    python -m benchmarks.sr_recipe --quick                           # a smoke test: seconds, tiny nets

Results: benchmarks/results/sr_recipe.{json,md}: per recipe the mean gain over bicubic and its spread over seeds,
and the per-seed difference of each recipe from the first (paired: same seed, same initial weights).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.families import CPUClock, in_processes
from benchmarks.super_resolution_photos import held_out_pairs, psnr_y_each, trained_steps

VALIDATION = ("china", "rocket")
RECIPES: dict[str, dict[str, Any]] = {
    "bf16 autocast": {"precision": "bf16", "grayscale": False, "patches": 4000},
    "fp32": {"precision": "fp32", "grayscale": False, "patches": 4000},
    "fp32, grayscale photos, 16,000 patches": {"precision": "fp32", "grayscale": True, "patches": 16000},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sr_recipe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="CPU seconds of training per run (default 300)")
    parser.add_argument("--seeds", type=int, default=3, help="runs per recipe, seeds 0..N-1 (default 3)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    parser.add_argument("--config", default='{"channels": 32, "blocks": 4, "growth": 16}',
                        help="SRConfig fields as JSON (default: the photo benchmark's nets)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 3 CPU s, tiny nets, 64 patches")
    parser.add_argument("--name", default=None, help="results file name (default sr_recipe, or sr_recipe_quick)")
    args = parser.parse_args(argv)
    try:
        args.config = json.loads(args.config)
    except json.JSONDecodeError as error:
        parser.error(f"--config: expected a JSON object of SRConfig fields ({error})")
    if not isinstance(args.config, dict):
        parser.error(f"--config: expected a JSON object of SRConfig fields, got {type(args.config).__name__}")
    if args.seeds < 1 or args.jobs < 1 or args.budget <= 0:
        parser.error("--seeds and --jobs must be at least 1 and --budget positive")
    args.recipes = {name: dict(recipe) for name, recipe in RECIPES.items()}
    if args.quick:
        args.budget, args.patch, args.batch_size, args.seeds = min(args.budget, 3.0), 32, 4, 1
        args.config = {"channels": 8, "blocks": 1, "growth": 4}
        for recipe in args.recipes.values():
            recipe["patches"] = 64
    args.name = args.name or ("sr_recipe_quick" if args.quick else "sr_recipe")
    return args


def validation_split(grayscale: bool, quick: bool) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """(training photos without the validation ones, the validation photos whole — 64×64 crops with ``quick``)."""
    from genlab.data import photos

    train = photos.training_photos(grayscale=grayscale)
    validation = {name: train.pop(name) for name in VALIDATION}
    if quick:
        validation = {name: image[:, :64, :64] for name, image in validation.items()}
    return list(train.values()), validation


def train_run(recipe_name: str, recipe: dict[str, Any], seed: int, args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """One recipe with one seed, in this process (``--jobs`` runs it in a fresh one): its steps and validation gains."""
    import genlab
    from genlab.data.dataset import Dataset
    from genlab.data.photos import random_patches
    from genlab.models.sr.nets import upsample_bicubic
    from genlab.tools.upscale import upscale_image

    torch.set_num_threads(1)
    photos, validation = validation_split(recipe["grayscale"], args.quick)
    data = Dataset(random_patches(photos, recipe["patches"], args.patch, seed=0), None, (), "photos")
    out_dir = work_dir / f"{recipe_name.replace(' ', '-').replace(',', '')}-seed{seed}"
    torch.manual_seed(seed)
    model = genlab.SR(genlab.SRConfig(image_shape=data.image_shape, scale=4, variant="srresnet",
                                      downsampling="bicubic", **args.config))
    train = genlab.TrainConfig(epochs=100_000, batch_size=args.batch_size, lr=args.lr, seed=seed, out_dir=str(out_dir),
                               device="cpu", max_seconds=args.budget, log_every=100, progress=False,
                               tensorboard=False, num_sample_images=0, precision=recipe["precision"])
    print(f"training {recipe_name}, seed {seed}, for {args.budget:.0f} CPU s", flush=True)
    genlab.train(model, data, train, callbacks=[CPUClock()])
    trained = genlab.load(str(out_dir))
    pairs = held_out_pairs(validation, 4)
    model_db = psnr_y_each(lambda low: upscale_image(trained, low, exact=False), pairs, 4)
    bicubic_db = psnr_y_each(lambda low: upsample_bicubic(low, 4).clamp(0.0, 1.0), pairs, 4)
    gains = {name: m - b for name, m, b in zip(validation, model_db, bicubic_db, strict=True)}
    steps = trained_steps(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    print(f"  {recipe_name}, seed {seed}: {steps} steps, gain over bicubic {sum(gains.values()) / len(gains):+.3f} dB",
          flush=True)
    return {"recipe": recipe_name, "seed": seed, "steps": steps, "gain_by_photo": gains,
            "gain": sum(gains.values()) / len(gains)}


def summarize(runs: list[dict[str, Any]], recipes: list[str]) -> dict[str, dict[str, Any]]:
    """Per recipe: mean and sample standard deviation of the gain over seeds, mean steps, and the mean and range of
    the paired per-seed difference from the first recipe (same seed → same initial weights and batch order)."""
    by = {name: {run["seed"]: run for run in runs if run["recipe"] == name} for name in recipes}
    first = by[recipes[0]]
    summary = {}
    for name in recipes:
        gains = [run["gain"] for run in by[name].values()]
        differences = [by[name][seed]["gain"] - first[seed]["gain"] for seed in by[name] if seed in first]
        summary[name] = {"seeds": len(gains), "gain_mean": statistics.fmean(gains),
                         "gain_sd": statistics.stdev(gains) if len(gains) > 1 else 0.0,
                         "steps_mean": statistics.fmean(run["steps"] for run in by[name].values()),
                         "vs_first_mean": statistics.fmean(differences),
                         "vs_first_min": min(differences), "vs_first_max": max(differences)}
    return summary


def markdown_report(results: dict[str, Any]) -> str:
    settings, summary = results["settings"], results["summary"]
    recipes = list(summary)
    lines = ["# SR training recipes on photographs: gain over bicubic per CPU second", "",
             f"SRResNet `{json.dumps(settings['config'])}` trained {settings['budget']:.0f} CPU s per run (1 thread, "
             f"batch {settings['batch_size']}, {settings['patch']}×{settings['patch']} patches, Adam {settings['lr']:g}); "
             f"validated on the training photos {' and '.join(VALIDATION)}, held out of the patches (not the test set): "
             "×4 bicubic downsampling, PSNR-Y with 4 border pixels cropped.", "",
             f"| recipe | seeds | steps (mean) | gain over bicubic (dB), mean ± sd | per seed | − {recipes[0]}, paired (dB) |",
             "|---|---:|---:|---:|---|---:|"]
    for name, row in summary.items():
        per_seed = ", ".join(f"{run['gain']:+.3f}" for run in results["runs"] if run["recipe"] == name)
        paired = "—" if name == recipes[0] else (f"{row['vs_first_mean']:+.3f} "
                                                 f"({row['vs_first_min']:+.3f} … {row['vs_first_max']:+.3f})")
        lines.append(f"| {name} | {row['seeds']} | {row['steps_mean']:,.0f} | {row['gain_mean']:+.3f} ± {row['gain_sd']:.3f} "
                     f"| {per_seed} | {paired} |")
    lines += ["", "The paired column: each recipe's gain minus the first recipe's with the same seed (the same initial "
              "weights), the mean and the range over seeds. A difference smaller than the seeds' spread is not a finding."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    args = parse_args(argv)
    jobs = [(name, recipe, seed) for seed in range(args.seeds) for name, recipe in args.recipes.items()]
    print(f"this will take about {-(-len(jobs) // args.jobs) * args.budget / 60 + 1:.0f} min: {len(jobs)} runs × "
          f"{args.budget:.0f} CPU s, {args.jobs} at a time", flush=True)
    machine = harness.machine_info()
    started = time.perf_counter()
    work_dir = Path(tempfile.mkdtemp(prefix="genlab-sr-recipe-"))
    try:
        calls = [(name, recipe, seed, args, work_dir) for name, recipe, seed in jobs]
        runs = in_processes(train_run, calls, args.jobs) if args.jobs > 1 else [train_run(*call) for call in calls]
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    machine["load_average_at_end"] = list(os.getloadavg())
    results = {"settings": dict(vars(args)), "validation": list(VALIDATION), "runs": runs,
               "summary": summarize(runs, list(args.recipes)), "wall_seconds_total": time.perf_counter() - started}
    harness.publish(args.name, results, markdown_report(results), machine=machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
