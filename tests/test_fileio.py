import os
import stat

import pytest

from genlab.io.files import atomic_write


def test_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "file.bin"
    with atomic_write(path) as stream:
        stream.write(b"first")
    assert path.read_bytes() == b"first"

    def killed_mid_write() -> None:
        with atomic_write(path) as stream:
            stream.write(b"half of the sec")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        killed_mid_write()
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_files_get_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f") as stream:
            stream.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


# ----- failures: one line naming the path and the reason, the old file kept, no temporary left (issue 14) -----
import errno  # noqa: E402

from genlab.errors import GenlabError, OutputError  # noqa: E402
from genlab.io import files  # noqa: E402
from genlab.io.files import atomic_write_bytes, fsync_directory, remove_stale_temporaries  # noqa: E402


def _fail(code: int):
    def raiser(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return raiser


@pytest.mark.parametrize(("where", "code", "reason"), [
    ("write", errno.ENOSPC, "no space left on the device"),
    ("fsync", errno.EIO, "input/output error"),
    ("replace", errno.EROFS, "read-only file system"),
    ("open", errno.EACCES, "permission denied"),
])
def test_a_failed_write_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, where, code, reason):
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"previous")
    if where == "fsync":
        monkeypatch.setattr(files.os, "fsync", _fail(code))
    elif where == "replace":
        monkeypatch.setattr(files.os, "replace", _fail(code))
    elif where == "open":
        monkeypatch.setattr(files, "open", _fail(code), raising=False)  # the module's open, not everyone's
    def write() -> None:
        with atomic_write(path) as stream:
            stream.write(b"new, half")
            if where == "write":  # what a full disk does to a write (PIL, safetensors and torch let it through)
                raise OSError(code, os.strerror(code))

    with pytest.raises(OutputError) as caught:
        write()
    message = str(caught.value)
    assert message == f"cannot write {path}: {reason}" and "\n" not in message
    assert isinstance(caught.value, GenlabError) and isinstance(caught.value, OSError)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_cleanup_failure_never_hides_the_original_error(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    monkeypatch.setattr(files.os, "replace", _fail(errno.ENOSPC))
    monkeypatch.setattr(files.Path, "unlink", _fail(errno.EACCES))
    with pytest.raises(OutputError, match=r"cannot write .*out.bin: no space left on the device \(and the temporary "
                                          r"file .*\.out\.bin\.\d+\.[0-9a-f]{8}\.tmp could not be removed: permission denied\)"):
        atomic_write_bytes(path, b"x")
    def fail_inside() -> None:
        with atomic_write(tmp_path / "other.bin"):
            raise RuntimeError("the caller's own error")

    with pytest.raises(RuntimeError, match="the caller's own error"):  # not an OSError: passes through as it is
        fail_inside()


def test_a_read_only_folder_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions; the simulated failures above cover this")
    folder = tmp_path / "locked"
    folder.mkdir()
    atomic_write_bytes(folder / "f", b"old")
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match=r"cannot write .*f: permission denied"):
            atomic_write_bytes(folder / "f", b"new")
    finally:
        folder.chmod(0o755)
    assert (folder / "f").read_bytes() == b"old" and sorted(p.name for p in folder.iterdir()) == ["f"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(files, "fsync_directory", lambda folder: synced.append((folder, (folder / "f").exists())))
    atomic_write_bytes(tmp_path / "f", b"x")
    assert synced == [(tmp_path, True)]  # after the rename
    fsync_directory(tmp_path)  # the real one: no error on a real folder,
    fsync_directory(tmp_path / "missing")  # nor on one that does not exist


def test_remove_stale_temporaries_deletes_only_those_of_dead_processes(tmp_path):
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = int(finished.stdout)
    stale = tmp_path / f".model.safetensors.{dead}.0123abcd.tmp"
    live = tmp_path / f".samples.png.{os.getpid()}.89abcdef.tmp"
    other = [tmp_path / ".notes.tmp", tmp_path / f".x.{dead}.nothex!.tmp", tmp_path / "model.safetensors"]
    nested = tmp_path / "samples" / f".epoch_001.png.{dead}.deadbeef.tmp"
    nested.parent.mkdir()
    for path in (stale, live, nested, *other):
        path.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert live.exists() and nested.exists() and all(path.exists() for path in other)
    assert remove_stale_temporaries(tmp_path, recursive=True) == [nested]
    assert remove_stale_temporaries(tmp_path / "missing") == []
