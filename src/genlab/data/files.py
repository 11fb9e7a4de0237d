"""Datasets from your own files: a folder of images, or a ``.npz`` file of arrays."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genlab.data.dataset import Dataset
from genlab.errors import DataError
from genlab.io.images import read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# ------------------------------------------------------------------------------- image folders


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder`` (hidden files and folders skipped), sorted by path."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path for path in candidates
        if _is_image(path) and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def load_folder(
    folder: str | os.PathLike[str],
    image_size: tuple[int, int] | None = None,
    name: str | None = None,
) -> Dataset:
    """Every image in ``folder``, as one dataset.

    Sub-folders holding images are classes: labels follow the folder names in sorted order and
    the class names are the folder names (images in nested folders belong to their top folder).
    A folder with images and no such sub-folders gives a dataset without labels.
    Images must all have one size unless ``image_size`` (height, width) resizes them all.
    Grayscale files give one channel; if any file is colour, all get three (gray repeated).
    """
    folder = Path(folder)
    class_dirs = [
        path for path in sorted(folder.iterdir())
        if path.is_dir() and not path.name.startswith(".") and _images_in(path, recursive=True)
    ]
    top_level = _images_in(folder, recursive=False)
    if class_dirs and top_level:
        raise DataError(
            f"{folder}: holds both images ({top_level[0].name}) and class sub-folders "
            f"({class_dirs[0].name}/), expected one or the other"
        )
    if class_dirs:
        per_class = [_images_in(path, recursive=True) for path in class_dirs]
        files = [file for class_files in per_class for file in class_files]
        labels = torch.cat([torch.full((len(f),), i, dtype=torch.int64) for i, f in enumerate(per_class)])
    else:
        files, labels = top_level, None
    if not files:
        raise DataError(
            f"{folder}: no images found, expected {'/'.join(IMAGE_EXTENSIONS)} files "
            "in it or in one sub-folder per class"
        )

    images = []
    for file in tqdm(files, desc=f"reading {folder.name}", unit="image", leave=False, disable=len(files) < 2000):
        image = read_image(file, size=image_size)
        if images and image.shape[1:] != images[0].shape[1:]:
            raise DataError(
                f"{file}: image is {_size_text(image)} but {files[0].name} is {_size_text(images[0])}; "
                "all images must share a size, or pass image_size to resize them"
            )
        images.append(image)
    if any(image.shape[0] == 3 for image in images):
        images = [image.expand(3, -1, -1) for image in images]  # 1→3 repeats gray, 3 stays as is
    classes = tuple(path.name for path in class_dirs)
    return Dataset(torch.stack(images), labels, classes, name or str(folder))


def _size_text(image: torch.Tensor) -> str:
    return f"{image.shape[1]}×{image.shape[2]} (height×width)"


# -------------------------------------------------------------------------------------- .npz


def load_npz(path: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """A dataset from a ``.npz`` file (read without pickle).

    Keys: ``images`` (required): uint8, or float in [0, 1], shaped N×H×W, N×H×W×C or N×C×H×W
    with C = 1 or 3 (a shape that fits both, such as N×3×H×3, is read as N×C×H×W);
    ``labels`` (optional): N integers; ``classes`` (optional): class names as strings,
    defaulting to "0", "1", ... when there are labels. Other keys are ignored.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: holds one array, expected a .npz archive with an 'images' array")
        with archive:
            keys = list(archive.files)
            arrays = {key: archive[key] for key in ("images", "labels", "classes") if key in keys}
    except FileNotFoundError:
        raise DataError(f"{path}: .npz file not found") from None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot read .npz file ({error})") from None
    if "images" not in arrays:
        raise DataError(f"{path}: no 'images' array, found keys: {', '.join(keys) or 'none'}")

    images = _images_to_nchw_uint8(arrays["images"], path)
    labels = _check_labels(arrays["labels"], len(images), path) if "labels" in arrays else None
    classes = _class_names(arrays.get("classes"), labels, path)
    return Dataset(torch.from_numpy(images), None if labels is None else torch.from_numpy(labels),
                   classes, name or str(path))


def _images_to_nchw_uint8(images: np.ndarray, path: Path) -> np.ndarray:
    if images.dtype.kind == "f":
        low, high = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
        if not (low >= 0.0 and high <= 1.0):  # also rejects NaN
            raise DataError(f"{path}: float 'images' must lie in [0, 1], found values in [{low}, {high}]")
        images = np.rint(images * 255.0).astype(np.uint8)
    elif images.dtype != np.uint8:
        raise DataError(f"{path}: 'images' has dtype {images.dtype}, expected uint8 or float in [0, 1]")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    elif images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(
            f"{path}: 'images' has shape {images.shape}, expected N×H×W, N×H×W×C or N×C×H×W with C = 1 or 3"
        )
    if len(images) == 0:
        raise DataError(f"{path}: 'images' holds no images")
    return np.ascontiguousarray(images)


def _check_labels(labels: np.ndarray, count: int, path: Path) -> np.ndarray:
    if labels.dtype.kind not in "iu" or labels.shape != (count,):
        raise DataError(
            f"{path}: 'labels' must be {count} integers (shape ({count},)), got {labels.dtype} {labels.shape}"
        )
    if labels.min() < 0:
        raise DataError(f"{path}: 'labels' must be >= 0, found {labels.min()}")
    return labels.astype(np.int64)


def _class_names(classes: np.ndarray | None, labels: np.ndarray | None, path: Path) -> tuple[str, ...]:
    if classes is None:
        return () if labels is None else tuple(str(i) for i in range(int(labels.max()) + 1))
    if classes.dtype.kind not in "US" or classes.ndim != 1:
        raise DataError(f"{path}: 'classes' must be a 1-D array of strings, got {classes.dtype} {classes.shape}")
    names = tuple(name.decode() if isinstance(name, bytes) else str(name) for name in classes.tolist())
    if labels is not None and labels.max() >= len(names):
        raise DataError(f"{path}: label {labels.max()} has no name, 'classes' lists only {len(names)}")
    return names
