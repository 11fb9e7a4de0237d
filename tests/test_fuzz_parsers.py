"""Property tests of every parser a user can hand a file to: IDX (raw and gzip), .npz, image files and
folders, config.json, training_state.safetensors and a safetensors weights file.

The property: any bytes, and any mutation of a valid file (truncation, bit flips, overwritten or inserted
bytes, edits of the header fields a parser trusts), either load or raise one of genlab's own errors (one
line), never another exception, and never make Python allocate more than MEMORY_BUDGET (tracemalloc's peak,
which sees Python's and NumPy's allocations). Allocations outside Python's view (Pillow's image buffers, torch's
tensors) are bounded by genlab's size limits, lowered here so that what they allow also fits the budget.

Each test runs FUZZ_EXAMPLES examples (derandomized: the same ones on every run, so CI is stable);
``GENLAB_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_parsers.py`` runs a longer, randomized search.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import vae_one_step_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as save_safetensors

import genlab.config
import genlab.data.files
import genlab.data.idx
import genlab.io.images
from genlab.config import TrainConfig, config_to_dict
from genlab.data import load_dataset, read_idx, write_idx
from genlab.errors import GenlabError
from genlab.io.checkpoints import STATE_FILE, WEIGHTS_FILE, load_tensors, save_tensors
from genlab.io.images import read_image
from genlab.models import GANConfig, JudgeConfig, SRConfig, VAEConfig
from genlab.models.vae import VAE
from genlab.runs import load, write_config
from genlab.training.ema import EMA
from genlab.training.sampler import BatchSampler
from genlab.training.state import restore_checkpoint, save_checkpoint

MEMORY_BUDGET = 64 << 20
LONG_RUN = "GENLAB_FUZZ_EXAMPLES" in os.environ
FUZZ_EXAMPLES = int(os.environ.get("GENLAB_FUZZ_EXAMPLES", "60"))
fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=not LONG_RUN,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture
def small_bounds(monkeypatch):
    """genlab's size bounds, lowered so that whatever they let through also fits MEMORY_BUDGET."""
    monkeypatch.setattr(genlab.io.images, "MAX_IMAGE_PIXELS", 1 << 20)
    monkeypatch.setattr(genlab.data.files, "MAX_IMAGE_PIXELS", 1 << 20)
    for module in (genlab.data.files, genlab.data.idx):
        monkeypatch.setattr(module, "MAX_DATA_BYTES", 16 << 20)
    monkeypatch.setattr(genlab.config, "MAX_WEIGHTS", 1 << 22)


def loads_or_refuses(parse: Callable[[], object]) -> None:
    """``parse()`` returns or raises a GenlabError of one line, within MEMORY_BUDGET; anything else fails the test."""
    message = ""
    tracemalloc.start()
    try:
        parse()
    except GenlabError as error:
        message = str(error)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert "\n" not in message, message
    assert peak < MEMORY_BUDGET, f"{peak:,} bytes"


