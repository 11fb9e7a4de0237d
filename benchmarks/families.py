"""Which model for which goal, measured: a VAE, a conditional GAN, latent diffusion and pixel diffusion, each
trained for the same CPU time on full Fashion-MNIST, then scored, timed and pictured side by side.

    python -m benchmarks.families --work-dir runs/families --num-samples 1000   # 600 s a family: ~45 min with scoring
    python -m benchmarks.families --quick                             # smoke run on the mini set

Families (genlab's defaults; 1 torch thread each, ``--parallel`` at a time, each in its own process; the budget
counts each process's CPU seconds, so other work on the machine slows a family down without shortening it):
- VAE: ``VAE(VAEConfig())``, batch 128; samples decode z ~ N(0, I) (prior samples);
- cGAN: ``GAN(GANConfig(num_classes=10))``, batch 64, EMA 0.99 (``genlab train gan --conditional``); during its
  run, judge-FID of 1,000 EMA samples is measured at regular times beside the mean G and D losses since the
  previous point ("GAN losses are not quality measures");
- latent diffusion (Rombach et al. 2022): the KL autoencoder (``Autoencoder``, f = 4: 4×7×7 latents) for
  ``--ae-fraction`` of the budget, then a class-conditional DDPM in its latent space for the rest;
- pixel diffusion: the same diffusion model on the 1×28×28 pixels, for the whole budget.

Rows: each family's samples; the diffusion models with DDIM 10/50/100 steps, without guidance (w = 0: the
conditional prediction) and with classifier-free guidance w = ``--guidance``. Columns: judge-FID, KID, precision,
recall, coverage (``genlab.evaluate``, ``--num-samples`` samples against as many test images, the shipped
judge's features), judge label accuracy (conditional rows: the judge's class of each sample against the class
asked for), sharpness, latent smoothness and the likelihood bound where defined, training time and steps, and
sampling latency: the median of repeated warm calls at batch 1 (ms per image) and batch 64 (images/s), one thread.

Also: the first stage's table (reconstruction PSNR, SSIM and judge-FID of reconstructions, the columns of the LDM
paper's Table 8), sharpness of real images, VAE reconstructions and each family's samples, and D(x), D(G(z))
over the GAN run. Results: benchmarks/results/families.{json,md}, docs/images/families.png (sample grids) and
docs/images/families_gan_losses.png.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import genlab
from benchmarks import harness
from benchmarks.time_to_quality import RunEnd
from genlab.cli.train import TRAIN_DEFAULTS
from genlab.io.checkpoints import read_run_config
from genlab.io.grids import concat_images, save_image
from genlab.metrics import frechet_distance, psnr, sharpness, ssim
from genlab.models.autoencoder import Autoencoder, AutoencoderConfig
from genlab.models.diffusion import Diffusion, DiffusionConfig
from genlab.models.judge import load_judge
from genlab.nn.modes import eval_mode
from genlab.training import Callback

FAMILIES = ("VAE", "cGAN", "latent diffusion", "pixel diffusion")
BATCH = {"VAE": 128, "cGAN": 64, "latent diffusion": 128, "pixel diffusion": 128, "autoencoder": 64}
# --quick: networks small enough for a smoke run of a few minutes (not a measurement).
QUICK_UNET = {"channels": (16, 32), "blocks": 1}
QUICK_AUTOENCODER = {"channels": (8, 16)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.families", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per family (default 600)")
    parser.add_argument("--ae-fraction", type=float, default=1 / 3, help="share of latent diffusion's budget for its first stage")
    parser.add_argument("--num-samples", type=int, default=2000, help="samples scored per row (default 2,000)")
    parser.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale w of the guided rows")
    parser.add_argument("--ddim-steps", type=int, nargs="+", default=[10, 50, 100],
                        help="DDIM steps of the latent diffusion rows")
    parser.add_argument("--pixel-steps", type=int, default=None,
                        help="DDIM steps of the pixel diffusion rows (default: the fewest of --ddim-steps; each pixel "
                             "step costs ~27× a latent step: 35 vs 1.3 ms an image, one thread)")
    parser.add_argument("--parallel", type=int, default=2, help="families trained at once, 1 thread each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--score-only", action="store_true", help="score the runs already in --work-dir")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure the latencies again (on a quiet machine) for the runs in --work-dir and update the "
                             "results file written by an earlier run")
    parser.add_argument("--quick", action="store_true", help="the mini set, 20 s budgets, 500 samples: a smoke run")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.budget, args.num_samples, args.ddim_steps = "fashion-mnist-mini", 20.0, 500, [2, 4]
    args.pixel_steps = args.pixel_steps or min(args.ddim_steps)
    if args.budget <= 0 or not 0 < args.ae_fraction < 1 or args.num_samples < 200 or args.parallel < 1:
        parser.error("--budget > 0, 0 < --ae-fraction < 1, --num-samples >= 200 and --parallel >= 1")
    if (args.score_only or args.latency_only) and not args.work_dir:
        parser.error("--score-only and --latency-only need the --work-dir of an earlier run")
    args.name = args.name or ("families_quick" if args.quick else "families")
    return args


# ----- training: one family per process -----
class CPUClock(Callback):
    """Makes the run's clock (``run.elapsed()``, which ``max_seconds`` stops) count this process's CPU seconds
    instead of wall seconds: each family trains with one thread in its own process, so a busy machine slows it
    down but does not shorten its budget. Seconds in ``paused`` (CPU seconds spent measuring) are not counted."""

    def __init__(self) -> None:
        self.start, self.paused = 0.0, 0.0

    def on_train_start(self, run: Any) -> None:
        self.start = time.process_time()

    def on_step_end(self, run: Any) -> None:
        cpu = time.process_time() - self.start - self.paused
        run.seconds_before = cpu - (time.perf_counter() - run.started)  # so that run.elapsed() == cpu


class LossesAndFID(Callback):
    """Every ``every`` training seconds: judge-FID of ``samples`` EMA samples (one per class in turn) and the mean
    of every logged loss since the previous point. Scoring time is taken out of the run's (CPU) clock."""

    def __init__(self, every: float, samples: int, test: Any, clock: CPUClock) -> None:
        self.every, self.samples, self.judge, self.clock = every, samples, load_judge(), clock
        self.real = self.judge.features(test.float_images(slice(None)))
        self.rows: list[dict[str, float]] = []
        self.points: list[dict[str, float]] = []

    def on_log(self, run: Any, row: dict[str, Any]) -> None:
        self.rows.append({key: float(value) for key, value in row.items() if isinstance(value, (int, float))})

    def on_step_end(self, run: Any) -> None:
        if run.elapsed() < self.every * (len(self.points) + 1):
            return
        paused = time.process_time()
        with run.ema.applied(run.model) if run.ema is not None else contextlib.nullcontext(), eval_mode(run.model):
            images = run.model.sample(self.samples, seed=777, labels=torch.arange(self.samples) % 10)
        point = {"seconds": run.elapsed(), "step": run.step, "fid": frechet_distance(self.judge.features(images), self.real)}
        for key in ("G/loss", "D/loss", "D/real_prob", "D/fake_prob"):
            values = [row[key] for row in self.rows if key in row]
            point[key] = statistics.mean(values) if values else math.nan
        self.rows.clear()
        self.points.append(point)
        self.clock.paused += time.process_time() - paused


