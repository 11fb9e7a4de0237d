"""The dataset layer: IDX files, image folders, .npz files, CIFAR-10 archives, named datasets, search order."""
from __future__ import annotations

import gzip
import importlib.util
import io
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import Dataset, dataset_info, list_datasets, load_dataset, read_idx, sources, write_idx
from genlab.data.cifar import RECORD_SIZE, load_cifar10
from genlab.errors import DataError

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_fashion_mnist_mini.py"


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """A private cache, no GENLAB_DATA, and a mirror on a closed local port: no test reaches the internet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("GENLAB_MIRROR", f"http://127.0.0.1:{closed_port}")


# ---------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 3, 4, 5)])
def test_idx_round_trip(tmp_path, suffix, dtype, shape):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path / f"array.idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_idx_layout_is_big_endian_with_magic(tmp_path):
    write_idx(tmp_path / "a.idx", np.array([[1, 258]], dtype=np.int16))
    assert (tmp_path / "a.idx").read_bytes() == bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 1, 2])
    write_idx(tmp_path / "a.idx.gz", np.array([[1, 258]], dtype=np.int16))
    assert gzip.decompress((tmp_path / "a.idx.gz").read_bytes()) == (tmp_path / "a.idx").read_bytes()


@pytest.mark.parametrize("head", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00"])
def test_idx_wrong_magic(tmp_path, head):
    path = tmp_path / "bad-magic.idx"
    path.write_bytes(head + b"\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match=r"bad-magic\.idx.*not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_truncated_names_file_and_byte_counts(tmp_path, suffix):
    data = bytes([0, 0, 0x08, 2, 0, 0, 0, 3, 0, 0, 0, 4]) + bytes(10)  # needs 12 + 12 bytes
    path = tmp_path / f"short.idx{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    with pytest.raises(DataError, match=r"short\.idx.*truncated.*expected 24 bytes.*got 22"):
        read_idx(path)


def test_idx_errors(tmp_path):
    with pytest.raises(DataError, match=r"missing\.idx.*not found"):
        read_idx(tmp_path / "missing.idx")
    (tmp_path / "broken.idx.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"broken\.idx\.gz"):
        read_idx(tmp_path / "broken.idx.gz")
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))


# ------------------------------------------------------------------------------ image folders


def save(path: Path, array: np.ndarray, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


def test_folder_with_class_subfolders_mixes_gray_rgb_rgba(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    rgb = np.stack([gray, gray // 2, 255 - gray], axis=-1)
    rgba = np.concatenate([rgb, np.full((4, 4, 1), 255, np.uint8)], axis=-1)
    save(tmp_path / "zebra" / "a.png", gray, "L")
    save(tmp_path / "ant" / "b.png", rgb, "RGB")
    save(tmp_path / "ant" / "nested" / "c.png", rgba, "RGBA")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")

    dataset = load_dataset(tmp_path)
    assert dataset.classes == ("ant", "zebra")
    assert dataset.labels.tolist() == [0, 0, 1]
    assert dataset.images.shape == (3, 3, 4, 4) and dataset.images.dtype == torch.uint8
    expected_rgb = torch.from_numpy(rgb).permute(2, 0, 1)
    assert torch.equal(dataset.images[0], expected_rgb)
    assert torch.equal(dataset.images[1], expected_rgb)  # opaque RGBA reads as its RGB
    assert torch.equal(dataset.images[2], torch.from_numpy(gray).expand(3, 4, 4))  # gray → 3 equal channels


def test_flat_gray_folder_has_no_labels(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", np.full((5, 6), i * 50, np.uint8), "L")
    dataset = load_dataset(tmp_path, split="test")  # split is ignored for paths
    assert dataset.labels is None and dataset.classes == ()
    assert dataset.images.shape == (3, 1, 5, 6)
    assert dataset.images[:, 0, 0, 0].tolist() == [0, 50, 100]


def test_mixed_sizes_need_image_size(tmp_path):
    save(tmp_path / "a.png", np.zeros((8, 8), np.uint8), "L")
    save(tmp_path / "b.png", np.zeros((6, 10), np.uint8), "L")
    with pytest.raises(DataError, match=r"b\.png.*6×10.*a\.png.*8×8.*image_size"):
        load_dataset(tmp_path)
    assert load_dataset(tmp_path, image_size=(4, 5)).images.shape == (2, 1, 4, 5)
    assert load_dataset(tmp_path, image_size=7).images.shape == (2, 1, 7, 7)


def test_corrupt_image_is_named(tmp_path):
    save(tmp_path / "good.png", np.zeros((4, 4), np.uint8), "L")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"corrupt\.png"):
        load_dataset(tmp_path)


def test_folder_without_images_or_with_both_layouts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_dataset(tmp_path / "empty")
    save(tmp_path / "both" / "top.png", np.zeros((4, 4), np.uint8), "L")
    save(tmp_path / "both" / "cls" / "x.png", np.zeros((4, 4), np.uint8), "L")
    with pytest.raises(DataError, match="both images"):
        load_dataset(tmp_path / "both")


# ------------------------------------------------------------------------------------- .npz


NCHW = np.random.default_rng(1).integers(0, 256, (4, 3, 5, 6), dtype=np.uint8)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (NCHW[:, 0], NCHW[:, :1]),  # N×H×W
        (NCHW[:, :1].transpose(0, 2, 3, 1), NCHW[:, :1]),  # N×H×W×1
        (NCHW.transpose(0, 2, 3, 1), NCHW),  # N×H×W×3
        (NCHW, NCHW),  # N×C×H×W
        (NCHW / 255.0, NCHW),  # float in [0, 1]
        ((NCHW / 255.0).astype(np.float32).transpose(0, 2, 3, 1), NCHW),
    ],
)
def test_npz_layouts(tmp_path, stored, expected):
    np.savez(tmp_path / "set.npz", images=stored)
    dataset = load_dataset(tmp_path / "set.npz")
    assert torch.equal(dataset.images, torch.from_numpy(expected))
    assert dataset.labels is None


def test_npz_labels_classes_and_resize(tmp_path):
    labels, classes = np.array([0, 2, 1, 2], np.uint8), np.array(["a", "b", "c"])
    np.savez(tmp_path / "set.npz", images=NCHW, labels=labels, classes=classes)
    dataset = load_dataset(str(tmp_path / "set.npz"), image_size=3)
    assert dataset.classes == ("a", "b", "c")
    assert dataset.labels.dtype == torch.int64 and dataset.labels.tolist() == [0, 2, 1, 2]
    assert dataset.images.shape == (4, 3, 3, 3) and dataset.images.dtype == torch.uint8
    np.savez(tmp_path / "nameless.npz", images=NCHW, labels=np.array([0, 2, 1, 2]))
    assert load_dataset(tmp_path / "nameless.npz").classes == ("0", "1", "2")


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "keys.npz", pictures=NCHW, labels=np.zeros(4, np.int64))
    with pytest.raises(DataError, match=r"keys\.npz.*no 'images'.*pictures, labels"):
        load_dataset(tmp_path / "keys.npz")
    bad = {
        "range": dict(images=NCHW * 2.0),
        "dtype": dict(images=NCHW.astype(np.int32)),
        "shape": dict(images=np.zeros((2, 5, 5, 5), np.uint8)),
        "labels": dict(images=NCHW, labels=np.zeros(3, np.int64)),
        "classes": dict(images=NCHW, labels=np.array([0, 1, 2, 3]), classes=np.array(["a", "b"])),
    }
    for name, arrays in bad.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(DataError, match=rf"{name}\.npz"):
            load_dataset(tmp_path / f"{name}.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"junk\.npz"):
        load_dataset(tmp_path / "junk.npz")


# ------------------------------------------------------------------------------------ CIFAR-10


def cifar_archive(path: Path, batches: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in batches.items():
            member = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def cifar_records(labels: list[int], seed: int) -> tuple[bytes, np.ndarray]:
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    records = np.concatenate([np.array(labels, np.uint8)[:, None], pixels], axis=1)
    return records.tobytes(), pixels


def test_cifar10_binary_archive(tmp_path):
    batches, pixels = {}, []
    for i in range(1, 6):
        batches[f"data_batch_{i}.bin"], batch_pixels = cifar_records([i, 9 - i], seed=i)
        pixels.append(batch_pixels)
    batches["test_batch.bin"], test_pixels = cifar_records([3], seed=0)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    cifar_archive(archive, {name: batches[name] for name in reversed(batches)})  # order in tar must not matter

    train = load_cifar10(archive, "train")
    assert train.images.shape == (10, 3, 32, 32) and train.classes[0] == "airplane"
    assert train.labels.tolist() == [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]
    pixels = np.concatenate(pixels)
    # Record layout: 1024 red bytes, then green, then blue, each row-major.
    assert train.images[3, 1, 2, 5].item() == pixels[3, 1024 + 2 * 32 + 5]
    assert train.images[9, 2, 31, 0].item() == pixels[9, 2048 + 31 * 32]
    assert torch.equal(train.images.reshape(10, -1), torch.from_numpy(pixels))

    test = load_cifar10(archive, "test")
    assert test.labels.tolist() == [3] and torch.equal(test.images.reshape(1, -1), torch.from_numpy(test_pixels))


def test_cifar10_errors(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    cifar_archive(archive, {"test_batch.bin": bytes(RECORD_SIZE + 1)})
    with pytest.raises(DataError, match=r"bad\.tar\.gz:test_batch\.bin.*3074 bytes.*3073"):
        load_cifar10(archive, "test")
    with pytest.raises(DataError, match=r"bad\.tar\.gz.*missing data_batch_1\.bin"):
        load_cifar10(archive, "train")
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"junk\.tar\.gz"):
        load_cifar10(tmp_path / "junk.tar.gz", "test")


def test_cifar10_by_name_from_genlab_data(tmp_path, monkeypatch):
    data, _ = cifar_records([7, 0], seed=5)
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    cifar_archive(tmp_path / "data" / "cifar10" / "cifar-10-binary.tar.gz", {"test_batch.bin": data})
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    test = load_dataset("cifar10", split="test", image_size=16)
    assert test.name == "cifar10" and test.labels.tolist() == [7, 0]
    assert test.images.shape == (2, 3, 16, 16)


# ----------------------------------------------------------------------------- named datasets


def load_script():
    spec = importlib.util.spec_from_file_location("make_fashion_mnist_mini", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("split", "per_class"), [("train", 600), ("test", 100)])
def test_fashion_mnist_mini_is_balanced(split, per_class):
    dataset = load_dataset("fashion-mnist-mini", split=split)
    assert dataset.name == "fashion-mnist-mini"
    assert dataset.images.shape == (10 * per_class, 1, 28, 28) and dataset.images.dtype == torch.uint8
    assert dataset.labels.bincount().tolist() == [per_class] * 10
    assert dataset.classes[0] == "T-shirt/top" and dataset.classes[9] == "Ankle boot"
    assert 0 < dataset.images.float().mean() < 255


@pytest.mark.skipif(not SYSTEM_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.parametrize("split", ["train", "test"])
def test_fashion_mnist_mini_is_the_scripted_subset_of_the_real_set(split):
    full = load_dataset("fashion-mnist", split=split)
    indices = load_script().select_indices(full.labels.numpy(), {"train": 600, "test": 100}[split])
    mini = load_dataset("fashion-mnist-mini", split=split)
    assert torch.equal(mini.images, full.images[indices]) and torch.equal(mini.labels, full.labels[indices])


@pytest.mark.skipif(not SYSTEM_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_system_folder():
    train = load_dataset("fashion-mnist", download=False)
    assert train.images.shape == (60000, 1, 28, 28) and train.labels.bincount().tolist() == [6000] * 10
    assert train.labels[:3].tolist() == [9, 0, 0]  # the well-known first labels: Ankle boot, T-shirt, T-shirt
    test = load_dataset("fashion-mnist", split="test", download=False)
    assert len(test) == 10000 and test.classes == train.classes
    assert str(SYSTEM_FASHION_MNIST) in dataset_info("fashion-mnist")["location"]


def test_unknown_name_lists_choices():
    with pytest.raises(DataError, match=r"unknown dataset 'fashoin-mnist'.*fashion-mnist, mnist, cifar10"):
        load_dataset("fashoin-mnist")
    with pytest.raises(DataError, match="fashion-mnist, mnist"):
        dataset_info("nope")


def test_bad_split_and_image_size():
    with pytest.raises(DataError, match=r"no split 'valid'.*train, test"):
        load_dataset("fashion-mnist-mini", split="valid")
    with pytest.raises(DataError, match="image_size"):
        load_dataset("fashion-mnist-mini", image_size=0)
    with pytest.raises(DataError, match="image_size"):
        load_dataset("fashion-mnist-mini", image_size=(1, 2, 3))


def test_named_dataset_resize():
    dataset = load_dataset("fashion-mnist-mini", split="test", image_size=(14, 21))
    assert dataset.images.shape == (1000, 1, 14, 21) and dataset.images.dtype == torch.uint8


# ------------------------------------------------------------------------------ search order


def write_mnist(folder: Path, value: int, gz: bool = True) -> None:
    """Tiny MNIST-named IDX files whose train images are all ``value``."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", 3), ("t10k", 2)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", np.full((count, 28, 28), value, np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(count, dtype=np.uint8))


