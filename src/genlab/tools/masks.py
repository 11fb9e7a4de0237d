"""Masks for inpainting and outpainting: float tensors N×1×H×W, **1 = known pixel, 0 = hole**.

    from genlab.tools.masks import make_mask, parse_mask
    mask = make_mask("center", images.shape)             # a centred square hole, half the side
    mask = make_mask("random", images.shape, seed=1)     # random boxes, different per image
    mask = parse_mask("border:0.6", images.shape)        # the CLI's spelling: KIND[:SIZE] or a PNG path

Kinds (the named region is the hole; ``size`` is a fraction of the image side):

==========  ==========================================================  ===============  ==============
kind        hole                                                        default size     known fraction
==========  ==========================================================  ===============  ==============
center      a centred box, size·H × size·W                              0.5              1 − size²
random      boxes of random size and place, added until they hide at    0.5              ≤ 1 − size²
            least size² of the image (as much as "center" hides)
left/right  that side, size·W wide (outpainting sideways)               0.5              1 − size
top/bottom  that side, size·H high                                      0.5              1 − size
border      everything but the centred box size·H × size·W              0.5              size²
            (outpainting: extend the centre outwards)
==========  ==========================================================  ===============  ==============

A mask picture (PNG or any image Pillow reads) marks the hole in **white** (pixel value ≥ 128), the
convention of most inpainting tools; everything darker is known. It must have the images' size.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from genlab.errors import ConfigError
from genlab.io.images import read_image

MASK_KINDS = ("center", "random", "left", "right", "top", "bottom", "border")
DEFAULT_SIZE = 0.5
# Sides of a "random" box, as fractions of the image side.
_RANDOM_BOX_SIDES = (0.15, 0.4)


def _spatial(shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int]:
    """(N, H, W) of an image shape N×C×H×W (or C×H×W: N = 1)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ConfigError(f"masks need an image shape N×C×H×W (or C×H×W), got {shape}")
    return shape[0], shape[2], shape[3]


def _check_size(kind: str, size: float) -> float:
    size = float(size)
    if not 0.0 < size < 1.0:
        raise ConfigError(f"mask {kind!r}: size must be a fraction of the image side in (0, 1), got {size!r}")
    return size


def _box(length: int, size: float) -> tuple[int, int]:
    """Start and end of a centred span of round(size·length) pixels (at least 1, at most length − 1)."""
    span = min(max(1, round(size * length)), length - 1)
    start = (length - span) // 2
    return start, start + span


def make_mask(kind: str, shape: tuple[int, ...] | torch.Size, *, size: float = DEFAULT_SIZE,
              seed: int = 0) -> torch.Tensor:
    """A mask of ``kind`` (see the module docstring) for images of ``shape`` N×C×H×W: float N×1×H×W,
    1 = known, 0 = hole. ``seed`` makes "random" masks reproducible (each image gets its own boxes)."""
    if kind not in MASK_KINDS:
        raise ConfigError(f"unknown mask {kind!r}: expected one of {', '.join(MASK_KINDS)} or a mask picture (white = hole)")
    size = _check_size(kind, size)
    n, height, width = _spatial(shape)
    if min(height, width) < 2:
        raise ConfigError(f"mask {kind!r}: images must be at least 2×2, got {height}×{width}")
    mask = torch.ones(n, 1, height, width)
    if kind in ("center", "border"):
        (top, bottom), (left, right) = _box(height, size), _box(width, size)
        if kind == "center":
            mask[:, :, top:bottom, left:right] = 0.0
        else:
            mask.zero_()
            mask[:, :, top:bottom, left:right] = 1.0
    elif kind in ("left", "right"):
        span = min(max(1, round(size * width)), width - 1)
        if kind == "left":
            mask[..., :span] = 0.0
        else:
            mask[..., width - span:] = 0.0
    elif kind in ("top", "bottom"):
        span = min(max(1, round(size * height)), height - 1)
        if kind == "top":
            mask[:, :, :span] = 0.0
        else:
            mask[:, :, height - span:] = 0.0
    else:
        mask = _random_boxes(n, height, width, size, seed)
    return mask


def _random_boxes(n: int, height: int, width: int, size: float, seed: int) -> torch.Tensor:
    """Boxes with sides uniform in _RANDOM_BOX_SIDES of the image side, at uniform places, added
    until the hole covers at least size² of the image (but never all of it)."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, 1, height, width)
    target = size * size * height * width
    low, high = _RANDOM_BOX_SIDES
    for i in range(n):
        while (1 - mask[i]).sum() < target:
            box_h = max(1, round(height * (low + (high - low) * torch.rand(1, generator=generator).item())))
            box_w = max(1, round(width * (low + (high - low) * torch.rand(1, generator=generator).item())))
            top = int(torch.randint(0, height - box_h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - box_w + 1, (1,), generator=generator))
            before = mask[i].clone()
            mask[i, :, top:top + box_h, left:left + box_w] = 0.0
            if mask[i].sum() == 0:  # a box that would hide the whole image is undone and stops the loop
                mask[i] = before
                break
    return mask


def load_mask(path: str | os.PathLike, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """A mask picture (white, ≥ 128 = hole; darker = known) as a float 1×1×H×W mask for images of ``shape``.

    Raises ConfigError naming the file and both sizes when the picture is not the images' size, and
    DataError (from ``read_image``) when it cannot be read.
    """
    _, height, width = _spatial(shape)
    picture = read_image(path, channels=1)  # colour pictures are read through their luma
    if tuple(picture.shape[1:]) != (height, width):
        raise ConfigError(f"mask {path}: is {picture.shape[1]}×{picture.shape[2]} (H×W) but the images are "
                          f"{height}×{width}; make the mask the images' size")
    mask = (picture < 128).float().unsqueeze(0)
    if mask.sum() == 0:
        raise ConfigError(f"mask {path}: is white everywhere, so nothing is known to inpaint from")
    return mask


def parse_mask(spec: str, shape: tuple[int, ...] | torch.Size, *, seed: int = 0) -> torch.Tensor:
    """The CLI's mask option: ``KIND`` or ``KIND:SIZE`` (e.g. ``center:0.4``), or a path to a mask picture.

    Returns a float mask N×1×H×W (a picture's mask is repeated for every image).
    """
    text = str(spec).strip()
    kind, _, size_text = text.partition(":")
    if kind in MASK_KINDS:
        try:
            size = float(size_text) if size_text else DEFAULT_SIZE
        except ValueError:
            raise ConfigError(f"mask {text!r}: the size after ':' must be a number, e.g. {kind}:0.4") from None
        return make_mask(kind, shape, size=size, seed=seed)
    path = Path(text).expanduser()
    if path.suffix or os.sep in text or path.exists():
        if not path.is_file():
            raise ConfigError(f"mask {text}: file not found (give a mask picture, white = hole, or one of {', '.join(MASK_KINDS)})")
        n, _, _ = _spatial(shape)
        return load_mask(path, shape).expand(n, -1, -1, -1).clone()
    raise ConfigError(f"unknown mask {text!r}: expected one of {', '.join(MASK_KINDS)} (optionally KIND:SIZE) "
                      "or a path to a mask picture (white = hole)")
