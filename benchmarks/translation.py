"""Image-to-image translation on Fashion-MNIST, measured against the pix2pix and CycleGAN papers' protocols.

Three measurements (issue 17), every model trained by ``genlab.train`` on one torch thread:

1. **Paired, edges → garment** (pix2pix's Table 1 analogue): ``genlab.Pix2Pix`` trained on (Sobel edge map,
   image) pairs of the 60,000 training images with L1 only, cGAN only, and L1 + cGAN; scored on the test
   set (``-n`` images) against the true images: L1, PSNR, SSIM; FID of the outputs against the real test
   images in the shipped judge's features; sharpness (Laplacian energy ÷ the targets'); and the analogue of
   pix2pix's "FCN-score": the judge's accuracy on the outputs, scored with the source image's label, beside
   its accuracy on the real targets (the ground-truth row, the upper bound).
2. **Unpaired with a hidden pairing**: CycleGAN trained with domain A = edge maps of training images
   0–29,999 and domain B = images 30,000–59,999 (no image in both), then scored on the test set's true pairs
   with the same metrics, beside the L1 + cGAN pix2pix of (1) as the supervised upper bound.
3. **Class to class, sneaker ↔ ankle boot**: CycleGAN on the training sneakers and ankle boots; on the test
   set, in both directions: the judge's success rate (translated image classified as the target class), the
   cycle reconstruction error F(G(a)) vs a (L1), and FID to the target class's real test images.

    python -m benchmarks.translation --work-dir runs/translation-bench       # all three (hours on one core)
    python -m benchmarks.translation --only paired --steps-pix2pix 2000
    python -m benchmarks.translation --quick                                 # smoke run: about a minute

Results: benchmarks/results/translation.{json,md} and docs/images/translation.png (rows: edges, L1, L1 + cGAN,
target; sneaker → boot → back; boot → sneaker → back). ``--quick`` trains tiny nets for a few steps on the
bundled subset and writes its results and picture into the work folder, not the repository.
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

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("l1", "cgan", "l1_cgan")
NAMES = {"l1": "L1 only", "cgan": "cGAN only", "l1_cgan": "L1 + cGAN", "ground_truth": "ground truth"}
MEASUREMENTS = ("paired", "hidden_pair", "class_to_class")
SNEAKER, ANKLE_BOOT = 7, 9
# As given in issue 17: pix2pix Table 1 (Cityscapes labels → photo, FCN per-pixel accuracy) and CycleGAN's
# Table 1/2 comparison on the same task.
PAPER = {"paired_fcn_per_pixel_accuracy": {"l1": 0.42, "cgan": 0.57, "l1_cgan": 0.66, "ground_truth": 0.80},
         "hidden_pair_fcn_per_pixel_accuracy": {"cyclegan": 0.52, "pix2pix": 0.71}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.translation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS), help="measurements to run")
    parser.add_argument("--steps-pix2pix", type=int, default=3000, help="training steps per pix2pix variant (batch 64)")
    parser.add_argument("--steps-cyclegan", type=int, default=3000, help="training steps per CycleGAN (batch 16)")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per row (metrics: the mean over seeds)")
    parser.add_argument("-n", "--num-images", type=int, default=10_000, help="test images scored (default all)")
    parser.add_argument("--config", default="{}", metavar="JSON", help="extra options for both model configs, e.g. widths")
    parser.add_argument("--precision", default=None, help="TrainConfig precision (default: TrainConfig's)")
    parser.add_argument("--work-dir", default=None, help="where trained runs go (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smoke run: bundled subset, tiny nets, a few steps, "
                                                             "results in the work folder")
    parser.add_argument("--name", default="translation", help="results file name")
    parser.add_argument("--picture", default=str(REPO / "docs" / "images" / "translation.png"), help="PNG to draw")
    parser.add_argument("--rerender", default=None, metavar="JSON", help="rewrite the Markdown of an earlier results file")
    args = parser.parse_args(argv)
    args.config = json.loads(args.config)
    args.data = "fashion-mnist"
    if args.quick:
        args.data, args.steps_pix2pix, args.steps_cyclegan, args.num_images = "fashion-mnist-mini", 3, 3, 200
        args.config = {"g_width": 8, "d_width": 8, **args.config}
        args.name = "translation_quick"
    return args


# ----- data -----
def datasets(args: argparse.Namespace) -> dict[str, Any]:
    import genlab
    from genlab.data import Dataset
    from genlab.data.domains import load_domains, unpaired
    from genlab.data.pairs import make_pairs, sobel_edges

    train, test = genlab.load_dataset(args.data, split="train"), genlab.load_dataset(args.data, split="test")
    test = test.subset(slice(0, min(args.num_images, len(test))))
    half = len(train) // 2
    hidden = unpaired(Dataset(sobel_edges(train.images[:half]), name="edges of train[:half]"),
                      Dataset(train.images[half:2 * half], name="train[half:]"), seed=0, name="hidden pairing")
    everything = genlab.load_dataset(args.data, split="test")  # class-to-class scores every test image of both classes
    return {"paired": make_pairs(train, "edges"), "test": make_pairs(test, "edges"), "hidden": hidden,
            "classes": load_domains(f"{args.data}:{SNEAKER}", f"{args.data}:{ANKLE_BOOT}", split="train"),
            "class_test": {c: everything.float_images(everything.labels == c) for c in (SNEAKER, ANKLE_BOOT)}}


# ----- training -----
def train_run(model: Any, data: Any, out_dir: Path, steps: int, batch: int, seed: int, args: argparse.Namespace,
              **schedule: Any) -> dict[str, Any]:
    import genlab
    from genlab.io.checkpoints import read_run_config

    if out_dir.exists():
        shutil.rmtree(out_dir)
    epochs = -(-steps * batch // len(data))
    options = {"precision": args.precision} if args.precision else {}
    config = genlab.TrainConfig(epochs=epochs, batch_size=batch, seed=seed, out_dir=str(out_dir), device="cpu", max_steps=steps,
                                log_every=50, progress=not args.quick, tensorboard=False, **schedule, **options)
    print(f"training {model.kind} → {out_dir} ({steps} steps of {batch})", flush=True)
    started = time.perf_counter()
    trained = genlab.train(model, data, config)
    seconds = time.perf_counter() - started
    return {"model": trained, "run": str(out_dir), "steps": steps, "batch_size": batch, "seed": seed, "train_seconds": seconds,
            "precision": read_run_config(out_dir)["train"]["precision"]}


def pix2pix(objective: str, seed: int, args: argparse.Namespace, data: Any, work: Path) -> dict[str, Any]:
    from genlab.models.translation import Pix2Pix, Pix2PixConfig

    torch.manual_seed(seed)
    model = Pix2Pix(Pix2PixConfig(image_shape=data.image_shape, task="edges", objective=objective, **args.config))
    return train_run(model, data, work / f"pix2pix-{objective}-seed{seed}", args.steps_pix2pix, 64, seed, args)


def cyclegan(name: str, seed: int, args: argparse.Namespace, data: Any, work: Path, domains: tuple[str, str]) -> dict[str, Any]:
    from genlab.models.translation import CycleGAN, CycleGANConfig

    torch.manual_seed(seed)
    extra = {"g_blocks": 2} if args.quick else {}
    model = CycleGAN(CycleGANConfig(image_shape=data.image_shape, domain_a=domains[0], domain_b=domains[1], **extra, **args.config))
    return train_run(model, data, work / f"cyclegan-{name}-seed{seed}", args.steps_cyclegan, 16, seed, args,
                     lr_schedule="linear", lr_decay_start=0.5)  # Zhu et al. §4: constant, then linearly to 0


# ----- scoring -----
@torch.no_grad()
def score(outputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor, judge: Any, real: torch.Tensor) -> dict[str, float]:
    """The paired metrics of ``outputs`` against their ``targets`` (images in [0, 1]); ``real``: judge features of
    the real test images, for FID."""
    from genlab.metrics import frechet_distance, psnr, sharpness, ssim

    return {"l1": float((outputs - targets).abs().mean()), "psnr": float(psnr(outputs, targets).mean()),
            "ssim": float(ssim(outputs, targets).mean()), "fid": frechet_distance(real, judge.features(outputs)),
            "sharpness": sharpness(outputs, reference=targets),
            "judge_accuracy": float((judge.predict(outputs) == labels).float().mean())}


def mean_over_seeds(rows: list[dict[str, float]]) -> dict[str, Any]:
    keys = [k for k in rows[0] if isinstance(rows[0][k], int | float)]
    out: dict[str, Any] = {k: statistics.fmean(row[k] for row in rows) for k in keys}
    if len(rows) > 1:
        out["std"] = {k: statistics.stdev(row[k] for row in rows) for k in keys}
    out["per_seed"] = rows
    return out


def with_runs(scores: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {**scores, "seeds": len(runs), "steps": runs[0]["steps"], "batch_size": runs[0]["batch_size"],
            "train_seconds": [round(r["train_seconds"], 1) for r in runs], "precision": runs[0]["precision"],
            "runs": [r["run"] for r in runs]}


def measure(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    import genlab

    data, judge = datasets(args), genlab.load_judge()
    test = data["test"]
    inputs, targets, labels = test.float_sources(), test.float_images(), test.labels
    real = judge.features(targets)
    results: dict[str, Any] = {"num_test_images": len(test)}
    picture: dict[str, torch.Tensor] = {"edges": inputs[_one_per_class(labels)], "target": targets[_one_per_class(labels)]}
    seeds = range(args.seeds)
    pix2pix_runs: dict[str, list[dict[str, Any]]] = {}
    if "paired" in args.only or "hidden_pair" in args.only:
        for variant in VARIANTS if "paired" in args.only else ("l1_cgan",):
            pix2pix_runs[variant] = [pix2pix(variant, seed, args, data["paired"], work) for seed in seeds]
            picture[NAMES[variant]] = pix2pix_runs[variant][0]["model"].translate(picture["edges"])
    if "paired" in args.only:
        paired = {v: with_runs(mean_over_seeds([score(r["model"].translate(inputs), targets, labels, judge, real)
                                                for r in runs]), runs) for v, runs in pix2pix_runs.items()}
        train_real = judge.features(data["paired"].float_images(slice(0, len(test))))
        paired["ground_truth"] = {"l1": 0.0, "psnr": None, "ssim": 1.0, "sharpness": 1.0,
                                  "judge_accuracy": float((judge.predict(targets) == labels).float().mean()),
                                  "fid": frechet_distance_of(real, train_real), "fid_note": "real test vs as many real train images"}
        results["paired"] = paired
    if "hidden_pair" in args.only:
        runs = [cyclegan("hidden", seed, args, data["hidden"], work, ("edges of train[:half]", "train[half:]")) for seed in seeds]
        results["hidden_pair"] = {
            "cyclegan": with_runs(mean_over_seeds([score(r["model"].translate(inputs), targets, labels, judge, real) for r in runs]), runs),
            "pix2pix": with_runs(mean_over_seeds([score(r["model"].translate(inputs), targets, labels, judge, real)
                                                  for r in pix2pix_runs["l1_cgan"]]), pix2pix_runs["l1_cgan"])}
        picture["CycleGAN"] = runs[0]["model"].translate(picture["edges"])
    if "class_to_class" in args.only:
        domains = (f"{args.data}:{SNEAKER}", f"{args.data}:{ANKLE_BOOT}")
        runs = [cyclegan("classes", seed, args, data["classes"], work, domains) for seed in seeds]
        results["class_to_class"] = {direction: with_runs(mean_over_seeds([class_scores(r["model"], direction, data["class_test"], judge)
                                                                           for r in runs]), runs) for direction in ("a2b", "b2a")}
        model = runs[0]["model"]
        for direction, (source, name) in {"a2b": (SNEAKER, "sneaker"), "b2a": (ANKLE_BOOT, "ankle boot")}.items():
            shown = data["class_test"][source][:10]
            there = model.translate(shown, direction)
            picture[f"{name} → {'boot' if direction == 'a2b' else 'sneaker'} → back"] = torch.cat(
                [shown, there, model.translate(there, "b2a" if direction == "a2b" else "a2b")])
    return results, picture


@torch.no_grad()
def class_scores(model: Any, direction: str, images: dict[int, torch.Tensor], judge: Any) -> dict[str, float]:
    from genlab.metrics import frechet_distance

    source, target = (SNEAKER, ANKLE_BOOT) if direction == "a2b" else (ANKLE_BOOT, SNEAKER)
    back = "b2a" if direction == "a2b" else "a2b"
    translated = model.translate(images[source], direction)
    return {"success_rate": float((judge.predict(translated) == target).float().mean()),
            "cycle_l1": float((model.translate(translated, back) - images[source]).abs().mean()),
            "fid": frechet_distance(judge.features(images[target]), judge.features(translated)),
            "num_images": len(translated)}


def frechet_distance_of(a: torch.Tensor, b: torch.Tensor) -> float:
    from genlab.metrics import frechet_distance

    return frechet_distance(a, b)


def _one_per_class(labels: torch.Tensor) -> list[int]:
    return [int((labels == c).nonzero()[0]) for c in range(int(labels.max()) + 1) if (labels == c).any()]


def draw(picture: dict[str, torch.Tensor], path: str) -> str:
    from genlab.io.grids import label_rows, make_grid, save_image

    rows = {k: v for k, v in picture.items() if "→" not in k and k != "target"}
    rows["target"] = picture["target"]  # input, the translations, then the truth
    strips = [make_grid(images, nrow=len(images)) for images in rows.values()]
    parts = [label_rows(torch.cat(strips, dim=1), list(rows))]
    for name, images in picture.items():
        if "→" in name:  # three rows: the test images, translated, and back
            parts.append(label_rows(make_grid(images, nrow=len(images) // 3), [name.split(" → ")[0], "translated", "back"]))
    width = max(p.shape[2] for p in parts)
    parts = [torch.nn.functional.pad(p, (0, width - p.shape[2]), value=1.0) for p in parts]
    return str(save_image(torch.cat(parts, dim=1), path, scale=2))


# ----- report -----
def markdown_report(results: dict[str, Any]) -> str:
    settings = results["settings"]
    quick = " (QUICK SMOKE RUN — not a measurement)" if settings.get("quick") else ""
    lines = [f"# Image-to-image translation on Fashion-MNIST{quick}", "",
             f"Scored on {results['num_test_images']:,} test images; FID in the shipped judge's features; sharpness ÷ the "
             "targets'; judge accuracy: the judge's class of each output against the source image's label.", ""]

    def fmt(value: Any, digits: int = 3) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    def runs(entry: dict[str, Any]) -> str:
        return f"{entry.get('seeds', '—')} | {entry.get('steps', '—')} | {', '.join(map(str, entry.get('train_seconds', []))) or '—'}"

    if "paired" in results:
        lines += ["## 1. Paired: edges → garment (pix2pix, Table 1 analogue)", "",
                  "| loss | L1 ↓ | PSNR (dB) ↑ | SSIM ↑ | FID ↓ | sharpness | judge accuracy ↑ | paper FCN per-pixel acc. | "
                  "seeds | steps | training seconds |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for variant, entry in results["paired"].items():
            lines.append(f"| {NAMES[variant]} | {fmt(entry['l1'])} | {fmt(entry['psnr'], 2)} | {fmt(entry['ssim'])} | "
                         f"{fmt(entry['fid'], 1)} | {fmt(entry['sharpness'])} | {fmt(entry['judge_accuracy'])} | "
                         f"{PAPER['paired_fcn_per_pixel_accuracy'][variant]:.2f} | {runs(entry)} |")
        lines += ["", "The ground-truth row's FID compares the real test images with as many real training images."]
    if "hidden_pair" in results:
        lines += ["", "## 2. Unpaired with a hidden pairing: CycleGAN vs the supervised pix2pix", "",
                  "| model | L1 ↓ | PSNR (dB) ↑ | FID ↓ | judge accuracy ↑ | paper FCN score | seeds | steps | training seconds |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for model, entry in results["hidden_pair"].items():
            lines.append(f"| {model} | {fmt(entry['l1'])} | {fmt(entry['psnr'], 2)} | {fmt(entry['fid'], 1)} | "
                         f"{fmt(entry['judge_accuracy'])} | {PAPER['hidden_pair_fcn_per_pixel_accuracy'][model]:.2f} | {runs(entry)} |")
    if "class_to_class" in results:
        lines += ["", "## 3. Class to class: sneaker ↔ ankle boot (CycleGAN)", "",
                  "| direction | judge success rate ↑ | cycle L1 ↓ | FID to the target class ↓ | test images | seeds | steps | "
                  "training seconds |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for direction, entry in results["class_to_class"].items():
            name = "sneaker → ankle boot" if direction == "a2b" else "ankle boot → sneaker"
            lines.append(f"| {name} | {fmt(entry['success_rate'])} | {fmt(entry['cycle_l1'])} | {fmt(entry['fid'], 1)} | "
                         f"{int(entry['num_images'])} | {runs(entry)} |")
    lines += expectations(results)
    lines += ["", "## Settings", "", f"`{json.dumps({k: v for k, v in settings.items() if k != 'rerender'})}`"]
    if results.get("picture"):
        lines += ["", f"![translations]({os.path.relpath(REPO / results['picture'], REPO / 'benchmarks' / 'results')})"]
    return "\n".join(lines)


def expectations(results: dict[str, Any]) -> list[str]:
    """The issue's expectations, each shown or refuted by the numbers above."""
    lines = []

    def verdict(text: str, met: bool, detail: str) -> None:
        lines.append(f"- {text}: {detail} — **{'met' if met else 'not met'}**.")

    paired = {k: v for k, v in results.get("paired", {}).items() if k in VARIANTS}
    if len(paired) == len(VARIANTS):
        best = {key: pick(paired, key, high) for key, high in (("psnr", True), ("sharpness", False), ("judge_accuracy", True),
                                                                ("fid", False))}
        shown = {key: ", ".join(f"{NAMES[v]} {paired[v][key]:.3g}" for v in VARIANTS) for key in best}
        verdict("L1 alone has the highest PSNR (it optimises the closest thing to it)", best["psnr"] == "l1", shown["psnr"])
        verdict("L1 alone is the blurriest (\"L1 averages into blur\")", best["sharpness"] == "l1", shown["sharpness"])
        verdict("L1 + cGAN has the highest judge accuracy", best["judge_accuracy"] == "l1_cgan", shown["judge_accuracy"])
        verdict("L1 + cGAN has the lowest FID", best["fid"] == "l1_cgan", shown["fid"])
    hidden = results.get("hidden_pair")
    if hidden:
        verdict("the supervised pix2pix beats CycleGAN on judge accuracy (papers: 0.71 vs 0.52)",
                hidden["pix2pix"]["judge_accuracy"] > hidden["cyclegan"]["judge_accuracy"],
                f"{hidden['pix2pix']['judge_accuracy']:.3f} vs {hidden['cyclegan']['judge_accuracy']:.3f}")
    return ["", "## Expectations", "", *lines] if lines else []


