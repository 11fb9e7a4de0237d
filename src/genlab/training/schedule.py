"""Learning-rate annealing as a function of the run's progress (so a resumed run follows the same curve)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch

from genlab.config import TrainConfig
from genlab.training.sampler import BatchSampler


class LRSchedule:
    """Anneals every optimizer's rate from its initial value to 0 over the end of the run.

    The factor is a function of progress only, so a resumed run follows the same curve: progress is
    the largest of batches drawn / (epochs × batches per epoch), step / max_steps and seconds /
    max_seconds, i.e. how close the run is to whichever limit stops it. "linear" is 1 − t; "cosine" is (1 + cos πt) / 2
    (SGDR, Loshchilov & Hutter 2017, Eq. 5 with η_min = 0), with t going 0 → 1 from
    ``lr_decay_start`` to the end. Each param group keeps its base rate as ``initial_lr`` (saved
    with the optimizer state); the divergence guard lowers that base.
    """

    def __init__(self, config: TrainConfig, optimizers: dict[str, torch.optim.Optimizer], sampler: BatchSampler) -> None:
        self.kind, self.start = config.lr_schedule, config.lr_decay_start
        self.epochs, self.max_steps, self.max_seconds, self.sampler = config.epochs, config.max_steps, config.max_seconds, sampler
        self.optimizers = optimizers
        for group in self.groups():
            group.setdefault("initial_lr", group["lr"])

    def groups(self) -> Iterator[dict[str, Any]]:
        """Looked up each time: restoring a checkpoint replaces the optimizers' param-group dicts."""
        for optimizer in self.optimizers.values():
            yield from optimizer.param_groups

    def factor(self, step: int, seconds: float = 0.0) -> float:
        if self.kind == "constant":
            return 1.0
        sampler = self.sampler
        progress = sampler.batches_drawn / (self.epochs * sampler.batches_per_epoch)
        if self.max_steps:
            progress = max(progress, step / self.max_steps)
        if self.max_seconds:
            progress = max(progress, seconds / self.max_seconds)
        t = min(1.0, max(0.0, (progress - self.start) / (1.0 - self.start)))
        return 1.0 - t if self.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))

    def apply(self, step: int, seconds: float = 0.0) -> None:
        if self.kind == "constant":
            return
        factor = self.factor(step, seconds)
        for group in self.groups():
            group["lr"] = group["initial_lr"] * factor

    def scale(self, factor: float) -> None:
        """Multiply the base and current rates (the divergence guard's "lower the learning rates")."""
        for group in self.groups():
            group["initial_lr"] *= factor
            group["lr"] *= factor
