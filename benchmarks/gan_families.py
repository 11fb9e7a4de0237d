"""The lessons' landmark GANs in small, measured on colour emoji: DCGAN, the style-based generator and the
BigGAN-style generator, each trained for the same CPU seconds, then scored, timed and pictured.

    genlab data get emoji-twitter                                   # once: the data (npm pack, checked)
    python -m benchmarks.gan_families --work-dir runs/gan-families  # 3 × --budget CPU s + a judge + scoring
    python -m benchmarks.gan_families --quick                       # smoke run on the bundled mini set

Each architecture is genlab's `GAN(GANConfig(architecture=..., num_classes=K))` with its own defaults (EMA 0.99,
batch 64, one thread, in its own process; the budget counts CPU seconds, as in benchmarks/families.py). The judge
whose features FID, precision/recall and PPL use is trained on the same data by genlab's own `train_judge`
(`--judge-epochs`), unless `--judge` names one. FID and precision/recall compare ``--num-samples`` samples
(classes in turn) with the training images (the emoji test split holds only 375). PPL (Karras et al. 2019,
Eq. 2–3; genlab.tools.latent.perceptual_path_length) is measured in Z for every model and in W for the
style-based one, in judge features; the truncation curve (BigGAN Fig. 4's variety against fidelity) sweeps
``--truncations`` (z truncated to [−ψ, ψ] for dcgan and big; ψ in W for style).
Results: benchmarks/results/gan_families.{json,md}, docs/images/gan_families.png (samples),
gan_families_mix.png (style mixing) and gan_families_truncation.png.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

import genlab
from benchmarks import harness
from benchmarks.families import CPUClock, in_processes, train_run
from genlab.cli.train import TRAIN_DEFAULTS
from genlab.evaluation.judges import judge_accuracy, train_judge
from genlab.io.grids import concat_images, save_image
from genlab.metrics import frechet_distance, precision_recall_density_coverage
from genlab.models.judge import load_judge
from genlab.tools.latent import perceptual_path_length
from genlab.tools.wspace import class_direction_in_w, measure_w_direction

ARCHITECTURES = ("dcgan", "style", "big")


# Category pairs for the W-space edits (emoji categories: Smileys & Emotion, People & Body, Animals & Nature,
# Food & Drink, Travel & Places, Activities, Objects, Symbols, Flags), and the strengths s of w + s·d.
EDIT_PAIRS = ((0, 2), (1, 0), (3, 6), (8, 7))
EDIT_STRENGTHS = (0.5, 1.0, 1.5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gan_families", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="emoji-twitter")
    parser.add_argument("--budget", type=float, default=1200.0, help="training CPU seconds per architecture")
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--ppl-samples", type=int, default=2000, help="path pairs per PPL (the paper: 100,000)")
    parser.add_argument("--truncations", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0, 1.5])
    parser.add_argument("--judge", default=None, help="a judge run directory (default: train one on --data)")
    parser.add_argument("--judge-epochs", type=int, default=10)
    parser.add_argument("--edits-only", action="store_true",
                        help="only add the W-space category edits to the results of an earlier run (its --work-dir)")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="fashion-mnist-mini, 15 s budgets, 200 samples: a smoke run")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.budget, args.num_samples, args.ppl_samples, args.judge_epochs = "fashion-mnist-mini", 15.0, 200, 100, 1
    args.name = args.name or ("gan_families_quick" if args.quick else "gan_families")
    return args


def train_architecture(architecture: str, args: argparse.Namespace, work: str) -> dict[str, Any]:
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    data = genlab.load_dataset(args.data, split="train")
    config = genlab.GANConfig(image_shape=data.image_shape, num_classes=len(data.classes), architecture=architecture)
    result = train_run(genlab.GAN(config), data, Path(work) / architecture, args.budget, 64, args.seed, [CPUClock()],
                    **TRAIN_DEFAULTS["gan"])
    return {"architecture": architecture, **result, "images_per_s": 64 * result["steps"] / result["train_seconds"]}


def judge_for(args: argparse.Namespace, work: Path) -> tuple[Any, float | None]:
    if args.judge:
        return load_judge(args.judge), None
    train, test = genlab.load_dataset(args.data, split="train"), genlab.load_dataset(args.data, split="test")
    judge = train_judge(train, work / "judge", epochs=args.judge_epochs, seed=args.seed, test_dataset=test, progress=False)
    return judge, judge_accuracy(judge, test)


def samples(model: Any, n: int, seed: int, truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % model.config.num_classes
    images = torch.cat([model.sample(len(chunk), seed=seed + i, labels=chunk, truncation=truncation)
                        for i, chunk in enumerate(labels.split(500))])
    return images, labels


def quality(model: Any, judge: Any, real: torch.Tensor, args: argparse.Namespace, truncation: float | None) -> dict[str, float]:
    images, labels = samples(model, args.num_samples, args.seed + 1, truncation)
    fake = judge.features(images)
    prdc = precision_recall_density_coverage(real, fake, k=5)
    return {"fid": frechet_distance(fake, real), "precision": prdc["precision"], "recall": prdc["recall"],
            "label_accuracy": float((judge.predict(images) == labels).float().mean())}


def path_lengths(model: Any, judge: Any, args: argparse.Namespace) -> dict[str, float]:
    """PPL in Z (slerp between z draws) and, for the style-based G, in W (lerp between their mapped w)."""
    g, n, k = model.generator, args.ppl_samples, model.config.num_classes
    generator = torch.Generator().manual_seed(args.seed + 7)
    z1, z2 = (torch.randn(n, model.config.latent_dim, generator=generator, dtype=torch.float64) for _ in range(2))
    labels = lambda batch: torch.arange(batch) % k  # noqa: E731 (pair i keeps class i mod K at both ends)
    embed = judge.features
    result = {"ppl_z": perceptual_path_length(lambda z: model.generate(z.float(), labels(len(z))), embed, z1, z2,
                                              method="slerp")["ppl"]}
    if model.config.architecture == "style":
        with torch.no_grad():
            w1, w2 = (g.mapping(z.float(), labels(n)).double() for z in (z1, z2))
        synthesise = lambda w: model.from_model_range(g.synthesis(w.float()[:, None].expand(-1, g.num_ws, -1)))  # noqa: E731
        result["ppl_w"] = perceptual_path_length(synthesise, embed, w1, w2, method="lerp")["ppl"]
    return result


def w_edits(model: Any, judge: Any, classes: list[str]) -> list[dict[str, Any]]:
    """Category directions in the style G's W (class means of w), each measured by the judge's flip rate on 200
    fresh samples of the source class (``genlab.tools.wspace``)."""
    rows = []
    for a, b in EDIT_PAIRS:
        if max(a, b) < len(classes):
            direction = class_direction_in_w(model, a, b, num_samples=1000)
            rows += [{"direction": f"{classes[a]} → {classes[b]}", **row}
                     for row in measure_w_direction(model, direction, EDIT_STRENGTHS, judge=judge, num_images=200)]
    return rows


def score(architecture: str, run: str, args: argparse.Namespace, judge_dir: str | None) -> dict[str, Any]:
    torch.set_num_threads(1)
    model = genlab.load(run).eval()
    judge = load_judge(judge_dir) if judge_dir else load_judge()
    data = genlab.load_dataset(args.data, split="train")
    real = judge.features(data.float_images(slice(None)))
    row = {**quality(model, judge, real, args, None), **path_lengths(model, judge, args)}
    row["truncation_curve"] = {f"{psi:g}": quality(model, judge, real, args, psi) for psi in args.truncations}
    if architecture == "style" and model.config.num_classes:
        row["w_edits"] = w_edits(model, judge, list(data.classes))
    return {"architecture": architecture, "row": row}


def edits_only(args: argparse.Namespace) -> None:
    """Add the W-space edits to an existing results file (a run scored before they existed), then re-render it."""
    json_path = (Path(args.work_dir) if args.quick else harness.RESULTS_DIR) / f"{args.name}.json"
    payload = json.loads(json_path.read_text())
    results = payload["results"]
    run = Path(args.work_dir) / "style"  # where train_architecture put it
    judge_dir = args.judge or str(Path(args.work_dir) / "judge")
    torch.set_num_threads(1)
    model, judge = genlab.load(run).eval(), load_judge(judge_dir)
    classes = list(genlab.load_dataset(args.data, split="train").classes)
    results["rows"]["style"]["w_edits"] = w_edits(model, judge, classes)
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(harness.rerender(json_path, lambda saved: markdown(saved["results"])).read_text())


def pictures(trained: dict[str, dict[str, Any]], directory: Path, name: str) -> None:
    grids, titles = [], []
    for architecture, run in trained.items():
        model = genlab.load(run["run"]).eval()
        grids.append(samples(model, 8 * model.config.num_classes, seed=3)[0])
        titles.append(architecture)
        if architecture == "style":
            mix = model.mix([11, 12, 13, 14], [21, 22, 23, 24, 25, 26])
            save_image(mix.flatten(0, 1), directory / f"{name}_mix.png", nrow=mix.shape[1], scale=2)
    save_image(concat_images(grids, labels=titles), directory / f"{name}.png", scale=2)


def truncation_plot(rows: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    for architecture, row in rows.items():
        psis = [float(p) for p in row["truncation_curve"]]
        for axis, key in zip(axes, ("fid", "precision", "recall"), strict=True):
            axis.plot(psis, [row["truncation_curve"][f"{p:g}"][key] for p in psis], marker="o", label=architecture)
            axis.set(xlabel="truncation ψ", title=key)
            axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: dict[str, Any]) -> str:
    args, rows = results["settings"], results["rows"]
    lines = [f"# DCGAN, style-based and BigGAN-style generators on {args['data']}, {args['budget']:.0f} CPU s each", "",
             "| architecture | judge-FID ↓ | precision ↑ | recall ↑ | label acc. ↑ | PPL in Z ↓ | PPL in W ↓ | "
             "train images/s | steps |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for architecture, row in rows.items():
        trained = results["trained"][architecture]
        ppl_w = f"{row['ppl_w']:.1f}" if "ppl_w" in row else "—"
        lines.append(f"| {architecture} | {row['fid']:.2f} | {row['precision']:.3f} | {row['recall']:.3f} | "
                     f"{row['label_accuracy']:.3f} | {row['ppl_z']:.1f} | {ppl_w} | {trained['images_per_s']:.0f} | "
                     f"{trained['steps']} |")
    lines += ["", "## The truncation trade-off", "", "| architecture | ψ | judge-FID ↓ | precision ↑ | recall ↑ | label acc. ↑ |",
              "|---|---:|---:|---:|---:|---:|"]
    for architecture, row in rows.items():
        lines += [f"| {architecture} | {psi} | {q['fid']:.2f} | {q['precision']:.3f} | {q['recall']:.3f} | "
                  f"{q['label_accuracy']:.3f} |" for psi, q in row["truncation_curve"].items()]
    edits = rows.get("style", {}).get("w_edits", [])
    if edits:
        lines += ["", "## Category edits in W (style)", "",
                  "w + s·d, d = mean w of the target class − mean w of the source class (over 1,000 random z each, the "
                  "class given to the mapping); 200 fresh source-class samples per direction, judged after the edit.", "",
                  "| direction | s | judged target ↑ | judged source | judge-feature distance |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {e['direction']} | {e['strength']:g} | {e['flip_rate']:.3f} | {e['source_rate']:.3f} | "
                  f"{e['feature_distance']:.2f} |" for e in edits]
    judge = results["judge_accuracy"]
    lines += ["", f"{args['num_samples']} samples (classes in turn) against the training images, in the features of a "
              "judge trained on the same data" + (f" (test accuracy {judge:.3f})" if judge is not None else "") + "; PPL: "
              f"{args['ppl_samples']} pairs, ε = 1e-4, squared distance in judge features (the paper uses LPIPS, so "
              "compare the rows, not with the paper's numbers); truncation ψ: z truncated to [−ψ, ψ] (dcgan, big), "
              "ψ in W (style)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.edits_only:
        edits_only(args)
        return
    machine = harness.machine_info()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="genlab-gan-families-"))
    trained = {t["architecture"]: t for t in in_processes(train_architecture, [(a, args, str(work)) for a in args.architectures],
                                                           args.parallel)}
    torch.set_num_threads(1)
    _, judge_accuracy_ = judge_for(args, work)
    judge_dir = args.judge or str(work / "judge")
    scored = in_processes(score, [(a, trained[a]["run"], args, judge_dir) for a in args.architectures], args.parallel)
    rows = {item["architecture"]: item["row"] for item in scored}
    directory = work if args.quick else harness.REPOSITORY / "docs" / "images"
    pictures(trained, directory, args.name)
    truncation_plot(rows, directory / f"{args.name}_truncation.png")
    results = {"settings": vars(args), "rows": rows, "trained": trained, "judge_accuracy": judge_accuracy_}
    harness.write_results(args.name, results, markdown(results), machine=machine,
                          directory=work if args.quick else harness.RESULTS_DIR)
    print(markdown(results))


if __name__ == "__main__":
    main()
