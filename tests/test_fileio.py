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
