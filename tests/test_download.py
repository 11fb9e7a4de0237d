"""Downloads, against a local HTTP server on 127.0.0.1 only: checksums, atomic writes, mirrors, clear failures."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from genlab.data import download, load_dataset, registry, sources, write_idx
from genlab.errors import DataError


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """A private cache, no GENLAB_DATA or system folders, and a mirror nobody listens on."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setenv("GENLAB_MIRROR", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(sources, "SYSTEM_DIRS", ())


@pytest.fixture
def server(tmp_path):
    """An HTTP server for ``tmp_path/served`` on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_verifies_and_lands_in_place(server, tmp_path):
    root, base = server
    payload = bytes(range(256)) * 1000
    (root / "blob.bin").write_bytes(payload)
    dest = tmp_path / "cache" / "genlab" / "x" / "blob.bin"
    assert download(f"{base}/blob.bin", dest, hashlib.sha256(payload).hexdigest()) == dest
    assert dest.read_bytes() == payload
    assert files_under(tmp_path / "cache") == [dest.parents[1], dest.parent, dest]  # no temp files


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    root, base = server
    (root / "blob.bin").write_bytes(b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"blob\.bin: SHA-256 mismatch, expected 0000.*got"):
        download(f"{base}/blob.bin", cache / "genlab" / "x" / "blob.bin", "0" * 64)
    assert files_under(cache) == []  # not the file, not a temp file, not the folders made for it
    (cache / "genlab").mkdir(parents=True)
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        download(f"{base}/blob.bin", cache / "genlab" / "blob.bin", "0" * 64)
    assert files_under(cache) == [cache / "genlab"]  # folders that existed before stay


def test_http_error_and_server_down(server, tmp_path):
    _, base = server
    dest = tmp_path / "cache" / "f.bin"
    with pytest.raises(DataError, match=r"missing\.bin: download failed.*404"):
        download(f"{base}/missing.bin", dest, "0" * 64)
    url = f"http://127.0.0.1:{closed_port()}/f.bin"
    with pytest.raises(DataError, match=f"{url}: download failed"):
        download(url, dest, "0" * 64)
    assert files_under(tmp_path / "cache") == []


def serve_tiny_mnist(folder: Path) -> tuple[dict[str, str], np.ndarray]:
    """Tiny MNIST-named .gz IDX files in ``folder``; returns their SHA-256s and the train images."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([3, 1, 4, 1, 5], np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([9, 2], np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array)
    hashes = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in arrays}
    return hashes, arrays["train-images-idx3-ubyte.gz"]


def test_load_mnist_end_to_end_through_mirrors(server, tmp_path, monkeypatch):
    root, base = server
    hashes, train_images = serve_tiny_mnist(root / "mnist")
    spec = registry.DATASETS["mnist"]
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(spec, files=registry._idx_files(hashes)))
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("GENLAB_MIRROR", f"{dead}, {base}")  # the first mirror is down: the next one is tried

    train = load_dataset("mnist")
    assert train.name == "mnist" and train.labels.tolist() == [3, 1, 4, 1, 5]
    np.testing.assert_array_equal(train.images[:, 0].numpy(), train_images)
    cache = tmp_path / "cache" / "genlab" / "mnist"
    assert sorted(path.name for path in cache.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]

    monkeypatch.setenv("GENLAB_MIRROR", dead)  # from now on only the cache can answer
    assert load_dataset("mnist", download=False).labels.tolist() == [3, 1, 4, 1, 5]
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz not found"):
        load_dataset("mnist", split="test", download=False)


def test_load_mnist_with_wrong_checksum_caches_nothing(server, tmp_path, monkeypatch):
    root, base = server
    serve_tiny_mnist(root / "mnist")  # registry keeps the real MNIST checksums, which these files fail
    monkeypatch.setenv("GENLAB_MIRROR", base)
    with pytest.raises(DataError, match=r"dataset 'mnist'.*SHA-256 mismatch.*GENLAB_DATA"):
        load_dataset("mnist")
    assert files_under(tmp_path / "cache") == []


def test_mirror_override_layout(monkeypatch):
    monkeypatch.setenv("GENLAB_MIRROR", "http://a.example/x/ http://b.example")
    assert sources.mirror_urls("mnist", "f.gz", ("http://official/",)) == [
        "http://a.example/x/mnist/f.gz",
        "http://b.example/mnist/f.gz",
    ]
    monkeypatch.delenv("GENLAB_MIRROR")
    assert sources.mirror_urls("mnist", "f.gz", ("http://official", "http://second/")) == [
        "http://official/f.gz",
        "http://second/f.gz",
    ]
