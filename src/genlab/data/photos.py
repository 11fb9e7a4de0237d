"""Real photographs for super-resolution: the colour photos that scikit-image and scikit-learn ship in their
wheels (nothing to download), split once and for all into training photos and a held-out test set, and
random high-resolution training patches cut from the training photos only. A folder of your own photos
(any sizes) works the same way.

    from genlab.data.photos import load_photo_patches, test_photos
    train = load_photo_patches("train", count=4000, size=96, seed=0)   # Dataset: uint8 4000×3×96×96
    held_out = test_photos()                                            # {"astronaut": uint8 3×512×512, ...}

The split (``PHOTOS``; ``photo_table_markdown()`` prints it with sources and licences):

- test, a small "Set5"-like set of 4 whole photos, never cut into training patches: astronaut (a portrait,
  like Set5's "woman"/"head"), chelsea (a cat: fur, like "baby"'s fine texture), coffee (objects, wood
  grain), flower (a close-up of nature, like "butterfly"/"bird");
- train: rocket, motorcycle_left, motorcycle_right, china, hubble_deep_field, retina, immunohistochemistry
  (the two motorcycle photos are a stereo pair of one scene: both are on the same side of the split), and
  with ``grayscale=True`` also camera, brick, grass and gravel, repeated to three channels.

Licences were read from each loader's docstring (scikit-image 0.26) and from scikit-learn's
``datasets/images/README.txt``. scikit-image and scikit-learn are optional: without them the named photos
raise one clear DataError, and folders of your own photos still work.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.data.files import IMAGE_EXTENSIONS
from genlab.errors import DataError
from genlab.io.images import read_image

PATCH_SIZE = 96  # SRGAN's HR patch (Ledig et al. §3.2); ESRGAN uses 128
MAX_PATCHES = 200_000  # bound on one call: 200,000 × 3 × 96 × 96 bytes = 5.5 GB would be too many anyway
INSTALL_HINT = "pip install scikit-image scikit-learn"


@dataclass(frozen=True)
class Photo:
    """One bundled photograph: where it comes from and on what terms."""

    name: str
    package: str  # "skimage" or "sklearn"
    split: str  # "train", "test" or "grayscale" (training only, with grayscale=True)
    size: tuple[int, int]  # (height, width) as shipped
    subject: str
    source: str
    licence: str


PHOTOS: tuple[Photo, ...] = (
    Photo("astronaut", "skimage", "test", (512, 512), "portrait of astronaut Eileen Collins",
          "NASA Great Images database", "public domain (no known copyright restrictions)"),
    Photo("chelsea", "skimage", "test", (300, 451), "Chelsea the cat", "Stefan van der Walt", "CC0"),
    Photo("coffee", "skimage", "test", (400, 600), "a coffee cup on wood", "Rachel Michetti (Pikolo Espresso Bar)", "CC0"),
    Photo("flower", "sklearn", "test", (427, 640), "a flower close-up", "vultilion on Flickr (via scikit-learn)",
          "CC BY 2.0 (attribution: vultilion)"),
    Photo("rocket", "skimage", "train", (427, 640), "Falcon 9 launching DSCOVR", "SpaceX Photos on Flickr", "public domain"),
    Photo("motorcycle_left", "skimage", "train", (500, 741), "motorcycle, left view of a stereo pair",
          "Middlebury 2014 stereo benchmark (Scharstein et al.)", "not stated by scikit-image (research data set)"),
    Photo("motorcycle_right", "skimage", "train", (500, 741), "motorcycle, right view of the same pair",
          "Middlebury 2014 stereo benchmark (Scharstein et al.)", "not stated by scikit-image (research data set)"),
    Photo("china", "sklearn", "train", (427, 640), "a Chinese temple", "danielbuechele on Flickr (via scikit-learn)",
          "CC BY 2.0 (attribution: danielbuechele)"),
    Photo("hubble_deep_field", "skimage", "train", (872, 1000), "Hubble eXtreme Deep Field", "NASA / HubbleSite",
          "public domain"),
    Photo("retina", "skimage", "train", (1411, 1411), "fundus photograph of a human retina",
          "Mikael Häggström, Wikimedia Commons", "CC0 1.0"),
    Photo("immunohistochemistry", "skimage", "train", (512, 512), "IHC-stained colonic glands (microscopy)",
          "Center for Microscopy And Molecular Imaging (CMMI)", "no known copyright restrictions"),
    Photo("camera", "skimage", "grayscale", (512, 512), "a photographer (grayscale)", "Lav Varshney", "CC0"),
    Photo("brick", "skimage", "grayscale", (512, 512), "a brick wall (grayscale)", "CC0Textures", "CC0"),
    Photo("grass", "skimage", "grayscale", (512, 512), "grass (grayscale)", "linolafett on DeviantArt", "CC0"),
    Photo("gravel", "skimage", "grayscale", (512, 512), "gravel (grayscale)", "CC0Textures", "CC0"),
)
BY_NAME = {photo.name: photo for photo in PHOTOS}
SPLITS = ("train", "test")


# ------------------------------------------------------------------------------- the bundled photos


@cache
def _load_bundled(name: str) -> torch.Tensor:
    photo = BY_NAME[name]
    try:
        if photo.package == "sklearn":
            from sklearn.datasets import load_sample_image

            array = load_sample_image(f"{name}.jpg")
        else:
            import skimage.data

            array = skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1] if name.startswith("motorcycle") \
                else getattr(skimage.data, name)()
    except ImportError:
        package = "scikit-learn" if photo.package == "sklearn" else "scikit-image"
        raise DataError(f"the bundled photos need {package}, which is not installed: {INSTALL_HINT}") from None
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"photo {name!r}: expected uint8 pixels, {photo.package} gave {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)  # grayscale → RGB: gray repeated
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).contiguous()


def load_photo(name: str) -> torch.Tensor:
    """The bundled photo ``name`` (see ``PHOTOS``) as uint8 3×H×W (a copy: yours to change)."""
    if name not in BY_NAME:
        raise DataError(f"unknown photo {name!r}, expected one of {', '.join(BY_NAME)}")
    return _load_bundled(name).clone()


def photo_names(split: str, *, grayscale: bool = False) -> list[str]:
    """The names of the bundled photos in ``split`` ("train" or "test"); ``grayscale`` adds the grayscale
    photos to the training split."""
    _check_split(split)
    wanted = {"train": ("train", "grayscale") if grayscale else ("train",), "test": ("test",)}[split]
    return [photo.name for photo in PHOTOS if photo.split in wanted]


def training_photos(*, grayscale: bool = False) -> dict[str, torch.Tensor]:
    """The bundled training photos, name → uint8 3×H×W."""
    return {name: load_photo(name) for name in photo_names("train", grayscale=grayscale)}


def test_photos() -> dict[str, torch.Tensor]:
    """The held-out test photos, whole, name → uint8 3×H×W: never cut into training patches."""
    return {name: load_photo(name) for name in photo_names("test")}


test_photos.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, whatever its name


def photo_table_markdown() -> str:
    """The bundled photos as a Markdown table (name, split, size, subject, source, licence) for a README."""
    lines = ["| photo | split | size (h×w) | subject | source | licence |", "|---|---|---|---|---|---|"]
    for photo in PHOTOS:
        split = "train (with grayscale=True)" if photo.split == "grayscale" else photo.split
        lines.append(f"| {photo.name} ({photo.package}) | {split} | {photo.size[0]}×{photo.size[1]} | {photo.subject} | "
                     f"{photo.source} | {photo.licence} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- patches


def random_patches(photos: list[torch.Tensor], count: int, size: int = PATCH_SIZE, *, seed: int = 0,
                   augment: bool = True) -> torch.Tensor:
    """``count`` random ``size``×``size`` crops of ``photos`` (uint8 C×H×W each, all with one C), uint8
    count×C×size×size, the same for the same arguments. Each crop picks a photo uniformly (so one large
    photo does not dominate), then a position uniformly; ``augment`` also flips and rotates it by a
    random multiple of 90° (the 8 symmetries of the square, as SR training usually does). Photos smaller
    than ``size`` on a side are skipped."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PATCHES:
        raise DataError(f"count must be a whole number in 1..{MAX_PATCHES:,}, got {count!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"patch size must be a positive whole number of pixels, got {size!r}")
    usable = [p for p in photos if p.shape[1] >= size and p.shape[2] >= size]
    if not usable:
        raise DataError(f"no photo is at least {size}×{size} pixels, so no {size}×{size} patch can be cut; use a smaller size")
    generator = torch.Generator().manual_seed(seed)
    which = torch.randint(len(usable), (count,), generator=generator)
    corners = torch.rand(count, 2, generator=generator)
    flips = torch.randint(2, (count,), generator=generator)
    turns = torch.randint(4, (count,), generator=generator)
    patches = torch.empty(count, usable[0].shape[0], size, size, dtype=torch.uint8)
    for i in range(count):
        photo = usable[int(which[i])]
        top = int(corners[i, 0] * (photo.shape[1] - size + 1))
        left = int(corners[i, 1] * (photo.shape[2] - size + 1))
        patch = photo[:, top:top + size, left:left + size]
        if augment:
            patch = torch.rot90(patch.flip(2) if flips[i] else patch, int(turns[i]), dims=(1, 2))
        patches[i] = patch
    return patches


def load_photo_patches(split: str = "train", count: int = 4000, size: int = PATCH_SIZE, *, seed: int = 0,
                       grayscale: bool = False, augment: bool = True) -> Dataset:
    """A Dataset "photos" of ``count`` random patches cut from the bundled photos of ``split``: "train" (for
    training) or "test" (patches of the held-out photos, for a quick validation; the SR benchmark scores the
    whole test photos instead). Deterministic in ``seed``."""
    photos = training_photos(grayscale=grayscale) if _check_split(split) == "train" else test_photos()
    return Dataset(random_patches(list(photos.values()), count, size, seed=seed, augment=augment), None, (), "photos")


# ------------------------------------------------------------------------------- your own photos


def folder_photos(folder: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every image in ``folder`` and its sub-folders (any sizes), path relative to it → uint8 C×H×W, with
    one C for all: 3 if any file is colour (gray repeated), else 1. Hidden files are skipped."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: photo folder not found")
    files = sorted(path for path in root.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
                   and not any(part.startswith(".") for part in path.relative_to(root).parts))
    if not files:
        raise DataError(f"{root}: no photos found, expected {'/'.join(IMAGE_EXTENSIONS)} files")
    photos = {path.relative_to(root).as_posix(): read_image(path) for path in files}
    if any(p.shape[0] == 3 for p in photos.values()):
        photos = {name: p.expand(3, -1, -1).contiguous() for name, p in photos.items()}
    return photos


def split_folder(names: list[str], *, test_count: int | None = None) -> dict[str, list[str]]:
    """A deterministic train/test split of a folder's photo names (relative paths). Files under a top folder
    called ``test/`` (and ``train/``) are taken as they are. Otherwise the ``test_count`` (default: a fifth,
    at least 1) names with the smallest SHA-256 of the name are held out: a file's side does not depend on
    the order of reading, and adding a file moves at most the ones it displaces."""
    names = sorted(names)
    if any(name.startswith("test/") for name in names):
        test = [name for name in names if name.startswith("test/")]
        held_out = set(test)
        return {"train": [name for name in names if name not in held_out], "test": test}
    if len(names) < 2:
        raise DataError(f"a photo folder needs at least 2 photos to hold one out for testing, found {len(names)}")
    count = max(1, len(names) // 5) if test_count is None else test_count
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count < len(names):
        raise DataError(f"test_count must be in 1..{len(names) - 1} for {len(names)} photos, got {test_count!r}")
    ranked = sorted(names, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
    test = set(ranked[:count])
    return {"train": [name for name in names if name not in test], "test": sorted(test)}


def load_folder_patches(folder: str | os.PathLike[str], split: str = "train", count: int = 4000, size: int = PATCH_SIZE, *,
                        seed: int = 0, test_count: int | None = None, augment: bool = True) -> Dataset:
    """As ``load_photo_patches``, from a folder of your own photos (``folder_photos``, ``split_folder``)."""
    photos = folder_photos(folder)
    chosen = split_folder(list(photos), test_count=test_count)[_check_split(split)]
    return Dataset(random_patches([photos[name] for name in chosen], count, size, seed=seed, augment=augment), None, (),
                   str(folder))


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"photos have no split {split!r}, expected one of {', '.join(SPLITS)}")
    return split


__all__ = ["PHOTOS", "Photo", "folder_photos", "load_folder_patches", "load_photo", "load_photo_patches", "photo_names",
           "photo_table_markdown", "random_patches", "split_folder", "test_photos", "training_photos"]
