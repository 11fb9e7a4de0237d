"""What the training loop watches: running means of logged scalars, gradient norms, the diversity
of samples (a mode-collapse alarm) and non-finite values (divergence). Pure helpers; the callbacks
that write what they measure are in callbacks.py."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from genlab.data.dataset import Dataset
from genlab.data.toys import TOYS, mode_centers
from genlab.io.grids import save_image
from genlab.io.plots import plot_points


class RunningMeans:
    """Sums of logged scalars kept on the device; read back (one host sync) only when logging.

    ``latest`` holds each phase's values of its latest step, still on the device: a callback can
    keep them every step (e.g. to record the loss curve) without making the loop wait for them.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.latest: dict[str, dict[str, torch.Tensor]] = {}

    def add(self, phase: str, values: dict[str, torch.Tensor]) -> None:
        latest = self.latest[phase] = {}
        for key, value in values.items():
            name = f"{phase}/{key}"
            value = latest[key] = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def pop(self) -> dict[str, float]:
        if not self.sums:
            return {}
        names = list(self.sums)
        totals = torch.stack([self.sums[n] for n in names]).tolist()
        means = {n: total / self.counts[n] for n, total in zip(names, totals, strict=True)}
        self.sums, self.counts = {}, {}
        return means

    def all_finite(self) -> torch.Tensor:
        """A 0-dim bool tensor (no sync): are all sums finite?"""
        if not self.sums:
            return torch.tensor(True)
        return torch.stack(list(self.sums.values())).isfinite().all()

    def clear(self) -> None:
        self.sums, self.counts, self.latest = {}, {}, {}


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


def write_sample_picture(samples: torch.Tensor, path_stem: str | os.PathLike, dataset_name: str = "",
                         nrow: int | None = None) -> Path:
    """``path_stem``.png: a grid for images (``nrow`` per row), or for 2-D points a scatter plot over
    the dataset's mode centres when it is one of the toy mixtures."""
    if samples.dim() == 2:
        centers = mode_centers(dataset_name) if dataset_name in TOYS else None
        return plot_points(samples.cpu(), f"{path_stem}.png", centers=centers)
    return save_image(samples, f"{path_stem}.png", nrow=nrow, scale=2)
