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

Deep nets (ESRGAN's RRDB: 15 convs a block) reach far on paper while their influence dies off within a
few pixels, so exactness can cost more than it is worth: ``exact=False`` accepts any tile and overlap,
drops each tile's outer ``overlap // 4`` pixels where a neighbour follows and cross-fades the rest; the
seams then differ from a one-pass result by a small amount (tests/test_sr_photos.py states the bound).

Files: any size and aspect ratio, 1 or 3 channels; an alpha channel is upscaled bicubically beside the
colour (or dropped with a note where the output format has none, or when asked).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn
from tqdm.auto import tqdm

from genlab.errors import ConfigError, DataError
from genlab.io.files import atomic_write
from genlab.io.grids import save_image
from genlab.io.images import MAX_IMAGE_PIXELS, read_image
from genlab.models.sr.nets import upsample_bicubic

AUTO_TILE_PIXELS = 256 * 256  # low-res pixels above which tile="auto" tiles (×4: a 1024×1024 output)
AUTO_TILE = 192  # the tile "auto" uses (or the network's minimum, where that is larger)
CALL_PIXELS = 4 * 128 * 128  # low-res pixels per model call when tiling: bounds the memory of one call
BICUBIC_RADIUS = 2  # bicubic interpolation reads 4 pixels per axis: up to 2 away

Tile = int | Literal["auto"] | None


def receptive_radius(model) -> int:
    """How many low-res pixels to each side of an output pixel's own low-res pixel can change it: the
    receptive-field radius of ``model.generator``, computed exactly from its layers.

    Walks the convolutions, pixel shuffles and nearest-neighbour upsamplings in order (skip connections add no reach): going back from
    each of the ``scale`` output phases, a k×k convolution widens the interval by (k − 1)/2 pixels at its
    resolution and a ×u pixel shuffle maps it to the coarser grid (floor division), so fractional reaches
    at high resolution round up as they do in the network. A residual net also reads the bicubic
    upsampling of the input (2 pixels). Nets of other layers fall back to ``generator.context()``.
    """
    generator = model.generator
    layers = [m for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.PixelShuffle, nn.Upsample))]
    for layer in layers:
        if isinstance(layer, nn.Upsample) and (layer.mode != "nearest" or _upsample_factor(layer) is None):
            return int(generator.context())
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
            else:  # a pixel shuffle or nearest-neighbour ×u: high-res pixel i comes from coarse pixel i // u
                factor = layer.upscale_factor if isinstance(layer, nn.PixelShuffle) else _upsample_factor(layer)
                low, high = low // factor, high // factor
        radius = max(radius, -low, high)  # the output pixel lies in low-res pixel 0
    if getattr(generator, "residual", False):
        radius = max(radius, BICUBIC_RADIUS)
    return radius


def _upsample_factor(layer: nn.Upsample) -> int | None:
    """The whole factor of an ``nn.Upsample`` by ``scale_factor`` (the same on both axes), else None."""
    factor = layer.scale_factor
    if isinstance(factor, tuple):
        factor = factor[0] if len(set(factor)) == 1 else None
    return int(factor) if factor is not None and float(factor).is_integer() and factor >= 1 else None


def tile_limits(model) -> tuple[int, int]:
    """(the least overlap, the least tile) in low-res pixels for ``model``: 2R and 4R for radius R."""
    radius = receptive_radius(model)
    return 2 * radius, 4 * radius


