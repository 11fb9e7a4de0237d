"""How steadily a run trained, read from its metrics.csv (and events.log): ``training_stability``."""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Any

from genlab.io.plots import read_metrics_csv

PREFERRED_LOSSES = ("vae/loss", "G/loss", "D/loss")  # the headline loss of a run, in this order
GAN_PROBABILITIES = ("D/real_prob", "D/fake_prob")


def training_stability(csv_path: str | os.PathLike) -> dict[str, Any]:
    """How steadily a run trained, from its metrics.csv, over the LAST HALF of the logged rows
    (after the initial descent, where a healthy run has settled):

    - ``cv``: coefficient of variation std/|mean| of each ``*/loss`` column (population std).
      Scale-free, so a VAE's loss in nats and a GAN's in logits can be set side by side; it
      grows with noise and with drift. Undefined (NaN) for a loss whose mean is ~0.
    - ``oscillation``: the fraction of consecutive first differences that change sign. 0 for a
      monotone curve, about 2/3 for independent noise around a level, near 1 for a see-saw.
      (Rows are means over ``log_every`` steps, so this is oscillation at that resolution.)
    - GANs: mean and std of D(x) and D(G(z)) as probabilities ("D/real_prob", "D/fake_prob"),
      and their gap mean D(x) − mean D(G(z)): 0 at the game's equilibrium (both 1/2), near 1
      when D wins outright and G's gradient vanishes.
    - ``recoveries``: divergence recoveries the loop logged in events.log.

    ``main_loss`` names the headline column ("vae/loss", else "G/loss", else "D/loss").
    """
    path = Path(csv_path)
    columns = read_metrics_csv(path)
    rows = len(next(iter(columns.values()), []))
    losses = [name for name in columns if name.endswith("/loss")]
    main = next((name for name in PREFERRED_LOSSES if name in losses), losses[0] if losses else None)
    result: dict[str, Any] = {"rows": rows, "main_loss": main, "losses": {}}
    for name in losses:
        values = _last_half(columns[name])
        result["losses"][name] = {"cv": _coefficient_of_variation(values), "oscillation": _oscillation(values),
                                  "mean": _mean(values)}
    for name in GAN_PROBABILITIES:
        if name in columns:
            values = _last_half(columns[name])
            result[name] = {"mean": _mean(values), "std": _std(values)}
    if all(name in result for name in GAN_PROBABILITIES):
        result["d_gap"] = result["D/real_prob"]["mean"] - result["D/fake_prob"]["mean"]
    events = path.parent / "events.log"
    result["recoveries"] = sum(1 for line in events.read_text().splitlines() if line.strip()) if events.is_file() else 0
    return result


def _last_half(values: list[float]) -> list[float]:
    return [v for v in values[len(values) // 2:] if math.isfinite(v)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _std(values: list[float]) -> float:
    if not values:
        return math.nan
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _coefficient_of_variation(values: list[float]) -> float:
    mean = _mean(values)
    return _std(values) / abs(mean) if len(values) >= 2 and abs(mean) > 1e-8 else math.nan


def _oscillation(values: list[float]) -> float:
    signs = [1 if b > a else -1 for a, b in itertools.pairwise(values) if b != a]
    if len(signs) < 2:
        return math.nan
    return sum(1 for s, t in itertools.pairwise(signs) if s != t) / (len(signs) - 1)


__all__ = ["GAN_PROBABILITIES", "PREFERRED_LOSSES", "training_stability"]
