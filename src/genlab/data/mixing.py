"""Real and synthetic images mixed at a given ratio: a ``torch.utils.data.Dataset`` for any PyTorch training loop.

    mixed = MixedDataset(few_labels, model, ratio=1.0, fresh=True, seed=0)     # from a conditional model
    mixed = MixedDataset(few_labels, genlab.load_dataset("synth.npz"), ratio=4)  # from a fixed pool
    loader = torch.utils.data.DataLoader(mixed, batch_size=64, shuffle=True)
    for epoch in range(epochs):
        mixed.set_epoch(epoch)          # fresh=True: new synthetic images this epoch (as DistributedSampler's)
        for images, labels in loader:   # float32 N×C×H×W in [0, 1], int64 N
            ...

Items 0..R−1 are the R real images, items R..R+S−1 the S = round(ratio·R) synthetic ones (ratio is
synthetic : real), so a shuffled epoch sees exactly that mix. Synthetic images come from a conditional
model (anything with genlab's ``sample(n, *, seed, labels, truncation)`` and ``config.num_classes``: a
conditional GAN or VAE) or from a pool (a labelled Dataset, such as ``genlab augment``'s output). With
``fresh`` each ``set_epoch(e)`` draws a new set (the model: new samples; a pool: a new choice from it),
seeded by (seed, e); without it the set drawn first is kept. A model's images are stored as uint8 like every
dataset's (what ``genlab augment`` would write), and labelled with the class each was drawn for.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.data.limits import MAX_ITEMS
from genlab.errors import ConfigError, DataError

SyntheticLabels = Literal["uniform", "real"]


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] → uint8 (rounded), on the CPU: how samples are stored, on disk or in memory."""
    return images.detach().float().cpu().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def conditional_classes(model: Any) -> int:
    """How many classes a model is conditioned on (``config.num_classes``); 0 for an unconditional one."""
    return int(getattr(getattr(model, "config", None), "num_classes", 0) or 0)


def draw_samples(model: Any, labels: torch.Tensor, *, seed: int, truncation: float | None = None,
                 batch_size: int = 500) -> torch.Tensor:
    """uint8 images of the classes ``labels`` from ``model``, ``batch_size`` at a time; the chunks' seeds come
    from ``seed``, so the same seed and labels give the same images."""
    chunks = range(0, len(labels), batch_size)
    seeds = np.random.SeedSequence(seed).generate_state(max(len(chunks), 1)).tolist()
    images = [to_uint8_images(model.sample(len(labels[start:start + batch_size]), seed=chunk_seed,
                                           labels=labels[start:start + batch_size], truncation=truncation))
              for start, chunk_seed in zip(chunks, seeds, strict=False)]
    return torch.cat(images) if images else torch.empty(0, dtype=torch.uint8)


