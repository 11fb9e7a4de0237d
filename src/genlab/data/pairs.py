"""Paired data for image-to-image translation (pix2pix): a ``Dataset`` whose ``sources`` are the inputs and
whose ``images`` are the targets, drawn together by one index.

Two ways to get pairs:

- **A paired task made from any image dataset** by a fixed, deterministic transform (``make_pairs``), so
  translation can be tried without a paired dataset:

  ========  =====================================================================================
  task      input made from each target image
  ========  =====================================================================================
  edges     its edge map: Sobel gradient magnitude of the luma, thresholded at EDGE_THRESHOLD
            (white edges on black, one channel; ``sobel_edges``)
  masked    the image with a centred square hole, half the side, filled with mid-gray (128)
  gray      its luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B), one channel; RGB data only
  ========  =====================================================================================

- **Your own pairs** from files: a folder of side-by-side ``A|B`` images (the format of the original
  pix2pix datasets: the left half is A, the right half B; ``load_side_by_side``), or two folders whose
  images are matched by file name (``load_folder_pairs``).

Unpaired domains (CycleGAN) are in ``genlab.data.domains``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from genlab.data.dataset import Dataset
from genlab.data.files import IMAGE_EXTENSIONS
from genlab.data.limits import MAX_DATA_BYTES, MAX_ITEMS
from genlab.data.registry import image_size_pair, resize_images
from genlab.errors import DataError
from genlab.io.images import read_image

Task = Literal["edges", "masked", "gray"]
TASKS: tuple[str, ...] = ("edges", "masked", "gray")
Direction = Literal["a2b", "b2a"]

# Sobel magnitude (on [0, 1] intensities, kernel divided by 4 so that a sharp step of contrast c gives c)
# above which a pixel is an edge. Looked at on fashion-mnist-mini test images: 0.25 marks 25% of the pixels
# (outlines, collars, seams, prints); 0.1 marks 37%, much of it fabric texture; 0.4 19%, losing inner lines.
EDGE_THRESHOLD = 0.25
HOLE_FRACTION = 0.5  # side of the "masked" task's centred hole, as a fraction of the image side
HOLE_VALUE = 128  # the hole's grey: unlike black, it cannot be mistaken for Fashion-MNIST's background

# ITU-R BT.601 luma, as PIL's RGB → L conversion (read_image) uses.
_LUMA = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------- paired tasks
def luma(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×C×H×W → float32 N×1×H×W in [0, 1]: the gray itself, or the ITU-R 601 luma of RGB."""
    x = images.float() / 255.0
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def sobel_edges(images: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """Edge maps of uint8 images N×C×H×W: uint8 N×1×H×W, 255 on edges and 0 elsewhere.

    Sobel (Sobel & Feldman 1968): the horizontal and vertical derivatives of the luma by the 3×3 kernels
    Kx = [1 2 1]ᵀ·[−1 0 1] / 4 and Ky = Kxᵀ (borders replicated, so the frame is no edge); a pixel is an
    edge where the gradient magnitude √(gx² + gy²) exceeds ``threshold``. Canny's thinning and hysteresis
    are left out: the maps are a little thicker, and every step is one line of tensor code.
    """
    smooth = torch.tensor([1.0, 2.0, 1.0])
    derivative = torch.tensor([-1.0, 0.0, 1.0])
    kx = torch.outer(smooth, derivative) / 4.0
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)  # 2×1×3×3: gx, gy
    edges = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8)
    for start in range(0, len(images), 4096):  # chunks bound the float32 working memory
        gray = F.pad(luma(images[start:start + 4096]), (1, 1, 1, 1), mode="replicate")
        gradient = F.conv2d(gray, kernels)
        magnitude = gradient.square().sum(dim=1, keepdim=True).sqrt()
        edges[start:start + 4096] = (magnitude > threshold).to(torch.uint8) * 255
    return edges


