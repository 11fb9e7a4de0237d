"""Unpaired domains for image-to-image translation (CycleGAN): two sets of images, A and B, with no pairing.

A domain is named by a spec:

- ``fashion-mnist:sneaker`` — one class of a labelled set (a dataset name, folder or .npz), by name (case,
  hyphens and spaces do not count: ``ankle-boot`` is "Ankle boot") or by index (``fashion-mnist:7``);
- ``fashion-mnist``, ``path/to/folder`` or ``data.npz`` — every image of a set (labels, if any, dropped).

``unpaired(a, b)`` puts two domains in one ``Dataset`` the training loop can draw from: domain B as the
images, domain A as the ``sources``, both as long as the larger domain. The shorter one is repeated in
shuffled passes (seeded), so every image of it is used as often as any other. The pairing this makes is
arbitrary and no loss uses it: CycleGAN's losses treat each domain on its own.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from genlab.data.dataset import Dataset
from genlab.data.registry import DATASETS, load_dataset
from genlab.errors import DataError


def class_key(name: str) -> str:
    """How class names are compared: case, hyphens, underscores and repeated spaces do not count (the rule of
    ``genlab.tools.editing``, which the data layer cannot import)."""
    return " ".join(name.replace("-", " ").replace("_", " ").casefold().split())


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"fashion-mnist:sneaker"`` → ("fashion-mnist", "sneaker"); a dataset name or existing path alone → (it, None)."""
    text = str(spec).strip()
    if not text:
        raise DataError("a domain must be a dataset name, folder or .npz, optionally with :CLASS (e.g. fashion-mnist:sneaker)")
    if text in DATASETS or Path(text).expanduser().exists():
        return text, None
    source, colon, wanted = text.rpartition(":")
    if not colon or not source or not wanted.strip():
        return text, None  # load_dataset says what is wrong with it
    return source, wanted.strip()


def select_class(dataset: Dataset, wanted: str, spec: str) -> Dataset:
    """The images of class ``wanted`` (a name or an index) of ``dataset``, without labels."""
    if dataset.labels is None or not dataset.classes:
        raise DataError(f"domain {spec!r}: {dataset.name!r} has no classes to choose from; give the set alone, "
                        "or a folder with one sub-folder per class")
    if wanted.isdigit():
        index = int(wanted)
        if index >= len(dataset.classes):
            raise DataError(f"domain {spec!r}: class {index} is out of range, {dataset.name!r} has {len(dataset.classes)} "
                            f"classes ({', '.join(dataset.classes)})")
    else:
        keys = [class_key(name) for name in dataset.classes]
        if class_key(wanted) not in keys:
            raise DataError(f"domain {spec!r}: unknown class {wanted!r}; the classes of {dataset.name!r} are: "
                            f"{', '.join(dataset.classes)}")
        index = keys.index(class_key(wanted))
    chosen = (dataset.labels == index).nonzero().flatten()
    if len(chosen) == 0:
        raise DataError(f"domain {spec!r}: no images of class {dataset.classes[index]!r} in {dataset.name!r}; "
                        "a domain needs at least one image")
    return Dataset(dataset.images[chosen], name=f"{dataset.name}:{dataset.classes[index]}")


def load_domain(spec: str | os.PathLike[str], split: str = "train", image_size: int | tuple[int, int] | None = None,
                download: bool = True) -> Dataset:
    """The images of one domain (see the module docstring), without labels."""
    source, wanted = split_spec(str(spec))
    dataset = load_dataset(source, split=split, image_size=image_size, download=download)
    if dataset.is_points:
        raise DataError(f"domain {str(spec)!r}: {dataset.name!r} holds points, not images")
    if wanted is not None:
        return select_class(dataset, wanted, str(spec))
    if len(dataset) == 0:
        raise DataError(f"domain {str(spec)!r}: holds no images; a domain needs at least one")
    return Dataset(dataset.images, name=dataset.name)


def unpaired(a: Dataset, b: Dataset, seed: int = 0, name: str | None = None) -> Dataset:
    """Domains ``a`` and ``b`` as one dataset: B as the images, A as the sources, the shorter repeated in
    shuffled passes to the larger one's length (``seed`` fixes the shuffle)."""
    for domain, letter in ((a, "A"), (b, "B")):
        if domain.is_points or len(domain) == 0:
            raise DataError(f"domain {letter} ({domain.name!r}) holds no images; a domain needs at least one")
    if a.images.shape[2:] != b.images.shape[2:]:
        raise DataError(f"domain A ({a.name!r}) has {a.images.shape[2]}×{a.images.shape[3]} images and domain B "
                        f"({b.name!r}) {b.images.shape[2]}×{b.images.shape[3]}; give both one size (--image-size N)")
    count = max(len(a), len(b))
    generator = torch.Generator().manual_seed(seed)
    images_a, images_b = (_repeated(d.images, count, generator) for d in (a, b))
    return Dataset(images_b, name=name or f"{a.name} to {b.name}", sources=images_a)


def load_domains(spec_a: str, spec_b: str, split: str = "train", image_size: int | tuple[int, int] | None = None,
                 download: bool = True, seed: int = 0) -> Dataset:
    """``unpaired(load_domain(spec_a), load_domain(spec_b))``, named ``"A to B"`` after the two specs."""
    a = load_domain(spec_a, split, image_size, download)
    b = load_domain(spec_b, split, image_size, download)
    return unpaired(a, b, seed=seed, name=f"{spec_a} to {spec_b}")


def _repeated(images: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``images`` as they are when there are ``count``; else whole shuffled passes over them, cut at ``count``."""
    if len(images) == count:
        return images
    passes = -(-count // len(images))
    order = torch.cat([torch.randperm(len(images), generator=generator) for _ in range(passes)])[:count]
    return images[order]


__all__ = ["class_key", "load_domain", "load_domains", "select_class", "split_spec", "unpaired"]
