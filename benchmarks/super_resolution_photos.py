"""Super-resolution ×4 on real photographs, the SR papers' way: bicubic, SRResNet, SRGAN, RRDB-PSNR, ESRGAN and
ESRGAN at α = 0.8 (network interpolation), on a held-out "Set5"-like set of whole photos.

Training: random HR patches (``genlab.data.photos``: the bundled training photos only, or ``--photos DIR``),
low-res made inside the loss by antialiased bicubic downsampling (``downsampling="bicubic"``), each model
trained by ``genlab.train`` for ``--budget`` CPU seconds of its process (``CPUClock``), in genlab's ``auto`` precision by
default (bf16 autocast where the CPU has bf16 units: ``benchmarks.sr_recipe`` measured it no worse per CPU second than
fp32, with seeds; ``--precision fp32`` reproduces the published run). ``--jobs 2`` trains the models that do not
depend on each other in parallel processes (SRResNet ∥ RRDB-PSNR, then the GANs). SRGAN's G starts from
the SRResNet (Ledig et al. §3.2), ESRGAN's from the RRDB-PSNR model (Wang et al. §3.4); the ESRGAN α = 0.8
row is the interpolation of those two (no extra training).

Scoring, per held-out photo (cropped to a multiple of the scale): bicubic ×4 downsampling, quantised to
8 bits as a saved low-res file would be; each method's output quantised the same way; PSNR and SSIM on the
BT.601 Y channel with ``scale`` border pixels cropped (``genlab.metrics.image.psnr_y/ssim_y``); sharpness
(Laplacian energy ÷ the original's, ``genlab.metrics.sharpness``); LR-consistency (PSNR of the output's
bicubic downsampling against the input); inference time per output megapixel (tiled where large).

    python -m benchmarks.super_resolution_photos --budget 900            # about 4 × 15 min + scoring
    python -m benchmarks.super_resolution_photos --quick                 # a smoke test: seconds, tiny nets

``--curve-every S`` also scores each model's mean PSNR-Y on the held-out photos every S CPU seconds of its training
(scoring time off its clock): the learning curves, plotted in docs/images/<name>_curve.png.

Results: benchmarks/results/sr_photos.{json,md}, picture docs/images/sr_photos.png (crops of a held-out
photo: bicubic | SRResNet | SRGAN | ESRGAN | original).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.families import CPUClock, in_processes
from genlab.training import Callback

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# Set5 ×4 PSNR (dB, Y channel), the shape of the table as given in issue 21: Ledig et al. 2017 Table 4 (bicubic,
# SRResNet, SRGAN) and Wang et al. 2018 (RRDB-PSNR).
PAPER_SET5_X4 = {"bicubic": 28.43, "SRResNet": 32.05, "SRGAN": 29.40, "RRDB-PSNR": 32.73}
# BSD100 ×4 from the same Table 4 of Ledig et al.: 100 natural photographs, nearer to ours than Set5's five close-ups;
# there the full-size SRResNet gains +1.64 dB over bicubic, not Set5's +3.62 — the gain depends on the photos.
PAPER_BSD100_X4 = {"bicubic": 25.94, "SRResNet": 27.58, "SRGAN": 25.16}
ROWS = ("bicubic", "SRResNet", "SRGAN", "RRDB-PSNR", "ESRGAN", "ESRGAN α = 0.8")
PICTURE_ROWS = ("bicubic", "SRResNet", "SRGAN", "ESRGAN")
# name → (variant, starts from, Adam rate, extra SRConfig). PSNR models at 2e-4 and GANs at 1e-4 (Wang et al. §4.1).
MODELS = {
    "SRResNet": ("srresnet", None, 2e-4, {}),
    "SRGAN": ("srgan", "SRResNet", 1e-4, {"judge": "none"}),  # no judge fits photos: pixel MSE + adversarial (noted)
    "RRDB-PSNR": ("rrdb", None, 2e-4, {}),
    "ESRGAN": ("esrgan", "RRDB-PSNR", 1e-4, {}),
}
ABLATION = ("ESRGAN without perceptual loss", ("esrgan", "RRDB-PSNR", 1e-4, {"perceptual_weight": 0.0}))
# Which precision learns most per CPU second is benchmarks.sr_recipe's question (seeds, paired differences, on two
# training photos held out for it); the report points there rather than restating its numbers.
PRECISION_NOTE = ("which precision teaches these nets most per CPU second is measured by `python -m benchmarks.sr_recipe` "
                  "([sr_recipe](sr_recipe.md))")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.super_resolution_photos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=900.0, help="training CPU seconds per model (busy machines cannot shorten it)")
    parser.add_argument("--scale", type=int, default=4, choices=(2, 4))
    parser.add_argument("--patch", type=int, default=96, help="HR training patch side (SRGAN: 96, ESRGAN: 128)")
    parser.add_argument("--patches", type=int, default=4000, help="random training patches cut once (deterministic)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--photos", default=None, metavar="DIR", help="train and test on your own photos instead")
    parser.add_argument("--config", default='{"channels": 32, "blocks": 4, "growth": 16}', metavar="JSON",
                        help="SRConfig options for every model (the defaults: small nets a CPU trains in minutes)")
    parser.add_argument("--ablation", action="store_true", help="also train ESRGAN without the perceptual loss")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    parser.add_argument("--jobs", type=int, default=1, help="train up to N independent models at once, one process each")
    parser.add_argument("--device", default="cpu",
                        help="train on this device (cuda: the budget is then wall seconds, not CPU seconds)")
    parser.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"),
                        help="training precision (default auto: bf16 autocast where the CPU has bf16 units)")
    parser.add_argument("--grayscale", action="store_true",
                        help="also cut training patches from the bundled grayscale photos (camera, brick, grass, gravel)")
    parser.add_argument("--curve-every", type=float, default=0.0, metavar="S",
                        help="score each model on the held-out photos every S CPU seconds of training (0: off)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the models of the earlier results (same --name, --work-dir and settings) and train only "
                             "the missing ones, e.g. to add --ablation; every row is scored again")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="where runs go (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny nets, seconds of training, small crops")
    parser.add_argument("--name", default=None, help="results name (default sr_photos; sr_photos_quick with --quick)")
    parser.add_argument("--picture", default=None, help="picture path (default docs/images/<name>.png)")
    parser.add_argument("--rerender", default=None, metavar="JSON",
                        help="rewrite the report and the curve picture from a saved results file (no training)")
    args = parser.parse_args(argv)
    args.config = json.loads(args.config)
    if args.quick:
        args.budget, args.patch, args.patches, args.batch_size = min(args.budget, 4.0), 32, 64, 4
        args.config = {"channels": 8, "blocks": 1, "growth": 4, "d_width": 4}
    args.name = args.name or ("sr_photos_quick" if args.quick else "sr_photos")
    args.picture = args.picture or str(REPO / "docs" / "images" / f"{args.name}.png")
    return args


def photo_sets(args: argparse.Namespace) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], str]:
    """(training photos, held-out photos by name, a description)."""
    from genlab.data import photos

    if args.photos:
        everything = photos.folder_photos(args.photos)
        split = photos.split_folder(list(everything))
        train, test = [everything[n] for n in split["train"]], {n: everything[n] for n in split["test"]}
        where = f"your folder {args.photos} ({len(train)} training photos, {len(test)} held out)"
    else:
        train, test = list(photos.training_photos(grayscale=args.grayscale).values()), photos.test_photos()
        where = ("the bundled photos (genlab.data.photos: " + ", ".join(photos.photo_names("train", grayscale=args.grayscale))
                 + " for training)")
    if args.quick:  # small crops keep scoring to seconds
        test = {name: image[:, :64, :64] for name, image in list(test.items())[:2]}
    return train, test, where


class WallClock(Callback):
    """The run's own wall clock, with a ``paused`` tally like ``CPUClock``'s, for training on a GPU (where the CPU
    seconds of the process say little about the work done): seconds spent scoring are taken off the clock."""

    def __init__(self) -> None:
        self.paused, self.counted = 0.0, 0.0

    def on_step_end(self, run: Any) -> None:
        run.seconds_before -= self.paused - self.counted  # the pause since the last step, off run.elapsed()
        self.counted = self.paused


class HeldOutCurve(Callback):
    """Every ``every`` CPU seconds of training, and at its end: the model's mean PSNR-Y on the held-out photos
    (``held_out_pairs``, the table's protocol), as [CPU seconds, step, dB] points. The scoring's CPU time is
    taken out of the run's clock, so it does not shorten the training budget."""

    def __init__(self, every: float, pairs: list[tuple[torch.Tensor, torch.Tensor]], scale: int, clock: Any) -> None:
        self.every, self.pairs, self.scale, self.clock = every, pairs, scale, clock
        self.timer = time.perf_counter if isinstance(clock, WallClock) else time.process_time  # the clock's own seconds
        self.points: list[list[float]] = []

    def measure(self, run: Any) -> None:
        from genlab.tools.upscale import upscale_image

        paused = self.timer()
        values = psnr_y_each(lambda low: upscale_image(run.model, low, exact=False), self.pairs, self.scale)
        self.points.append([round(run.elapsed(), 1), run.step, sum(values) / len(values)])
        self.clock.paused += self.timer() - paused

    def on_step_end(self, run: Any) -> None:
        if run.elapsed() >= self.every * (len(self.points) + 1):
            self.measure(run)

    def on_train_end(self, run: Any) -> None:
        if not self.points or self.points[-1][1] != run.step:
            self.measure(run)


def psnr_y_each(upscale: Any, pairs: list[tuple[torch.Tensor, torch.Tensor]], scale: int) -> list[float]:
    """PSNR-Y (dB, ``scale`` border pixels cropped) of ``upscale(low)`` against each high-res photo of ``pairs``
    (``held_out_pairs``), the output quantised to 8 bits first as a saved file would be."""
    from genlab.io.images import to_uint8
    from genlab.metrics.image import psnr_y

    with torch.no_grad():
        return [float(psnr_y(to_uint8(upscale(low)).float() / 255.0, hr, border=scale)[0]) for low, hr in pairs]


def held_out_pairs(test: dict[str, torch.Tensor], scale: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(low-res input, high-res target) per held-out photo, floats in [0, 1]: the photo cropped to a multiple of
    ``scale``, and its bicubic downsampling quantised to 8 bits, as a saved low-res file would be."""
    from genlab.io.images import to_uint8
    from genlab.models.sr.nets import downsample_bicubic

    pairs = []
    for image in test.values():
        h, w = image.shape[1] // scale * scale, image.shape[2] // scale * scale
        hr = image[None, :, :h, :w].float() / 255.0
        pairs.append((to_uint8(downsample_bicubic(hr, scale).clamp(0, 1)).float() / 255.0, hr))
    return pairs


def train_model(name: str, spec: tuple, args: argparse.Namespace, data, runs: dict[str, Any], work_dir: Path,
                test: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Train one row's model (in this process: ``--jobs`` runs it in a fresh one) and describe the run."""
    import genlab

    torch.set_num_threads(args.threads)
    variant, start, lr, extra = spec
    out_dir = work_dir / name.lower().replace(" ", "-")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    torch.manual_seed(args.seed)
    config = genlab.SRConfig(image_shape=data.image_shape, scale=args.scale, variant=variant, downsampling="bicubic",
                             **{**args.config, **extra})
    model = genlab.SR(config)
    if start:
        model.copy_generator_from(genlab.load(runs[start]["run"]), where=start)
    train = genlab.TrainConfig(epochs=100_000, batch_size=args.batch_size, lr=lr, seed=args.seed, out_dir=str(out_dir),
                               device=args.device, max_seconds=args.budget, log_every=50, progress=not args.quick and args.jobs == 1,
                               tensorboard=False, num_sample_images=0, precision=args.precision)
    clock = CPUClock() if args.device == "cpu" else WallClock()
    curve = HeldOutCurve(args.curve_every, held_out_pairs(test, args.scale), args.scale, clock) if args.curve_every else None
    print(f"training {name} ({variant}{', from ' + start if start else ''}) for {args.budget:.0f} CPU s → {out_dir}", flush=True)
    started = time.perf_counter()
    genlab.train(model, data, train, callbacks=[clock] + ([curve] if curve else []))
    info = {"run": str(out_dir), "variant": variant, "init_from": start, "lr": lr, "config": {**args.config, **extra},
            "train_seconds": time.perf_counter() - started + (runs[start]["train_seconds"] if start else 0.0),
            "own_train_seconds": time.perf_counter() - started, "steps": trained_steps(out_dir)}
    if curve:
        info["curve"] = curve.points  # [CPU seconds, step, mean PSNR-Y (dB)]
    print(f"trained {name}: {info['steps']} steps in {info['own_train_seconds']:.0f} s", flush=True)
    return info


def train_all(models: dict[str, tuple], args: argparse.Namespace, data, earlier: dict[str, Any], work_dir: Path,
              test: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """Every row's model, in waves: a wave holds the models whose starting model is already trained; with
    ``--jobs N`` the models of a wave train N at a time, each in its own process (its own CPU clock)."""
    runs: dict[str, dict[str, Any]] = {}
    for name in models:
        if name in earlier:
            print(f"reusing {name} from the earlier results ({earlier[name]['run']})", flush=True)
            runs[name] = earlier[name]
    while len(runs) < len(models):
        wave = [n for n, spec in models.items() if n not in runs and (spec[1] is None or spec[1] in runs)]
        jobs = [(n, models[n], args, data, runs, work_dir, test) for n in wave]
        if args.jobs > 1 and len(jobs) > 1:
            results = in_processes(train_model, jobs, min(args.jobs, len(jobs)))
        else:
            results = [train_model(*job) for job in jobs]
        runs.update(zip(wave, results, strict=True))
    return {name: runs[name] for name in models}


def reusable_runs(args: argparse.Namespace, work_dir: Path) -> dict[str, dict[str, Any]]:
    """The trained models of the earlier results file (``--name``) whose run folders are still in ``work_dir``
    and whose settings match these: ``--reuse`` then trains only what is new (e.g. the ``--ablation`` row)."""
    path = RESULTS / f"{args.name}.json"
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())["results"]
    same = all(saved["settings"].get(key) == getattr(args, key)
               for key in ("budget", "scale", "patch", "patches", "batch_size", "photos", "config", "seed", "precision", "grayscale"))
    if not same:
        raise SystemExit(f"--reuse: {path} was made with other settings; run without --reuse")
    found = {}
    for name, info in saved["runs"].items():
        run = work_dir / Path(info["run"]).name
        if (name in MODELS or name == ABLATION[0]) and (run / "model.safetensors").is_file():
            found[name] = {**info, "run": str(run)}
    return found


def trained_steps(run: Path) -> int | None:
    """The step count saved with a run's training state (None if it has none)."""
    from genlab.io.checkpoints import STATE_FILE, load_tensors

    state = run / STATE_FILE
    return int(load_tensors(state)[1]["step"]) if state.is_file() else None


@torch.no_grad()
def score(args: argparse.Namespace, upscalers: dict[str, Any], test: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    from genlab.io.images import to_uint8
    from genlab.metrics.image import laplacian_energy, lr_consistency, psnr_y, ssim_y

    s = args.scale
    rows: dict[str, dict[str, float]] = {}
    for name, upscale in upscalers.items():
        values: dict[str, list[float]] = {"psnr_y": [], "ssim_y": [], "sharpness": [], "lr_psnr": []}
        seconds = megapixels = 0.0
        upscale(torch.rand(1, next(iter(test.values())).shape[0], 16, 16))  # warm-up: first-call costs are not timed
        for low, hr in held_out_pairs(test, s):
            h, w = hr.shape[2:]
            started = time.perf_counter()
            sr = to_uint8(upscale(low)).float() / 255.0
            seconds += time.perf_counter() - started
            megapixels += h * w / 1e6
            values["psnr_y"].append(float(psnr_y(sr, hr, border=s)[0]))
            values["ssim_y"].append(float(ssim_y(sr, hr, border=s)[0]))
            values["sharpness"].append(float(laplacian_energy(sr)[0] / laplacian_energy(hr)[0]))  # genlab.metrics.sharpness's ratio
            values["lr_psnr"].append(float(lr_consistency(sr, low)[0]))
        rows[name] = {key: sum(v) / len(v) for key, v in values.items()}
        rows[name]["per_photo_psnr_y"] = dict(zip(test, values["psnr_y"], strict=True))  # type: ignore[assignment]
        rows[name]["ms_per_megapixel"] = 1000 * seconds / megapixels
        print(f"  {name}: PSNR-Y {rows[name]['psnr_y']:.2f} dB, SSIM-Y {rows[name]['ssim_y']:.4f}, "
              f"sharpness {rows[name]['sharpness']:.3f}", flush=True)
    return rows


def write_picture(args: argparse.Namespace, upscalers: dict[str, Any], test: dict[str, torch.Tensor]) -> str:
    """Crops of one held-out photo, side by side: bicubic | SRResNet | SRGAN | ESRGAN | original (×2 nearest)."""
    from genlab.io.grids import concat_images, save_image
    from genlab.io.images import to_uint8
    from genlab.models.sr.nets import downsample_bicubic

    s, name = args.scale, ("chelsea" if "chelsea" in test else next(iter(test)))
    image = test[name]
    side = min(128, image.shape[1] // s * s, image.shape[2] // s * s)
    top, left = (image.shape[1] - side) // 2 // s * s, (image.shape[2] - side) // 2 // s * s
    margin = 8 * s  # upscale a little more than the crop, so the crop has context
    y0, x0 = max(0, top - margin), max(0, left - margin)
    y1, x1 = min(image.shape[1] // s * s, top + side + margin), min(image.shape[2] // s * s, left + side + margin)
    hr = image[None, :, y0:y1, x0:x1].float() / 255.0
    low = to_uint8(downsample_bicubic(hr, s).clamp(0, 1)).float() / 255.0
    crops, labels = [], []
    for row in (*PICTURE_ROWS, "original"):
        if row != "original" and row not in upscalers:
            continue
        out = hr if row == "original" else upscalers[row](low)
        crops.append(out[0, :, top - y0:top - y0 + side, left - x0:left - x0 + side].repeat_interleave(2, 1).repeat_interleave(2, 2))
        labels.append(row)
    path = save_image(concat_images(crops, labels=labels), args.picture)
    return str(path.relative_to(REPO) if path.resolve().is_relative_to(REPO) else path)


def write_curve_picture(args: argparse.Namespace, runs: dict[str, Any], bicubic: float) -> str | None:
    """Mean held-out PSNR-Y against training CPU seconds, one line per model with a curve, bicubic and bicubic + 2 dB
    as horizontal lines (the GANs' curves start where their PSNR model ended)."""
    curves = {name: info["curve"] for name, info in runs.items() if info.get("curve")}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name, points in curves.items():
        offset = runs[runs[name]["init_from"]]["curve"][-1][0] if runs[name].get("init_from") in curves else 0.0
        axis.plot([offset + p[0] for p in points], [p[2] for p in points], marker="o", markersize=3, label=name)
    axis.axhline(bicubic, color="0.4", linestyle="--", label=f"bicubic ({bicubic:.2f} dB)")
    axis.axhline(bicubic + 2, color="C3", linestyle=":", label="bicubic + 2 dB (the target)")
    axis.set_xscale("log", base=2)  # a doubling of training time is one step along the axis (see doubling_trend)
    lowest = min(p[2] for points in curves.values() for p in points)
    if lowest < bicubic - 4:  # a GAN's collapse would squash the PSNR models' curves into a line: clip, and say so
        axis.set_ylim(bicubic - 4, bicubic + 2.5)
        axis.annotate(f"clipped: lowest point {lowest:.1f} dB (see the table)", xy=(0.99, 0.02),
                      xycoords="axes fraction", ha="right", fontsize=8, color="0.3")
    axis.set(xlabel="training CPU seconds, log scale (GANs: after their PSNR model's)", ylabel="mean PSNR-Y on the held-out photos (dB)",
             title=f"×{args.scale} super-resolution: learning curves")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = Path(args.picture).with_name(Path(args.picture).stem + "_curve.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path.relative_to(REPO) if path.resolve().is_relative_to(REPO) else path)


def doubling_trend(points: list[list[float]], bicubic: float, target: float = 2.0) -> dict[str, float] | None:
    """How fast the last two doublings of training time raised the gain over bicubic: the least-squares slope of
    gain against log2(CPU seconds) over the points in [t_last / 4, t_last], in dB per doubling, and the CPU seconds at
    which that line reaches ``target`` dB. Learning curves flatten in log-time too, so the time is a lower bound (the
    optimistic reading); None with fewer than 3 such points or a trend that does not rise."""
    last = points[-1][0]
    tail = [(math.log2(seconds), value - bicubic) for seconds, _, value in points if last / 4 <= seconds and seconds > 0]
    if len(tail) < 3:
        return None
    mean_x, mean_y = sum(x for x, _ in tail) / len(tail), sum(y for _, y in tail) / len(tail)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in tail) / sum((x - mean_x) ** 2 for x, _ in tail)
    if slope <= 0:
        return None
    at_last = mean_y + slope * (math.log2(last) - mean_x)
    return {"db_per_doubling": slope, "gain_at_end": at_last, "seconds_to_target": last * 2 ** ((target - at_last) / slope)}


def curve_lines(results: dict[str, Any]) -> list[str]:
    """The learning curves: how fast the PSNR models were still improving (``doubling_trend``), then every point
    (mean held-out PSNR-Y and its gain over bicubic)."""
    runs, bicubic = results["runs"], results["rows"]["bicubic"]["psnr_y"]
    curves = {name: info["curve"] for name, info in runs.items() if info.get("curve")}
    if not curves:
        return []
    picture = os.path.relpath(REPO / results["curve_picture"], REPO / "benchmarks" / "results")
    lines = ["", "## Learning curves", "", f"![held-out PSNR-Y against training CPU seconds]({picture})", "",
             "How fast the PSNR-oriented models were still improving: the least-squares slope of the gain over bicubic "
             "against log2(training CPU seconds) over the last two doublings, and when +2 dB would come at that rate "
             "(optimistic: curves flatten further).", "",
             "| model | gain at the end (dB) | dB per doubling | CPU hours to +2 dB at that rate |", "|---|---:|---:|---:|"]
    for name in ("SRResNet", "RRDB-PSNR"):
        if name in curves:
            trend, gain = doubling_trend(curves[name], bicubic), curves[name][-1][2] - bicubic
            if trend:
                hours = trend["seconds_to_target"] / 3600
                rate = f"{trend['db_per_doubling']:.3f} | {hours:,.{1 if hours < 100 else 0}f}"
            else:
                rate = "— | never (no rise)"
            lines.append(f"| {name} | {gain:+.2f} | {rate} |")
    lines += ["", "| model | CPU s | step | PSNR-Y (dB) | gain over bicubic (dB) |", "|---|---:|---:|---:|---:|"]
    for name, points in curves.items():
        for seconds, step, value in points:
            lines.append(f"| {name} | {seconds:.0f} | {step} | {value:.2f} | {value - bicubic:+.2f} |")
    return lines


def markdown_report(results: dict[str, Any]) -> str:
    rows, settings, runs = results["rows"], results["settings"], results["runs"]
    lines = [f"# Super-resolution ×{settings['scale']} on held-out photographs", "",
             f"Trained on {results['where']}; {settings['patches']:,} random {settings['patch']}×{settings['patch']} patches, "
             f"batch {settings['batch_size']}, {settings['budget']:.0f} CPU s of training per model ({settings.get('precision', 'auto')}, "
             f"{settings['threads']} thread(s) each). "
             f"Scored on {len(results['test_photos'])} whole held-out photos ({', '.join(results['test_photos'])}): bicubic "
             f"×{settings['scale']} downsampling, PSNR/SSIM on the BT.601 Y channel with {settings['scale']} border pixels cropped.",
             "", "| method | PSNR-Y (dB) ↑ | SSIM-Y ↑ | sharpness (÷ original) | LR-PSNR (dB) ↑ | parameters | training s | ms / MP |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['psnr_y']:.2f} | {row['ssim_y']:.4f} | {row['sharpness']:.3f} | {row['lr_psnr']:.2f} | "
                     f"{row['params']:,} | {row['train_seconds']:.0f} | {row['ms_per_megapixel']:.0f} |")
    lines += ["", "Set5 ×4 PSNR in the papers, for the shape of the table (not comparable: 16-23 blocks, days on GPUs, "
              "ImageNet/DIV2K): " + ", ".join(f"{k} {v:.2f}" for k, v in PAPER_SET5_X4.items()) + " dB. "
              "The gain over bicubic depends on the photos: on BSD100 (100 natural photographs, nearer to these) the same "
              "paper's table has " + ", ".join(f"{k} {v:.2f}" for k, v in PAPER_BSD100_X4.items())
              + f" dB, SRResNet +{PAPER_BSD100_X4['SRResNet'] - PAPER_BSD100_X4['bicubic']:.2f} dB over bicubic "
              f"(Set5: +{PAPER_SET5_X4['SRResNet'] - PAPER_SET5_X4['bicubic']:.2f}).", "", "## Targets", ""]
    bicubic = rows["bicubic"]["psnr_y"]
    for name in ("SRResNet", "RRDB-PSNR"):
        if name in rows:
            gain = rows[name]["psnr_y"] - bicubic
            lines.append(f"- {name} ≥ bicubic + 2 dB: {gain:+.2f} dB — **{'met' if gain >= 2 else 'not met'}**.")
    if "ESRGAN" in rows and "RRDB-PSNR" in rows:
        e, r = rows["ESRGAN"], rows["RRDB-PSNR"]
        lines.append(f"- ESRGAN sharper than RRDB-PSNR: {e['sharpness']:.3f} vs {r['sharpness']:.3f} — "
                     f"**{'met' if e['sharpness'] > r['sharpness'] else 'not met'}**, at a PSNR cost of "
                     f"{r['psnr_y'] - e['psnr_y']:.2f} dB.")
    picture = os.path.relpath(REPO / results["picture"], REPO / "benchmarks" / "results")
    lines += ["", "## Notes", "", f"![bicubic, SRResNet, SRGAN, ESRGAN, original]({picture})", "",
              "- ESRGAN's perceptual loss uses fixed random-weight VGG-style features before the activation (VGG19 cannot "
              "be downloaded here; see genlab/models/sr/esrgan.py). SRGAN trains with pixel MSE and the adversarial term "
              "only: genlab's judge (28×28 Fashion-MNIST) cannot take photo patches.",
              "- sharpness: variance of the Laplacian of the output ÷ that of the original, averaged over photos; "
              "LR-PSNR: the output downsampled bicubically against the low-res input.",
              "- Runs: " + "; ".join(f"{n}: `SRConfig(variant={i['variant']}, {', '.join(f'{k}={v}' for k, v in i['config'].items())})`, "
                                     f"Adam {i['lr']}, {i['steps']} steps" + (f", from {i['init_from']}" if i["init_from"] else "")
                                     for n, i in runs.items()) + ".",
              "- training s of SRGAN and ESRGAN include the model each starts from; ms / MP: upscaling time per output "
              "megapixel on the benchmark's threads."]
    lines.append(f"- Precision: {settings.get('precision', 'auto')}; {PRECISION_NOTE}.")
    return "\n".join(lines + curve_lines(results))


def rerender(args: argparse.Namespace) -> None:
    """The Markdown report and the learning-curve picture again, from the saved results (after a change of wording)."""
    from benchmarks import harness

    saved = json.loads(Path(args.rerender).read_text())["results"]
    # a run with --picture in a temporary folder saved it as "<work dir>/...", which no longer exists: use --picture
    picture = args.picture if saved["picture"].startswith("<work dir>") else str(REPO / saved["picture"])
    settings = argparse.Namespace(**{**saved["settings"], "picture": picture})
    saved["curve_picture"] = write_curve_picture(settings, saved["runs"], saved["rows"]["bicubic"]["psnr_y"])
    print(harness.rerender(args.rerender, lambda payload: markdown_report({**payload["results"], **saved})))


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    args = parse_args(argv)
    if args.rerender:
        rerender(args)
        return 0
    torch.set_num_threads(args.threads)
    import genlab
    from genlab.data.dataset import Dataset
    from genlab.data.photos import random_patches
    from genlab.models.sr.nets import upsample_bicubic
    from genlab.tools.upscale import upscale_image

    models = dict(MODELS)
    if args.ablation:
        models[ABLATION[0]] = ABLATION[1]
    waves = [sum(1 for spec in models.values() if (spec[1] is None) == first) for first in (True, False)]
    estimate = sum(-(-n // max(1, args.jobs)) for n in waves) * args.budget + 60 + (0 if args.quick else 240)
    print(f"this will take about {estimate / 60:.0f} min: {len(models)} models × {args.budget:.0f} CPU s of training, "
          "plus loading and scoring", flush=True)
    machine = harness.machine_info()
    started = time.perf_counter()
    train_photos, test, where = photo_sets(args)
    data = Dataset(random_patches(train_photos, args.patches, args.patch, seed=args.seed), None, (), "photos")
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="genlab-sr-photos-"))
    try:
        earlier = reusable_runs(args, work_dir) if args.reuse else {}
        runs = train_all(models, args, data, earlier, work_dir, test)
        loaded = {name: genlab.load(info["run"]) for name, info in runs.items()}
        loaded["ESRGAN α = 0.8"] = loaded["ESRGAN"].interpolated(0.8)
        runs["ESRGAN α = 0.8"] = {**runs["ESRGAN"], "config": {**runs["ESRGAN"]["config"], "alpha": 0.8}, "curve": None}
        upscalers = {"bicubic": lambda low: upsample_bicubic(low, args.scale).clamp(0.0, 1.0)}
        upscalers.update({name: (lambda low, m=model: upscale_image(m, low, exact=False)) for name, model in loaded.items()})
        order = [r for r in ROWS if r in upscalers] + [n for n in upscalers if n not in ROWS]
        upscalers = {name: upscalers[name] for name in order}
        print(f"scoring on {len(test)} held-out photos", flush=True)
        rows = score(args, upscalers, test)
        for name, row in rows.items():
            model = loaded.get(name)
            row["params"] = sum(p.numel() for p in model.generator.parameters()) if model is not None else 0
            row["train_seconds"] = runs[name]["train_seconds"] if name in runs else 0.0
        picture = write_picture(args, upscalers, test)
        curve_picture = write_curve_picture(args, runs, rows["bicubic"]["psnr_y"])
        settings = dict(vars(args))
        machine["load_average_at_end"] = list(os.getloadavg())
        results = {"settings": settings, "where": where, "test_photos": list(test), "runs": runs, "rows": rows,
                   "picture": picture, "curve_picture": curve_picture, "paper_set5_x4_psnr": PAPER_SET5_X4,
                   "wall_seconds_total": time.perf_counter() - started}
        harness.publish(args.name, results, markdown_report(results), machine=machine)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