def train_run(model: Any, data: Any, out_dir: Path, budget: float, batch: int, seed: int, callbacks=(), **train) -> dict[str, Any]:
    config = genlab.TrainConfig(epochs=10**6, batch_size=batch, seed=seed, out_dir=str(out_dir), max_seconds=budget,
                                device="cpu", progress=False, tensorboard=False, **train)
    started = time.perf_counter()
    ended = RunEnd()
    clock = next((c for c in callbacks if isinstance(c, CPUClock)), None) or CPUClock()
    genlab.train(model, data, config, callbacks=[clock, *[c for c in callbacks if c is not clock], ended])
    return {"run": str(out_dir), "wall_seconds": time.perf_counter() - started, "steps": ended.steps,
            "train_seconds": ended.seconds, "train": read_run_config(out_dir)["train"]}


def train_family(name: str, args: argparse.Namespace, work: str) -> dict[str, Any]:
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train = genlab.load_dataset(args.data, split="train")
    test = genlab.load_dataset(args.data, split="test")
    work_dir, result = Path(work), {"name": name}
    if name == "VAE":
        result.update(train_run(genlab.VAE(genlab.VAEConfig(image_shape=train.image_shape)), train, work_dir / "vae",
                             args.budget, BATCH[name], args.seed))
    elif name == "cGAN":
        clock = CPUClock()
        curve = LossesAndFID(args.budget / 12, 1000, test, clock)
        result.update(train_run(genlab.GAN(genlab.GANConfig(image_shape=train.image_shape, num_classes=10)), train,
                             work_dir / "cgan", args.budget, BATCH[name], args.seed, [clock, curve], log_every=10,
                             **TRAIN_DEFAULTS["gan"]))
        result["curve"] = curve.points
    elif name == "latent diffusion":
        first = args.budget * args.ae_fraction
        autoencoder = Autoencoder(AutoencoderConfig(image_shape=train.image_shape, **(QUICK_AUTOENCODER if args.quick else {})))
        result["first_stage"] = train_run(autoencoder, train, work_dir / "ae", first, BATCH["autoencoder"], args.seed)
        model = Diffusion.from_first_stage(autoencoder.eval(), train, num_classes=10, first_stage_run=str(work_dir / "ae"),
                                           **(QUICK_UNET if args.quick else {}))
        result.update(train_run(model, train, work_dir / "ldm", args.budget - first, BATCH[name], args.seed, ema_decay=0.999))
    else:
        model = Diffusion(DiffusionConfig(image_shape=train.image_shape, num_classes=10, **(QUICK_UNET if args.quick else {})))
        result.update(train_run(model, train, work_dir / "pixel", args.budget, BATCH[name], args.seed, ema_decay=0.999))
    return result


