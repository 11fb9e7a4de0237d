"""IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, then each dimension as a big-endian uint32, then the values, big-endian, row-major.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from genlab.data.limits import MAX_DATA_BYTES, MAX_IMAGE_PIXELS, MAX_ITEMS
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
_CHUNK = 1 << 20  # bytes read (decompressed) at a time
_CODE_OF_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()}


def _is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (``.gz`` by suffix, else raw) into a native-endian NumPy array.

    The header is read and checked first: the array it declares must fit genlab's bounds
    (:data:`~genlab.data.limits.MAX_DATA_BYTES` in all, ``MAX_ITEMS`` items, ``MAX_IMAGE_PIXELS`` per
    image) and a raw file's size, before anything is allocated; a gzip file is decompressed as a
    stream into the array, never more than one byte past what the header declares.
    Raises DataError naming the file if it is missing, not IDX (bad magic number), declares an
    array beyond the bounds, or is shorter or longer than its header says.
    """
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")) as stream:
            return _read_idx_stream(stream, path, None if _is_gzip(path) else path.stat().st_size)
    except FileNotFoundError:
        raise DataError(f"{path}: IDX file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        kind = "gzip-compressed IDX" if _is_gzip(path) else "IDX"
        raise DataError(f"{path}: cannot read {kind} file ({error})") from None


def _read_idx_stream(stream: IO[bytes], path: Path, file_size: int | None) -> np.ndarray:
    """The array in an open IDX stream; ``file_size`` is the raw file's size (None for a decompressed stream)."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file (magic number {magic.hex() or 'missing'}, "
            f"expected 0000 + type code {'/'.join(f'{c:02x}' for c in IDX_DTYPES)} + ndim)"
        )
    dtype, ndim = IDX_DTYPES[magic[2]], magic[3]
    header_size = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header, expected {header_size} bytes, got {4 + len(dims)}")
    shape = struct.unpack(f">{ndim}I", dims)
    count = math.prod(shape)  # Python ints: a product of 255 uint32s cannot overflow
    payload = count * dtype.itemsize
    expected = header_size + payload
    if ndim and shape[0] > MAX_ITEMS:
        raise DataError(f"{path}: IDX header declares {shape[0]:,} items, more than genlab's bound of {MAX_ITEMS:,}")
    if ndim >= 3 and math.prod(shape[1:]) > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: IDX header declares images of {'×'.join(map(str, shape[1:]))} = {math.prod(shape[1:]):,} "
                        f"values each, more than genlab's bound of {MAX_IMAGE_PIXELS:,} pixels per image")
    if payload > MAX_DATA_BYTES:
        raise DataError(f"{path}: IDX header declares shape {shape} = {payload:,} bytes, more than genlab's bound of "
                        f"{MAX_DATA_BYTES:,} bytes per file")
    if math.prod(max(size, 1) for size in shape) * dtype.itemsize > MAX_DATA_BYTES:  # empty, but sizes NumPy cannot hold
        raise DataError(f"{path}: IDX header declares shape {shape}: its non-zero sizes alone multiply past genlab's bound "
                        f"of {MAX_DATA_BYTES:,} bytes per file")
    if file_size is not None and file_size != expected:
        what = "truncated" if file_size < expected else "oversized"
        raise DataError(f"{path}: {what} IDX file, expected {expected} bytes for shape {shape}, got {file_size}")
    # In chunks, so memory grows with the bytes that really arrive, never with what a (corrupt) header claims.
    data = bytearray()
    while len(data) < payload and (chunk := stream.read(min(_CHUNK, payload - len(data)))):
        data += chunk
    if len(data) < payload:
        raise DataError(f"{path}: truncated IDX file, expected {expected} bytes for shape {shape}, got {header_size + len(data)}")
    if stream.read(1):
        raise DataError(f"{path}: oversized IDX file, more than the {expected} bytes its header declares for shape {shape}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)  # writable: it shares the bytearray
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))  # native byte order


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
