"""IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, then each dimension as a big-endian uint32, then the values, big-endian, row-major.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from genlab.errors import DataError

# Type code → big-endian NumPy dtype, as listed on the MNIST page.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()}


def _is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (``.gz`` by suffix, else raw) into a native-endian NumPy array.

    Raises DataError naming the file if it is missing, not IDX (bad magic number), or shorter
    or longer than its header says.
    """
    path = Path(path)
    try:
        data = gzip.decompress(path.read_bytes()) if _is_gzip(path) else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: IDX file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read gzip-compressed IDX file ({error})") from None

    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'}, "
            f"expected 0000 + type code {'/'.join(f'{c:02x}' for c in IDX_DTYPES)} + ndim)"
        )
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated IDX header, expected {header_size} bytes, got {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "oversized"
        raise DataError(
            f"{path}: {what} IDX file, expected {expected} bytes for shape {shape}, got {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native order, and a writable copy


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed if ``path`` ends in ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise DataError(
            f"{path}: IDX cannot store dtype {array.dtype}, "
            "expected uint8, int8, int16, int32, float32 or float64"
        )
    if array.ndim > 255:
        raise DataError(f"{path}: IDX stores at most 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if _is_gzip(path):
        data = gzip.compress(data, mtime=0)  # mtime=0: same array, same bytes
    path.write_bytes(data)