class MixedDataset(torch.utils.data.Dataset):
    """``real`` images plus ``round(ratio · len(real))`` synthetic ones; each item (float32 C×H×W image in
    [0, 1], int64 label). ``synthetic``: a conditional model or a labelled pool (see the module's docstring).

    ``labels`` (model only): "uniform" draws each class equally often (0, 1, …, K−1, 0, …); "real" follows the
    real labels in turn, so the mix keeps the real class balance. ``transform``, if given, is applied to every
    image (real and synthetic) each time it is read, e.g. random flips and shifts.
    """

    def __init__(self, real: Dataset, synthetic: Any, *, ratio: float = 1.0, fresh: bool = False, seed: int = 0,
                 labels: SyntheticLabels = "uniform", truncation: float | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, batch_size: int = 500) -> None:
        if real.labels is None or real.is_points:
            raise DataError(f"real dataset {real.name!r}: expected labelled images, to mix with labelled synthetic ones")
        if not (isinstance(ratio, int | float) and math.isfinite(ratio) and ratio >= 0):
            raise ConfigError(f"ratio (synthetic : real) must be a finite number >= 0, got {ratio!r}")
        if labels not in ("uniform", "real"):
            raise ConfigError(f"labels must be 'uniform' or 'real', got {labels!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.real, self.ratio, self.fresh, self.seed = real, float(ratio), bool(fresh), int(seed)
        self.transform, self.truncation, self.batch_size, self.label_mode = transform, truncation, batch_size, labels
        self.num_real = len(real)
        self.num_synthetic = round(self.ratio * self.num_real)
        if self.num_synthetic > MAX_ITEMS:
            raise ConfigError(f"ratio {ratio} asks for {self.num_synthetic:,} synthetic images, more than genlab's bound of "
                              f"{MAX_ITEMS:,} per dataset")
        self.num_classes = max(real.num_classes, int(real.labels.max()) + 1)
        self.pool = synthetic if isinstance(synthetic, Dataset) else None
        self.model = None if self.pool is not None else synthetic
        self._check_source()
        self.epoch: int | None = None
        self.synthetic_images = torch.empty(0, *real.image_shape, dtype=torch.uint8)
        self.synthetic_labels = torch.empty(0, dtype=torch.int64)
        self._draw(0)

    def _check_source(self) -> None:
        shape = "×".join(map(str, self.real.image_shape))
        if self.pool is not None:
            pool = self.pool
            if pool.labels is None or pool.is_points:
                raise DataError(f"synthetic pool {pool.name!r}: expected labelled images")
            if pool.image_shape != self.real.image_shape:
                raise DataError(f"synthetic pool {pool.name!r} holds {'×'.join(map(str, pool.image_shape))} images, the real "
                                f"data {shape}; expected the same shape")
            if len(pool) and int(pool.labels.max()) >= self.num_classes:
                raise DataError(f"synthetic pool {pool.name!r} has label {int(pool.labels.max())}, but the real data has "
                                f"{self.num_classes} classes")
            if len(pool) < self.num_synthetic:
                raise DataError(f"synthetic pool {pool.name!r} holds {len(pool)} images; ratio {self.ratio:g} of "
                                f"{self.num_real} real images needs {self.num_synthetic}: lower the ratio or make more")
            return
        if not callable(getattr(self.model, "sample", None)):
            raise ConfigError(f"synthetic must be a labelled Dataset or a conditional model with sample(); got "
                              f"{type(self.model).__name__}")
        classes = conditional_classes(self.model)
        if not classes:
            raise ConfigError(f"this {getattr(self.model, 'kind', 'model')} model is unconditional: its samples have no "
                              "labels to mix with labelled data; use a class-conditional model (num_classes > 0)")
        if classes < self.num_classes:
            raise ConfigError(f"the model draws {classes} classes but the real data has {self.num_classes}")
        if tuple(getattr(self.model, "image_shape", self.real.image_shape)) != self.real.image_shape:
            raise ConfigError(f"the model makes {'×'.join(map(str, self.model.image_shape))} images, the real data "
                              f"{shape}; expected the same shape")

    def set_epoch(self, epoch: int) -> None:
        """Call at the start of each epoch: with ``fresh``, draws this epoch's synthetic images (seeded by
        (seed, epoch)); without it, nothing changes."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"epoch must be an integer >= 0, got {epoch!r}")
        if self.fresh and epoch != self.epoch:
            self._draw(epoch)

    def _draw(self, epoch: int) -> None:
        seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
        n = self.num_synthetic
        if self.pool is not None:
            chosen = torch.randperm(len(self.pool), generator=torch.Generator().manual_seed(seed))[:n]
            self.synthetic_images, self.synthetic_labels = self.pool.images[chosen], self.pool.labels[chosen]
        else:
            if self.model is None:
                raise ConfigError("this copy of the MixedDataset holds no model (copies made for DataLoader workers leave it "
                                  "out): call set_epoch on the dataset you built")
            if self.label_mode == "uniform":
                labels = torch.arange(n, dtype=torch.int64) % self.num_classes
            else:
                labels = self.real.labels[torch.arange(n) % self.num_real]
            self.synthetic_images = draw_samples(self.model, labels, seed=seed, truncation=self.truncation,
                                                 batch_size=self.batch_size)
            self.synthetic_labels = labels
        self.epoch = epoch

    def __getstate__(self) -> dict[str, Any]:
        """What a DataLoader worker gets: the images drawn so far, not the model (which may live on a GPU). Workers are
        made afresh each epoch unless ``persistent_workers``, with which they would keep the first epoch's images."""
        return {**self.__dict__, "model": None}

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def is_synthetic(self, index: int) -> bool:
        return index >= self.num_real

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        if index < self.num_real:
            image, label = self.real.images[index], self.real.labels[index]
        else:
            image, label = self.synthetic_images[index - self.num_real], self.synthetic_labels[index - self.num_real]
        image = image.float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return image, label.clone()

    def __repr__(self) -> str:
        source = f"pool {self.pool.name!r}" if self.pool is not None else f"a {getattr(self.model, 'kind', 'model')} model"
        return (f"MixedDataset({self.num_real} real from {self.real.name!r} + {self.num_synthetic} synthetic from {source}, "
                f"ratio {self.ratio:g}, {'fresh each epoch' if self.fresh else 'fixed'})")


__all__ = ["MixedDataset", "conditional_classes", "draw_samples", "to_uint8_images"]
