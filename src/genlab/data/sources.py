"""Where dataset files come from: local folders first, then a verified download into the user cache.

A file ``F`` of dataset ``NAME`` (e.g. ``train-images-idx3-ubyte.gz`` of ``mnist``) is looked
for, as it is or unzipped (``train-images-idx3-ubyte``), in these folders, in this order:

1. ``$GENLAB_DATA/NAME/``                       your own copy
2. ``${XDG_CACHE_HOME:-~/.cache}/genlab/NAME/``  where downloads go
3. ``/usr/share/datasets/NAME/``                 system packages, e.g. Debian's dataset-fashion-mnist

Local copies are trusted as they are (an unzipped or re-gzipped copy could not match the
download checksum anyway); the readers still check their format.

If a file is nowhere, it is downloaded into the user cache from the dataset's mirrors, checked
against its SHA-256 and moved into place atomically. ``GENLAB_MIRROR`` (one or more base URLs,
separated by spaces or commas) replaces every dataset's official mirrors; files are then fetched
from ``BASE/NAME/F``, the same layout as ``$GENLAB_DATA``, so ``python -m http.server`` run in a
``GENLAB_DATA`` folder is a working mirror.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from genlab.data.limits import MAX_DOWNLOAD_BYTES
from genlab.errors import DataError
from genlab.io.files import atomic_write

DATA_ENV = "GENLAB_DATA"
MIRROR_ENV = "GENLAB_MIRROR"
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 60.0


def cache_dir(name: str) -> Path:
    """The per-user download folder of dataset ``name``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "genlab" / name


def search_dirs(name: str) -> list[Path]:
    """The folders searched for dataset ``name``, in order."""
    dirs = [Path(os.environ[DATA_ENV]).expanduser() / name] if os.environ.get(DATA_ENV) else []
    return dirs + [cache_dir(name)] + [folder / name for folder in SYSTEM_DIRS]


def _file_variants(filename: str) -> list[str]:
    """``X.gz`` may also be present unzipped as ``X``; our readers accept both."""
    return [filename, filename.removesuffix(".gz")] if filename.endswith(".gz") else [filename]


def find_local(name: str, filename: str) -> Path | None:
    """The first local copy of ``filename`` (or its unzipped form) for dataset ``name``, or None."""
    for folder in search_dirs(name):
        for variant in _file_variants(filename):
            if (folder / variant).is_file():
                return folder / variant
    return None


def mirror_bases(name: str, mirrors: tuple[str, ...] | list[str]) -> list[str]:
    """The base URLs to download dataset ``name`` from: ``$GENLAB_MIRROR/name/`` if set, else ``mirrors``."""
    override = os.environ.get(MIRROR_ENV, "").replace(",", " ").split()
    bases = [f"{base.rstrip('/')}/{name}" for base in override] if override else list(mirrors)
    return [base.rstrip("/") + "/" for base in bases]


def mirror_urls(name: str, filename: str, mirrors: tuple[str, ...] | list[str]) -> list[str]:
    """The URLs to try, in order, for ``filename`` of dataset ``name``."""
    return [base + filename for base in mirror_bases(name, mirrors)]


def fetch(
    name: str,
    filename: str,
    sha256: str,
    mirrors: tuple[str, ...] | list[str],
    *,
    allow_download: bool = True,
    hint: str = "",
    size: int | None = None,
) -> Path:
    """A local path for ``filename`` of dataset ``name``: found locally, else downloaded.

    Raises one DataError listing every folder searched, every URL tried (and why it failed)
    and how to get the file, if no copy can be found or downloaded. ``size`` (bytes, if known) bounds
    a download (see :func:`download`).
    """
    found = find_local(name, filename)
    if found is not None:
        return found
    urls = mirror_urls(name, filename, mirrors)
    if allow_download:
        failures = []
        for url in urls:
            try:
                return download(url, cache_dir(name) / filename, sha256, size=size)
            except DataError as error:
                failures.append(str(error))
        tried = "; ".join(failures) or "no download URL known"
    else:
        tried = f"download=False, so did not try {', '.join(urls) or 'any URL'}"
    looked = ", ".join(str(folder) for folder in search_dirs(name))
    raise DataError(
        f"dataset {name!r}: {filename} not found in {looked}; {tried}. "
        f"To fix: set {DATA_ENV}=DIR and put {filename} in DIR/{name}/, "
        f"or set {MIRROR_ENV} to a reachable mirror{', or ' + hint if hint else ''}"
    )


def download(url: str, dest: str | os.PathLike[str], sha256: str, size: int | None = None) -> Path:
    """Download ``url`` to ``dest``, verifying its SHA-256; returns ``dest``.

    ``size`` is the file's expected size in bytes: a server announcing (Content-Length) or sending
    more is refused, reading stops at ``size`` + 1 bytes, so a wrong or hostile mirror cannot fill
    the disk. Without ``size`` the bound is MAX_DOWNLOAD_BYTES.

    The bytes go to a temporary file next to ``dest``, which replaces ``dest`` only once the
    checksum matches. On any failure (network, HTTP error, mismatch, even Ctrl-C) the temporary
    file and any folders this call created are removed; errors are raised as a one-line
    DataError naming the URL.
    """
    dest = Path(dest)
    try:
        created = _make_dirs(dest.parent)
    except OSError as error:
        raise DataError(f"{dest.parent}: cannot write a download there ({_reason(error)})") from None
    done = False
    try:
        with atomic_write(dest) as out:  # raising inside discards the temporary file
            try:
                actual = _copy_url(url, out, label=dest.name, limit=MAX_DOWNLOAD_BYTES if size is None else size)
            except DataError:
                raise
            except (OSError, http.client.HTTPException, ValueError) as error:
                raise DataError(f"{url}: download failed ({_reason(error)})") from None
            if actual != sha256.lower():
                raise DataError(f"{url}: SHA-256 mismatch, expected {sha256}, got {actual}; file discarded")
        done = True
    except OSError as error:
        raise DataError(f"{dest.parent}: cannot write a download there ({_reason(error)})") from None
    finally:
        if not done:
            for folder in created:  # deepest first; stops at a folder someone else filled
                try:
                    folder.rmdir()
                except OSError:
                    break
    return dest


def _copy_url(url: str, out, *, label: str, limit: int) -> str:
    """Stream ``url`` into the open binary file ``out`` with a progress bar; returns the SHA-256.

    Raises DataError if the server announces or sends more than ``limit`` bytes (it stops reading at ``limit`` + 1).
    """
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        announced = response.headers.get("Content-Length") or ""
        total = (int(announced) if announced.strip().isdigit() else 0) or None
        if total is not None and total > limit:
            raise DataError(f"{url}: the server announces {total:,} bytes, more than the expected {limit:,} bytes; not downloaded")
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False) as bar:
            while chunk := response.read(min(1 << 20, limit + 1 - received)):
                received += len(chunk)
                if received > limit:
                    raise DataError(f"{url}: the body is larger than the expected {limit:,} bytes; download stopped and discarded")
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__
