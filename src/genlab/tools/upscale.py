"""Upscale images of any size with a super-resolution model: in one pass, or in overlapping tiles.

The SR networks are fully convolutional, so a whole-image pass is exact and is the reference. Tiles
bound the memory a large image needs: the low-res image is cut into ``tile``×``tile`` pieces that
share ``overlap`` pixels with their neighbours, each piece is upscaled on its own, and the results
are blended. An output pixel depends on the low-res pixels within the net's receptive-field radius R
(:func:`receptive_radius`, 24 for the default ×4 net); near a side where another tile follows, a tile
lacks that context (zero padding instead of the neighbouring pixels), so its outer R pixels there get
weight 0 and the rest of the shared strip cross-fades linearly into the neighbour. Every pixel with a
weight was therefore computed with its full context, and the tiles equal a whole-image pass to float
precision (tests/test_sr.py), which needs ``overlap >= 2R``; tiles are refused below ``4R`` (at least
as many new pixels per tile as shared ones). Images over AUTO_TILE_PIXELS low-res pixels are tiled
by default.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from genlab.errors import ConfigError
from genlab.io.grids import save_image
from genlab.io.images import read_image

AUTO_TILE_PIXELS = 256 * 256  # low-res pixels above which tile="auto" tiles (×4: a 1024×1024 output)
AUTO_TILE = 192  # the tile "auto" uses (or the network's minimum, where that is larger)
CALL_PIXELS = 4 * 128 * 128  # low-res pixels per model call when tiling: bounds the memory of one call
BICUBIC_RADIUS = 2  # bicubic interpolation reads 4 pixels per axis: up to 2 away

Tile = int | Literal["auto"] | None


def receptive_radius(model) -> int:
    """How many low-res pixels to each side of an output pixel's own low-res pixel can change it: the
    receptive-field radius of ``model.generator``, computed exactly from its layers.

    Walks the convolutions and pixel shuffles in order (skip connections add no reach): going back from
    each of the ``scale`` output phases, a k×k convolution widens the interval by (k − 1)/2 pixels at its
    resolution and a ×u pixel shuffle maps it to the coarser grid (floor division), so fractional reaches
    at high resolution round up as they do in the network. A residual net also reads the bicubic
    upsampling of the input (2 pixels). Nets of other layers fall back to ``generator.context()``.
    """
    generator = model.generator
    layers = [m for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.PixelShuffle))]
    for layer in layers:
        if isinstance(layer, nn.Conv2d) and (layer.stride != (1, 1) or layer.kernel_size[0] != layer.kernel_size[1]
                                             or layer.padding != tuple((k - 1) // 2 * d for k, d in
                                                                       zip(layer.kernel_size, layer.dilation, strict=True))):
            return int(generator.context())
    radius = 0
    for phase in range(model.scale):
        low = high = phase
        for layer in reversed(layers):
            if isinstance(layer, nn.Conv2d):
                reach = (layer.kernel_size[0] - 1) // 2 * layer.dilation[0]
                low, high = low - reach, high + reach
            else:
                low, high = low // layer.upscale_factor, high // layer.upscale_factor
        radius = max(radius, -low, high)  # the output pixel lies in low-res pixel 0
    if getattr(generator, "residual", False):
        radius = max(radius, BICUBIC_RADIUS)
    return radius


def tile_limits(model) -> tuple[int, int]:
    """(the least overlap, the least tile) in low-res pixels for ``model``: 2R and 4R for radius R."""
    radius = receptive_radius(model)
    return 2 * radius, 4 * radius


def upscale_image(model, image: torch.Tensor, tile: Tile = "auto", overlap: int | None = None, *,
                  batch_size: int = 16, progress: bool = False) -> torch.Tensor:
    """``image`` (low-res, C×H×W or N×C×H×W, float in [0, 1] or uint8; any size) upscaled by
    ``model.scale``: float in [0, 1], same rank, on the image's device.

    ``tile=None`` upscales in one pass; ``"auto"`` (the default) does too up to AUTO_TILE_PIXELS low-res
    pixels, and above tiles by AUTO_TILE (or the net's least tile). ``tile=T`` cuts the image into T×T
    low-res tiles overlapping by ``overlap`` pixels (default and least: 2R for the net's receptive-field
    radius R, :func:`receptive_radius`; T must be at least 4R, e.g. 96 for the default ×4 net, unless it
    covers the image), upscales up to ``batch_size`` tiles at a time and blends them (see the module
    docstring): the result equals the one-pass result to float precision.
    """
    if not hasattr(model, "upscale") or not hasattr(model, "scale"):
        raise ConfigError(f"a {getattr(model, 'kind', type(model).__name__)} model cannot upscale images; "
                          "load a super-resolution run (genlab train sr)")
    batch = model.check_low_res(image)  # rank, channels, dtype → float N×C×H×W
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    n, channels, height, width = batch.shape
    least_overlap, least_tile = tile_limits(model)
    if tile == "auto":
        tile = None if height * width <= AUTO_TILE_PIXELS else max(AUTO_TILE, least_tile)
    if tile is None or (isinstance(tile, int) and not isinstance(tile, bool) and tile >= max(height, width)
                        and overlap is None):
        out = model.upscale(batch, batch_size=batch_size)  # one tile as large as the image: the one-pass result
        return out[0] if image.dim() == 3 else out
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ConfigError(f"tile must be 'auto', None or a positive number of low-res pixels, got {tile!r}")
    tiling = tile < max(height, width)
    if tiling and tile < least_tile:
        raise ConfigError(f"tile {tile} is too small for this network: its receptive field reaches "
                          f"{least_overlap // 2} low-res pixels, so neighbouring tiles must share {least_overlap} "
                          f"and a tile needs at least {least_tile} (or use no tile, or one as large as the image)")
    if overlap is None:
        overlap = least_overlap
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise ConfigError(f"overlap must be a whole number of pixels in [0, tile) = [0, {tile}), got {overlap!r}")
    if tiling and overlap < least_overlap:
        raise ConfigError(f"overlap {overlap} is too small for this network: its receptive field reaches "
                          f"{least_overlap // 2} low-res pixels, so neighbouring tiles must share at least {least_overlap}")

    scale, margin = model.scale, least_overlap // 2
    tile_h, tile_w = min(tile, height), min(tile, width)
    boxes = [(top, left) for top in tile_starts(height, tile_h, overlap) for left in tile_starts(width, tile_w, overlap)]
    out = batch.new_zeros(n, channels, height * scale, width * scale)
    weight_sum = batch.new_zeros(height * scale, width * scale)
    per_call = max(1, min(batch_size, CALL_PIXELS // (tile_h * tile_w)) // max(n, 1))  # tile positions per model call
    for first in tqdm(range(0, len(boxes), per_call), disable=not progress, unit="call", desc="upscaling tiles"):
        chunk = boxes[first:first + per_call]
        pieces = torch.cat([batch[:, :, top:top + tile_h, left:left + tile_w] for top, left in chunk])
        upscaled = model.upscale(pieces, batch_size=batch_size).view(len(chunk), n, channels, tile_h * scale, tile_w * scale)
        for (top, left), piece in zip(chunk, upscaled, strict=True):
            weight = (feather(tile_h, top, height, overlap, scale, batch, margin)[:, None]
                      * feather(tile_w, left, width, overlap, scale, batch, margin)[None, :])
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


def feather(length: int, start: int, size: int, overlap: int, scale: int, like: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """Blending weights along one side of a tile, at high resolution. At each side where another tile
    follows or precedes: 0 over the ``margin`` low-res pixels next to the tile's edge (which lack context),
    then a linear ramp over the next ``overlap − 2·margin`` (none: a cut), 1 beyond; where the tile touches
    the image border, 1. The ramp is (k + ½) / ramp_width, so two tiles that overlap by exactly ``overlap``
    get complementary weights that sum to 1 at every pixel."""
    weight = like.new_ones(length * scale)
    if overlap == 0:
        return weight
    ramp = (overlap - 2 * margin) * scale
    position = torch.arange(length * scale, device=like.device, dtype=like.dtype)
    # overlap = 2·margin (no ramp): a hard cut in the middle of the shared strip
    rising = (((position - margin * scale + 0.5) / ramp).clamp(0.0, 1.0) if ramp > 0
              else (position >= margin * scale).to(like.dtype))
    if start > 0:  # a tile before this one
        weight = torch.minimum(weight, rising)
    if start + length < size:  # a tile after this one
        weight = torch.minimum(weight, rising.flip(0))
    return weight


def upscale_file(model, source: str | os.PathLike, destination: str | os.PathLike, tile: Tile = "auto",
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


__all__ = ["AUTO_TILE", "AUTO_TILE_PIXELS", "feather", "receptive_radius", "tile_limits", "tile_starts", "upscale_file",
           "upscale_image"]