def test_search_order_genlab_data_then_cache_then_system(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "system",))
    write_mnist(tmp_path / "system" / "mnist", value=3)
    assert load_dataset("mnist", download=False).images.max() == 3
    assert dataset_info("mnist")["location"] == str(tmp_path / "system" / "mnist")

    write_mnist(tmp_path / "cache" / "genlab" / "mnist", value=2)
    assert load_dataset("mnist", download=False).images.max() == 2

    write_mnist(tmp_path / "data" / "mnist", value=1, gz=False)  # unzipped copies count too
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    train = load_dataset("mnist", download=False)
    assert train.images.max() == 1 and train.labels.tolist() == [0, 1, 2] and train.classes[2] == "2"
    assert len(load_dataset("mnist", split="test", download=False)) == 2

    write_mnist(tmp_path / "data" / "mnist", value=4, gz=True)  # .gz first within one folder
    assert load_dataset("mnist", download=False).images.max() == 4


def test_missing_files_error_lists_places_and_urls(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "system",))
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    with pytest.raises(DataError) as error:
        load_dataset("mnist")
    message = str(error.value)
    assert "\n" not in message
    for place in (tmp_path / "data" / "mnist", tmp_path / "cache" / "genlab" / "mnist", tmp_path / "system" / "mnist"):
        assert str(place) in message
    assert "/mnist/train-images-idx3-ubyte.gz: download failed" in message and "GENLAB_DATA" in message
    assert not (tmp_path / "cache").exists()  # a failed download leaves nothing behind


def test_list_datasets(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", ())
    infos = {info["name"]: info for info in list_datasets()}
    assert set(infos) == {"fashion-mnist", "mnist", "cifar10", "fashion-mnist-mini", "ring8", "grid25", "emoji-twitter",
                          "emoji-google", "photos"}
    assert infos["emoji-twitter"]["image_shape"] == [3, 64, 64] and infos["emoji-twitter"]["num_classes"] == 9
    assert infos["ring8"]["image_shape"] == [2] and infos["grid25"]["num_classes"] == 25
    assert infos["cifar10"]["image_shape"] == [3, 32, 32] and infos["cifar10"]["num_classes"] == 10
    assert infos["mnist"]["location"] == "not present (will download)"
    assert infos["fashion-mnist-mini"]["location"].startswith("bundled")
    assert infos["mnist"]["splits"] == ["train", "test"]


def test_dataset_type_is_shared():
    assert isinstance(load_dataset("fashion-mnist-mini", split="test"), Dataset)