@st.composite
def mutation_of(draw, valid: bytes, header_size: int = 64) -> bytes:
    """``valid`` with 1–4 edits: a bit flip, a truncation, overwritten or inserted bytes, or an arbitrary
    big-endian or little-endian 32/64-bit number written over the first ``header_size`` bytes."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "overwrite", "insert", "number"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at:at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            fmt = draw(st.sampled_from([">I", "<I", ">Q", "<Q"]))
            number = draw(st.one_of(st.integers(0, 2 ** (8 * struct.calcsize(fmt)) - 1), st.sampled_from([0, 1, 255, 2**31, 2**32 - 1])))
            at = draw(st.integers(0, max(0, min(len(data), header_size) - struct.calcsize(fmt))))
            data[at:at + struct.calcsize(fmt)] = struct.pack(fmt, number)
    return bytes(data)


def any_bytes_or_mutation(valid: bytes, header_size: int = 64) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), mutation_of(valid, header_size))


# --------------------------------------------------------------------------------------------- IDX


def idx_file(suffix: str) -> bytes:
    buffer = io.BytesIO()
    array = np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4)
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", *array.shape) + array.tobytes()
    buffer.write(gzip.compress(data, mtime=0) if suffix == ".gz" else data)
    return buffer.getvalue()


def idx_header_edit() -> st.SearchStrategy[bytes]:
    """Valid magic, any type code and rank, any dimensions (up to 2³² − 1), and a little data."""
    return st.builds(
        lambda code, dims, tail: bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + tail,
        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
        st.lists(st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 8)), max_size=6),
        st.binary(max_size=64),
    )


@fuzz
@given(data=st.one_of(any_bytes_or_mutation(idx_file(""), 16), idx_header_edit()))
def test_fuzz_idx_raw(data, tmp_path, small_bounds):
    path = tmp_path / "fuzz.idx"
    path.write_bytes(data)
    loads_or_refuses(lambda: read_idx(path))


@fuzz
@given(data=st.one_of(any_bytes_or_mutation(idx_file(".gz")), idx_header_edit().map(gzip.compress),
                      mutation_of(idx_file(""), 16).map(gzip.compress)))
def test_fuzz_idx_gzip(data, tmp_path, small_bounds):
    path = tmp_path / "fuzz.idx.gz"
    path.write_bytes(data)
    loads_or_refuses(lambda: read_idx(path))


def test_a_valid_idx_file_still_reads(tmp_path):
    for suffix in ("", ".gz"):
        path = tmp_path / f"ok.idx{suffix}"
        path.write_bytes(idx_file(suffix))
        assert read_idx(path).shape == (3, 5, 4)
    write_idx(tmp_path / "f.idx", np.linspace(0, 1, 7, dtype=np.float32))
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), np.linspace(0, 1, 7, dtype=np.float32))


# --------------------------------------------------------------------------------------------- .npz


def npz_file(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, images=np.arange(4 * 6 * 6, dtype=np.uint8).reshape(4, 6, 6), labels=np.array([0, 1, 1, 0]),
         classes=np.array(["a", "b"]))
    return buffer.getvalue()


@st.composite
def crafted_npz(draw) -> bytes:
    """A zip of .npy members whose headers say anything: any dtype, any shape (negative and huge sizes too)."""
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for key in draw(st.lists(st.sampled_from(["images", "labels", "classes", "other"]), min_size=1, max_size=3, unique=True)):
            header = {
                "descr": draw(st.sampled_from(["|u1", "<f4", ">f8", "<i8", "<u8", "|b1", "<U5", "|S3", "|O", "<c8", "|V0",
                                               "<m8[s]", "nonsense", "<U0"])),
                "fortran_order": draw(st.booleans()),
                "shape": tuple(draw(st.lists(st.one_of(st.integers(-2, 40), st.integers(0, 2**63)), max_size=5))),
            }
            text = repr(header).encode("latin1")
            text += b" " * (-(len(text) + 11) % 64) + b"\n"
            npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + draw(st.binary(max_size=256))
            archive.writestr(f"{key}.npy", npy)
    return buffer.getvalue()


@fuzz
@given(data=st.one_of(any_bytes_or_mutation(npz_file(False), 4096), mutation_of(npz_file(True), 4096), crafted_npz()))
def test_fuzz_npz(data, tmp_path, small_bounds):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(data)
    loads_or_refuses(lambda: load_dataset(path))


def test_a_valid_npz_still_loads(tmp_path):
    for compressed in (False, True):
        path = tmp_path / f"ok{compressed}.npz"
        path.write_bytes(npz_file(compressed))
        dataset = load_dataset(path)
        assert dataset.image_shape == (1, 6, 6) and dataset.classes == ("a", "b")


# ------------------------------------------------------------------------------------------ images


def image_file(fmt: str, mode: str) -> bytes:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (6, 7, 3) if mode in ("RGB", "P") else (6, 7), dtype=np.uint8)
    image = Image.fromarray(array, mode="RGB" if mode in ("RGB", "P") else "L")
    image = image.convert("P") if mode == "P" else image
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


IMAGE_FILES = [image_file(fmt, mode) for fmt, mode in
               [("PNG", "L"), ("PNG", "RGB"), ("PNG", "P"), ("GIF", "P"), ("BMP", "RGB"), ("JPEG", "L"), ("TIFF", "RGB"),
                ("WEBP", "RGB"), ("PPM", "RGB")]]


def png_with_size() -> st.SearchStrategy[bytes]:
    """A valid PNG whose IHDR width and height (bytes 16–24) say anything."""
    png = IMAGE_FILES[0]
    return st.builds(lambda w, h: png[:16] + struct.pack(">II", w, h) + png[24:],
                     st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns of the corrupt TIFF tags it skips
@fuzz
@given(data=st.one_of(st.binary(max_size=512), st.sampled_from(IMAGE_FILES).flatmap(mutation_of), png_with_size()),
       channels=st.sampled_from([None, 1, 3]))
def test_fuzz_image_file(data, channels, tmp_path, small_bounds):
    path = tmp_path / "fuzz.png"
    path.write_bytes(data)
    loads_or_refuses(lambda: read_image(path, channels=channels))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns of the corrupt TIFF tags it skips
@fuzz
@given(files=st.lists(st.one_of(st.sampled_from(IMAGE_FILES), st.sampled_from(IMAGE_FILES).flatmap(mutation_of)),
                     min_size=1, max_size=3),
       image_size=st.sampled_from([None, 8]))
def test_fuzz_image_folder(files, image_size, tmp_path, small_bounds):
    folder = tmp_path / "folder"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for i, data in enumerate(files):
        (folder / f"{i}.png").write_bytes(data)
    loads_or_refuses(lambda: load_dataset(folder, image_size=image_size))


def test_every_valid_image_file_still_reads(tmp_path):
    for i, data in enumerate(IMAGE_FILES):
        path = tmp_path / f"{i}.png"
        path.write_bytes(data)
        assert read_image(path).shape[1:] == (6, 7)


# ---------------------------------------------------------------------------------- run folders


SMALL_CONFIGS = {
    "vae": VAEConfig(image_shape=(1, 8, 8), latent_dim=2, channels=(4,), hidden_dim=8),
    "gan": GANConfig(image_shape=(2,), g_width=8, d_width=8),
    "judge": JudgeConfig(image_shape=(1, 8, 8), channels=(4,), feature_dim=8, num_classes=2),
    "sr": SRConfig(image_shape=(1, 8, 8), scale=2, channels=4, blocks=1),
}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    model = VAE(SMALL_CONFIGS["vae"])
    write_config(run, model, TrainConfig(), {"name": "fuzz", "image_shape": [1, 8, 8]})
    save_tensors(run / WEIGHTS_FILE, model.state_dict(), {"step": 1})
    return run


def json_values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(-3, 5000),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
    def containers(inner: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4))

    return st.recursive(scalars, containers, max_leaves=12)


@st.composite
def config_json(draw) -> bytes:
    """config.json text: any bytes, any JSON, or a real run config with one value (or the kind) replaced."""
    mode = draw(st.sampled_from(["bytes", "json", "value", "value", "value", "kind"]))
    if mode == "bytes":
        return draw(st.binary(max_size=256))
    if mode == "json":
        return json.dumps(draw(json_values())).encode()
    kind = draw(st.sampled_from(sorted(SMALL_CONFIGS)))
    options = config_to_dict(SMALL_CONFIGS[kind])
    if mode == "kind":
        kind = draw(st.one_of(st.sampled_from(["vae", "gan", "judge", "sr", "gan_encoder"]), json_values()))
    else:
        options[draw(st.one_of(st.sampled_from(sorted(options)), st.text(max_size=8)))] = draw(json_values())
    config = {"model": {"kind": kind, "config": options}, "train": {}, "dataset": {}}
    return json.dumps(config).encode()


@fuzz
@given(text=config_json())
def test_fuzz_config_json(text, run_folder, tmp_path, small_bounds):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / WEIGHTS_FILE).write_bytes((run_folder / WEIGHTS_FILE).read_bytes())
    (run / "config.json").write_bytes(text)
    loads_or_refuses(lambda: load(run))


@fuzz
@given(data=st.binary(max_size=512))
def test_fuzz_weights_file_bytes(data, run_folder, tmp_path, small_bounds):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "config.json").write_bytes((run_folder / "config.json").read_bytes())
    (run / WEIGHTS_FILE).write_bytes(data)
    loads_or_refuses(lambda: load(run))


@fuzz
@given(data=st.data())
def test_fuzz_weights_file_mutations(data, run_folder, tmp_path, small_bounds):
    valid = (run_folder / WEIGHTS_FILE).read_bytes()
    header_size = 8 + struct.unpack("<Q", valid[:8])[0]  # the safetensors header: its length, then JSON
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "config.json").write_bytes((run_folder / "config.json").read_bytes())
    (run / WEIGHTS_FILE).write_bytes(data.draw(mutation_of(valid, header_size)))
    loads_or_refuses(lambda: load(run))


def test_the_valid_run_still_loads(run_folder):
    assert load(run_folder).config == SMALL_CONFIGS["vae"]


# ------------------------------------------------------------------------------- training state


def live_objects() -> tuple[VAE, dict, EMA, BatchSampler]:
    model, optimizers, sampler = vae_one_step_in(SMALL_CONFIGS["vae"])
    return model, optimizers, EMA(model, 0.9), sampler


@pytest.fixture(scope="module")
def state_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("state")
    with torch.random.fork_rng(devices=[]):
        model, optimizers, ema, sampler = live_objects()
        save_checkpoint(folder, model, optimizers, ema, sampler, {"step": 1, "elapsed": 0.5})
    return folder


def meta_paths(meta: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path into the JSON metadata (dicts and lists)."""
    paths = [prefix]
    if isinstance(meta, dict):
        for key, value in meta.items():
            paths += meta_paths(value, (*prefix, key))
    elif isinstance(meta, list):
        for index, value in enumerate(meta):
            paths += meta_paths(value, (*prefix, index))
    return paths


