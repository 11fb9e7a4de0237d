"""The one place images are read, converted and resized (PIL + torch, no torchvision); grids, labels
and writing PNG/GIF files live in ``genlab.io.grids``.

Conventions: in memory, images are float tensors in [0, 1], N×C×H×W (or C×H×W for one image or
one grid), C = 1 (grayscale) or 3 (RGB); on disk and in datasets they are uint8.
Every write goes to a temporary file in the target folder and is then moved into place with
``os.replace``, so a reader never sees half a PNG or GIF.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from genlab.errors import ConfigError, DataError

# Pillow >= 9.1 moved the filter constants into Image.Resampling; 9.0 only has Image.LANCZOS.
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS

# Modes that hold one intensity per pixel (plus maybe alpha); "P" is decided by its palette.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}

# Pixels (height × width) of one image file that read_image will decode: a 24-megapixel photo fits; a
# small file claiming gigapixels (a decompression bomb) is refused from its header, before it is decoded.
# Pillow's own guard only warns below 2 × 89 megapixels.
MAX_IMAGE_PIXELS = 1 << 25  # 33,554,432



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
    if height_width is not None and height_width[0] * height_width[1] > MAX_IMAGE_PIXELS:
        raise ConfigError(f"read_image: size {height_width[0]}×{height_width[1]} is more than genlab's bound of "
                          f"{MAX_IMAGE_PIXELS:,} pixels per image")
    path = Path(path)
    try:
        with _BoundedReader(path) as file:
            with warnings.catch_warnings():  # Pillow warns of bombs above 89 megapixels; genlab's own bound is lower
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                opened = Image.open(file)
            with opened as image:
                width, height = image.size  # from the header: nothing is decoded yet
                if width * height > MAX_IMAGE_PIXELS:
                    raise DataError(f"{path}: image is {width}×{height} = {width * height:,} pixels, more than genlab's bound "
                                    f"of {MAX_IMAGE_PIXELS:,} per image; shrink it first")
                image.load()  # decode now: truncated/corrupt data fails here, not later
                image = ImageOps.exif_transpose(image)
                gray = _is_grayscale(image)
                image = _composite_on_black(_to_8bit(image))
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file Pillow can read") from None
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, KeyError, IndexError, struct.error, zlib.error,
            Image.DecompressionBombError) as error:
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


class _BoundedReader(io.BufferedReader):
    """An image file whose ``read(n)`` never asks for more than the bytes left in it. CPython allocates ``n`` bytes
    before it reads, so without this a corrupt length in a header (a PNG chunk claiming 1 GB, which Pillow skips
    with one read) makes a 100-byte file allocate that much."""

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path, "r"))
        self._size = os.fstat(self.fileno()).st_size

    def read(self, size: int | None = -1, /) -> bytes:
        if size is not None and size > 0:
            size = min(size, max(self._size - self.tell(), 0))
        return super().read(size)


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
    """Map 16/32-bit integer and float grayscale to 8-bit "L" (PIL's own convert clips instead).

    Integer images are scaled in integer arithmetic, in place: (v + 128) // 257 is round(v / 257) exactly (257
    is odd, so v / 257 never ends in .5), at 4 bytes a pixel instead of float64's temporaries.
    """
    if image.mode.startswith("I;16"):
        array = np.asarray(image).astype(np.uint32)
        array += 128
        array //= 257
    elif image.mode == "I":
        array = np.asarray(image)
        if array.max(initial=0) > 255:  # 16-bit PNGs often open as "I"; values above 255 mean a 16-bit range
            array = np.clip(array, 0, 65535)
            array += 128
            array //= 257
        else:
            array = np.clip(array, 0, 255)
    elif image.mode == "F":
        array = np.asarray(image).astype(np.float64)
        if array.max(initial=0) <= 1.0:  # float images are either in [0, 1] or already in [0, 255]
            array *= 255.0
        np.rint(array, out=array)
        np.clip(array, 0, 255, out=array)
    else:
        return image
    return Image.fromarray(array.astype(np.uint8), mode="L")


def _composite_on_black(image: Image.Image) -> Image.Image:
    """Drop alpha by multiplying colour by alpha (black background); returns L or RGB (or as-is)."""
    if (image.mode == "P" and "transparency" in image.info) or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        straight = np.asarray(image.convert("RGBA" if image.mode.startswith("RGB") else "LA"))
        # round(colour × alpha / 255) in uint16, in place: exact (255 is odd: no ties), 2 bytes a channel, not float64's 8 × 3.
        product = straight[..., :-1].astype(np.uint16)
        product *= straight[..., -1:]
        product += 127
        product //= 255
        out = product.astype(np.uint8)
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


def check_images(images: torch.Tensor, where: str, ranks: tuple[int, ...] = (4,)) -> torch.Tensor:
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


def check_pad_value(pad_value: float, where: str) -> None:
    if not 0.0 <= float(pad_value) <= 1.0:
        raise ConfigError(f"{where}: pad_value must be in [0, 1], got {pad_value!r}")


# ------------------------------------------------------------------------------------------ resize


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
    images = check_images(images, "resize", ranks=(3, 4))
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
