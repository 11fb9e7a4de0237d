"""Mode coverage on a Gaussian mixture with known means: the VEEGAN / PacGAN mode-collapse protocol."""
from __future__ import annotations

import math
from typing import Any

import torch

from genlab.errors import ConfigError

PAPER_NUM_SAMPLES = 2500  # generated samples scored per trained model (VEEGAN §5.1; PacGAN §5.1)


def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, std: float, *, quality_sigmas: float = 3.0,
                  min_per_mode: int = 1) -> dict[str, Any]:
    """How many modes of an equal-weight isotropic Gaussian mixture ``samples`` cover, and how well.

    The rule (VEEGAN, Srivastava et al. 2017, §5.1; the same in PacGAN, Lin et al. 2018, §5.1
    and its ``MetricLogger`` in github.com/fjxmlzn/PacGAN, synthetic_data_experiments/PacGAN/pacgan/extensions.py):

    1. Each sample is assigned to its nearest centre (Euclidean distance; all σ are equal, so this
       is also the nearest in σ units as PacGAN's code measures it).
    2. A sample is *high quality* if that distance is < ``quality_sigmas``·σ (3σ in both papers).
       Non-finite samples (a diverged generator) are never high quality.
    3. A mode is *captured* if at least ``min_per_mode`` high-quality samples are assigned to it.
       Both papers use 1: VEEGAN §5.1 counts "the number of mixture components whose mean is
       nearest to at least one high quality sample"; PacGAN's code counts the modes with a non-zero
       number of high-quality samples (``numpy.nonzero(detail_of_coverage)``).
    4. *Reverse KL* (PacGAN §5.1, Table 1): with q_k the share of the high-quality samples assigned
       to mode k and p_k = 1/K the true mixture weights, KL(q ‖ p) = Σ_k q_k log(q_k / p_k), in nats
       (0·log 0 = 0). "Reverse" because the generated distribution comes first: it is finite when
       modes are missed (all mass on one mode gives log K) and 0 only when q is uniform. NaN when
       no sample is high quality (q is undefined). PacGAN's released MetricLogger builds the same
       histogram q (``detail_of_coverage``) but logs its JSD and entropy; the KL is the paper's.

    The papers score ``PAPER_NUM_SAMPLES`` = 2,500 samples per trained model; modes captured grows
    with the number of samples, so compare at that size.

    ``samples``: N×D, ``centers``: K×D (D = 2 for the papers' toys), ``std``: σ > 0 of every component.
    Returns ``modes_captured``, ``num_modes`` (K), ``high_quality_fraction`` (in [0, 1]),
    ``reverse_kl`` (nats), ``mode_counts`` (high-quality samples per mode) and ``num_samples``.
    """
    samples, centers, std = _check_inputs(samples, centers, std, quality_sigmas, min_per_mode)
    distances = torch.cdist(samples, centers, compute_mode="donot_use_mm_for_euclid_dist")  # N×K, exact
    distances = torch.where(torch.isnan(distances), torch.inf, distances)
    nearest_distance, nearest_mode = distances.min(dim=1)
    high_quality = nearest_distance < quality_sigmas * std
    counts = torch.bincount(nearest_mode[high_quality], minlength=len(centers))
    num_high_quality = int(counts.sum())
    return {
        "modes_captured": int((counts >= min_per_mode).sum()),
        "num_modes": len(centers),
        "high_quality_fraction": num_high_quality / len(samples) if len(samples) else float("nan"),
        "reverse_kl": _kl_to_uniform(counts) if num_high_quality else float("nan"),
        "mode_counts": counts.tolist(),
        "num_samples": len(samples),
    }


def _kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(q ‖ uniform) for q = counts / counts.sum(), in nats."""
    q = counts.double() / counts.sum()
    q = q[q > 0]
    return float((q * (q * len(counts)).log()).sum().clamp_min(0.0))  # clamp: rounding below 0


def _check_inputs(samples: Any, centers: Any, std: float, quality_sigmas: float,
                  min_per_mode: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    samples = torch.as_tensor(samples).detach().cpu().double()
    centers = torch.as_tensor(centers).detach().cpu().double()
    if centers.dim() != 2 or len(centers) == 0:
        raise ConfigError(f"mode_coverage: centers must be K×D with K >= 1, got shape {tuple(centers.shape)}")
    if samples.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ConfigError(f"mode_coverage: samples must be N×{centers.shape[1]} like the centers, "
                          f"got shape {tuple(samples.shape)}")
    if not torch.isfinite(centers).all():
        raise ConfigError("mode_coverage: centers must be finite, found NaN or inf")
    try:
        sigma = float(std)
    except (TypeError, ValueError):
        sigma = float("nan")
    if isinstance(std, bool) or not math.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"mode_coverage: std must be a finite number > 0, got {std!r}")
    if not math.isfinite(quality_sigmas) or quality_sigmas <= 0:
        raise ConfigError(f"mode_coverage: quality_sigmas must be a finite number > 0, got {quality_sigmas!r}")
    if isinstance(min_per_mode, bool) or not isinstance(min_per_mode, int) or min_per_mode < 1:
        raise ConfigError(f"mode_coverage: min_per_mode must be an int >= 1, got {min_per_mode!r}")
    return samples, centers, sigma
