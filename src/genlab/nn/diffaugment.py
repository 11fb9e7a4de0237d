"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same kind of random, differentiable transform T is applied to every image D sees, real and
fake: D is trained on T(x) and T(G(z)), and G through D(T(G(z))). Since real and fake are
augmented alike, the augmentations do not leak into G's samples; since T is differentiable, G
still gets gradients. D overfits a small training set much later. Images are in [-1, 1].

    policy "translation,cutout,color"  (any subset, in any order; "" = no augmentation)
"""
from __future__ import annotations

import torch

from genlab.errors import ConfigError

TRANSLATION_RATIO = 1 / 8  # shift by up to 1/8 of the image size, as in the paper's code
CUTOUT_RATIO = 1 / 2  # zero a square of half the image size


def _uniform(x: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) of ``shape`` on x's device; from ``generator`` (CPU) when given, else the global RNG."""
    if generator is None:
        return torch.rand(shape, device=x.device, dtype=x.dtype)
    return torch.rand(shape, generator=generator).to(x)


def _integers(x: torch.Tensor, low: int, high: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` integers in [low, high) on x's device."""
    if generator is None:
        return torch.randint(low, high, (n,), device=x.device)
    return torch.randint(low, high, (n,), generator=generator).to(x.device)


def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add one value in [−0.5, 0.5) per image."""
    return x + (_uniform(x, (x.shape[0], 1, 1, 1), generator) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each pixel's distance from its grey (channel mean) by a factor in [0, 2) per image."""
    grey = x.mean(dim=1, keepdim=True)
    return (x - grey) * (_uniform(x, (x.shape[0], 1, 1, 1), generator) * 2.0) + grey


def contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's distance from its mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, (x.shape[0], 1, 1, 1), generator) + 0.5) + mean


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return contrast(saturation(brightness(x, generator), generator), generator)


def translation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by up to 1/8 of its size in each direction, filling with zeros."""
    n, _, height, width = x.shape
    max_dy, max_dx = round(height * TRANSLATION_RATIO), round(width * TRANSLATION_RATIO)
    dy = _integers(x, -max_dy, max_dy + 1, n, generator)
    dx = _integers(x, -max_dx, max_dx + 1, n, generator)
    rows = torch.arange(height, device=x.device)[None, :] - dy[:, None]  # the source row of each output row
    cols = torch.arange(width, device=x.device)[None, :] - dx[:, None]
    inside = (((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :])
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Indexing by (batch, rows, cols) around the channel slice gives N×H×W×C; back to N×C×H×W.
    shifted = x[batch, :, rows.clamp(0, height - 1)[:, :, None], cols.clamp(0, width - 1)[:, None, :]]
    return shifted.permute(0, 3, 1, 2) * inside[:, None].to(x.dtype)


def cutout(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one square of half the image size per image, centred anywhere (it may be clipped)."""
    n, _, height, width = x.shape
    size_y, size_x = round(height * CUTOUT_RATIO), round(width * CUTOUT_RATIO)
    top = _integers(x, 0, height, n, generator) - size_y // 2
    left = _integers(x, 0, width, n, generator) - size_x // 2
    rows = torch.arange(height, device=x.device)[None, :] - top[:, None]
    cols = torch.arange(width, device=x.device)[None, :] - left[:, None]
    hole = (((rows >= 0) & (rows < size_y))[:, :, None] & ((cols >= 0) & (cols < size_x))[:, None, :])
    return x * (~hole)[:, None].to(x.dtype)


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> list[str]:
    """"translation,cutout,color" → the names, checked; "" → []."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"diffaugment policy {policy!r}: unknown {', '.join(unknown)}; expected names from {', '.join(AUGMENTATIONS)}")
    return names


def diff_augment(x: torch.Tensor, policy: str = "translation,cutout,color",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the augmentations named in ``policy`` to images ``x`` (N×C×H×W, in [-1, 1]); differentiable in x."""
    names = parse_policy(policy)
    if names and x.dim() != 4:
        raise ConfigError(f"diffaugment needs images N×C×H×W, got shape {tuple(x.shape)}; it does not apply to point data")
    for name in names:
        x = AUGMENTATIONS[name](x, generator)
    return x
