"""Atomic file writes: readers see the old file or the whole new one, never half of either.

A write goes to a temporary file beside the target, named ``.NAME.PID.HEX.tmp``, which is flushed,
fsynced and renamed over the target; the folder is then fsynced too (POSIX), so the rename itself
survives a power cut. A write that fails (permission denied, no space left, a read-only file system)
is one ``OutputError`` naming the path and the reason; the temporary file is gone and the previous
file is untouched. A process killed outright leaves its temporary file behind:
``remove_stale_temporaries`` deletes those of processes that are no longer running.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from genlab.errors import GenlabError, OutputError

# .NAME.PID.HEX.tmp: what atomic_write names its temporary files (HEX: 4 random bytes).
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.tmp$")

# What the OS says, in words a user can act on (the rest: the OS's own strerror).
REASONS = {getattr(errno, name): text for name, text in (
    ("EACCES", "permission denied"),
    ("EPERM", "operation not permitted"),
    ("ENOSPC", "no space left on the device"),
    ("EDQUOT", "disk quota exceeded"),
    ("EROFS", "read-only file system"),
    ("EISDIR", "it is a folder"),
    ("ENOTDIR", "a part of the path is a file, not a folder"),
    ("EEXIST", "a part of the path is a file, not a folder"),  # mkdir(exist_ok=True) on a file
    ("ENAMETOOLONG", "file name too long"),
    ("EFBIG", "file too large"),
    ("EIO", "input/output error"),
) if hasattr(errno, name)}


def temporary_name(path: Path) -> Path:
    """The temporary file atomic_write writes before renaming it to ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def describe_os_error(error: BaseException) -> str:
    """The reason of an OSError in a few words, e.g. "no space left on the device"."""
    code = getattr(error, "errno", None)
    if code in REASONS:
        return REASONS[code]
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def output_error(path: Path, error: BaseException, note: str = "") -> OutputError:
    """One line: ``cannot write PATH: REASON`` (+ ``note``)."""
    return OutputError(f"cannot write {path}: {describe_os_error(error)}{note}")


def _discard(temporary: Path) -> str:
    """Delete ``temporary`` if it exists; never raises. Returns '' or a note saying it could not be deleted."""
    try:
        temporary.unlink(missing_ok=True)
    except OSError as error:
        return f" (and the temporary file {temporary} could not be removed: {describe_os_error(error)})"
    return ""


def fsync_directory(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename in it) to disk. POSIX only; a no-op where the OS or the file
    system does not support it (Windows, some network file systems)."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # EINVAL on file systems that cannot fsync a folder; the rename has happened
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; when the block ends normally it is
    flushed to disk and renamed over ``path`` (and the folder fsynced); when the block raises (even
    KeyboardInterrupt) it is deleted and ``path`` is untouched. Parent folders are created.

    An OSError while creating, writing, flushing or renaming (permission denied, no space left, a
    read-only file system, ...) becomes one ``OutputError`` naming ``path`` and the reason; a failure
    to delete the temporary file never hides it (the message mentions it instead).

    The temporary file is made with ``open(..., "xb")`` rather than ``mkstemp``, so the result has
    the usual permissions (umask), not mkstemp's 0600.
    """
    path = Path(path)
    temporary = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(temporary, "xb")  # noqa: SIM115 (closed below, also when the block raises)
    except OSError as error:
        raise output_error(path, error) from error
    try:
        try:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        finally:
            stream.close()  # also flushes: a full disk can fail here
        os.replace(temporary, path)
    except GenlabError:
        _discard(temporary)
        raise
    except OSError as error:
        raise output_error(path, error, _discard(temporary)) from error
    except BaseException:
        _discard(temporary)
        raise
    fsync_directory(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    with atomic_write(path) as stream:
        stream.write(data)


def _process_is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:  # no process writes as PID 0 (and os.kill(0, ...) would mean this process group)
        return False
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check that the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # PermissionError: it exists, as another user's process; anything else: cannot tell
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Delete the temporary files atomic_write left in ``folder`` (``.NAME.PID.HEX.tmp``; with
    ``recursive``, in its sub-folders too) whose process is no longer running (killed mid-write);
    returns the paths deleted. Files of running processes (a write in progress) are kept, and so is
    everything where that cannot be told (not POSIX). The PID is checked on this machine only: do
    not call it on a folder that processes on other machines write to at the same time.
    """
    folder = Path(folder)
    if os.name != "posix" or not folder.is_dir():
        return []
    removed = []
    for candidate in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        match = TEMPORARY.match(candidate.name)
        if match is None or not candidate.is_file() or _process_is_running(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):  # another cleaner got there first
            candidate.unlink()
            removed.append(candidate)
    return removed
