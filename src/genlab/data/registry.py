"""The named datasets, and ``load_dataset``: one call from a name or a path to a ``Dataset``."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genlab.data.cifar import CIFAR10_CLASSES, load_cifar10
from genlab.data.dataset import Dataset
from genlab.data.emoji import EMOJI_CLASSES, PACKAGES, load_emoji, npz_name
from genlab.data.files import load_folder, load_npz
from genlab.data.idx import read_idx
from genlab.data.photos import load_photo_patches
from genlab.data.sources import fetch, find_local, mirror_bases
from genlab.data.toys import TOYS, make_toy
from genlab.errors import DataError

BUNDLED_DIR = Path(__file__).parent / "bundled"


@dataclass(frozen=True)
class RemoteFile:
    filename: str
    sha256: str  # of the file as served by the mirrors
    size: int | None = None  # bytes, as served: a download stops (and fails) past it


@dataclass(frozen=True)
class NamedDataset:
    """What ``load_dataset(name)`` knows about one dataset: where its files come from and how to read them."""

    name: str
    description: str
    image_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for points
    classes: tuple[str, ...]
    num_images: dict[str, int]  # split → number of images; its keys are the splits
    read: Callable[[NamedDataset, str, list[Path]], Dataset]  # (spec, split, local files) → Dataset
    files: dict[str, tuple[RemoteFile, ...]]  # split → the files it needs
    mirrors: tuple[str, ...] = ()  # base URLs, tried in order
    hint: str = ""  # another way to get the files, for the not-found error
    generated: bool = False  # made by code on each load (the 2-D toys): no files at all
    made_by: str = ""  # the command that makes its files (`genlab data get NAME`): load_dataset never downloads them

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.num_images)


def _read_idx_pair(spec: NamedDataset, split: str, paths: list[Path]) -> Dataset:
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{paths[0]}, {paths[1]}: expected uint8 images N×H×W and N labels, "
            f"got {images.dtype} {images.shape} and {labels.dtype} {labels.shape}"
        )
    if labels.size and not 0 <= labels.min() <= labels.max() < len(spec.classes):
        raise DataError(f"{paths[1]}: labels must be 0..{len(spec.classes) - 1}, found {labels.min()}..{labels.max()}")
    return Dataset(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                   spec.classes, spec.name)


def _read_cifar10(spec: NamedDataset, split: str, paths: list[Path]) -> Dataset:
    return load_cifar10(paths[0], split)


def _read_bundled(spec: NamedDataset, split: str, paths: list[Path]) -> Dataset:
    path = BUNDLED_DIR / f"{spec.name}-{split}.npz"
    if not path.is_file():
        raise DataError(f"{path}: bundled file missing, expected it installed with genlab (reinstall the package)")
    dataset = load_npz(path)
    return Dataset(dataset.images, dataset.labels, dataset.classes, spec.name)


def _read_emoji(spec: NamedDataset, split: str, paths: list[Path]) -> Dataset:
    return load_emoji(spec.name, split)  # a one-line "run `genlab data get NAME`" error if not fetched yet


def _read_photos(spec: NamedDataset, split: str, paths: list[Path]) -> Dataset:
    return load_photo_patches(split, count=spec.num_images[split], size=spec.image_shape[1])


TOY_SEEDS = {"train": 0, "test": 1}  # fixed, so every load of a split gives the same points


def _read_toy(spec: NamedDataset, split: str, paths: list[Path]) -> Dataset:
    return make_toy(spec.name, spec.num_images[split], seed=TOY_SEEDS[split])


def _idx_files(sha256: dict[str, str], sizes: dict[str, int] | None = None) -> dict[str, tuple[RemoteFile, ...]]:
    """train/test → (images, labels) files, MNIST naming."""
    return {
        split: tuple(RemoteFile(f"{prefix}-{kind}.gz", sha256[f"{prefix}-{kind}.gz"], (sizes or {}).get(f"{prefix}-{kind}.gz"))
                     for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
        for split, prefix in (("train", "train"), ("test", "t10k"))
    }


FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

DATASETS: dict[str, NamedDataset] = {
    spec.name: spec
    for spec in (
        NamedDataset(
            name="fashion-mnist",
            description="Zalando's 28×28 grayscale clothing images, 10 classes (Xiao et al. 2017)",
            image_shape=(1, 28, 28),
            classes=FASHION_MNIST_CLASSES,
            num_images={"train": 60000, "test": 10000},
            read=_read_idx_pair,
            # Checksums of the files the mirrors serve. Debian's dataset-fashion-mnist package
            # ships the same IDX data re-gzipped, so its .gz files hash differently (train images
            # b0564c3e..., labels 0ae29f65...; test images cc1d090a..., labels 8d3605d1...);
            # local copies are not checksummed, so both work.
            files=_idx_files({
                "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            }, {"train-images-idx3-ubyte.gz": 26_421_880, "train-labels-idx1-ubyte.gz": 29_515,
                "t10k-images-idx3-ubyte.gz": 4_422_102, "t10k-labels-idx1-ubyte.gz": 5_148}),
            mirrors=(
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ),
            hint="on Debian/Ubuntu run `apt-get install dataset-fashion-mnist`",
        ),
        NamedDataset(
            name="mnist",
            description="LeCun et al.'s 28×28 grayscale handwritten digits, 10 classes",
            image_shape=(1, 28, 28),
            classes=tuple(str(digit) for digit in range(10)),
            num_images={"train": 60000, "test": 10000},
            read=_read_idx_pair,
            files=_idx_files({
                "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            }, {"train-images-idx3-ubyte.gz": 9_912_422, "train-labels-idx1-ubyte.gz": 28_881,
                "t10k-images-idx3-ubyte.gz": 1_648_877, "t10k-labels-idx1-ubyte.gz": 4_542}),
            mirrors=(
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
            ),
        ),
        NamedDataset(
            name="cifar10",
            description="Krizhevsky's 32×32 colour photos, 10 classes (binary archive, 170 MB download)",
            image_shape=(3, 32, 32),
            classes=CIFAR10_CLASSES,
            num_images={"train": 50000, "test": 10000},
            read=_read_cifar10,
            files=dict.fromkeys(("train", "test"), (RemoteFile(
                "cifar-10-binary.tar.gz", "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170_052_171
            ),)),
            mirrors=("https://www.cs.toronto.edu/~kriz/",),
        ),
        NamedDataset(
            name="fashion-mnist-mini",
            description="Fashion-MNIST subset bundled with genlab: 600 train / 100 test images per class",
            image_shape=(1, 28, 28),
            classes=FASHION_MNIST_CLASSES,
            num_images={"train": 6000, "test": 1000},
            read=_read_bundled,
            files={"train": (), "test": ()},
        ),
        *(
            NamedDataset(
                name=name,
                description=f"{package.style.capitalize()}-style emoji, RGB 64×64 on white, 9 categories ({package.package})",
                image_shape=(3, 64, 64),
                classes=EMOJI_CLASSES,
                num_images=dict(package.num_images),
                read=_read_emoji,
                files={"train": (), "test": ()},
                made_by=f"genlab data get {name}",
            )
            for name, package in PACKAGES.items()
        ),
        NamedDataset(
            name="photos",
            description="random 96×96 patches of the colour photos bundled in scikit-image and scikit-learn; test: patches "
                        "of 4 held-out photos (pip install 'genlab[photos]')",
            image_shape=(3, 96, 96),
            classes=(),
            num_images={"train": 4000, "test": 400},
            read=_read_photos,
            files={"train": (), "test": ()},
            generated=True,
        ),
        *(
            NamedDataset(
                name=toy.name,
                description=f"2-D mode-collapse toy: {toy.description}; labels = mode index",
                image_shape=(2,),
                classes=toy.classes,
                # VEEGAN/PacGAN train on 100,000 points and score 2,500 generated samples.
                num_images={"train": 100_000, "test": 2_500},
                read=_read_toy,
                files={"train": (), "test": ()},
                generated=True,
            )
            for toy in TOYS.values()
        ),
    )
}


def load_dataset(
    name_or_path: str | os.PathLike[str],
    split: str = "train",
    image_size: int | tuple[int, int] | None = None,
    download: bool = True,
) -> Dataset:
    """Load a named dataset (see ``list_datasets()``), an image folder or a ``.npz`` file.

    ``split`` picks the part of a named dataset ("train" or "test"); it is ignored for paths,
    which are one set each (split such data yourself, e.g. with ``Dataset.subset``).
    ``image_size`` (int for square, or (height, width)) resizes every image (not for point datasets).
    ``download=False`` fails instead of downloading missing files.
    Names win over paths: load a folder called ``mnist`` in the current folder as ``./mnist``.
    """
    size = image_size_pair(image_size)
    spec = DATASETS.get(name_or_path) if isinstance(name_or_path, str) else None
    if spec is not None:
        if split not in spec.splits:
            raise DataError(
                f"dataset {spec.name!r} has no split {split!r}, expected one of {', '.join(spec.splits)}"
            )
        paths = [
            fetch(spec.name, file.filename, file.sha256, spec.mirrors, allow_download=download, hint=spec.hint, size=file.size)
            for file in spec.files[split]
        ]
        return resize_images(spec.read(spec, split, paths), size)

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return load_folder(path, size, name=str(name_or_path))
    if path.is_file() and path.suffix.lower() == ".npz":
        return resize_images(load_npz(path, name=str(name_or_path)), size)
    if path.is_file():
        raise DataError(
            f"{path}: cannot load a dataset from a {path.suffix or 'suffix-less'} file, "
            "expected a folder of images or a .npz file"
        )
    raise DataError(
        f"unknown dataset {str(name_or_path)!r}: expected one of {', '.join(DATASETS)}, "
        "or the path of an existing image folder or .npz file"
    )


def resize_images(dataset: Dataset, size: tuple[int, int] | None) -> Dataset:
    """``dataset`` with every image resized to ``size`` (height, width); unchanged if None or already so."""
    if size is not None and dataset.is_points:
        raise DataError(f"dataset {dataset.name!r} holds {dataset.image_shape[0]}-D points, not images; "
                        "image_size cannot apply to it, expected image_size=None")
    if size is None or tuple(dataset.images.shape[2:]) == size:
        return dataset
    sources = None if dataset.sources is None else _resized(dataset.sources, size)  # a paired set's inputs too
    return Dataset(_resized(dataset.images, size), dataset.labels, dataset.classes, dataset.name, sources)


def _resized(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    resized = torch.empty((len(images), images.shape[1], *size), dtype=torch.uint8)
    for start in range(0, len(images), 2048):  # chunks bound the float32 working memory
        batch = images[start : start + 2048].float()
        batch = F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)
        resized[start : start + 2048] = batch.round_().clamp_(0, 255).to(torch.uint8)
    return resized


def image_size_pair(image_size: int | tuple[int, int] | None, where: str = "load_dataset") -> tuple[int, int] | None:
    """``image_size`` (N or (height, width)) as (height, width), None as None, or a DataError naming ``where``."""
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
        raise DataError(f"{where}: image_size must be a positive int or (height, width), got {image_size!r}")
    return pair  # type: ignore[return-value]


def dataset_info(name: str) -> dict:
    """What is known about named dataset ``name``, and where its files are (JSON-friendly)."""
    spec = DATASETS.get(name)
    if spec is None:
        raise DataError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return {
        "name": spec.name,
        "description": spec.description,
        "splits": list(spec.splits),
        "num_images": dict(spec.num_images),
        "image_shape": list(spec.image_shape),
        "num_classes": len(spec.classes),
        "classes": list(spec.classes),
        "location": _location(spec),
        "files": [file.filename for file in _unique_files(spec)],
        "mirrors": mirror_bases(spec.name, spec.mirrors) if spec.files[spec.splits[0]] else [],
    }


def list_datasets() -> list[dict]:
    """``dataset_info`` of every named dataset."""
    return [dataset_info(name) for name in DATASETS]


def _unique_files(spec: NamedDataset) -> list[RemoteFile]:
    return list(dict.fromkeys(file for files in spec.files.values() for file in files))


def _location(spec: NamedDataset) -> str:
    """Where the files are: a folder list, 'bundled ...', 'generated ...' or 'not present (will download)'."""
    if spec.generated:
        return "generated (no files: drawn with a fixed seed on each load)"
    if spec.made_by:
        found = [find_local(spec.name, npz_name(spec.name, split)) for split in spec.splits]
        folders = ", ".join(dict.fromkeys(str(path.parent) for path in found if path is not None))
        return folders if all(found) else f"not present (run `{spec.made_by}`)"
    files = _unique_files(spec)
    if not files:
        return f"bundled with genlab ({BUNDLED_DIR})"
    found = [find_local(spec.name, file.filename) for file in files]
    folders = ", ".join(dict.fromkeys(str(path.parent) for path in found if path is not None))
    if all(found):
        return folders
    return f"partly in {folders} (rest will download)" if folders else "not present (will download)"