@st.composite
def state_file(draw, valid: bytes, tensors: dict, meta: dict) -> bytes:
    """training_state.safetensors bytes: mutated bytes, or a well-formed file with one metadata value replaced,
    one tensor dropped or one tensor replaced by another shape or dtype."""
    mode = draw(st.sampled_from(["bytes", "bytes", "meta", "meta", "tensor"]))
    if mode == "bytes":
        return draw(mutation_of(valid, 8 + struct.unpack("<Q", valid[:8])[0]))
    tensors, meta = dict(tensors), json.loads(json.dumps(meta))
    if mode == "meta":
        path = draw(st.sampled_from(meta_paths(meta)[1:]))
        holder = meta
        for key in path[:-1]:
            holder = holder[key]
        if draw(st.booleans()) and isinstance(holder, dict):
            del holder[path[-1]]
        else:
            holder[path[-1]] = draw(json_values())
    else:
        name = draw(st.sampled_from(sorted(tensors)))
        if draw(st.booleans()):
            del tensors[name]
        else:
            shape = draw(st.lists(st.integers(0, 5), max_size=3))
            dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool]))
            fill = draw(st.sampled_from([0.0, 1.0, float("nan"), float("inf")]))
            tensors[name] = torch.full(shape, fill).to(dtype)
    return save_safetensors({k: v.contiguous() for k, v in tensors.items()}, metadata={"genlab": json.dumps(meta)})


@fuzz
@given(data=st.data())
def test_fuzz_training_state(data, state_folder, tmp_path, small_bounds):
    valid = (state_folder / STATE_FILE).read_bytes()
    tensors, meta = load_tensors(state_folder / STATE_FILE)
    (tmp_path / STATE_FILE).write_bytes(data.draw(st.one_of(st.binary(max_size=256), state_file(valid, tensors, meta))))
    with torch.random.fork_rng(devices=[]):  # a restore that gets as far as the RNG must not change other tests' draws
        model, optimizers, ema, sampler = live_objects()
        loads_or_refuses(lambda: restore_checkpoint(tmp_path, model, optimizers, ema, sampler))


def test_the_valid_training_state_still_restores(state_folder):
    with torch.random.fork_rng(devices=[]):
        model, optimizers, ema, sampler = live_objects()
        assert restore_checkpoint(state_folder, model, optimizers, ema, sampler)["step"] == 1
