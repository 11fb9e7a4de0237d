"""Super-resolution on Fashion-MNIST, measured: bicubic vs SRResNet vs SRGAN (Ledig et al. 2017).

Both models are ``genlab.SR`` trained by ``genlab.train`` on the 60,000 training images (low-res =
box downsampling, ×4: 28×28 → 7×7), one torch thread each, for a fixed number of steps (the
defaults take about 12 minutes each on an idle core of this project's machine; ``--max-seconds``
caps each run's wall clock too). SRGAN's G starts from the trained SRResNet, as in the paper (§3.2).
Then, on the test set (all 10,000 images, or ``-n``), each method upscales the low-res copies and is
scored against the originals: PSNR and SSIM (``genlab.metrics.psnr/ssim``), FID against the real
test images in the shipped judge's feature space, and sharpness (Laplacian energy ÷ the originals').
Also measured: how far tiled upscaling (``genlab.tools.upscale.upscale_image``) strays from a whole-image
pass on a low-res mosaic of 64 test images (56×56 at ×4).

    python -m benchmarks.super_resolution --work-dir runs/sr-bench-x4       # train both, score
    python -m benchmarks.super_resolution --srresnet RUN --srgan RUN              # score trained runs
    python -m benchmarks.super_resolution --scale 2 --only srresnet --work-dir runs/sr-bench-x2

Results: benchmarks/results/super_resolution.{json,md} (super_resolution_x2.* for ×2), the picture
docs/images/super_resolution.png (rows: low-res enlarged, bicubic, SRResNet, SRGAN, original).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
# Ledig et al. 2017, Table 4 (Set5, ×4), as given in issue 5: PSNR in dB.
PAPER_SET5_X4 = {"bicubic": 28.43, "SRResNet": 32.05, "SRGAN": 29.40}
METHODS = ("bicubic", "SRResNet", "SRGAN")
ABLATIONS = {  # --ablations: SRGAN with one thing changed → (run folder, SRConfig changes)
    "SRGAN, content at the judge's last block": ("srgan-content-last", {"content_block": -1}),
    "SRGAN without the adversarial term": ("srgan-no-adversarial", {"adversarial_weight": 0.0}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.super_resolution", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=4, choices=(2, 4), help="upscaling factor (default 4)")
    parser.add_argument("--only", nargs="+", choices=("srresnet", "srgan"), default=["srresnet", "srgan"],
                        help="models to include (bicubic always is)")
    parser.add_argument("--srresnet", default=None, metavar="RUN", help="score this trained SRResNet run instead of training one")
    parser.add_argument("--srgan", default=None, metavar="RUN", help="score this trained SRGAN run instead of training one")
    parser.add_argument("--steps-srresnet", type=int, default=1500, help="training steps (batch 64) for SRResNet")
    parser.add_argument("--steps-srgan", type=int, default=450, help="training steps (batch 64) for SRGAN")
    parser.add_argument("--max-seconds", type=float, default=None, help="also cap each training run's wall clock")
    parser.add_argument("--srgan-from-scratch", action="store_true", help="do not start SRGAN's G from the SRResNet")
    parser.add_argument("--ablations", action="store_true",
                        help="also train SRGAN with the content loss at the judge's last block, and without the adversarial term")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=RUN",
                        help="also score this trained SR run as a row NAME (e.g. an ablation); repeatable")
    parser.add_argument("--config", default="{}", metavar="JSON", help="extra SRConfig options for both models")
    parser.add_argument("--srgan-config", default="{}", metavar="JSON", help="extra SRConfig options for SRGAN")
    parser.add_argument("--lr-srresnet", type=float, default=1e-3, help="SRResNet's Adam rate (cosine-annealed to 0)")
    parser.add_argument("--lr-srgan", type=float, default=1e-4, help="SRGAN's Adam rate for G and D (cosine-annealed to 0)")
    parser.add_argument("-n", "--num-images", type=int, default=10_000, help="test images scored (default all 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="where trained runs go (default: a temporary folder)")
    parser.add_argument("--picture", default=None, help="picture path (default docs/images/super_resolution[_x2].png)")
    parser.add_argument("--name", default=None, help="results name (default super_resolution or super_resolution_x2)")
    parser.add_argument("--rerender", default=None, metavar="JSON", help="rewrite the Markdown of an earlier results file")
    args = parser.parse_args(argv)
    suffix = "" if args.scale == 4 else f"_x{args.scale}"
    args.name = args.name or f"super_resolution{suffix}"
    args.picture = args.picture or str(REPO / "docs" / "images" / f"super_resolution{suffix}.png")
    args.config, args.srgan_config = json.loads(args.config), json.loads(args.srgan_config)
    return args


# ----- training -----
def train_model(variant: str, args: argparse.Namespace, out_dir: Path, init_from: str | None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    import genlab

    if out_dir.exists():
        shutil.rmtree(out_dir)
    options = {**args.config, **(args.srgan_config if variant == "srgan" else {}), **(extra or {})}
    torch.manual_seed(args.seed)
    model = genlab.SR(genlab.SRConfig(scale=args.scale, variant=variant, **options))
    if init_from:
        model.copy_generator_from(genlab.load(init_from), where=init_from)
    steps = args.steps_srresnet if variant == "srresnet" else args.steps_srgan
    lr = args.lr_srresnet if variant == "srresnet" else args.lr_srgan
    epochs = -(-steps // (60_000 // 64))  # enough passes for the steps (and a progress bar with an end)
    config = genlab.TrainConfig(epochs=epochs, batch_size=64, lr=lr, seed=args.seed, out_dir=str(out_dir), device="cpu",
                                lr_schedule="cosine", max_steps=steps, max_seconds=args.max_seconds, log_every=50,
                                progress=True, tensorboard=False)
    print(f"training {variant} ×{args.scale}: {steps} steps (at most {args.max_seconds} s) → {out_dir}", flush=True)
    train = genlab.load_dataset("fashion-mnist", split="train")
    genlab.train(model, train, config)
    (out_dir / "benchmark_run.json").write_text(json.dumps({"init_from": init_from}) + "\n")  # the run config cannot say
    return existing_run(str(out_dir))


def existing_run(run: str) -> dict[str, Any]:
    from genlab.io.checkpoints import STATE_FILE, load_tensors, read_run_config

    saved = read_run_config(run)
    info: dict[str, Any] = {"run": run, "config": saved["model"]["config"], "lr": saved["train"]["lr"],
                            "batch_size": saved["train"]["batch_size"], "lr_schedule": saved["train"]["lr_schedule"]}
    state = Path(run) / STATE_FILE
    if state.is_file():
        _, meta = load_tensors(state)
        info.update(steps=int(meta["step"]), train_seconds=float(meta["elapsed"]),
                    epochs=int(meta["step"]) * info["batch_size"] / saved["dataset"]["num_images"])
    extra = Path(run) / "benchmark_run.json"
    if extra.is_file():
        info.update(json.loads(extra.read_text()))
    return info


# ----- scoring -----
@torch.no_grad()
def upscalers(args: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import genlab
    from genlab.models.sr.nets import upsample_bicubic

    functions = {"bicubic": lambda low: upsample_bicubic(low, args.scale).clamp(0.0, 1.0)}
    for name, info in runs.items():
        model = genlab.load(info["run"])
        functions[name] = model.upscale
    return functions


@torch.no_grad()
def score(args: argparse.Namespace, functions: dict[str, Any]) -> dict[str, dict[str, float]]:
    import genlab
    from genlab.metrics import frechet_distance, psnr, sharpness, ssim
    from genlab.models.sr.nets import downsample

    test = genlab.load_dataset("fashion-mnist", split="test")
    count = min(args.num_images, len(test))
    original = test.float_images(slice(0, count))
    low = downsample(original, args.scale)
    judge = genlab.load_judge()
    real_features = judge.features(original)
    results = {}
    for name, upscale in functions.items():
        started = time.perf_counter()
        upscaled = torch.cat([upscale(chunk) for chunk in low.split(500)])
        seconds = time.perf_counter() - started
        results[name] = {
            "psnr_db": float(psnr(upscaled, original).mean()),
            "ssim": float(ssim(upscaled, original).mean()),
            "fid_judge": frechet_distance(real_features, judge.features(upscaled)),
            "sharpness": sharpness(upscaled, reference=original),
            "upscale_seconds": seconds,
        }
        print(f"  {name}: {results[name]}", flush=True)
    results["low-res (nearest)"] = {
        "fid_judge": frechet_distance(real_features, judge.features(low.repeat_interleave(args.scale, 2).repeat_interleave(args.scale, 3))),
    }
    results["num_images"] = count  # type: ignore[assignment]
    return results


@torch.no_grad()
def tiling_check(args: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """A low-res mosaic of 256 test images (16×16), upscaled whole and in the network's least tile (4R for its
    receptive-field radius R) and a larger one, at the least overlap (2R): how far the tiles stray from the
    whole-image pass (by construction, float rounding only)."""
    import genlab
    from genlab.io.grids import make_grid
    from genlab.models.sr.nets import downsample
    from genlab.tools.upscale import tile_limits, upscale_image

    test = genlab.load_dataset("fashion-mnist", split="test")
    mosaic = downsample(make_grid(test.float_images(slice(0, 256)), nrow=16, padding=0)[None], args.scale)
    checks = {}
    for name, info in runs.items():
        if name not in METHODS:
            continue
        model = genlab.load(info["run"])
        whole = model.upscale(mosaic)
        overlap, least = tile_limits(model)
        for tile in sorted({least, least + 32}):
            if tile >= max(mosaic.shape[2:]):
                continue  # one tile would cover the mosaic: nothing to check
            error = (upscale_image(model, mosaic, tile=tile) - whole).abs()
            checks[f"{name}, tile {tile}, overlap {overlap}"] = {
                "max_abs": float(error.max()), "mean_abs": float(error.mean()), "max_grey_levels": float(error.max() * 255),
                "low_res_size": list(mosaic.shape[2:])}
    return checks


def write_picture(args: argparse.Namespace, functions: dict[str, Any]) -> str:
    """Rows: low-res (nearest-neighbour enlarged), bicubic, SRResNet, SRGAN, original; one test image of each class."""
    import genlab
    from genlab.io.grids import concat_images, make_grid, save_image
    from genlab.models.sr.nets import downsample

    test = genlab.load_dataset("fashion-mnist", split="test")
    index = [int((test.labels == c).nonzero()[0]) for c in range(10)]
    original = test.float_images(index)
    low = downsample(original, args.scale)
    rows = {f"low-res {low.shape[2]}x{low.shape[3]} (nearest)": low.repeat_interleave(args.scale, 2).repeat_interleave(args.scale, 3)}
    rows.update({name: fn(low) for name, fn in functions.items() if name in METHODS})  # not the --also extras
    rows["original"] = original
    strips = [concat_images([make_grid(images, nrow=len(index))], labels=[label]) for label, images in rows.items()]
    picture = torch.cat(strips, dim=1)
    path = save_image(picture, args.picture, scale=3)
    return str(path.relative_to(REPO) if path.resolve().is_relative_to(REPO) else path)


# ----- report -----
def markdown_report(settings: dict[str, Any], runs: dict[str, dict[str, Any]], scores: dict[str, Any],
                    tiling: dict[str, dict[str, float]], picture: str, load: dict[str, Any]) -> str:
    scale = settings["scale"]
    count = scores["num_images"]
    names = [m for m in scores if m not in ("low-res (nearest)", "num_images")]
    lines = [
        f"# Super-resolution ×{scale} on Fashion-MNIST: {', '.join(m for m in METHODS if m in scores)}",
        "",
        f"Low-res inputs: box downsampling of the test images (28×28 → {28 // scale}×{28 // scale}); every method is "
        f"scored on all {count:,} of them against the originals. {' and '.join(m for m in METHODS[1:] if m in runs) or 'The models'} "
        f"{'is' if len([m for m in METHODS[1:] if m in runs]) == 1 else 'are'} `genlab.SR` (Ledig et al. 2017) "
        "trained by `genlab.train` on the 60,000 training images, 1 torch thread.",
        "",
        "| method | PSNR (dB) ↑ | SSIM ↑ | FID, judge features ↓ | sharpness (÷ originals) | training steps | training seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        s = scores[name]
        info = runs.get(name, {})
        steps = f"{info['steps']:,}" if "steps" in info else "—"
        seconds = f"{info['train_seconds']:.0f}" if "train_seconds" in info else "—"
        if info.get("init_from") and "SRResNet" in runs and "train_seconds" in runs["SRResNet"]:
            seconds += f" (+ {runs['SRResNet']['train_seconds']:.0f} of the SRResNet it starts from)"
        lines.append(f"| {name} | {s['psnr_db']:.2f} | {s['ssim']:.4f} | {s['fid_judge']:.1f} | {s['sharpness']:.3f} | {steps} | "
                     f"{seconds} |")
    nearest = scores["low-res (nearest)"]["fid_judge"]
    lines += ["", f"FID of the low-res inputs enlarged by pixel repetition, for scale: {nearest:.1f}. The originals have "
              "sharpness 1 and FID 0 by definition."]
    if scale == 4:
        lines += ["", "Beside the paper's Set5 ×4 row (Ledig et al. 2017, Table 4; photos, bicubic downsampling, 16 blocks, "
                  "10⁶ SRResNet + 10⁵ SRGAN updates on ImageNet; the figures as given in issue 5):", "",
                  "| | bicubic | SRResNet | SRGAN |", "|---|---:|---:|---:|",
                  "| Set5 PSNR (dB), paper | " + " | ".join(f"{PAPER_SET5_X4[m]:.2f}" for m in METHODS) + " |",
                  "| gain over bicubic (dB), paper | 0 | "
                  + " | ".join(f"{PAPER_SET5_X4[m] - PAPER_SET5_X4['bicubic']:+.2f}" for m in METHODS[1:]) + " |"]
        ours = [f"{scores[m]['psnr_db'] - scores['bicubic']['psnr_db']:+.2f}" if m in scores else "—" for m in METHODS[1:]]
        lines.append("| gain over bicubic (dB), here | 0 | " + " | ".join(ours) + " |")
    lines += ["", "## Targets", ""]
    bicubic = scores["bicubic"]
    if "SRResNet" in scores:
        gain = scores["SRResNet"]["psnr_db"] - bicubic["psnr_db"]
        lines.append(f"- SRResNet ≥ bicubic + 2 dB PSNR: {gain:+.2f} dB — **{'met' if gain >= 2 else 'not met'}**.")
    if "SRResNet" in scores and "SRGAN" in scores:
        r, g = scores["SRResNet"], scores["SRGAN"]
        lines.append(f"- SRGAN sharper than SRResNet: {g['sharpness']:.3f} vs {r['sharpness']:.3f} — "
                     f"**{'met' if g['sharpness'] > r['sharpness'] else 'not met'}**.")
        lines.append(f"- SRGAN lower FID than SRResNet: {g['fid_judge']:.1f} vs {r['fid_judge']:.1f} — "
                     f"**{'met' if g['fid_judge'] < r['fid_judge'] else 'not met'}**.")
        lines.append(f"- SRGAN gives up some PSNR: {g['psnr_db']:.2f} vs {r['psnr_db']:.2f} dB "
                     f"({g['psnr_db'] - r['psnr_db']:+.2f}), still {g['psnr_db'] - bicubic['psnr_db']:+.2f} dB over bicubic.")
    if tiling:
        side = next(iter(tiling.values()))["low_res_size"]
        lines += ["", "## Tiled upscaling against a whole-image pass", "",
                  f"A {side[0]}×{side[1]} low-res mosaic of 256 test images, upscaled whole and in tiles with feathered blending "
                  "(`genlab.tools.upscale.upscale_image`; the least tile is 4R and the least overlap 2R for the net's "
                  "receptive-field radius R):", "",
                  "| model, tile, overlap (low-res px) | max abs difference | in grey levels | mean abs difference |",
                  "|---|---:|---:|---:|"]
        for name, check in tiling.items():
            lines.append(f"| {name} | {check['max_abs']:.4f} | {check['max_grey_levels']:.1f} | {check['mean_abs']:.6f} |")
    lines += ["", "## Configurations", ""]
    srgan_only = ("content_weight", "pixel_weight", "adversarial_weight", "judge", "content_block", "d_width", "lr_d")
    for name, info in runs.items():
        gan = info["config"].get("variant") == "srgan"
        shown = {k: v for k, v in info["config"].items() if k != "image_shape" and (gan or k not in srgan_only)}
        config = ", ".join(f"{k}={v}" for k, v in shown.items())
        start = f"; G initialised from the SRResNet run ({Path(info['init_from']).name})" if info.get("init_from") else ""
        lines.append(f"- **{name}**: `SRConfig({config})`; Adam lr {info['lr']}, schedule {info.get('lr_schedule', '?')} "
                     f"(to 0 at the last step), batch {info['batch_size']}{start}; run `{info['run']}`.")
    shown = ", ".join(m for m in METHODS if m in names)
    lines += ["", "## Notes", "",
              f"![{shown} on test images]({os.path.relpath(REPO / picture, REPO / 'benchmarks' / 'results')})",
              "",
              f"- Rows of the picture: the low-res input enlarged by pixel repetition, {shown}, the original; "
              "one test image of each class.",
              "- PSNR/SSIM: mean over images of the per-image value (SSIM: Wang et al. 2004, 11×11 Gaussian window); "
              "FID: Fréchet distance of the shipped judge's 128-d features to those of the real test images "
              "(not Inception's, so compare only within this table); sharpness: mean variance of the Laplacian ÷ the originals'.",
              ]
    if any(name in runs for name in ABLATIONS):
        lines.append("- Ablations (`--ablations`): SRGAN trained the same way with one change: the content loss on the "
                     "judge's last conv block (48 channels at 14×14, behind a max-pool, like VGG54) instead of its first "
                     "(24 channels at 28×28, like VGG22), or no adversarial term (content + pixel loss only).")
    if settings.get("srresnet") or settings.get("srgan"):
        lines.append("- Runs given with `--srresnet`/`--srgan` were trained earlier by this script with the settings under "
                     "Configurations (their config.json holds them).")
    if "SRGAN" in runs:
        block = runs["SRGAN"]["config"].get("content_block", -1)
        which = "first conv block's feature map, like VGG22" if block == 0 else f"conv block {block}'s feature map"
        lines.append(f"- The judge that scores FID is also SRGAN's content network (its {which}), so SRGAN is trained "
                     "towards the features FID compares: its FID advantage is partly by construction. PSNR, SSIM and "
                     "sharpness do not share that bias.")
    start_load = ", ".join(f"{x:.1f}" for x in load["start"]) if load.get("start") else "?"
    end_load = ", ".join(f"{x:.1f}" for x in load["end"])
    lines.append(f"- Seconds are wall clock of `genlab.train` on a shared 2-core machine (load average {start_load} at the "
                 f"start, {end_load} at the end; 1-, 5-, 15-minute), so they vary with other jobs; the step counts are "
                 "the budget. Seconds per step here: "
                 + ", ".join(f"{n} {i['train_seconds'] / i['steps']:.2f}" for n, i in runs.items() if i.get("steps")) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    args = parse_args(argv)
    if args.rerender:
        def render(payload: dict[str, Any]) -> str:
            r = payload["results"]
            return markdown_report(r["settings"], r["runs"], r["scores"], r["tiling"], r["picture"], r["load"])

        print(harness.rerender(args.rerender, render).read_text())
        return 0
    torch.set_num_threads(1)
    machine = harness.machine_info()
    started = time.perf_counter()
    work_dir = Path(args.work_dir) if args.work_dir else None
    temporary = work_dir is None
    if temporary:
        import tempfile

        work_dir = Path(tempfile.mkdtemp(prefix="genlab-sr-"))
    runs: dict[str, dict[str, Any]] = {}
    try:
        if "srresnet" in args.only:
            runs["SRResNet"] = existing_run(args.srresnet) if args.srresnet else train_model("srresnet", args, work_dir / "srresnet", None)
        if "srgan" in args.only:
            if args.srgan:
                runs["SRGAN"] = existing_run(args.srgan)
            else:
                init = None if args.srgan_from_scratch or "SRResNet" not in runs else runs["SRResNet"]["run"]
                runs["SRGAN"] = train_model("srgan", args, work_dir / "srgan", init)
                if args.ablations:
                    for name, (folder, extra) in ABLATIONS.items():
                        runs[name] = train_model("srgan", args, work_dir / folder, init, extra)
        for entry in args.also:
            name, _, run = entry.partition("=")
            if not run:
                raise SystemExit(f"--also expects NAME=RUN, got {entry!r}")
            runs[name] = existing_run(run)
        functions = upscalers(args, runs)
        print(f"scoring on {min(args.num_images, 10_000):,} test images", flush=True)
        scores = score(args, functions)
        tiling = tiling_check(args, runs)
        picture = write_picture(args, functions)
        load = {"start": machine["load_average_at_start"], "end": [round(x, 2) for x in os.getloadavg()]}
        settings = {k: v for k, v in vars(args).items() if k not in ("rerender",)}
        results = {"settings": settings, "runs": runs, "scores": scores, "tiling": tiling, "picture": picture, "load": load,
                   "paper_set5_x4_psnr": PAPER_SET5_X4, "wall_seconds_total": time.perf_counter() - started}
        harness.publish(args.name, results, markdown_report(settings, runs, scores, tiling, picture, load), machine=machine)
    finally:
        if temporary:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
