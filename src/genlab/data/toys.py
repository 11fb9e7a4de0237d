"""The 2-D Gaussian mixtures used to measure mode collapse: ``ring8`` and ``grid25``.

Both are from VEEGAN (Srivastava et al. 2017, §5.1 "Synthetic dataset") and were reused by
PacGAN (Lin et al. 2018, §5.1, Table 1):

- ``ring8``: 8 Gaussians with means evenly spaced on a circle of radius 2, σ = 0.02.
- ``grid25``: 25 Gaussians with means on the 5×5 grid {−4, −2, 0, 2, 4}², σ = 0.05.

Every component has weight 1/K and covariance σ²·I. (PacGAN's code draws its ring at radius 1
with σ = 0.01; the ratio σ/spacing, which is all the metric sees, is the same.)

    from genlab.data.toys import make_toy, mode_centers, mode_std
    points = make_toy("ring8", 2500, seed=0)    # Dataset of float32 N×2 points, labels = mode index
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError


@dataclass(frozen=True)
class ToyMixture:
    """An equal-weight mixture of isotropic 2-D Gaussians."""

    name: str
    description: str
    centers: tuple[tuple[float, float], ...]
    std: float

    @property
    def num_modes(self) -> int:
        return len(self.centers)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(f"mode {k}" for k in range(self.num_modes))


def _ring(num_modes: int, radius: float) -> tuple[tuple[float, float], ...]:
    angles = [2 * math.pi * k / num_modes for k in range(num_modes)]
    return tuple((radius * math.cos(a), radius * math.sin(a)) for a in angles)


def _grid(values: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    return tuple((x, y) for x in values for y in values)


TOYS: dict[str, ToyMixture] = {
    toy.name: toy
    for toy in (
        ToyMixture("ring8", "8 Gaussians on a circle of radius 2, σ = 0.02 (VEEGAN §5.1; PacGAN §5.1)",
                   _ring(8, 2.0), 0.02),
        ToyMixture("grid25", "25 Gaussians on a 5×5 grid with spacing 2, σ = 0.05 (VEEGAN §5.1; PacGAN §5.1)",
                   _grid((-4.0, -2.0, 0.0, 2.0, 4.0)), 0.05),
    )
}


def toy_spec(name: str) -> ToyMixture:
    if name not in TOYS:
        raise DataError(f"unknown toy dataset {name!r}, expected one of {', '.join(TOYS)}")
    return TOYS[name]


def mode_centers(name: str) -> torch.Tensor:
    """The K mixture means of toy ``name`` as a float32 K×2 tensor (row k = "mode k")."""
    return torch.tensor(toy_spec(name).centers, dtype=torch.float32)


def mode_std(name: str) -> float:
    """The standard deviation σ of every component of toy ``name`` (covariance σ²·I)."""
    return toy_spec(name).std


def make_toy(name: str, n: int, seed: int = 0) -> Dataset:
    """``n`` points drawn from toy ``name``: float32 N×2, labels = the component each came from.

    The same (name, n, seed) always gives the same points; the global RNG is not touched.
    """
    spec = toy_spec(name)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"make_toy: n must be an int >= 0, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(spec.num_modes, (n,), generator=generator)  # equal weights 1/K
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    points = torch.tensor(spec.centers, dtype=torch.float64)[labels] + spec.std * noise
    return Dataset(points.to(torch.float32), labels, spec.classes, spec.name)
