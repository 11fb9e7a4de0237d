"""Bounds on what one data file or folder may make genlab allocate.

A file's header says how big its array is; a small (or compressed) file can claim terabytes. Every
reader checks the claim against these bounds, and against what the file can really hold, before it
allocates, and fails with a DataError giving the numbers. They are generous for what genlab trains
on (Fashion-MNIST's training images are 47 MB, CIFAR-10's 154 MB).
"""
from __future__ import annotations

from genlab.io.images import MAX_IMAGE_PIXELS

MAX_ITEMS = 10_000_000  # images, labels or points in one file or folder
MAX_DATA_BYTES = 8 << 30  # decoded bytes of one dataset file or folder (8 GiB)
MAX_CLASS_NAMES = 100_000  # entries of a .npz 'classes' array
MAX_DOWNLOAD_BYTES = 1 << 30  # a download with no known size stops after 1 GiB

__all__ = ["MAX_CLASS_NAMES", "MAX_DATA_BYTES", "MAX_DOWNLOAD_BYTES", "MAX_IMAGE_PIXELS", "MAX_ITEMS"]
