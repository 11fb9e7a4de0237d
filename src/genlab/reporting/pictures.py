"""Pictures of a trained model: sample grids, reconstructions and morphs (PNG strips and GIFs).

Shared by the CLI and the demo so that every picture genlab writes is made one way.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from genlab.errors import ConfigError
from genlab.io.images import make_grid, save_gif, save_image
from genlab.models.base import GenerativeModel
from genlab.training.monitor import write_sample_picture


def write_samples(model: GenerativeModel, path: str | os.PathLike, n: int = 64, seed: int | None = 0, scale: int = 2,
                  **options) -> Path:
    """A grid of ``n`` samples (a scatter plot for point data); ``options`` go to ``model.sample``
    (e.g. a GAN's ``labels`` and ``truncation``)."""
    import inspect

    accepted = inspect.signature(model.sample).parameters
    unknown = [name for name in options if name not in accepted]
    if unknown:
        raise ConfigError(f"a {model.kind} model does not take {', '.join(unknown)} when sampling")
    samples = model.sample(n, seed=seed, **options)
    if samples.dim() == 2:
        return write_sample_picture(samples, Path(path).with_suffix(""))
    nrow = None if "labels" in options else model.grid_columns  # default labels: one class per column
    return save_image(samples, path, nrow=nrow, scale=scale)


@torch.no_grad()
def write_reconstructions(model: GenerativeModel, images: torch.Tensor, path: str | os.PathLike, scale: int = 2) -> Path:
    """Originals (top row of each pair) above their reconstructions, in rows of up to 8."""
    if not hasattr(model, "reconstruct"):
        raise ConfigError(f"a {model.kind} model has no encoder, so it cannot reconstruct images")
    images = images.to(model.device)
    recon = model.reconstruct(images)
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
