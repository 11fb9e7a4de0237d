"""Datasets from your own files: a folder of images, or a ``.npz`` file of arrays."""
from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genlab.data.dataset import Dataset
from genlab.data.limits import MAX_CLASS_NAMES, MAX_DATA_BYTES, MAX_IMAGE_PIXELS, MAX_ITEMS
from genlab.errors import DataError
from genlab.io.images import read_image

_NPY_MAGIC = b"\x93NUMPY"
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
    if len(files) > MAX_ITEMS:
        raise DataError(f"{folder}: holds {len(files):,} images, more than genlab's bound of {MAX_ITEMS:,} per folder")

    images = []
    for file in tqdm(files, desc=f"reading {folder.name}", unit="image", leave=False, disable=len(files) < 2000):
        image = read_image(file, size=image_size)
        if not images:  # every image has this size: the first one tells how big the dataset will be
            _check_bytes(folder, len(files), image.shape, "images")
        if images and image.shape[1:] != images[0].shape[1:]:
            raise DataError(
                f"{file}: image is {_size_text(image)} but {files[0].name} is {_size_text(images[0])}; "
                "all images must share a size, or pass image_size to resize them"
            )
        images.append(image)
    if any(image.shape[0] == 3 for image in images):
        _check_bytes(folder, len(images), (3, *images[0].shape[1:]), "images")
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
    arrays, keys = _read_npz(path, ("images", "labels", "classes"))
    if "images" not in arrays:
        raise DataError(f"{path}: no 'images' array, found keys: {', '.join(keys) or 'none'}")

    images = _images_to_nchw_uint8(arrays["images"], path)
    labels = _check_labels(arrays["labels"], len(images), path) if "labels" in arrays else None
    classes = _class_names(arrays.get("classes"), labels, path)
    return Dataset(torch.from_numpy(images), None if labels is None else torch.from_numpy(labels),
                   classes, name or str(path))


def _check_bytes(source: Path, count: int, item_shape: tuple[int, ...], what: str, itemsize: int = 1) -> None:
    """Raise DataError if ``count`` items of ``item_shape`` would take more than MAX_DATA_BYTES."""
    total = count * math.prod(item_shape) * itemsize
    if total > MAX_DATA_BYTES:
        raise DataError(f"{source}: {count:,} {what} of shape {tuple(item_shape)} take {total:,} bytes, more than genlab's "
                        f"bound of {MAX_DATA_BYTES:,} bytes per dataset")


def _read_npz(path: Path, wanted: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The ``wanted`` arrays of a .npz archive (those it has) and the names of all its arrays.

    Each array's .npy header is read and checked before the array is: its size must fit genlab's bounds
    and the bytes the archive member holds, so a small (or compressed) file cannot claim terabytes.
    Never unpickles: an array of Python objects is refused.
    """
    if not path.is_file():
        raise DataError(f"{path}: .npz file not found")
    try:
        with path.open("rb") as file:
            start = file.read(len(_NPY_MAGIC))
        if start == _NPY_MAGIC:
            raise DataError(f"{path}: holds one array (a .npy file), expected a .npz archive with an 'images' array")
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not a .npz archive (a zip of .npy arrays, as numpy.savez writes)")
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist() if not info.filename.endswith("/")}
            arrays = {key: _read_member(archive, members[key], path, key) for key in wanted if key in members}
    except DataError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, RuntimeError,
            ValueError, SyntaxError, TypeError, KeyError, IndexError, OverflowError, struct.error) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read .npz file ({reason})") from None
    return arrays, list(members)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, key: str) -> np.ndarray:
    """One .npy member of a .npz archive, its header checked before its data is read."""
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise DataError(f"{path}: '{key}' is a .npy of format version {version}, expected 1.0 or 2.0")
    if dtype.hasobject:
        raise DataError(f"{path}: '{key}' holds Python objects (dtype {dtype}), which genlab never unpickles; "
                        "store numbers or strings")
    if any(size < 0 for size in shape):
        raise DataError(f"{path}: '{key}' has shape {shape}, with a negative size")
    needed = math.prod(shape) * max(dtype.itemsize, 1)
    extent = math.prod(max(size, 1) for size in shape) * max(dtype.itemsize, 1)  # an empty array's other sizes count too
    limit = MAX_CLASS_NAMES if key == "classes" else MAX_ITEMS
    if shape and shape[0] > limit:
        raise DataError(f"{path}: '{key}' claims {shape[0]:,} entries, more than genlab's bound of {limit:,}")
    if extent > MAX_DATA_BYTES:
        raise DataError(f"{path}: '{key}' claims shape {shape} of {dtype} = {needed:,} bytes (sizes multiplying to {extent:,}), "
                        f"more than genlab's bound of {MAX_DATA_BYTES:,}")
    if needed > info.file_size:
        raise DataError(f"{path}: '{key}' claims shape {shape} of {dtype} = {needed:,} bytes, but the archive holds only "
                        f"{info.file_size:,} bytes for it; the file is truncated or corrupt")
    with archive.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


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
    if images.shape[2] * images.shape[3] > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: 'images' are {images.shape[2]}×{images.shape[3]} pixels each, more than genlab's bound of "
                        f"{MAX_IMAGE_PIXELS:,} per image")
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
    if labels.max() >= MAX_CLASS_NAMES:
        raise DataError(f"{path}: 'labels' must be < {MAX_CLASS_NAMES:,} (genlab's bound on classes), found {labels.max()}")
    return labels.astype(np.int64)


def _class_names(classes: np.ndarray | None, labels: np.ndarray | None, path: Path) -> tuple[str, ...]:
    if classes is None:
        return () if labels is None else tuple(str(i) for i in range(int(labels.max()) + 1))
    if classes.dtype.kind not in "US" or classes.ndim != 1:
        raise DataError(f"{path}: 'classes' must be a 1-D array of strings, got {classes.dtype} {classes.shape}")
    names = tuple(name.decode(errors="replace") if isinstance(name, bytes) else str(name) for name in classes.tolist())
    if labels is not None and labels.max() >= len(names):
        raise DataError(f"{path}: label {labels.max()} has no name, 'classes' lists only {len(names)}")
    return names