def upscale_image(model, image: torch.Tensor, tile: Tile = "auto", overlap: int | None = None, *,
                  batch_size: int = 16, progress: bool = False, exact: bool = True) -> torch.Tensor:
    """``image`` (low-res, C×H×W or N×C×H×W, float in [0, 1] or uint8; any size) upscaled by
    ``model.scale``: float in [0, 1], same rank, on the image's device.

    ``tile=None`` upscales in one pass; ``"auto"`` (the default) does too up to AUTO_TILE_PIXELS low-res
    pixels, and above tiles by AUTO_TILE (or the net's least tile). ``tile=T`` cuts the image into T×T
    low-res tiles overlapping by ``overlap`` pixels (default and least: 2R for the net's receptive-field
    radius R, :func:`receptive_radius`; T must be at least 4R, e.g. 96 for the default ×4 net, unless it
    covers the image), upscales up to ``batch_size`` tiles at a time and blends them (see the module
    docstring): the result equals the one-pass result to float precision. ``exact=False`` lifts the two
    lower bounds (see the module docstring) for a result close to, not equal to, one pass.
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
    approximate = " (or accept small differences at the seams: exact=False, --approximate)"
    if tiling and tile < least_tile and exact:
        raise ConfigError(f"tile {tile} is too small for this network: its receptive field reaches "
                          f"{least_overlap // 2} low-res pixels, so neighbouring tiles must share {least_overlap} "
                          f"and a tile needs at least {least_tile} (or use no tile, or one as large as the image){approximate}")
    if overlap is None:
        overlap = least_overlap if exact else min(least_overlap, tile // 2)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise ConfigError(f"overlap must be a whole number of pixels in [0, tile) = [0, {tile}), got {overlap!r}")
    if tiling and overlap < least_overlap and exact:
        raise ConfigError(f"overlap {overlap} is too small for this network: its receptive field reaches "
                          f"{least_overlap // 2} low-res pixels, so neighbouring tiles must share at least {least_overlap}"
                          + approximate)

    scale = model.scale
    margin = least_overlap // 2 if overlap >= least_overlap else overlap // 4
    tile_h, tile_w = min(tile, height), min(tile, width)
    boxes = [(top, left) for top in tile_starts(height, tile_h, overlap) for left in tile_starts(width, tile_w, overlap)]
    out = batch.new_zeros(n, channels, height * scale, width * scale)
    weight_sum = batch.new_zeros(height * scale, width * scale)
    per_call = max(1, min(batch_size, CALL_PIXELS // (tile_h * tile_w)) // max(n, 1))  # tile positions per model call
    bar = tqdm(total=len(boxes), disable=not progress, unit="tile", desc="upscaling tiles")
    for first in range(0, len(boxes), per_call):
        chunk = boxes[first:first + per_call]
        pieces = torch.cat([batch[:, :, top:top + tile_h, left:left + tile_w] for top, left in chunk])
        upscaled = model.upscale(pieces, batch_size=batch_size).view(len(chunk), n, channels, tile_h * scale, tile_w * scale)
        for (top, left), piece in zip(chunk, upscaled, strict=True):
            weight = (feather(tile_h, top, height, overlap, scale, batch, margin)[:, None]
                      * feather(tile_w, left, width, overlap, scale, batch, margin)[None, :])
            rows, cols = slice(top * scale, (top + tile_h) * scale), slice(left * scale, (left + tile_w) * scale)
            out[:, :, rows, cols] += piece * weight
            weight_sum[rows, cols] += weight
        bar.update(len(chunk))
    bar.close()
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
                 overlap: int | None = None, *, progress: bool = False, exact: bool = True, alpha: float | None = None,
                 keep_alpha: bool = True) -> tuple[Path, tuple[int, int], tuple[int, int], str]:
    """Read an image file (any size and aspect ratio), upscale it with ``model`` (see :func:`upscale_image`)
    and write the result.

    A grayscale file given to an RGB model (or the reverse) is converted first (luma / repetition). A
    transparency channel is upscaled bicubically and written back (``keep_alpha``), or dropped where the
    output format holds none (JPEG, BMP) or when ``keep_alpha=False``. ``alpha`` (esrgan runs): network
    interpolation with the PSNR-oriented net (``model.interpolated``). The returned note says what was
    converted or dropped. Returns (path written, (h, w) read, (H, W) written, note).
    """
    if not hasattr(model, "upscale") or not hasattr(model, "scale"):
        raise ConfigError(f"a {getattr(model, 'kind', type(model).__name__)} model cannot upscale images; "
                          "load a super-resolution run (genlab train sr)")
    if alpha is not None:
        model = model.interpolated(alpha)
    channels = model.config.image_shape[0]
    native = read_image(source)  # every check: exists, is an image, within the pixel bound
    height, width = native.shape[1:]
    if height * width * model.scale ** 2 > MAX_IMAGE_PIXELS:
        raise ConfigError(f"{source}: {height}×{width} upscaled ×{model.scale} would be {height * model.scale}×"
                          f"{width * model.scale} = {height * width * model.scale ** 2:,} pixels, more than genlab's bound of "
                          f"{MAX_IMAGE_PIXELS:,} per image; upscale it in parts")
    notes = []
    colour, transparency = _colour_and_alpha(source, native)
    if colour.shape[0] != channels:
        notes.append(f"{source} has {colour.shape[0]} channel(s); converted to {'grayscale' if channels == 1 else 'RGB'} "
                     f"for this {channels}-channel model")
        colour = read_image(source, channels=channels) if transparency is None else _convert(colour, channels)
    upscaled = upscale_image(model, colour, tile, overlap, progress=progress, exact=exact)
    fmt = Image.registered_extensions().get(Path(destination).suffix.lower())
    if transparency is not None and keep_alpha and fmt not in ("PNG", "WEBP", "TIFF", "GIF"):
        notes.append(f"{Path(destination).suffix or 'this'} files hold no transparency: the alpha channel was dropped "
                     "(write a .png to keep it)")
        keep_alpha = False
    elif transparency is not None and not keep_alpha:
        notes.append("the alpha channel was dropped, as asked")
    if transparency is not None and keep_alpha:
        big_alpha = upsample_bicubic(transparency[None, None].float() / 255.0, model.scale)[0, 0].clamp(0.0, 1.0)
        path = _save_with_alpha(upscaled, big_alpha, destination, fmt)
    else:
        path = save_image(upscaled, destination)
    return path, (height, width), tuple(upscaled.shape[1:]), "; ".join(notes)


def _colour_and_alpha(source: str | os.PathLike, native: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The file's colour (uint8 C×H×W, not multiplied by alpha) and its alpha (uint8 H×W), or ``native`` and
    None for a file without transparency (or whose alpha is opaque everywhere). ``native`` has passed
    ``read_image``'s checks, so the file opens."""
    try:
        with Image.open(source) as opened:
            image = ImageOps.exif_transpose(opened)
            if "A" not in image.getbands() and "transparency" not in image.info:
                return native, None
            image = image.convert("LA" if native.shape[0] == 1 else "RGBA")
    except (OSError, ValueError) as error:
        raise DataError(f"{source}: cannot read its alpha channel ({str(error).splitlines()[0] if str(error) else error})") from None
    array = np.asarray(image, dtype=np.uint8)
    if array[..., -1].min() == 255:
        return native, None
    planes = torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
    return planes[:-1], planes[-1]


def _convert(colour: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 C×H×W to 1 (ITU-R 601 luma, as PIL) or 3 (repeated gray) channels."""
    if channels == 3:
        return colour.expand(3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (colour.float() * weights).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def _save_with_alpha(colour: torch.Tensor, transparency: torch.Tensor, destination: str | os.PathLike, fmt: str) -> Path:
    """Write float colour C×H×W and alpha H×W in [0, 1] as an LA/RGBA file, atomically."""
    planes = torch.cat([colour, transparency[None]]).mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    array = planes.permute(1, 2, 0).cpu().numpy()
    picture = Image.fromarray(array, mode="LA" if colour.shape[0] == 1 else "RGBA")
    path = Path(destination)
    with atomic_write(path) as stream:
        picture.save(stream, format=fmt)
    return path


__all__ = ["AUTO_TILE", "AUTO_TILE_PIXELS", "feather", "receptive_radius", "tile_limits", "tile_starts", "upscale_file",
           "upscale_image"]
