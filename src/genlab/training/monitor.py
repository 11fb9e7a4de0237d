"""What the training loop watches: running means of logged scalars, the metrics log, gradient
norms, the diversity of samples (a mode-collapse alarm) and non-finite values (divergence)."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import torch

from genlab.data.dataset import Dataset
from genlab.data.toys import TOYS, mode_centers
from genlab.io.images import save_image
from genlab.io.plots import plot_points


class RunningMeans:
    """Sums of logged scalars kept on the device; read back (one host sync) only when logging."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, phase: str, values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            name = f"{phase}/{key}"
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def pop(self) -> dict[str, float]:
        if not self.sums:
            return {}
        names = list(self.sums)
        totals = torch.stack([self.sums[n] for n in names]).tolist()
        means = {n: total / self.counts[n] for n, total in zip(names, totals)}
        self.clear()
        return means

    def all_finite(self) -> torch.Tensor:
        """A 0-dim bool tensor (no sync): are all sums finite?"""
        if not self.sums:
            return torch.tensor(True)
        return torch.stack(list(self.sums.values())).isfinite().all()

    def clear(self) -> None:
        self.sums, self.counts = {}, {}


def parameters_finite(model: torch.nn.Module) -> torch.Tensor:
    """A 0-dim bool tensor (no sync): are all parameters and buffers finite?"""
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    return torch.stack([t.isfinite().all() for t in tensors]).all()


def gradient_norm(parameters: list[torch.Tensor]) -> torch.Tensor:
    """The global L2 norm of the gradients of ``parameters`` (0-dim tensor, no sync)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def mean_pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between distinct items of a batch (flattened): a diversity measure.

    A generator that has collapsed onto a few outputs scores far below the data it imitates
    (the "mode collapse" symptom; cf. the diversity checks of Salimans et al. 2016 §3.2).
    """
    flat = x.flatten(1).float()
    n = flat.shape[0]
    if n < 2:
        raise ValueError("mean_pairwise_distance needs at least two items")
    return torch.cdist(flat, flat).sum() / (n * (n - 1))


class DiversityAlarm:
    """Mode-collapse alarm: the diversity of samples (mean pairwise distance) against the data's."""

    def __init__(self, dataset: Dataset, threshold: float, size: int = 256) -> None:
        index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:size]
        self.data_diversity = mean_pairwise_distance(dataset.float_images(index)).item()
        self.threshold = threshold

    def ratio(self, samples: torch.Tensor) -> torch.Tensor:
        return mean_pairwise_distance(samples) / max(self.data_diversity, 1e-12)


METRICS_FILE = "metrics.csv"


class MetricsLog:
    """metrics.csv (one row per log interval) and TensorBoard scalars when tensorboard is installed."""

    def __init__(self, run_dir: Path, *, resume_step: int | None, tensorboard: bool) -> None:
        self.path = run_dir / METRICS_FILE
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.exists():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                self.rows = list(reader)
        self.truncate_after(resume_step or 0)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they will be logged again after a resume or recovery)."""
        self.rows = [r for r in self.rows if r.get("step", "").isdigit() and int(r["step"]) <= step]
        self._rewrite()

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)

    def write(self, row: dict[str, Any]) -> None:
        row = {k: (f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in row.items()}
        self.rows.append(row)
        if any(k not in self.columns for k in row):  # a phase that logs for the first time
            self.columns += [k for k in row if k not in self.columns]
            self._rewrite()
        else:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, self.columns).writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self.writer.add_scalar(key, float(value), int(row["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def write_sample_picture(samples: torch.Tensor, path_stem: str | os.PathLike, dataset_name: str = "",
                         nrow: int | None = None) -> Path:
    """``path_stem``.png: a grid for images (``nrow`` per row), or for 2-D points a scatter plot over
    the dataset's mode centres when it is one of the toy mixtures."""
    if samples.dim() == 2:
        centers = mode_centers(dataset_name) if dataset_name in TOYS else None
        return plot_points(samples.cpu(), f"{path_stem}.png", centers=centers)
    return save_image(samples, f"{path_stem}.png", nrow=nrow, scale=2)
