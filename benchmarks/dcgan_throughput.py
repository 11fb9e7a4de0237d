"""DCGAN-32 training and sampling throughput: genlab vs a plain PyTorch loop, on CPU.

    python -m benchmarks.dcgan_throughput            # 3 epochs on the full train split, 10k samples
    python -m benchmarks.dcgan_throughput --quick    # seconds-long smoke run on a subset

The same networks — genlab's default DCGAN for 32×32 images, ``GAN(GANConfig(image_shape=(C, 32, 32)))``:
latent 100, widths 64, batch norm in G and D, the non-saturating loss, Adam lr 2e-4, β = (0.5, 0.999)
— with the same initial weights (seeded), batch 128, the same number of epochs, trained two ways:

- genlab: ``genlab.train`` with ``progress=False, tensorboard=False`` and otherwise its defaults:
  after every epoch a 64-image fixed-noise sample grid (PNG) and the diversity alarm on it, a
  resume checkpoint (weights + both Adams' state), metrics.csv every 50 steps, loss.png and
  monitor.png at the end — all timed: it is what a genlab user pays. Its Adam is ``fused=True``
  where the torch build supports it (``genlab.models.base.adam``).
- plain PyTorch as in pytorch/examples ``dcgan/main.py``, driving the same GAN's ``.generator``
  and ``.discriminator`` modules: ``TensorDataset`` of images normalised to [-1, 1] +
  ``DataLoader(batch_size, shuffle=True, drop_last=True)``; per step D on the real batch (label 1)
  and on ``fake.detach()`` (label 0), each with its own backward, ``optimizerD.step()``, then G on
  the same fakes with label 1, ``optimizerG.step()``; ``.item()`` on the losses and D's outputs
  every step; plain ``torch.optim.Adam``. Our D returns logits, so the criterion is
  ``nn.BCEWithLogitsLoss`` (the example: ``nn.BCELoss`` on a final sigmoid — the same loss).

Fairness of the timing: each contender runs in its own process and they take turns *epoch by
epoch* (A B, B A, ...), one at a time, so slow spells of a shared machine hit both alike; see
``harness.run_interleaved_workers``. images/s is the median over the per-epoch turns. genlab
drops the last incomplete batch and so does the plain loader here (``drop_last=True``): both
train on the same number of images per epoch.

Sampling (measured separately, in this process, after training): images/s of drawing
``--sample-images`` samples in batches of ``--sample-batch`` with genlab's ``model.sample(n)``
against ``G(torch.randn(n, nz))`` under ``torch.no_grad()`` in eval mode, in rotating rounds.

Data: ``--data auto`` takes CIFAR-10 if its archive is already on this machine (it never
downloads), else the Fashion-MNIST train split resized to 32×32 (one channel).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import dcgan_contenders, harness
from benchmarks.dcgan_contenders import initial_gan, load_training_set, resolve_data
from genlab.config import config_to_dict
from genlab.models.gan.model import GANConfig

CONTENDERS = ("genlab", "plain PyTorch")
SAMPLERS = {"genlab": "genlab model.sample", "plain PyTorch": "plain G(z)"}
BASELINE = "genlab"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dcgan_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per contender (default 3)")
    parser.add_argument("--data", default="auto",
                        help="dataset name or path; auto = cifar10 if already on this machine, else fashion-mnist (default auto)")
    parser.add_argument("--image-size", type=int, default=32, choices=(28, 32, 64), help="images are resized to this (default 32)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-subset", type=int, default=None, help="train on the first N images only (default: the whole train split)")
    parser.add_argument("--sample-images", type=int, default=10000, help="samples drawn per sampling turn (default 10000)")
    parser.add_argument("--sample-batch", type=int, default=500, help="samples per G call (default 500)")
    parser.add_argument("--sample-rounds", type=int, default=3, help="timed sampling rounds, after one untimed (default 3)")
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS), help="contenders to run")
    parser.add_argument("--genlab-option", action="append", default=[], metavar="KEY=VALUE", type=harness.parse_option,
                        help="a TrainConfig option for genlab's run, e.g. channels_last=false (default: TrainConfig's defaults)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 epochs on 1,024 train images, 1,000 samples in 2 rounds")
    parser.add_argument("--work-dir", default=None, help="where runs write checkpoints and logs (default: a temporary folder, removed)")
    parser.add_argument("--name", default=None, help="results file name (default dcgan_throughput, or dcgan_throughput_quick)")
    parser.add_argument("--rerender", metavar="JSON", default=None,
                        help="only rewrite the Markdown next to a results JSON written earlier (no training)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 2)
        args.train_subset = args.train_subset or 1024
        args.sample_images, args.sample_rounds = min(args.sample_images, 1000), min(args.sample_rounds, 2)
    if BASELINE not in args.only:
        parser.error("genlab (the baseline of the ratios) must be among --only")
    for option in ("epochs", "batch_size", "sample_images", "sample_batch", "sample_rounds"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1")
    size = "" if args.image_size == 32 else str(args.image_size)  # dcgan_throughput = DCGAN-32, dcgan64_throughput, ...
    args.name = args.name or (f"dcgan{size}_throughput_quick" if args.quick else f"dcgan{size}_throughput")
    args.genlab_options = dict(args.genlab_option)
    return args


# ----- training, interleaved -----
def train_all(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    common = {"data": args.data_resolved, "image_size": args.image_size, "train_subset": args.train_subset,
              "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
    targets = {
        "genlab": (dcgan_contenders.train_with_genlab, {**common, "out_dir": str(work_dir / "genlab"),
                                                        "train_options": args.genlab_options}),
        "plain PyTorch": (dcgan_contenders.train_with_plain_pytorch, common),
    }
    workers = {name: targets[name] for name in CONTENDERS if name in args.only}
    turns = dict.fromkeys(workers, 0)

    def report(name: str, images: int, seconds: float) -> None:
        turns[name] += 1
        print(f"  {name:<14} turn {turns[name]}: {images:6d} images in {seconds:7.2f} s = {images / seconds:7.1f} images/s",
              flush=True)

    return harness.run_interleaved_workers(workers, baseline=BASELINE, log_dir=work_dir, on_slice=report)


def measure_sampling(args: argparse.Namespace, image_shape: tuple[int, ...]) -> dict[str, Any]:
    names = tuple(SAMPLERS[name] for name in CONTENDERS if name in args.only)
    contenders = dcgan_contenders.sampling_contenders(image_shape, args.seed, args.sample_images, args.sample_batch, names)
    return harness.run_interleaved(contenders, args.sample_rounds, warmup=1, baseline=SAMPLERS[BASELINE])


# ----- report -----
def markdown_report(args: argparse.Namespace, throughput: dict[str, Any], results: dict[str, Any],
                    sampling: dict[str, Any], data: dict[str, Any], machine: dict[str, Any],
                    notes: list[str] = ()) -> str:
    shape = tuple(data["image_shape"])
    params, gan = data["parameters"], data["gan_config"]
    genlab_run = results.get(BASELINE, {})
    fused = genlab_run.get("optimizers", {}).get("D", {}).get("fused")
    loop = genlab_run.get("train_config") or {}
    plots = [f for f in genlab_run.get("files_written", []) if f in ("loss.png", "monitor.png")]
    lines = [
        f"# DCGAN-{shape[-1]} training and sampling: genlab vs plain PyTorch"
        f"{' (QUICK SMOKE RUN — not a measurement)' if args.quick else ''}",
        "",
        f"`genlab.GAN(GANConfig(image_shape={shape}, loss=\"{gan['loss']}\", lr_g={gan['lr_g']:g}, lr_d={gan['lr_d']:g}, "
        f"betas={tuple(gan['betas'])}))` (DCGAN: latent {gan['latent_dim']}, widths {gan['g_width']}/{gan['d_width']}, "
        f"D norm {gan['d_norm']}; G {params['generator']:,} + D {params['discriminator']:,} parameters) "
        f"on {data['description']}, "
        f"batch {args.batch_size}, {args.epochs} epochs of {data['images_per_epoch']:,} images "
        f"({data['steps_per_epoch']} steps; the last partial batch dropped by both), same initial weights (seed {args.seed}), CPU. "
        "Contenders took turns epoch by epoch in separate processes; images/s = median over the per-epoch turns.",
        "",
        "## Training",
        "",
        "| contender | images/s | genlab speed-up (genlab ÷ this) | seconds | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in throughput.items():
        lines.append(f"| {name} | {t['median_images_per_s']:.1f} | {1 / t['median_ratio_vs_genlab']:.2f}× | "
                     f"{t['seconds']:.1f} | {results[name]['peak_rss_mib']:.0f} |")
    ranges = ", ".join(f"{n}: {t['min_images_per_s']:.1f}–{t['max_images_per_s']:.1f}" for n, t in throughput.items())
    overall = ", ".join(f"{n}: {t['overall_images_per_s']:.1f} ({t['overall_ratio_vs_genlab']:.3f}×)" for n, t in throughput.items())
    shown = ("D/loss", "G/loss", "D/real_prob", "D/fake_prob")
    sanity = "; ".join(f"{n}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[n].get("last_epoch_means", {}).items() if k in shown)
                       for n in throughput)
    lines += [
        "",
        f"- images/s: median of the per-epoch turns (range {ranges}); whole-run rate incl. setup and the final save: {overall}.",
        "- genlab speed-up = genlab images/s ÷ this contender's images/s (> 1: genlab is faster).",
        f"- seconds: the whole timed training run (setup + {args.epochs} epochs + per-epoch work + final save).",
        "- peak RSS: each contender's own process (ru_maxrss), with torch and its copy of the data; RSS when training "
        "began (imports done, uint8 data loaded): "
        + ", ".join(f"{n}: {results[n]['rss_before_training_mib']:.0f} MiB" for n in throughput) + ".",
        "- genlab: `genlab.train` with `progress=False, tensorboard=False`"
        + "".join(f", {k}={v!r}" for k, v in getattr(args, "genlab_options", {}).items())
        + (f", all else default (precision {loop.get('precision')}, channels_last={loop.get('channels_last', False)}, "
           f"compile={loop.get('compile', False)})" if loop else ", all else default") + "; INCLUDED in its time: "
        f"a {genlab_run.get('num_sample_images', 64)}-image fixed-noise sample grid (PNG) + the diversity (mode-collapse) "
        "alarm after every epoch (the default, what users get), a resume checkpoint every epoch (weights + Adam "
        f"states), metrics.csv every {genlab_run.get('log_every', 50)} steps, and at the end loss.png and monitor.png "
        f"(drawn this run: {', '.join(plots) or 'none — fewer than two logged rows'}). "
        f"Its Adam is {'fused (`fused=True`)' if fused else 'NOT fused here (this torch build refused `fused=True`)'}. "
        "Per step it runs G once (G's phase scores the fakes D's phase made, as the example does) and freezes D's "
        "weights during G's backward; it reads losses back to the host only when logging.",
        "- plain PyTorch (pytorch/examples `dcgan/main.py`, on genlab's G and D modules): `TensorDataset(images "
        "normalised to [-1, 1] once)` + `DataLoader(batch_size, shuffle=True, drop_last=True)`, no workers; D on real "
        "(label 1) and on `fake.detach()` (label 0) with one backward each, `optimizerD.step()`, G on the same fakes "
        "(label 1), `optimizerG.step()`; `nn.BCEWithLogitsLoss` on D's logits (the example: `nn.BCELoss` on a "
        "sigmoid, the same loss); plain `torch.optim.Adam` (not fused); `.item()` on the losses and D's mean outputs "
        "every step (one log line per 100 steps). It writes no images or checkpoints (the example writes a 64-image "
        "grid every 100 steps and G/D weights every epoch).",
        f"- Sanity (not a quality score): last-epoch means — {sanity}.",
    ]
    differ = data.get("gan_defaults_that_differ")
    if differ:
        lines.append("- The benchmark pins the DCGAN recipe (loss, learning rates, betas, d_steps); the GANConfig defaults of this "
                     "tree differ in " + ", ".join(f"{k}={v}" for k, v in differ.items())
                     + " — learning rates do not change the cost of a step.")
    turns = max(len(t["slices"]) for t in throughput.values())
    lines += [
        "",
        "Seconds per turn (turn 1 includes the library's setup, the last its final save; in rotating order):",
        "",
        "| contender | " + " | ".join(f"turn {i + 1}" for i in range(turns)) + " |",
        "|---|" + "---:|" * turns,
    ]
    for name, t in throughput.items():
        lines.append(f"| {name} | " + " | ".join(f"{s['seconds']:.2f}" for s in t["slices"]) + " |")

    base = SAMPLERS[BASELINE]
    lines += [
        "",
        "## Sampling",
        "",
        f"{args.sample_images:,} samples of G in batches of {args.sample_batch} per turn; one untimed round, then "
        f"{args.sample_rounds} timed rounds in rotating order (same process, initial weights).",
        "",
        f"| sampler | images/s | ratio vs {base} | seconds per {args.sample_images:,} |",
        "|---|---:|---:|---:|",
    ]
    for name, s in sampling.items():
        lines.append(f"| {name} | {s['median_images_per_s']:.1f} | {s[f'median_ratio_vs_{base}']:.3f} | "
                     f"{args.sample_images / s['median_images_per_s']:.2f} |")
    lines += [
        "",
        "- genlab: `model.sample(n)` — z ~ N(0, I), G in eval mode under `torch.no_grad()`, output mapped from [-1, 1] "
        "to [0, 1] and clamped (its public contract).",
        "- plain: `G(torch.randn(n, nz))` under `torch.no_grad()` with G in eval mode; output left in [-1, 1].",
        "- ranges: " + ", ".join(f"{n}: {s['min_images_per_s']:.1f}–{s['max_images_per_s']:.1f}" for n, s in sampling.items()) + ".",
    ]
    git = machine.get("git") or {}
    if git:
        changed = ", ".join(git.get("modified_under_src", [])) or "none"
        lines += ["", f"genlab tree: commit {git.get('head', '?')[:10]}; files under src/ that differed from it: {changed}."]
    lines += ["", f"{harness.load_sentence(machine)}; "
                  "a busy machine slows and scatters both contenders (see the per-turn ranges)."]
    for note in notes:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines)


def rerender(json_path: Path) -> Path:
    """Rewrite ``<name>.md`` from ``<name>.json`` (e.g. after changing the report's wording)."""
    def render(payload: dict[str, Any]) -> str:
        results = payload["results"]
        return markdown_report(argparse.Namespace(**results["settings"]), results["throughput"], results["runs"],
                               results["sampling"], results["data"], payload["machine"], results.get("notes", []))

    return harness.rerender(json_path, render)


def describe_data(args: argparse.Namespace) -> dict[str, Any]:
    """Which data was used, as the report states it (loaded once here, untimed, to count it)."""
    dataset = load_training_set(args.data_resolved, args.image_size, args.train_subset)
    gan = initial_gan(dataset.image_shape, args.seed)
    n, c, h, w = dataset.images.shape
    batch = min(args.batch_size, n)
    chosen = f"{dataset.name} train split" + (f" (first {n:,} images)" if args.train_subset else f" ({n:,} images)")
    how = f"{c}-channel {h}×{w}"
    if args.data == "auto":
        how += (" — --data auto: CIFAR-10 is not on this machine, so Fashion-MNIST, resized from 28×28 (bilinear, "
                "antialiased), one channel" if args.data_resolved != "cifar10" else " — --data auto found CIFAR-10")
    return {"name": dataset.name, "requested": args.data, "resolved": args.data_resolved, "image_shape": [c, h, w],
            "num_images": n, "steps_per_epoch": n // batch, "images_per_epoch": n // batch * batch,
            "description": f"{chosen}, {how}", "gan_config": config_to_dict(gan.config),
            "gan_defaults_that_differ": {k: v for k, v in config_to_dict(GANConfig(image_shape=(c, h, w))).items()
                                         if v != config_to_dict(gan.config)[k]},
            "parameters": {"generator": sum(p.numel() for p in gan.generator.parameters()),
                           "discriminator": sum(p.numel() for p in gan.discriminator.parameters())}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rerender:
        print(rerender(Path(args.rerender)).read_text())
        return 0
    machine = harness.machine_info()
    print(f"{machine['cpu']} · {machine['cores']} cores · torch {machine['torch']} ({machine['torch_threads']} threads) · "
          f"load {machine['load_average_at_start']}", flush=True)
    args.data_resolved = resolve_data(args.data)
    data = describe_data(args)
    print(f"data: {data['description']}; {data['images_per_epoch']:,} images/epoch", flush=True)
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="genlab-dcgan-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        print(f"training {', '.join(args.only)} (logs in {work_dir})", flush=True)
        run = train_all(args, work_dir)
        throughput, results = run["throughput"], run["results"]
        print(f"sampling: {args.sample_images} images in batches of {args.sample_batch}, "
              f"1 untimed + {args.sample_rounds} timed rounds", flush=True)
        sampling = measure_sampling(args, tuple(data["image_shape"]))
        for name, s in sampling.items():
            print(f"  {name:<20} {s['median_images_per_s']:8.1f} images/s", flush=True)

        machine["load_average_at_end"] = os.getloadavg()
        markdown = markdown_report(args, throughput, results, sampling, data, machine)
        payload = {
            "settings": {k: v for k, v in vars(args).items() if k not in ("work_dir",)},
            "design": "one process per contender, turns epoch by epoch in rotating order; images/s = median per-epoch "
                      "turn; sampling interleaved in rounds in the parent process",
            "data": data,
            "throughput": throughput,
            "runs": results,
            "sampling": sampling,
            "wall_seconds_total": time.perf_counter() - started,
        }
        harness.publish(args.name, payload, markdown, machine=machine)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
