"""Pictures of trained models: sample grids, reconstructions and morphs (PNG strips and GIFs), and
the comparison report's pictures (per run, and the bar chart of headline metrics).

Shared by the CLI, the demo and ``compare`` so that every picture genlab writes is made one way.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import os
from pathlib import Path
from typing import Any

import torch

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.io.grids import make_grid, save_gif, save_image
from genlab.io.plots import _pyplot, _save_figure, plot_metrics, read_metrics_csv
from genlab.models.base import GenerativeModel
from genlab.reporting.stability import GAN_PROBABILITIES
from genlab.tools.editing import num_classes
from genlab.tools.latent import interpolation_path
from genlab.training.monitor import write_sample_picture

# One picture holds at most this many images: 10,000 28×28 tiles at scale 2 are already 6,000×6,000 pixels.
MAX_PICTURE_IMAGES = 10_000
# Samples and reconstructions are made this many at a time, so memory does not grow with n.
IMAGE_BATCH = 1_000


def check_picture_count(n: object, what: str) -> int:
    """``n`` images for one picture: an int in 1..MAX_PICTURE_IMAGES, or a ConfigError naming ``what``."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PICTURE_IMAGES:
        raise ConfigError(f"{what}: expected 1..{MAX_PICTURE_IMAGES:,} images for one picture, got {n!r}")
    return n


def sample_in_batches(model: GenerativeModel, n: int, seed: int | None = 0, batch_size: int = IMAGE_BATCH,
                      **options: Any) -> torch.Tensor:
    """``model.sample(n, seed=seed, **options)`` made at most ``batch_size`` at a time, on the CPU.

    Up to ``batch_size`` samples it is exactly that one call. Beyond, the first batch uses ``seed`` and the
    others seeds drawn from it (the same seed still gives the same samples); ``labels`` are split over the
    batches, and a conditional model without them draws classes 0, 1, …, K−1, 0, … as one call would.
    """
    if n <= batch_size:
        return model.sample(n, seed=seed, **options).cpu()
    labels = options.pop("labels", None)
    classes = num_classes(model)
    if labels is None and classes:
        labels = torch.arange(n) % classes
    starts = range(0, n, batch_size)
    seeds: list[int | None] = [None] * len(starts)
    if seed is not None:
        seeds = [seed, *torch.randint(0, 2**62, (len(starts) - 1,), generator=torch.Generator().manual_seed(seed)).tolist()]
    parts = []
    for start, batch_seed in zip(starts, seeds, strict=True):
        stop = min(start + batch_size, n)
        extra = {} if labels is None else {"labels": labels[start:stop]}
        parts.append(model.sample(stop - start, seed=batch_seed, **options, **extra).cpu())
    return torch.cat(parts)


def write_samples(model: GenerativeModel, path: str | os.PathLike, n: int = 64, seed: int | None = 0, scale: int = 2,
                  **options) -> Path:
    """A grid of ``n`` samples (a scatter plot for point data), 1..MAX_PICTURE_IMAGES of them, made
    IMAGE_BATCH at a time (see ``sample_in_batches``); ``options`` go to ``model.sample`` (e.g. a GAN's
    ``labels`` and ``truncation``)."""
    check_picture_count(n, "samples")
    accepted = inspect.signature(model.sample).parameters
    unknown = [name for name in options if name not in accepted]
    if unknown:
        raise ConfigError(f"a {model.kind} model does not take {', '.join(unknown)} when sampling")
    samples = sample_in_batches(model, n, seed, **options)
    if samples.dim() == 2:
        return write_sample_picture(samples, Path(path).with_suffix(""))
    nrow = None if "labels" in options else model.grid_columns  # default labels: one class per column
    return save_image(samples, path, nrow=nrow, scale=scale)


@torch.no_grad()
def write_reconstructions(model: GenerativeModel, images: torch.Tensor, path: str | os.PathLike, scale: int = 2) -> Path:
    """Originals (top row of each pair) above their reconstructions, in rows of up to 8; 1..MAX_PICTURE_IMAGES
    images, reconstructed IMAGE_BATCH at a time."""
    if not hasattr(model, "reconstruct"):
        raise ConfigError(f"a {model.kind} model has no encoder, so it cannot reconstruct images")
    check_picture_count(len(images), "reconstructions")
    images = images.cpu()
    recon = torch.cat([model.reconstruct(images[start:start + IMAGE_BATCH].to(model.device)).cpu()
                       for start in range(0, len(images), IMAGE_BATCH)])
    per_row = min(8, len(images))
    rows = []
    for start in range(0, len(images), per_row):
        rows += [images[start:start + per_row], recon[start:start + per_row]]
    rows = [torch.cat([r, torch.ones_like(images[: per_row - len(r)])]) if len(r) < per_row else r for r in rows]
    return save_image(torch.cat(rows), path, nrow=per_row, scale=scale)


