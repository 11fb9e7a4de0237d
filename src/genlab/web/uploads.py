"""What crosses the explorer's HTTP boundary: request fields checked into values, uploaded images (data URLs)
read with the same guards as image files, and pictures encoded back into data URLs.

Every bad field or upload is a :class:`RequestError` whose message names the field or the file and says what was
expected, so the page can show it as it is.
"""
from __future__ import annotations

import base64
import binascii
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.io.grids import gif_bytes, image_bytes
from genlab.io.images import read_image


class RequestError(GenlabError):
    """A request the explorer refuses, with the HTTP status to answer and a one-line reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (each is checked before any model runs)."""

    max_upload_bytes: int = 8 << 20  # one uploaded file, decoded
    max_pixels: int = 4 << 20  # pixels of one uploaded image (read from its header, before decoding)
    max_upscale_pixels: int = 256 * 256  # low-res pixels the upscale tab takes (the output has scale² as many)
    max_samples: int = 64
    max_frames: int = 33
    request_seconds: float = 60.0  # a request answers 504 past this (the work in hand still finishes)
    compare_seconds: float = 900.0
    max_compare_samples: int = 5000
    queue: int = 8  # requests waiting for the model beyond the ones running; more answer 503
    workers: int = 1  # model calls at a time (a model's train/eval switches are not thread-safe)

    def public(self) -> dict[str, Any]:
        return {"max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels,
                "max_upscale_pixels": self.max_upscale_pixels, "max_samples": self.max_samples,
                "max_frames": self.max_frames, "request_seconds": self.request_seconds}


# ------------------------------------------------------------------------------------------------ fields


def integer(body: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        raise RequestError(f"{name}: missing; expected an integer in {low}..{high}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RequestError(f"{name}: expected an integer in {low}..{high}, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise RequestError(f"{name}: expected an integer in {low}..{high}, got {value!r}") from None
    if not (math.isfinite(number) and number == int(number) and low <= number <= high):
        raise RequestError(f"{name}: expected an integer in {low}..{high}, got {value!r}")
    return int(number)


def number(body: dict[str, Any], name: str, low: float, high: float, default: float | None = None,
           optional: bool = False) -> float | None:
    value = body.get(name, default)
    if value is None or value == "":
        if optional:
            return None
        raise RequestError(f"{name}: missing; expected a number in {low:g}..{high:g}")
    try:
        result = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        result = math.nan
    if not low <= result <= high:  # NaN fails too
        raise RequestError(f"{name}: expected a number in {low:g}..{high:g}, got {value!r}")
    return result


def choice(body: dict[str, Any], name: str, options: list[str] | tuple[str, ...], default: str | None = None) -> str:
    value = body.get(name, default)
    if value not in options:
        raise RequestError(f"{name}: expected one of {', '.join(options)}, got {value!r}")
    return value


def label(body: dict[str, Any], classes: list[str], name: str = "label") -> int | None:
    """A class index for a conditional model (None: the model's default), refused for an unconditional one."""
    if body.get(name) in (None, ""):
        return None
    if not classes:
        raise RequestError(f"{name}: this model is not class-conditional; leave it out")
    return integer(body, name, 0, len(classes) - 1)


# ------------------------------------------------------------------------------------------------ images


def upload_name(body: dict[str, Any], field: str = "image", index: int | None = None) -> str:
    names = body.get(f"{field}_names") if index is not None else body.get(f"{field}_name")
    name = names[index] if index is not None and isinstance(names, list) and index < len(names) else names
    text = str(name) if isinstance(name, str) and name.strip() else f"the uploaded {field}"
    return Path(text).name[:120]  # a name to show, never a path to open


def read_upload(data_url: Any, name: str, limits: Limits, channels: int | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
    """An uploaded image (a ``data:`` URL, any media type claimed) as uint8 C×H×W, read by
    :func:`genlab.io.images.read_image` (the same guards as files) after the size and pixel limits."""
    if not isinstance(data_url, str) or not data_url.startswith("data:") or "," not in data_url:
        raise RequestError(f"{name}: expected the file as a data: URL")
    header, payload = data_url.split(",", 1)
    if len(payload) * 3 // 4 > limits.max_upload_bytes:
        raise RequestError(f"{name}: is {len(payload) * 3 // 4:,} bytes, more than the {limits.max_upload_bytes:,} allowed", 413)
    try:
        data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else payload.encode()
    except (binascii.Error, ValueError):
        raise RequestError(f"{name}: the data URL is not valid base64") from None
    if not data:
        raise RequestError(f"{name}: the file is empty")
    handle, path = tempfile.mkstemp(prefix="genlab-upload-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        _check_pixels(path, name, limits)
        try:
            return read_image(path, channels=channels, size=size)
        except GenlabError as error:
            raise RequestError(str(error).replace(path, name)) from None
    finally:
        os.unlink(path)


def _check_pixels(path: str, name: str, limits: Limits) -> None:
    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own refusal, past 2 × Image.MAX_IMAGE_PIXELS
        raise RequestError(f"{name}: has more pixels than Pillow opens ({2 * Image.MAX_IMAGE_PIXELS:,}), far more than the "
                           f"{limits.max_pixels:,} this server takes; shrink it first", 413) from None
    except Exception:  # not an image at all: say so in the page's words
        raise RequestError(f"{name}: is not an image file (PNG, JPEG, GIF, BMP, WebP, ...)") from None
    if width * height > limits.max_pixels:
        raise RequestError(f"{name}: is {width}×{height} = {width * height:,} pixels, more than the {limits.max_pixels:,} "
                           "this server takes; shrink it first", 413)


def png_url(images: torch.Tensor, nrow: int | None = None, scale: int = 1, padding: int = 2) -> str:
    return "data:image/png;base64," + base64.b64encode(image_bytes(images.detach().float().cpu().clamp(0, 1), nrow=nrow,
                                                                   scale=scale, padding=padding)).decode()


def gif_url(frames: torch.Tensor, scale: int = 1, duration_ms: int = 80) -> str:
    frames = frames.detach().float().cpu().clamp(0, 1)
    return "data:image/gif;base64," + base64.b64encode(gif_bytes(list(frames), duration_ms=duration_ms, boomerang=True,
                                                                 scale=scale)).decode()


def view_scale(height: int) -> int:
    """Pixel repeat that makes a tile about 64-128 px tall: small images are sent enlarged (nearest neighbour)."""
    return max(1, 96 // max(1, height))
