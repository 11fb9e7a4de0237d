"""The one place images are read, written, converted, gridded and resized (PIL + torch, no torchvision).

Conventions: in memory, images are float tensors in [0, 1], N×C×H×W (or C×H×W for one image or
one grid), C = 1 (grayscale) or 3 (RGB); on disk and in datasets they are uint8.
Every write goes to a temporary file in the target folder and is then moved into place with
``os.replace``, so a reader never sees half a PNG or GIF.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from genlab.errors import ConfigError, DataError
from genlab.io.files import atomic_write

# Pillow >= 9.1 moved the filter constants into Image.Resampling; 9.0 only has Image.LANCZOS.
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS

# Modes that hold one intensity per pixel (plus maybe alpha); "P" is decided by its palette.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}


# ----------------------------------------------------------------------------------------- read


def read_image(
    path: str | os.PathLike[str],
    channels: int | None = None,
    size: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    """Read one image file as a uint8 tensor C×H×W.

    ``channels=None`` keeps the file's nature: 1 for grayscale-like files (modes 1, L, LA, I,
    I;16*, F, and P whose palette is all gray), 3 for everything else (RGB, RGBA, P, CMYK, YCbCr,
    ...). ``channels=1`` or ``3`` converts (RGB → gray uses PIL's ITU-R 601-2 luma).
    Transparency (RGBA, LA, palette transparency) is composited onto black, i.e. colour × alpha,
    so fully transparent pixels read as 0. 16-bit grayscale is scaled to 8 bits (value / 257).
    EXIF orientation is applied; for animated files only the first frame is read.
    ``size`` resizes with PIL's LANCZOS filter (sharp, alias-free when shrinking): an int gives
    a square ``(size, size)`` image, a tuple is ``(height, width)``.
    Raises DataError (naming the file) for a missing, unreadable, corrupt or truncated file.
    """
    if channels not in (None, 1, 3):
        raise ConfigError(f"read_image: channels must be None, 1 or 3, got {channels!r}")
    height_width = _check_size(size, "read_image") if size is not None else None
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # decode now: truncated/corrupt data fails here, not later
            image = ImageOps.exif_transpose(image)
            gray = _is_grayscale(image)
            image = _composite_on_black(_to_8bit(image))
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read image ({reason})") from None

    want = channels if channels is not None else (1 if gray else 3)
    image = image.convert("L" if want == 1 else "RGB")
    if height_width is not None and height_width != (image.height, image.width):
        height, width = height_width
        image = image.resize((width, height), _LANCZOS)  # PIL takes (width, height)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _is_grayscale(image: Image.Image) -> bool:
    """True for one-intensity modes, and for palette images whose palette entries are all gray."""
    if image.mode in _GRAY_MODES or image.mode.startswith("I;16"):
        return True
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        indices = np.asarray(image)
        indices = indices[..., 0] if indices.ndim == 3 else indices  # PA: (index, alpha)
        # Only entries the pixels use matter: palettes are often padded with unused colours.
        rgb = [palette[3 * i : 3 * i + 3] for i in np.unique(indices).tolist() if 3 * i + 3 <= len(palette)]
        return all(r == g == b for r, g, b in rgb)
    return False


def _to_8bit(image: Image.Image) -> Image.Image:
    """Map 16/32-bit integer and float grayscale to 8-bit "L" (PIL's own convert clips instead)."""
    if image.mode.startswith("I;16"):
        array = np.asarray(image).astype(np.float64) / 257.0
    elif image.mode == "I":
        array = np.asarray(image).astype(np.float64)
        # 16-bit PNGs often open as "I"; values above 255 mean a 16-bit range.
        array = np.clip(array, 0, 65535) / 257.0 if array.max(initial=0) > 255 else array
    elif image.mode == "F":
        array = np.asarray(image).astype(np.float64)
        # Float images are either in [0, 1] or already in [0, 255].
        array = array * 255.0 if array.max(initial=0) <= 1.0 else array
    else:
        return image
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="L")


def _composite_on_black(image: Image.Image) -> Image.Image:
    """Drop alpha by multiplying colour by alpha (black background); returns L or RGB (or as-is)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        straight = image.convert("RGBA" if image.mode.startswith("RGB") else "LA")
        array = np.asarray(straight).astype(np.float64)
        colour, alpha = array[..., :-1], array[..., -1:] / 255.0
        out = np.clip(np.rint(colour * alpha), 0, 255).astype(np.uint8)
        return Image.fromarray(out[..., 0] if out.shape[-1] == 1 else out, mode="L" if out.shape[-1] == 1 else "RGB")
    return image


def _check_size(size: int | tuple[int, int], where: str) -> tuple[int, int]:
    """Normalise ``size`` (int → square, tuple → (height, width)) and check it is positive."""
    if isinstance(size, int) and not isinstance(size, bool):
        height_width = (size, size)
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        height_width = (int(size[0]), int(size[1]))
    else:
        raise ConfigError(f"{where}: size must be an int or a (height, width) pair of ints, got {size!r}")
    if min(height_width) < 1:
        raise ConfigError(f"{where}: size must be positive, got {size!r}")
    return height_width


# ------------------------------------------------------------------------------------ convert

# Slack for values just outside [0, 1] (float rounding in a decoder); anything beyond is a bug
# upstream, e.g. a tanh output in [-1, 1] passed without rescaling.
RANGE_TOLERANCE = 1e-3


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (any shape) → float32 in [0, 1]."""
    if images.dtype != torch.uint8:
        raise ConfigError(f"to_float: expected a uint8 tensor, got {images.dtype}")
    return images.float().div_(255.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] (any shape) → uint8, rounding to nearest and clamping the slack."""
    _check_float_range(images, "to_uint8")
    return images.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def _check_float_range(images: torch.Tensor, where: str) -> None:
    if not images.is_floating_point():
        raise ConfigError(f"{where}: expected a float tensor in [0, 1], got {images.dtype}")
    if images.numel() == 0:
        return
    low, high = images.min().item(), images.max().item()
    if not (low >= -RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE):  # also catches NaN
        raise ConfigError(
            f"{where}: expected values in [0, 1], got min {low:.4g} max {high:.4g} "
            "(rescale e.g. tanh outputs with (x + 1) / 2)"
        )


def _check_images(images: torch.Tensor, where: str, ranks: tuple[int, ...] = (4,)) -> torch.Tensor:
    """Validate rank, channels and range; uint8 is converted to float (it is unambiguous)."""
    if not isinstance(images, torch.Tensor):
        raise ConfigError(f"{where}: expected a torch.Tensor, got {type(images).__name__}")
    shapes = " or ".join({3: "C×H×W", 4: "N×C×H×W"}[r] for r in ranks)
    if images.dim() not in ranks:
        raise ConfigError(f"{where}: expected images of shape {shapes}, got shape {tuple(images.shape)}")
    if images.shape[-3] not in (1, 3):
        raise ConfigError(f"{where}: expected 1 or 3 channels, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return to_float(images)
    _check_float_range(images, where)
    return images.detach().float().clamp(0.0, 1.0)


def _check_pad_value(pad_value: float, where: str) -> None:
    if not 0.0 <= float(pad_value) <= 1.0:
        raise ConfigError(f"{where}: pad_value must be in [0, 1], got {pad_value!r}")


# --------------------------------------------------------------------------- grid and resize


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
    images = _check_images(images, "make_grid", ranks=(3, 4))
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
    _check_pad_value(pad_value, "make_grid")
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
    is RGB. ``labels`` (one per picture) are written above each with PIL's default font.
    """
    if not grids:
        raise ConfigError("concat_images: got an empty list of images")
    if labels is not None and len(labels) != len(grids):
        raise ConfigError(f"concat_images: got {len(labels)} labels for {len(grids)} images")
    if not isinstance(gap, int) or gap < 0:
        raise ConfigError(f"concat_images: gap must be a non-negative int, got {gap!r}")
    _check_pad_value(pad_value, "concat_images")
    pictures = [
        make_grid(g, pad_value=pad_value) if g.dim() == 4 else _check_images(g, "concat_images", ranks=(3,))
        for g in grids
    ]
    channels = max(p.shape[0] for p in pictures)
    height = max(p.shape[1] for p in pictures)
    pictures = [_centre_vertically(p.expand(channels, -1, -1), height, pad_value) for p in pictures]
    if labels is not None:  # after centring, so all labels sit on one line, in strips of one height
        strip = _label_strip_height(labels)
        pictures = [_with_label(p, text, pad_value, strip) for p, text in zip(pictures, labels)]
    spacer = pictures[0].new_full((channels, pictures[0].shape[1], gap), float(pad_value))
    parts = [part for picture in pictures for part in (picture, spacer)][:-1]
    return torch.cat(parts, dim=2)


def label_rows(picture: torch.Tensor, labels: list[str], pad_value: float = 1.0) -> torch.Tensor:
    """Prepend a column naming the rows of a grid (C×H×W): ``labels[i]`` is written at the middle of
    the i-th of ``len(labels)`` equal horizontal bands, which are the rows of a ``make_grid`` grid."""
    picture = _check_images(picture, "label_rows", ranks=(3,))
    if not labels:
        raise ConfigError("label_rows: got no labels")
    _check_pad_value(pad_value, "label_rows")
    font = ImageFont.load_default()
    boxes = [ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font) for text in labels]
    height, band = picture.shape[1], picture.shape[1] / len(labels)
    column = Image.new("L", (max(box[2] for box in boxes) + 6, height), int(round(pad_value * 255)))
    draw = ImageDraw.Draw(column)
    for i, (text, (left, top, right, bottom)) in enumerate(zip(labels, boxes)):
        middle = (i + 0.5) * band
        draw.text((2, round(middle - (top + bottom) / 2)), text, fill=0 if pad_value > 0.5 else 255, font=font)
    strip = to_float(torch.from_numpy(np.asarray(column).copy()))
    return torch.cat([strip.expand(picture.shape[0], -1, -1), picture], dim=2)


