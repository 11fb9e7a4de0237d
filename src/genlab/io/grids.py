"""Pictures made of images: grids, labelled rows and columns, and the one writer of PNG and GIF files.

Every write goes to a temporary file in the target folder and is then moved into place with
``os.replace``, so a reader never sees half a PNG or GIF.
"""
from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from genlab.errors import ConfigError
from genlab.io.files import atomic_write
from genlab.io.images import check_images, check_pad_value, to_float, to_uint8

# Labels are drawn in Pillow's bundled Aileron at this size (px). At Pillow's default 10 px its space is
# 2 px wide, no wider than the gaps inside words, so "VAE samples" read as "VAEsamples"; at 12 px it shows.
LABEL_FONT_SIZE = 12


def make_grid(
    images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0
) -> torch.Tensor:
    """Tile N×C×H×W images into one C×H'×W' float image, row by row.

    ``nrow`` is the number of images per row (default ceil(sqrt(N)), so the grid is about
    square); tile (r, c) holds image ``r * nrow + c``. ``padding`` pixels of ``pad_value``
    surround every tile, outer border included, so
    H' = rows * (H + padding) + padding and W' = columns * (W + padding) + padding,
    with columns = min(nrow, N). Unused tiles in the last row are ``pad_value``.
    """
    images = check_images(images, "make_grid", ranks=(3, 4))
    if images.dim() == 3:
        images = images.unsqueeze(0)
    count, channels, height, width = images.shape
    if count == 0:
        raise ConfigError("make_grid: got an empty batch (N = 0)")
    if nrow is None:
        nrow = math.ceil(math.sqrt(count))
    if not isinstance(nrow, int) or nrow < 1:
        raise ConfigError(f"make_grid: nrow must be a positive int, got {nrow!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ConfigError(f"make_grid: padding must be a non-negative int, got {padding!r}")
    check_pad_value(pad_value, "make_grid")
    columns = min(nrow, count)
    rows = math.ceil(count / columns)
    step_y, step_x = height + padding, width + padding
    grid = images.new_full((channels, rows * step_y + padding, columns * step_x + padding), float(pad_value))
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = padding + row * step_y, padding + column * step_x
        grid[:, top : top + height, left : left + width] = images[index]
    return grid


def concat_images(
    grids: list[torch.Tensor],
    gap: int = 4,
    pad_value: float = 1.0,
    labels: list[str] | None = None,
) -> torch.Tensor:
    """Put images or grids (C×H×W, or N×C×H×W which are gridded first) side by side, left to right.

    Used to show e.g. VAE and GAN samples next to each other. Shorter pictures are centred
    vertically, gaps and margins are ``pad_value``, grayscale is repeated to RGB if any input
    is RGB. ``labels`` (one per picture) are written above each (see ``label_font``).
    """
    if not grids:
        raise ConfigError("concat_images: got an empty list of images")
    if labels is not None and len(labels) != len(grids):
        raise ConfigError(f"concat_images: got {len(labels)} labels for {len(grids)} images")
    if not isinstance(gap, int) or gap < 0:
        raise ConfigError(f"concat_images: gap must be a non-negative int, got {gap!r}")
    check_pad_value(pad_value, "concat_images")
    pictures = [
        make_grid(g, pad_value=pad_value) if g.dim() == 4 else check_images(g, "concat_images", ranks=(3,))
        for g in grids
    ]
    channels = max(p.shape[0] for p in pictures)
    height = max(p.shape[1] for p in pictures)
    pictures = [_centre_vertically(p.expand(channels, -1, -1), height, pad_value) for p in pictures]
    if labels is not None:  # after centring, so all labels sit on one line, in strips of one height
        strip = _label_strip_height(labels)
        pictures = [_with_label(p, text, pad_value, strip) for p, text in zip(pictures, labels, strict=True)]
    spacer = pictures[0].new_full((channels, pictures[0].shape[1], gap), float(pad_value))
    parts = [part for picture in pictures for part in (picture, spacer)][:-1]
    return torch.cat(parts, dim=2)


def label_rows(picture: torch.Tensor, labels: list[str], pad_value: float = 1.0) -> torch.Tensor:
    """Prepend a column naming the rows of a grid (C×H×W): ``labels[i]`` is written at the middle of
    the i-th of ``len(labels)`` equal horizontal bands, which are the rows of a ``make_grid`` grid."""
    picture = check_images(picture, "label_rows", ranks=(3,))
    if not labels:
        raise ConfigError("label_rows: got no labels")
    check_pad_value(pad_value, "label_rows")
    font = label_font()
    boxes = [ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font) for text in labels]
    height, band = picture.shape[1], picture.shape[1] / len(labels)
    column = Image.new("L", (max(box[2] for box in boxes) + 6, height), round(pad_value * 255))
    draw = ImageDraw.Draw(column)
    for i, (text, (_, top, _, bottom)) in enumerate(zip(labels, boxes, strict=True)):
        middle = (i + 0.5) * band
        draw.text((2, round(middle - (top + bottom) / 2)), text, fill=0 if pad_value > 0.5 else 255, font=font)
    strip = to_float(torch.from_numpy(np.asarray(column).copy()))
    return torch.cat([strip.expand(picture.shape[0], -1, -1), picture], dim=2)