def pick(rows: dict[str, dict[str, Any]], key: str, high: bool) -> str:
    """The variant with the highest (``high``) or lowest value of ``key``."""
    return (max if high else min)(rows, key=lambda variant: rows[variant][key])


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    args = parse_args(argv)
    if args.rerender:
        print(harness.rerender(args.rerender, lambda payload: markdown_report(payload["results"])).read_text())
        return 0
    torch.set_num_threads(1)
    machine = harness.machine_info()
    started = time.perf_counter()
    temporary = args.work_dir is None
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="genlab-translation-"))
    try:
        results, picture = measure(args, work)
        picture_path = str(work / "translation.png") if args.quick else args.picture
        drawn = Path(draw(picture, picture_path)).resolve()
        settings = {k: v for k, v in vars(args).items() if k not in ("rerender", "picture")}
        results = {"settings": settings, **results, "paper": PAPER, "wall_seconds_total": time.perf_counter() - started,
                   "picture": str(drawn.relative_to(REPO)) if drawn.is_relative_to(REPO) else str(drawn)}
        machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        if args.quick:  # a smoke run's record stays out of benchmarks/results
            paths = harness.write_results(args.name, results, markdown_report(results), machine=machine, directory=work / "results")
            print(Path(paths[1]).read_text())
            print(f"wrote {paths[0]} and {paths[1]} (quick: not in benchmarks/results)")
        else:
            harness.publish(args.name, results, markdown_report(results), machine=machine)
    finally:
        if temporary and not args.quick:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