def _centre_vertically(picture: torch.Tensor, height: int, pad_value: float) -> torch.Tensor:
    above = (height - picture.shape[1]) // 2
    below = height - picture.shape[1] - above
    return torch.nn.functional.pad(picture, (0, 0, above, below), value=float(pad_value))


def _label_strip_height(labels: list[str]) -> int:
    """Height of a label strip that fits the tallest of ``labels`` (text such as "VAE" and "projector"
    has different ink heights; strips of one height keep the pictures aligned)."""
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    return max(draw.textbbox((0, 0), text, font=font)[3] for text in labels) + 4


def _with_label(picture: torch.Tensor, text: str, pad_value: float, height: int) -> torch.Tensor:
    """Prepend a strip ``height`` pixels tall with ``text`` drawn in the contrasting colour to the background."""
    font = ImageFont.load_default()
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    strip = Image.new("L", (picture.shape[2], height), int(round(pad_value * 255)))
    ImageDraw.Draw(strip).text((2, 2 - top), text, fill=0 if pad_value > 0.5 else 255, font=font)
    strip_tensor = to_float(torch.from_numpy(np.asarray(strip).copy()))
    return torch.cat([strip_tensor.expand(picture.shape[0], -1, -1), picture], dim=1)


def resize(
    images: torch.Tensor,
    size: int | tuple[int, int],
    antialias: bool = True,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resize float images (N×C×H×W or C×H×W) with ``torch.nn.functional.interpolate``.

    ``size``: int → square, tuple → (height, width). ``mode`` is "bilinear" (default; never
    overshoots), "bicubic" (sharper; its overshoot is clamped back to [0, 1]) or "nearest"
    (for pixel-art upscaling; ``antialias`` ignored). With ``antialias=True`` shrinking
    averages over the source footprint, as PIL does, instead of skipping pixels (aliasing).
    """
    images = _check_images(images, "resize", ranks=(3, 4))
    height_width = _check_size(size, "resize")
    if mode not in ("bilinear", "bicubic", "nearest"):
        raise ConfigError(f"resize: mode must be 'bilinear', 'bicubic' or 'nearest', got {mode!r}")
    batch = images.unsqueeze(0) if images.dim() == 3 else images
    if mode == "nearest":
        out = torch.nn.functional.interpolate(batch, size=height_width, mode="nearest-exact")
    else:
        out = torch.nn.functional.interpolate(
            batch, size=height_width, mode=mode, align_corners=False, antialias=antialias
        )
    out = out.clamp_(0.0, 1.0)
    return out[0] if images.dim() == 3 else out


# -------------------------------------------------------------------------------------- write


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
    pictures = [_as_picture(frame, "save_gif", nrow, 2, 1.0) for frame in frames]
    if any(p.shape != pictures[0].shape for p in pictures):
        shapes = sorted({tuple(p.shape) for p in pictures})
        raise ConfigError(f"save_gif: all frames must have the same shape, got {shapes}")
    if boomerang:
        pictures = pictures + pictures[-2:0:-1]
    images = [_to_pil(p, scale, "save_gif") for p in pictures]

    def write(stream: BinaryIO, fmt: str) -> None:
        images[0].save(
            stream, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=loop
        )

    return _atomic_write(path, "save_gif", write)


def _as_picture(images: torch.Tensor, where: str, nrow: int | None, padding: int, pad_value: float) -> torch.Tensor:
    images = _check_images(images, where, ranks=(3, 4))
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