def in_processes(function: Any, jobs: list[tuple], parallel: int) -> list[Any]:
    context = multiprocessing.get_context("spawn")  # no forked OpenMP state
    with concurrent.futures.ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
        return [future.result() for future in [pool.submit(function, *job) for job in jobs]]


# ----- scoring -----
def middle(steps: list[int]) -> int:
    return sorted(steps)[len(steps) // 2]


def rows_of(guidance: float, ddim_steps: list[int], pixel_steps: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(row name, family, sampling options) for every row of the table."""
    rows = [("VAE (prior samples)", "VAE", {}), ("cGAN", "cGAN", {})]
    for steps in ddim_steps:
        rows += [(f"latent diffusion, DDIM {steps}, w = {w:g}", "latent diffusion", {"steps": steps, "guidance": w})
                 for w in (0.0, guidance)]
    steps = pixel_steps
    rows += [(f"pixel diffusion, DDIM {steps}, w = {w:g}", "pixel diffusion", {"steps": steps, "guidance": w})
             for w in (0.0, guidance)]
    return rows


def sampler(model: Any, options: dict[str, Any]):
    """model.sample(n, seed, labels) with the sampling ``options`` of a diffusion model; labels only when conditional."""
    if options:
        model.set_sampling(**options)

    def sample(n: int, *, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        conditional = getattr(model.config, "num_classes", 0) > 0
        return model.sample(n, seed=seed, labels=labels if conditional else None)
    return sample


def latency(sample: Any) -> dict[str, float]:
    """Warm medians: ms per image at batch 1 (11 calls), images/s at batch 64 (3 calls)."""
    one = harness.time_callable(lambda: sample(1, seed=1, labels=torch.tensor([3])), warmup=1, repeats=11)
    many = harness.time_callable(lambda: sample(64, seed=2, labels=torch.arange(64) % 10), warmup=1, repeats=3)
    return {"latency_ms_b1": 1000 * one["median_s"], "images_per_s_b64": 64 / many["median_s"]}


def latency_row(name: str, run_dir: str, options: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(1)
    return {"name": name, **latency(sampler(genlab.load(run_dir), options))}


def score_row(name: str, run_dir: str, options: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One row: ``--num-samples`` samples drawn once (classes 0..9 in turn for the conditional models) and scored
    with ``genlab.evaluate_images`` (plus the VAE's likelihood bound and latent smoothness), then the latency."""
    torch.set_num_threads(1)
    test = genlab.load_dataset(args.data, split="test")
    model = genlab.load(run_dir)
    sample = sampler(model, options)
    labels = torch.arange(args.num_samples) % 10
    images = torch.cat([sample(len(chunk), seed=args.seed + 1 + i, labels=chunk)
                        for i, chunk in enumerate(labels.split(500))])
    scores = genlab.evaluate_images(images, test, ["fid", "kid", "prdc", "sharpness"], seed=args.seed, progress=False)
    if model.kind == "vae":
        scores.update(genlab.evaluate(model, test, ["likelihood", "smoothness"], num_samples=args.num_samples,
                                      seed=args.seed, progress=False))
    row = {"fid": scores["fid"], "kid": scores["kid_mean"], "precision": scores["precision"], "recall": scores["recall"],
           "coverage": scores["coverage"], "sharpness": scores["sharpness"],
           "elbo_nats": scores.get("elbo_nats"), "bits_per_dim": scores.get("bits_per_dim"),
           "smoothness_evenness": scores.get("smoothness_evenness")}
    if getattr(model.config, "num_classes", 0):
        row["label_accuracy"] = float((load_judge().predict(images) == labels).float().mean())
    row.update(latency(sample))
    return {"name": name, "row": row}


def first_stage_table(trained: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Reconstruction PSNR, SSIM and judge-FID of reconstructions on the test split: the autoencoder and the VAE."""
    test = genlab.load_dataset(args.data, split="test")
    real = test.float_images(slice(0, 10_000))
    judge = load_judge()
    table = {}
    for run_dir in (trained["latent diffusion"]["first_stage"]["run"], trained["VAE"]["run"]):
        model = genlab.load(run_dir)
        if model.kind == "autoencoder":
            latent = "×".join(map(str, model.latent_shape))
            name = f"latent diffusion's first stage (KL, f = {model.image_shape[1] // model.latent_shape[1]}, {latent})"
        else:
            name = f"VAE (latent {model.config.latent_dim})"
        recon = torch.cat([model.reconstruct(real[i:i + 500]) for i in range(0, len(real), 500)]).clamp(0, 1)
        table[name] = {"psnr": float(psnr(recon, real).mean()), "ssim": float(ssim(recon, real).mean()),
                       "rfid": frechet_distance(judge.features(recon), judge.features(real)),
                       "sharpness": sharpness(recon, real)}
    return table


# ----- pictures and the report -----
def grids_picture(trained: dict[str, dict[str, Any]], guidance: float, steps: int, pixel_steps: int, path: Path) -> Path:
    """One 10×10 grid per family (class per column for the conditional ones), side by side, labelled."""
    labels = torch.arange(100) % 10
    pictures, names = [], []
    for title, run_dir, options in [("VAE", trained["VAE"]["run"], {}), ("cGAN", trained["cGAN"]["run"], {}),
                                    (f"latent diffusion (DDIM {steps}, w={guidance:g})", trained["latent diffusion"]["run"],
                                     {"steps": steps, "guidance": guidance}),
                                    (f"pixel diffusion (DDIM {pixel_steps}, w={guidance:g})", trained["pixel diffusion"]["run"],
                                     {"steps": pixel_steps, "guidance": guidance})]:
        model = genlab.load(run_dir)
        pictures.append(sampler(model, options)(100, seed=3, labels=labels))
        names.append(title)
    return save_image(concat_images(pictures, labels=names), path, scale=2)


def losses_picture(curve: list[dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [p["seconds"] for p in curve]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(seconds, [p["G/loss"] for p in curve], marker="o", label="G loss")
    left.plot(seconds, [p["D/loss"] for p in curve], marker="o", label="D loss")
    left.set(xlabel="training seconds", ylabel="mean loss since the previous point", title="the contest's losses")
    left.legend()
    right.plot(seconds, [p["fid"] for p in curve], marker="o", color="C3")
    right.set(xlabel="training seconds", ylabel="judge-FID of 1,000 EMA samples ↓", title="what the samples are worth")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's r (math.nan when either side is constant or fewer than 3 points)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return math.nan
    try:
        return statistics.correlation([x for x, _ in pairs], [y for _, y in pairs])
    except statistics.StatisticsError:
        return math.nan


def _cell(value: Any, spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


COLUMNS = [("fid", "judge-FID ↓", ".1f"), ("kid", "KID ↓", ".1f"), ("precision", "precision ↑", ".3f"),
           ("recall", "recall ↑", ".3f"), ("coverage", "coverage ↑", ".3f"), ("label_accuracy", "label acc. ↑", ".3f"),
           ("sharpness", "sharpness", ".2f"), ("elbo_nats", "ELBO (nats) ↑", ".1f"),
           ("smoothness_evenness", "path evenness ↓", ".3f"), ("latency_ms_b1", "ms/image, batch 1", ".2f"),
           ("images_per_s_b64", "images/s, batch 64", ".0f"), ("train_seconds", "train s", ".0f"), ("steps", "steps", "d")]


def markdown(results: dict[str, Any]) -> str:
    args, rows = results["settings"], results["rows"]
    lines = [f"# Which model for which goal: four families on {args['data']}, {args['budget']:.0f} s of training each", "",
             "![10×10 samples of each family: VAE, conditional GAN, latent diffusion, pixel diffusion]"
             "(../../docs/images/families.png)", "",
             "| model | " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(key), spec) for key, _, spec in COLUMNS) + " |")
    lines += ["", f"FID, KID (×1000 as genlab reports it), precision/recall/coverage: {args['num_samples']} samples against as "
              "many test images in the shipped judge's features; label accuracy: the judge's class of each sample against "
              "the class asked for; sharpness: Laplacian energy ÷ the real images'; ms/image and images/s: warm medians, one thread"
              + (f" (measured again on {results['latency_measured']['date'][:10]}, `--latency-only`, on a quiet machine)"
                 if results.get("latency_measured") else "") + ". "
              f"Diffusion rows: DDIM with η = 0 (pixel diffusion at {args['pixel_steps']} steps only: each of its "
              "steps costs ~27× a latent one); w = 0 is the plain conditional model, w > 0 classifier-free guidance "
              "(Ho & Salimans 2022). Steps and training seconds of latent diffusion are its second stage's; its first stage "
              "took the rest of the budget (below).", ""]
    targets = results["targets"]
    lines += ["## Targets", "", *[f"- {text}: **{'met' if ok else 'not met'}**" for text, ok in targets], ""]
    lines += ["## The first stage (the columns of Rombach et al. 2022, Table 8)", "",
              "| autoencoder | PSNR (dB) ↑ | SSIM ↑ | judge-FID of reconstructions ↓ | sharpness of reconstructions |",
              "|---|---:|---:|---:|---:|"]
    for name, row in results["first_stage"].items():
        lines.append(f"| {name} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['rfid']:.2f} | {row['sharpness']:.2f} |")
    lines += ["", "The paper's KL f = 4 first stage on ImageNet: rFID 0.27, PSNR 27.5 (Inception features; other data, "
              "same columns).", "", "## The lessons' claims as experiments", ""]
    claims = results["claims"]
    lines += [f"- **GAN losses are not quality measures.** Over the cGAN run (picture below), Pearson's r between judge-FID "
              f"and G's loss is {claims['r_fid_g_loss']:+.2f}, and between judge-FID and D's loss {claims['r_fid_d_loss']:+.2f}, "
              f"while FID went from {claims['fid_first']:.1f} to {claims['fid_last']:.1f}.",
              f"- **D outputs 0.5 at equilibrium.** Over the last third of the run D(x) averaged {claims['d_real_late']:.3f} "
              f"and D(G(z)) {claims['d_fake_late']:.3f} (first third: {claims['d_real_early']:.3f} and {claims['d_fake_early']:.3f}).",
              "- **VAE outputs are blurry.** Sharpness ÷ real: " + ", ".join(f"{k} {v:.2f}" for k, v in claims["sharpness"].items())
              + ".", "", "![G and D losses beside judge-FID over the cGAN run](../../docs/images/families_gan_losses.png)", "",
              "The cGAN run, point by point (losses and D's outputs: means since the previous point):", "",
              "| training s | steps | judge-FID ↓ | G loss | D loss | D(x) | D(G(z)) |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {p['seconds']:.0f} | {p['step']} | {p['fid']:.1f} | {p['G/loss']:.3f} | {p['D/loss']:.3f} | "
              f"{p['D/real_prob']:.3f} | {p['D/fake_prob']:.3f} |" for p in results["trained"]["cGAN"]["curve"]]
    return "\n".join(lines)


def claims_of(trained: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]], first: dict[str, dict[str, float]],
              guidance: float, steps: int, pixel_steps: int) -> dict[str, Any]:
    curve = trained["cGAN"]["curve"]
    third = max(1, len(curve) // 3)
    mean = lambda points, key: statistics.mean(p[key] for p in points)  # noqa: E731
    vae_recon = next(row["sharpness"] for name, row in first.items() if name.startswith("VAE"))
    return {"r_fid_g_loss": correlation([p["fid"] for p in curve], [p["G/loss"] for p in curve]),
            "r_fid_d_loss": correlation([p["fid"] for p in curve], [p["D/loss"] for p in curve]),
            "fid_first": curve[0]["fid"], "fid_last": curve[-1]["fid"],
            "d_real_early": mean(curve[:third], "D/real_prob"), "d_fake_early": mean(curve[:third], "D/fake_prob"),
            "d_real_late": mean(curve[-third:], "D/real_prob"), "d_fake_late": mean(curve[-third:], "D/fake_prob"),
            "sharpness": {"real": 1.0, "VAE samples": rows["VAE (prior samples)"]["sharpness"], "VAE reconstructions": vae_recon,
                          "cGAN samples": rows["cGAN"]["sharpness"],
                          "latent diffusion samples": rows[f"latent diffusion, DDIM {steps}, w = {guidance:g}"]["sharpness"],
                          "pixel diffusion samples": rows[f"pixel diffusion, DDIM {pixel_steps}, w = {guidance:g}"]["sharpness"]}}


def targets_of(rows: dict[str, dict[str, Any]], guidance: float, steps: int) -> list[tuple[str, bool]]:
    vae, ldm = rows["VAE (prior samples)"], min((row for name, row in rows.items() if name.startswith("latent")),
                                                key=lambda row: row["fid"])
    ddim50 = rows[f"latent diffusion, DDIM {steps}, w = {guidance:g}"]
    one_pass = min(vae["latency_ms_b1"], rows["cGAN"]["latency_ms_b1"])
    slower = max(vae["latency_ms_b1"], rows["cGAN"]["latency_ms_b1"])
    return [(f"latent diffusion's best judge-FID ({ldm['fid']:.1f}) at most half the VAE's ({vae['fid']:.1f})",
             ldm["fid"] <= vae["fid"] / 2),
            (f"the VAE decoder and the GAN generator at least 50× faster per image than {steps}-step DDIM at batch 1 "
             f"({ddim50['latency_ms_b1'] / slower:.0f}× to {ddim50['latency_ms_b1'] / one_pass:.0f}×)",
             ddim50["latency_ms_b1"] >= 50 * slower)]


def remeasure_latency(args: argparse.Namespace, trained: dict[str, dict[str, Any]], machine: dict[str, Any]) -> None:
    """--latency-only: every row's latency again, into the results file of the earlier run (its other numbers kept)."""
    path = harness.RESULTS_DIR / f"{args.name}.json"
    results = json.loads(path.read_text())["results"]
    saved = argparse.Namespace(**results["settings"])
    plan = rows_of(saved.guidance, saved.ddim_steps, saved.pixel_steps)
    timed = in_processes(latency_row, [(name, trained[family]["run"], options) for name, family, options in plan], args.parallel)
    for item in timed:
        results["rows"][item["name"]].update({key: item[key] for key in ("latency_ms_b1", "images_per_s_b64")})
    results["targets"] = targets_of(results["rows"], saved.guidance, middle(saved.ddim_steps))
    results["latency_measured"] = {"date": machine["date"], "load_average_at_start": machine["load_average_at_start"],
                                   "command": harness.command_line()}
    text = markdown(results)
    harness.write_results(args.name, results, text, machine=machine)
    print(text)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = harness.machine_info()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="genlab-families-"))
    trained_file = work / "trained.json"
    if args.latency_only:
        remeasure_latency(args, json.loads(trained_file.read_text()), machine)
        return
    if args.score_only:
        trained = json.loads(trained_file.read_text())
    else:
        trained = {t["name"]: t for t in in_processes(train_family, [(name, args, str(work)) for name in FAMILIES],
                                                       args.parallel)}
        trained_file.write_text(json.dumps(trained))
    print("trained: " + ", ".join(f"{name} {t['steps']} steps in {t['train_seconds']:.0f} s" for name, t in trained.items()),
          flush=True)
    plan = rows_of(args.guidance, args.ddim_steps, args.pixel_steps)
    scored = in_processes(score_row, [(name, trained[family]["run"], options, args) for name, family, options in plan],
                          args.parallel)
    rows = {name: {**item["row"], "steps": trained[family]["steps"], "train_seconds": trained[family]["train_seconds"]}
            for (name, family, _), item in zip(plan, scored, strict=True)}
    first = first_stage_table(trained, args)
    directory = work if args.quick else harness.REPOSITORY / "docs" / "images"
    steps = middle(args.ddim_steps)
    grids_picture(trained, args.guidance, steps, args.pixel_steps, directory / f"{args.name}.png")
    losses_picture(trained["cGAN"]["curve"], directory / f"{args.name}_gan_losses.png")
    results = {"settings": vars(args), "rows": rows, "first_stage": first, "trained": trained,
               "claims": claims_of(trained, rows, first, args.guidance, steps, args.pixel_steps),
               "targets": targets_of(rows, args.guidance, steps)}
    text = markdown(results)
    json_path, md_path = harness.write_results(args.name, results, text, machine=machine,
                                               directory=work if args.quick else harness.RESULTS_DIR)
    print(text)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
