"""Upscale images of any size with a super-resolution model: in one pass, or in overlapping tiles.

The SR networks are fully convolutional, so a whole-image pass is exact and is the reference. Tiles
bound the memory a large image needs: the low-res image is cut into ``tile``×``tile`` pieces that
share ``overlap`` pixels with their neighbours, each piece is upscaled on its own, and the results
are blended with linear ("feathered") weights that cross-fade from one tile to the next over the
middle half of each shared strip, so no seam shows. Near its own border a tile lacks the context a
whole-image pass has (zero padding instead of neighbouring pixels), so the outer quarter of each
strip is taken from the neighbour alone. With an overlap of the net's receptive-field radius
(``model.generator.context()`` low-res pixels, the default) the tiles agree with a whole-image pass
to within a few grey levels (measured in tests/test_sr.py and benchmarks/super_resolution.py).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genlab.errors import ConfigError
from genlab.io.grids import save_image
from genlab.io.images import read_image


def upscale_image(model, image: torch.Tensor, tile: int | None = None, overlap: int | None = None, *,
                  batch_size: int = 16, progress: bool = False) -> torch.Tensor:
    """``image`` (low-res, C×H×W or N×C×H×W, float in [0, 1] or uint8; any size) upscaled by
    ``model.scale``: float in [0, 1], same rank, on the image's device.

    ``tile=None`` upscales in one pass. ``tile=T`` cuts the image into T×T low-res tiles overlapping
    by ``overlap`` pixels (default: the net's receptive-field radius ``model.generator.context()``,
    at most T // 2; so choose T of at least twice that, 48 for the default ×4 net), upscales
    ``batch_size`` tiles at a time and blends them (see the module docstring). Tiles are clipped to
    the image, so a tile at least as large as the image is exactly the one-pass result.
    """
    if not hasattr(model, "upscale") or not hasattr(model, "scale"):
        raise ConfigError(f"a {getattr(model, 'kind', type(model).__name__)} model cannot upscale images; "
                          "load a super-resolution run (genlab train sr)")
    batch = model.check_low_res(image)  # rank, channels, dtype → float N×C×H×W
    if tile is None:
        out = model.upscale(batch, batch_size=batch_size)
        return out[0] if image.dim() == 3 else out
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ConfigError(f"tile must be a positive number of low-res pixels, got {tile!r}")
    if overlap is None:
        overlap = min(model.generator.context(), tile // 2)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise ConfigError(f"overlap must be a whole number of pixels in [0, tile) = [0, {tile}), got {overlap!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")

    n, channels, height, width = batch.shape
    scale = model.scale
    tile_h, tile_w = min(tile, height), min(tile, width)
    boxes = [(top, left) for top in tile_starts(height, tile_h, overlap) for left in tile_starts(width, tile_w, overlap)]
    out = batch.new_zeros(n, channels, height * scale, width * scale)
    weight_sum = batch.new_zeros(height * scale, width * scale)
    per_call = max(1, batch_size // max(n, 1))  # tile positions per model call
    for first in tqdm(range(0, len(boxes), per_call), disable=not progress, unit="call", desc="upscaling tiles"):
        chunk = boxes[first:first + per_call]
        pieces = torch.cat([batch[:, :, top:top + tile_h, left:left + tile_w] for top, left in chunk])
        upscaled = model.upscale(pieces, batch_size=batch_size).view(len(chunk), n, channels, tile_h * scale, tile_w * scale)
        for (top, left), piece in zip(chunk, upscaled, strict=True):
            weight = (feather(tile_h, top, height, overlap, scale, batch)[:, None]
                      * feather(tile_w, left, width, overlap, scale, batch)[None, :])
            rows, cols = slice(top * scale, (top + tile_h) * scale), slice(left * scale, (left + tile_w) * scale)
            out[:, :, rows, cols] += piece * weight
            weight_sum[rows, cols] += weight
    out = (out / weight_sum).clamp_(0.0, 1.0)
    return out[0] if image.dim() == 3 else out


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of ``tile`` pixels start along a side of ``size`` pixels, ``tile − overlap`` apart,
    the last one flush with the far border (it may overlap its neighbour by more than ``overlap``)."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    return [*range(0, size - tile, stride), size - tile]


def feather(length: int, start: int, size: int, overlap: int, scale: int, like: torch.Tensor) -> torch.Tensor:
    """Blending weights along one side of a tile, at high resolution. Across the ``overlap`` strip at
    each side where another tile follows or precedes: 0 over the strip's outer quarter (the tile's own
    edge, which lacks context), a linear ramp over its middle half, 1 beyond; elsewhere (inside, and
    where the tile touches the image border) 1. The ramp is (k + ½) / ramp_width, so two tiles that
    overlap by exactly ``overlap`` get complementary weights that sum to 1 at every pixel."""
    weight = like.new_ones(length * scale)
    strip = overlap * scale
    if strip == 0:
        return weight
    margin = strip // 4
    ramp = strip - 2 * margin
    position = torch.arange(length * scale, device=like.device, dtype=like.dtype)
    rising = ((position - margin + 0.5) / ramp).clamp(0.0, 1.0)
    if start > 0:  # a tile before this one
        weight = torch.minimum(weight, rising)
    if start + length < size:  # a tile after this one
        weight = torch.minimum(weight, rising.flip(0))
    return weight


def upscale_file(model, source: str | os.PathLike, destination: str | os.PathLike, tile: int | None = None,
                 overlap: int | None = None, *, progress: bool = False) -> tuple[Path, tuple[int, int], tuple[int, int], str]:
    """Read an image file, upscale it with ``model`` (see :func:`upscale_image`) and write the result.

    A grayscale file given to an RGB model (or the reverse) is converted first (luma / repetition) and
    the returned note says so. Returns (path written, (h, w) read, (H, W) written, note).
    """
    channels = model.config.image_shape[0]
    native = read_image(source)
    note = ""
    if native.shape[0] != channels:
        note = (f"{source} has {native.shape[0]} channel(s); converted to {'grayscale' if channels == 1 else 'RGB'} "
                f"for this {channels}-channel model")
        native = read_image(source, channels=channels)
    upscaled = upscale_image(model, native, tile, overlap, progress=progress)
    path = save_image(upscaled, destination)
    return path, tuple(native.shape[1:]), tuple(upscaled.shape[1:]), note


__all__ = ["feather", "tile_starts", "upscale_file", "upscale_image"]
