"""Label-scarce subsets: exactly k labelled images of every class, chosen by a seed.

    few, rest = split_per_class(train, 10, seed=0)     # 10 images a class, and everything else
    few = k_per_class(train, 10, seed=0)               # the same 10 a class

The choice depends on the seed and the labels only (not on the machine or the order of calls): each
class's images are ranked by one permutation of the whole set drawn from ``seed``, and the first k of
each class are kept. So k = 10 and k = 50 with one seed are nested (the 10 are among the 50).
"""
from __future__ import annotations

import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError


def per_class_indices(labels: torch.Tensor, k: int, *, seed: int, num_classes: int | None = None,
                      classes: tuple[str, ...] = (), what: str = "the dataset") -> torch.Tensor:
    """Sorted indices of exactly ``k`` items of each class 0..num_classes−1 (default: up to the largest label).

    A class holding fewer than ``k`` items is a DataError naming it and its count.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"k must be an integer >= 1 (images per class), got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise DataError(f"seed must be an integer >= 0, got {seed!r}")
    labels = torch.as_tensor(labels).reshape(-1).cpu()
    if labels.numel() == 0:
        raise DataError(f"{what} holds no labelled items")
    if num_classes is None:
        num_classes = max(len(classes), int(labels.max()) + 1)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    shuffled = labels[order]
    chosen = []
    for label in range(num_classes):
        members = order[shuffled == label]
        if len(members) < k:
            name = f" ({classes[label]!r})" if label < len(classes) else ""
            raise DataError(f"k={k} images per class, but class {label}{name} of {what} holds only {len(members)}; "
                            f"use k <= {len(members)}")
        chosen.append(members[:k])
    return torch.cat(chosen).sort().values


def split_per_class(dataset: Dataset, k: int, *, seed: int) -> tuple[Dataset, Dataset]:
    """(exactly ``k`` images of every class, the rest of ``dataset``), chosen by ``seed``; order kept."""
    if dataset.labels is None:
        raise DataError(f"dataset {dataset.name!r} has no labels; k images per class needs labelled data")
    chosen = per_class_indices(dataset.labels, k, seed=seed, classes=dataset.classes, what=f"dataset {dataset.name!r}")
    keep = torch.zeros(len(dataset), dtype=torch.bool)
    keep[chosen] = True
    return dataset.subset(keep.nonzero().squeeze(1)), dataset.subset((~keep).nonzero().squeeze(1))


def k_per_class(dataset: Dataset, k: int, *, seed: int) -> Dataset:
    """Exactly ``k`` images of every class of ``dataset``, chosen by ``seed`` (see the module's docstring)."""
    return split_per_class(dataset, k, seed=seed)[0]


__all__ = ["k_per_class", "per_class_indices", "split_per_class"]
