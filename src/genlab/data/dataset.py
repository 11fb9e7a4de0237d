"""The one dataset type: images (or 2-D toy points) in memory as one tensor, drawn by tensor indexing."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """Images (uint8, N×C×H×W, CPU), optional int64 labels (N), class names, and a name.

    Training draws batches as ``images[index]`` (no DataLoader workers): the whole set
    lives in memory, optionally moved to the training device once.

    Toy datasets hold points instead: ``images`` is then float32 N×D (e.g. the 2-D mixtures
    used to measure mode collapse), and ``image_shape`` is (D,).

    Image-to-image translation trains on pairs: ``sources`` (uint8, N×C'×H×W, C' = 1 or 3) holds
    the input of each item, ``images`` its target, and a batch draws both with the same index (see
    ``genlab.data.pairs``, which makes them: paired tasks, your own pairs, or two unpaired domains).
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    classes: tuple[str, ...] = ()
    name: str = "unnamed"
    sources: torch.Tensor | None = None

    def __post_init__(self) -> None:
        is_images = self.images.dtype == torch.uint8 and self.images.dim() == 4
        is_points = self.images.dtype == torch.float32 and self.images.dim() == 2
        if not (is_images or is_points):
            raise DataError(
                f"dataset {self.name!r}: expected uint8 images N×C×H×W or float32 points N×D, "
                f"got {self.images.dtype} with shape {tuple(self.images.shape)}"
            )
        if is_images and self.images.shape[1] not in (1, 3):
            raise DataError(f"dataset {self.name!r}: expected 1 or 3 channels, got {self.images.shape[1]}")
        if self.labels is not None and (self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),)):
            raise DataError(
                f"dataset {self.name!r}: labels must be int64 of shape ({len(self.images)},), "
                f"got {self.labels.dtype} {tuple(self.labels.shape)}"
            )
        if self.sources is not None:
            sources = self.sources
            if not is_images or sources.dtype != torch.uint8 or sources.dim() != 4 or sources.shape[1] not in (1, 3) \
                    or sources.shape[0] != len(self.images) or sources.shape[2:] != self.images.shape[2:]:
                raise DataError(
                    f"dataset {self.name!r}: sources must be uint8 images N×C×H×W with 1 or 3 channels, as many and as "
                    f"large as the images {tuple(self.images.shape)}, got {sources.dtype} {tuple(sources.shape)}"
                )
        object.__setattr__(self, "classes", tuple(self.classes))

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) for images, (D,) for points."""
        return tuple(self.images.shape[1:])

    @property
    def is_points(self) -> bool:
        return self.images.dim() == 2

    @staticmethod
    def to_float(batch: torch.Tensor) -> torch.Tensor:
        """A batch as models take it: uint8 images → float in [0, 1]; points unchanged."""
        return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def source_shape(self) -> tuple[int, ...] | None:
        """(C', H, W) of the sources of a paired dataset; None for one without."""
        return None if self.sources is None else tuple(self.sources.shape[1:])

    def subset(self, index: torch.Tensor | slice | list[int]) -> Dataset:
        """A new dataset holding ``images[index]`` (and the matching labels and sources)."""
        labels = None if self.labels is None else self.labels[index]
        sources = None if self.sources is None else self.sources[index]
        return Dataset(self.images[index], labels, self.classes, self.name, sources)

    def float_sources(self, index: torch.Tensor | slice | list[int] | None = None) -> torch.Tensor:
        """The sources (inputs) of a paired dataset as float32 in [0, 1]."""
        if self.sources is None:
            raise DataError(f"dataset {self.name!r} holds no sources (input images); make pairs with genlab.data.pairs")
        sources = self.sources if index is None else self.sources[index]
        return sources.float().div_(255.0)

    def float_images(self, index: torch.Tensor | slice | list[int] | None = None) -> torch.Tensor:
        """Images as float32 in [0, 1] (the form every public model API takes); points as they are."""
        images = self.images if index is None else self.images[index]
        return images.float().div_(255.0) if images.dtype == torch.uint8 else images.clone()  # never a view

    def info(self) -> dict:
        """What a checkpoint records about the data it was trained on (JSON-friendly)."""
        info = {
            "name": self.name,
            "num_images": len(self),
            "image_shape": list(self.image_shape),
            "classes": list(self.classes),
        }
        if self.sources is not None:
            info["source_shape"] = list(self.sources.shape[1:])
        return info

    def __repr__(self) -> str:
        labels = "no labels" if self.labels is None else f"{self.num_classes} classes"
        items = f"{self.image_shape[0]}-D points" if self.is_points else f"images of {'×'.join(map(str, self.image_shape))}"
        pairs = "" if self.sources is None else f", sources of {'×'.join(map(str, self.sources.shape[1:]))}"
        return f"Dataset({self.name!r}, {len(self)} {items}, {labels}{pairs})"
