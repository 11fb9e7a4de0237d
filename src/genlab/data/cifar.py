"""CIFAR-10 from the official binary archive, read straight out of the tar (never unpickled).

Each ``*.bin`` batch is a run of 3073-byte records: one label byte, then 32×32 red bytes, 32×32
green, 32×32 blue, each row-major (https://www.cs.toronto.edu/~kriz/cifar.html). That is already
C×H×W order, so a record reshapes straight into the dataset layout.
"""
from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
IMAGE_SHAPE = (3, 32, 32)
RECORD_SIZE = 1 + 3 * 32 * 32
MAX_BATCH_BYTES = 10_000 * RECORD_SIZE  # every batch file of the official archive holds 10,000 records
SPLIT_MEMBERS = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}


def load_cifar10(archive: str | os.PathLike[str], split: str = "train") -> Dataset:
    """The ``train`` (50,000) or ``test`` (10,000) split of a CIFAR-10 binary archive (.tar.gz or .tar)."""
    if split not in SPLIT_MEMBERS:
        raise DataError(f"cifar10: unknown split {split!r}, expected one of {', '.join(SPLIT_MEMBERS)}")
    archive = Path(archive)
    batches = _read_members(archive, SPLIT_MEMBERS[split])
    parsed = [parse_batch(batches[member], f"{archive}:{member}") for member in SPLIT_MEMBERS[split]]
    images = np.concatenate([images for images, _ in parsed])  # a writable copy of the views
    labels = np.concatenate([labels for _, labels in parsed])
    return Dataset(torch.from_numpy(images), torch.from_numpy(labels), CIFAR10_CLASSES, "cifar10")


def parse_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Records → (uint8 N×3×32×32 images, a read-only view of ``data``; int64 N labels).

    ``source`` names the batch in error messages.
    """
    if not data or len(data) % RECORD_SIZE:
        raise DataError(
            f"{source}: {len(data)} bytes is not a whole number of CIFAR-10 records "
            f"({RECORD_SIZE} bytes each: 1 label byte + 3072 pixel bytes)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_SIZE)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CIFAR10_CLASSES):
        raise DataError(f"{source}: label {labels.max()} out of range, expected 0..{len(CIFAR10_CLASSES) - 1}")
    return records[:, 1:].reshape(-1, *IMAGE_SHAPE), labels


def _read_members(archive: Path, wanted: tuple[str, ...]) -> dict[str, bytes]:
    """The bytes of the ``wanted`` members (matched by base name), in one streaming pass."""
    found: dict[str, bytes] = {}
    try:
        # "r|*": a forward-only stream, so the 170 MB archive is decompressed once, not per seek.
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    if member.size > MAX_BATCH_BYTES:  # the tar header's claim, checked before anything is read
                        raise DataError(f"{archive}:{member.name}: {member.size:,} bytes, more than a CIFAR-10 batch holds "
                                        f"({MAX_BATCH_BYTES:,}: 10,000 records of {RECORD_SIZE} bytes)")
                    found[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except FileNotFoundError:
        raise DataError(f"{archive}: CIFAR-10 archive not found") from None
    except DataError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(f"{archive}: cannot read CIFAR-10 archive ({error})") from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DataError(
            f"{archive}: missing {', '.join(missing)}; expected the CIFAR-10 binary archive "
            "(cifar-10-binary.tar.gz, not the Python or MATLAB version)"
        )
    return found