@functools.cache
def label_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font of picture labels: Pillow's bundled Aileron at LABEL_FONT_SIZE px (Pillow >= 10.1 with
    FreeType), else Pillow's bitmap font (older Pillow, whose load_default takes no size, or no FreeType),
    whose space is a full 6-px cell."""
    try:
        return ImageFont.load_default(size=LABEL_FONT_SIZE)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _centre_vertically(picture: torch.Tensor, height: int, pad_value: float) -> torch.Tensor:
    above = (height - picture.shape[1]) // 2
    below = height - picture.shape[1] - above
    return torch.nn.functional.pad(picture, (0, 0, above, below), value=float(pad_value))


def _label_strip_height(labels: list[str]) -> int:
    """Height of a label strip that fits the tallest of ``labels`` (text such as "VAE" and "projector"
    has different ink heights; strips of one height keep the pictures aligned)."""
    font = label_font()
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    return max(draw.textbbox((0, 0), text, font=font)[3] for text in labels) + 4


def _with_label(picture: torch.Tensor, text: str, pad_value: float, height: int) -> torch.Tensor:
    """Prepend a strip ``height`` pixels tall with ``text`` drawn in the contrasting colour to the background
    (the picture is padded, centred, when the text is wider than it)."""
    font = label_font()
    _, top, right, _ = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    if right + 4 > picture.shape[2]:  # a label wider than its picture widens the column rather than being cut off
        extra = right + 4 - picture.shape[2]
        picture = torch.nn.functional.pad(picture, (extra // 2, extra - extra // 2), value=float(pad_value))
    strip = Image.new("L", (picture.shape[2], height), round(pad_value * 255))
    ImageDraw.Draw(strip).text((2, 2 - top), text, fill=0 if pad_value > 0.5 else 255, font=font)
    strip_tensor = to_float(torch.from_numpy(np.asarray(strip).copy()))
    return torch.cat([strip_tensor.expand(picture.shape[0], -1, -1), picture], dim=1)




# ------------------------------------------------------------------------------------------ write


def save_image(
    images: torch.Tensor,
    path: str | os.PathLike[str],
    nrow: int | None = None,
    scale: int = 1,
    padding: int = 2,
    pad_value: float = 1.0,
) -> Path:
    """Write images as one picture (PNG, or the format the suffix names); returns the path.

    N×C×H×W is tiled with ``make_grid`` (``nrow``, ``padding``, ``pad_value``); C×H×W is
    written as is. ``scale`` repeats each pixel scale×scale times (nearest neighbour) so a
    grid of 28×28 digits is big enough to look at. Parent folders are created; the write is
    atomic.
    """
    picture = _to_pil(_as_picture(images, "save_image", nrow, padding, pad_value), scale, "save_image")
    return _atomic_write(path, "save_image", lambda stream, fmt: picture.save(stream, format=fmt))


def image_bytes(images: torch.Tensor, nrow: int | None = None, scale: int = 1, padding: int = 2,
                pad_value: float = 1.0) -> bytes:
    """What :func:`save_image` would write to a ``.png`` file, in memory (for the web explorer)."""
    picture = _to_pil(_as_picture(images, "image_bytes", nrow, padding, pad_value), scale, "image_bytes")
    stream = io.BytesIO()
    picture.save(stream, format="PNG")
    return stream.getvalue()


def save_gif(
    frames: list[torch.Tensor],
    path: str | os.PathLike[str],
    duration_ms: int = 80,
    loop: int = 0,
    boomerang: bool = False,
    scale: int = 1,
    nrow: int | None = None,
) -> Path:
    """Write an animated GIF, one frame per tensor (C×H×W, or N×C×H×W gridded); returns the path.

    ``loop=0`` repeats forever; ``boomerang`` plays forwards then backwards without repeating
    the end frames (n frames → 2n - 2), so interpolations loop smoothly. GIF stores delays in
    1/100 s and browsers slow delays under 20 ms down, so keep ``duration_ms`` >= 20.
    Pillow merges identical consecutive frames (adding their durations), and quantises RGB
    frames to an adaptive 256-colour palette.
    """
    if not frames:
        raise ConfigError("save_gif: got no frames")
    if Path(path).suffix.lower() != ".gif":
        raise ConfigError(f"save_gif: {path} should end in .gif")
    if not isinstance(duration_ms, int) or duration_ms < 1:
        raise ConfigError(f"save_gif: duration_ms must be a positive int, got {duration_ms!r}")
    if not isinstance(loop, int) or loop < 0:
        raise ConfigError(f"save_gif: loop must be a non-negative int (0 = forever), got {loop!r}")
    return _atomic_write(path, "save_gif", lambda stream, fmt: _write_gif(stream, frames, duration_ms, loop, boomerang,
                                                                          scale, nrow, "save_gif"))


def gif_bytes(frames: list[torch.Tensor], duration_ms: int = 80, loop: int = 0, boomerang: bool = False,
              scale: int = 1) -> bytes:
    """What :func:`save_gif` would write, in memory (for the web explorer)."""
    stream = io.BytesIO()
    _write_gif(stream, frames, duration_ms, loop, boomerang, scale, None, "gif_bytes")
    return stream.getvalue()


def _write_gif(stream: BinaryIO, frames: list[torch.Tensor], duration_ms: int, loop: int, boomerang: bool, scale: int,
               nrow: int | None, where: str) -> None:
    if not frames:
        raise ConfigError(f"{where}: got no frames")
    pictures = [_as_picture(frame, where, nrow, 2, 1.0) for frame in frames]
    if any(p.shape != pictures[0].shape for p in pictures):
        shapes = sorted({tuple(p.shape) for p in pictures})
        raise ConfigError(f"{where}: all frames must have the same shape, got {shapes}")
    if boomerang:
        pictures = pictures + pictures[-2:0:-1]
    images = [_to_pil(p, scale, where) for p in pictures]
    images[0].save(stream, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=loop)


def _as_picture(images: torch.Tensor, where: str, nrow: int | None, padding: int, pad_value: float) -> torch.Tensor:
    images = check_images(images, where, ranks=(3, 4))
    return make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value) if images.dim() == 4 else images


def _to_pil(picture: torch.Tensor, scale: int, where: str) -> Image.Image:
    """C×H×W float in [0, 1] → PIL image ("L" or "RGB"), upscaled ``scale`` times."""
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ConfigError(f"{where}: scale must be a positive int, got {scale!r}")
    pixels = to_uint8(picture.cpu())
    if scale > 1:
        pixels = pixels.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    array = pixels.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0], mode="L") if array.shape[2] == 1 else Image.fromarray(array, mode="RGB")


def _atomic_write(
    path: str | os.PathLike[str], where: str, write: Callable[[BinaryIO, str], None]
) -> Path:
    """Call ``write(stream, format)`` on an atomic temporary file beside ``path``."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{where}: cannot tell the image format from {path} (use e.g. .png or .gif)")
    with atomic_write(path) as stream:
        write(stream, fmt)
    return path