def with_hole(images: torch.Tensor, fraction: float = HOLE_FRACTION, value: int = HOLE_VALUE) -> torch.Tensor:
    """uint8 images with a centred square hole (``fraction`` of each side, at least one pixel) set to ``value``."""
    out = images.clone()
    height, width = images.shape[2:]
    hole_h, hole_w = max(1, round(fraction * height)), max(1, round(fraction * width))
    top, left = (height - hole_h) // 2, (width - hole_w) // 2
    out[:, :, top:top + hole_h, left:left + hole_w] = value
    return out


def grayscale(images: torch.Tensor, name: str = "dataset") -> torch.Tensor:
    """uint8 RGB images N×3×H×W → their luma, uint8 N×1×H×W; a DataError for gray images."""
    if images.shape[1] != 3:
        raise DataError(f"{name}: task 'gray' (grayscale → colour) needs RGB images, this data has "
                        f"{images.shape[1]} channel(s); use --task edges or --task masked")
    return (luma(images) * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def task_inputs(images: torch.Tensor, task: str, name: str = "dataset") -> torch.Tensor:
    """The inputs paired task ``task`` makes from uint8 target images (see the module docstring)."""
    if task == "edges":
        return sobel_edges(images)
    if task == "masked":
        return with_hole(images)
    if task == "gray":
        return grayscale(images, name)
    raise DataError(f"{name}: unknown paired task {task!r}; expected one of {', '.join(TASKS)}")


def make_pairs(dataset: Dataset, task: str) -> Dataset:
    """``dataset`` as (input, target) pairs for paired task ``task``: the images are the targets (labels kept),
    the sources the inputs the task makes from them."""
    if dataset.is_points:
        raise DataError(f"dataset {dataset.name!r} holds {dataset.image_shape[0]}-D points; translation needs images")
    if dataset.sources is not None:
        raise DataError(f"dataset {dataset.name!r} already holds (input, target) pairs; train on it as it is")
    sources = task_inputs(dataset.images, task, repr(dataset.name))
    return Dataset(dataset.images, dataset.labels, dataset.classes, dataset.name, sources)


# ----------------------------------------------------------------------------- pairs from files
def image_files(folder: str | os.PathLike[str], what: str = "folder") -> list[Path]:
    """The image files directly in ``folder`` (hidden ones skipped), sorted by name; a DataError naming the folder
    when it is missing or holds none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} not found, expected a folder of images")
    files = sorted(path for path in folder.iterdir()
                   if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and not path.name.startswith("."))
    if not files:
        inside = sorted(path.name for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))
        hint = f" (it has sub-folders: {', '.join(inside[:5])}; name one of them)" if inside else ""
        raise DataError(f"{folder}: no images in this {what}, expected {'/'.join(IMAGE_EXTENSIONS)} files{hint}")
    if len(files) > MAX_ITEMS:
        raise DataError(f"{folder}: holds {len(files):,} images, more than genlab's bound of {MAX_ITEMS:,} per folder")
    return files


def _stack(images: list[torch.Tensor], files: list[Path], where: Path) -> torch.Tensor:
    """Images of one size as one uint8 tensor (gray repeated to RGB if any is colour); a DataError naming the
    first file whose size differs."""
    first = images[0]
    for image, file in zip(images, files, strict=True):
        if image.shape[1:] != first.shape[1:]:
            raise DataError(f"{file}: {image.shape[1]}×{image.shape[2]} (height×width) but {files[0].name} is "
                            f"{first.shape[1]}×{first.shape[2]}; all must share a size, or pass an image size to resize them")
    channels = 3 if any(image.shape[0] == 3 for image in images) else 1
    if len(images) * channels * math.prod(first.shape[1:]) > MAX_DATA_BYTES:
        raise DataError(f"{where}: {len(images):,} images of {tuple(first.shape)} take more than genlab's bound of "
                        f"{MAX_DATA_BYTES:,} bytes per dataset")
    return torch.stack([image.expand(channels, -1, -1) for image in images])


def _resized(image: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """One uint8 C×H×W image at ``size`` (height, width), resized as ``resize_images`` does; as it is without a size."""
    if size is None or tuple(image.shape[1:]) == size:
        return image
    return resize_images(Dataset(image[None].contiguous()), size).images[0]


def load_side_by_side(folder: str | os.PathLike[str], image_size: int | tuple[int, int] | None = None,
                      direction: str = "a2b", name: str | None = None) -> Dataset:
    """Pairs from a folder of side-by-side ``A|B`` images: the left half of each file is A, the right half B.

    ``direction="a2b"`` learns A → B (A is the input); ``"b2a"`` the reverse. Every file must have an even
    width (two halves of one size); ``image_size`` (int or (height, width)) resizes each half.
    """
    if direction not in ("a2b", "b2a"):
        raise DataError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
    folder = Path(folder).expanduser()
    files = image_files(folder, "folder of side-by-side A|B images")
    size = image_size_pair(image_size, "load_side_by_side")
    lefts, rights = [], []
    for file in files:
        image = read_image(file)
        width = image.shape[2]
        if width < 2 or width % 2:
            raise DataError(f"{file}: {width} pixels wide, expected a side-by-side A|B image of even width "
                            "(left half A, right half B, of one size)")
        lefts.append(_resized(image[:, :, : width // 2], size))
        rights.append(_resized(image[:, :, width // 2:], size))
    a, b = _stack(lefts, files, folder), _stack(rights, files, folder)
    a, b = _same_channels(a, b)
    inputs, targets = (a, b) if direction == "a2b" else (b, a)
    return Dataset(targets, name=name or str(folder), sources=inputs)


def load_folder_pairs(inputs: str | os.PathLike[str], targets: str | os.PathLike[str],
                      image_size: int | tuple[int, int] | None = None, name: str | None = None) -> Dataset:
    """Pairs from two folders, matched by file name without its extension (``inputs/042.png`` ↔
    ``targets/042.jpg``): the input of each pair from ``inputs``, its target from ``targets``.

    A file without a partner, or a pair whose two images differ in size (without ``image_size``), is a
    DataError naming the file.
    """
    input_dir, target_dir = Path(inputs).expanduser(), Path(targets).expanduser()
    input_files = _by_stem(image_files(input_dir, "folder of input images"))
    target_files = _by_stem(image_files(target_dir, "folder of target images"))
    for mine, theirs, other in ((input_files, target_files, target_dir), (target_files, input_files, input_dir)):
        missing = sorted(set(mine) - set(theirs))
        if missing:
            raise DataError(f"{mine[missing[0]]}: no partner in {other} (expected {other / missing[0]}.* with the same "
                            f"name){f'; {len(missing) - 1} more files lack one' if len(missing) > 1 else ''}")
    stems = sorted(input_files)
    size = image_size_pair(image_size, "load_folder_pairs")
    a = [read_image(input_files[stem], size=size) for stem in stems]
    b = [read_image(target_files[stem], size=size) for stem in stems]
    if size is None:
        for stem, x, y in zip(stems, a, b, strict=True):
            if x.shape[1:] != y.shape[1:]:
                raise DataError(f"{input_files[stem]}: {x.shape[1]}×{x.shape[2]} (height×width) but its partner "
                                f"{target_files[stem]} is {y.shape[1]}×{y.shape[2]}; a pair must share a size, or pass "
                                "an image size to resize both")
    sources = _stack(a, [input_files[s] for s in stems], input_dir)
    images = _stack(b, [target_files[s] for s in stems], target_dir)
    return Dataset(images, name=name or str(target_dir), sources=sources)


def _by_stem(files: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for file in files:
        if file.stem in found:
            raise DataError(f"{file}: another image has the same name ({found[file.stem].name}); pairs are matched by "
                            "name, so each name may appear once per folder")
        found[file.stem] = file
    return found


def _same_channels(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of side-by-side files come from one file each, so they share a channel count."""
    channels = max(a.shape[1], b.shape[1])
    return a.expand(-1, channels, -1, -1).contiguous(), b.expand(-1, channels, -1, -1).contiguous()


__all__ = ["EDGE_THRESHOLD", "HOLE_FRACTION", "HOLE_VALUE", "TASKS", "grayscale", "image_files", "load_folder_pairs",
           "load_side_by_side", "luma", "make_pairs", "sobel_edges", "task_inputs", "with_hole"]
