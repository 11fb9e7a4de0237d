"""Pictures of a trained model: sample grids, reconstructions and morphs (PNG strips and GIFs).

Shared by the CLI and the demo so that every picture genlab writes is made one way.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch

from genlab.errors import ConfigError
from genlab.images import make_grid, save_gif, save_image
from genlab.latent import interpolation_path
from genlab.models.base import GenerativeModel


def write_sample_picture(samples: torch.Tensor, path_stem: str | os.PathLike, dataset_name: str = "",
                         nrow: int | None = None) -> Path:
    """``path_stem``.png: a grid for images (``nrow`` per row), or for 2-D points a scatter plot over
    the dataset's mode centres when it is one of the toy mixtures."""
    if samples.dim() == 2:
        from genlab.report import plot_points

        centers = None
        try:
            from genlab.data.toys import TOYS, mode_centers

            centers = mode_centers(dataset_name) if dataset_name in TOYS else None
        except ImportError:
            pass
        return plot_points(samples.cpu(), f"{path_stem}.png", centers=centers)
    return save_image(samples, f"{path_stem}.png", nrow=nrow, scale=2)


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


@torch.no_grad()
def morph(model: GenerativeModel, image_from: torch.Tensor, image_to: torch.Tensor, steps: int = 10,
          method: Literal["lerp", "slerp"] = "slerp", *, encoder: GenerativeModel | None = None,
          projection_steps: int | None = None, progress: bool = False) -> torch.Tensor:
    """Decode a path between the codes of two images: ``steps`` frames, endpoints included.

    A VAE encodes both images (posterior means); a GAN finds their codes by inversion
    (``genlab.inversion.invert``: the projector, started from ``encoder``'s guess when given; a GAN-encoder
    run brings its own), ``projection_steps`` optimisation steps (default: invert's).
    """
    from genlab.inversion import decode, invert

    if steps < 2:
        raise ConfigError(f"steps must be >= 2, got {steps}")
    if not hasattr(model, "encode") and getattr(model, "kind", None) != "gan":
        raise ConfigError(f"a {model.kind} model has no encoder and cannot be inverted; morphing between images needs one")
    with torch.enable_grad():  # the projector optimises codes
        codes = invert(model, torch.stack([image_from, image_to]), encoder=encoder, steps=projection_steps,
                       progress=progress)
    was_training = model.training
    model.eval()
    try:
        return decode(model, interpolation_path(codes[0], codes[1], steps, method=method))
    finally:
        model.train(was_training)


def write_morph(frames: torch.Tensor, png: str | os.PathLike | None, gif: str | os.PathLike | None = None,
                scale: int = 3) -> list[Path]:
    """A one-row PNG strip and/or a looping GIF of ``frames``."""
    written = []
    if png is not None:
        written.append(save_image(make_grid(frames.cpu(), nrow=len(frames)), png, scale=scale))
    if gif is not None:
        written.append(save_gif(list(frames.cpu()), gif, duration_ms=100, boomerang=True, scale=scale))
    return written