def write_morph(frames: torch.Tensor, png: str | os.PathLike | None, gif: str | os.PathLike | None = None,
                scale: int = 3) -> list[Path]:
    """A one-row PNG strip and/or a looping GIF of ``frames``."""
    written = []
    if png is not None:
        written.append(save_image(make_grid(frames.cpu(), nrow=len(frames)), png, scale=scale))
    if gif is not None:
        written.append(save_gif(list(frames.cpu()), gif, duration_ms=100, boomerang=True, scale=scale))
    return written


@torch.no_grad()
def write_run_pictures(name: str, model: Any, dataset: Dataset, run: Path, folder: Path, seed: int) -> dict[str, str]:
    """A run's pictures for the comparison report, written to ``folder`` as NAME_*.png: a samples grid,
    an interpolation strip (4 slerp paths of 10 frames) and its training curves (from metrics.csv)."""
    stem = name.replace("/", "_")
    written = {"samples": str(save_image(model.sample(64, seed=seed), folder / f"{stem}_samples.png", scale=2))}
    paths, steps = 4, 10
    generator = torch.Generator().manual_seed(seed + 1)
    model.eval()
    if hasattr(model, "encode"):  # a VAE: between the codes of real images
        index = torch.randperm(len(dataset), generator=generator)[: 2 * paths]
        codes = model.encode(dataset.float_images(index).to(model.device)).cpu()
        frames = [model.decode(interpolation_path(codes[2 * i], codes[2 * i + 1], steps).to(model.device)).cpu()
                  for i in range(paths)]
    elif hasattr(model, "sample_with"):  # diffusion: DDIM with η = 0 from points on a slerp path between two x_T
        shape = model.diffusion_shape
        codes = torch.randn(2 * paths, math.prod(shape), generator=generator)
        frames = []
        for i in range(paths):
            labels = [i % model.config.num_classes] * steps if model.config.num_classes else None
            noise = interpolation_path(codes[2 * i], codes[2 * i + 1], steps).view(steps, *shape)
            frames.append(model.sample_with(steps, labels=labels, noise=noise, sampler="ddim", eta=0.0).cpu())
    else:  # a GAN: between random z's (a conditional one keeps one class per path)
        codes = torch.randn(2 * paths, model.config.latent_dim, generator=generator)
        frames = []
        for i in range(paths):
            labels = [i % model.config.num_classes] * steps if getattr(model.config, "num_classes", 0) else None
            frames.append(model.generate(interpolation_path(codes[2 * i], codes[2 * i + 1], steps), labels).cpu())
    strip = make_grid(torch.cat(frames).clamp(0, 1), nrow=steps)
    written["interpolation"] = str(save_image(strip, folder / f"{stem}_interpolation.png", scale=2))
    csv_path = run / "metrics.csv"
    if csv_path.is_file():
        available = read_metrics_csv(csv_path)
        columns = [c for c in available if c.endswith("/loss") or c in GAN_PROBABILITIES]
        with contextlib.suppress(DataError):  # fewer than two rows: nothing to draw
            written["training"] = str(plot_metrics(csv_path, folder / f"{stem}_training.png", columns or None,
                                                   title=f"{name}: training"))
    return written


def write_metric_bars(entries: list[dict], path: Path) -> str | None:
    """One panel per headline metric, one bar per run (``entries``: name and metrics of each run);
    None when no run has any of those metrics."""
    panels = [(key, label) for key, label in (("fid", "FID (lower is better)"), ("sharpness", "sharpness (real = 1)"),
                                              ("precision", "precision"), ("recall", "recall"),
                                              ("coverage", "coverage"), ("smoothness_evenness", "path evenness (0 = even)"))
              if any(key in e["metrics"] and math.isfinite(e["metrics"][key]) for e in entries)]
    if not panels:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    names = [e["name"] for e in entries]
    for axis, (key, label) in zip(axes.flat, panels, strict=True):
        values = [e["metrics"].get(key, math.nan) for e in entries]
        axis.bar(range(len(names)), [0 if math.isnan(v) else v for v in values], color=[f"C{i}" for i in range(len(names))])
        axis.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        axis.set_title(label, fontsize=9)
        if key == "sharpness":
            axis.axhline(1.0, color="black", linestyle="--", linewidth=1)
        axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return str(_save_figure(figure, path))
