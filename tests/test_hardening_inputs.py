"""Inputs that make small files cost gigabytes, and files that are not what they claim: each is refused with
one of genlab's own errors, a single line naming the file or option and giving the numbers (issue 14)."""
from __future__ import annotations

import gzip
import http.server
import io
import json
import math
import struct
import tarfile
import threading
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import vae_one_step_in

from genlab.cli.main import main
from genlab.config import MAX_BATCH_SIZE, MAX_LATENT_DIM, MAX_WEIGHTS, MAX_WIDTH, TrainConfig, config_from_dict
from genlab.data import files as data_files
from genlab.data import limits, load_dataset, read_idx, sources
from genlab.data.cifar import load_cifar10
from genlab.errors import CheckpointError, ConfigError, DataError, GenlabError
from genlab.io.checkpoints import STATE_FILE, WEIGHTS_FILE, load_model_weights, load_tensors, read_header, save_tensors
from genlab.io.images import MAX_IMAGE_PIXELS, read_image
from genlab.models import GANConfig, JudgeConfig, SRConfig, VAEConfig
from genlab.models.gan.encoder import GANEncoderConfig
from genlab.models.vae import VAE
from genlab.runs import load, write_config
from genlab.training.sampler import BatchSampler
from genlab.training.state import restore_checkpoint, save_checkpoint

MEMORY_BUDGET = 64 << 20  # bytes a refused input may make Python allocate (tracemalloc peak)
SMALL_VAE = dict(image_shape=(1, 8, 8), latent_dim=2, channels=(4,), hidden_dim=8)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def peak_bytes(fn) -> tuple[int, BaseException | None]:
    """Run ``fn``; the peak of Python's allocations while it ran and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        fn()
    except BaseException as error:  # returned to the test, which checks its type
        raised = error
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


# ------------------------------------------------------------------------- 1. config sizes and NaN


HUGE = 10**9


@pytest.mark.parametrize(
    ("cls", "values", "option"),
    [
        (VAEConfig, dict(latent_dim=HUGE), "latent_dim"),
        (VAEConfig, dict(hidden_dim=HUGE), "hidden_dim"),
        (VAEConfig, dict(channels=(32, HUGE)), "channels"),
        (VAEConfig, dict(channels=(8,) * 40, image_shape=(1, 28, 28)), "channels"),
        (VAEConfig, dict(image_shape=(1, HUGE, HUGE)), "image_shape height"),
        (GANConfig, dict(latent_dim=HUGE), "latent_dim"),
        (GANConfig, dict(g_width=HUGE), "g_width"),
        (GANConfig, dict(d_width=HUGE), "d_width"),
        (GANConfig, dict(num_classes=HUGE), "num_classes"),
        (GANConfig, dict(d_steps=HUGE), "d_steps"),
        (GANConfig, dict(image_shape=(HUGE,)), "image_shape dim"),
        (SRConfig, dict(channels=HUGE), "channels"),
        (SRConfig, dict(blocks=HUGE), "blocks"),
        (SRConfig, dict(d_width=HUGE, variant="srgan", judge="none"), "d_width"),
        (SRConfig, dict(image_shape=(1, 4 * HUGE, 4 * HUGE)), "image_shape height"),
        (JudgeConfig, dict(channels=(HUGE,)), "channels"),
        (JudgeConfig, dict(feature_dim=HUGE), "feature_dim"),
        (JudgeConfig, dict(num_classes=HUGE), "num_classes"),
        (JudgeConfig, dict(convs_per_block=HUGE), "convs_per_block"),
        (JudgeConfig, dict(max_shift=HUGE), "max_shift"),
        (GANEncoderConfig, dict(hidden_dim=HUGE), "hidden_dim"),
        (GANEncoderConfig, dict(channels=(HUGE,)), "channels"),
        (GANEncoderConfig, dict(gan={"latent_dim": HUGE}), "latent_dim"),
        (TrainConfig, dict(batch_size=HUGE), "batch_size"),
        (TrainConfig, dict(num_sample_images=HUGE), "num_sample_images"),
        (TrainConfig, dict(seed=2**64), "seed"),
    ],
)
def test_every_size_field_is_bounded(cls, values, option):
    with pytest.raises(ConfigError) as error:
        cls(**values)
    message = one_line(error)
    assert option in message and "at most" in message


def test_sizes_each_in_bounds_can_still_add_up_to_too_many_weights():
    # Each size is allowed, but a 1024×1024 colour VAE with 4096 channels and a 4096-unit layer would hold
    # ~1.1e12 weights (4 TiB): refused from the config, before a tensor exists.
    with pytest.raises(ConfigError) as error:
        VAEConfig(image_shape=(3, 1024, 1024), channels=(MAX_WIDTH,), hidden_dim=MAX_WIDTH)
    message = one_line(error)
    assert "VAE config" in message and "weights" in message and f"{MAX_WEIGHTS:,}" in message
    for cls, values in ((GANConfig, dict(g_width=MAX_WIDTH, image_shape=(3, 64, 64))), (SRConfig, dict(channels=MAX_WIDTH)),
                        (JudgeConfig, dict(image_shape=(3, 1024, 1024), channels=(MAX_WIDTH,), feature_dim=MAX_WIDTH))):
        with pytest.raises(ConfigError, match="weights, more than genlab's bound"):
            cls(**values)


def test_sizes_at_their_bounds_are_accepted_where_the_total_is_sane():
    assert VAEConfig(latent_dim=MAX_LATENT_DIM).latent_dim == MAX_LATENT_DIM
    assert TrainConfig(batch_size=MAX_BATCH_SIZE).batch_size == MAX_BATCH_SIZE
    assert GANConfig(image_shape=(2,), g_width=MAX_WIDTH, d_width=256).g_width == MAX_WIDTH
    VAEConfig(), GANConfig(), SRConfig(), JudgeConfig(), GANEncoderConfig(), TrainConfig()  # the defaults


@pytest.mark.parametrize(
    ("cls", "option", "value"),
    [
        (TrainConfig, "lr", math.nan),
        (TrainConfig, "lr", math.inf),
        (TrainConfig, "diversity_alarm", math.nan),
        (TrainConfig, "max_seconds", math.nan),
        (TrainConfig, "lr_decay_start", math.nan),
        (TrainConfig, "ema_decay", math.nan),
        (TrainConfig, "recovery_lr_factor", math.nan),
        (VAEConfig, "beta", math.nan),
        (VAEConfig, "gaussian_sigma", math.inf),
        (GANConfig, "lr_g", math.nan),
        (GANConfig, "lr_d", -math.inf),
        (GANConfig, "gp_weight", math.nan),
        (GANConfig, "r1_gamma", math.inf),
        (GANConfig, "betas", (math.nan, 0.999)),
        (SRConfig, "content_weight", math.nan),
        (SRConfig, "pixel_weight", math.inf),
        (SRConfig, "adversarial_weight", math.nan),
        (SRConfig, "lr_d", math.nan),
        (JudgeConfig, "dropout", math.nan),
        (GANEncoderConfig, "latent_weight", math.nan),
        (GANEncoderConfig, "feature_weight", math.inf),
    ],
)
def test_every_float_option_refuses_nan_and_inf(cls, option, value):
    with pytest.raises(ConfigError) as error:
        cls(**{option: value})
    assert option in one_line(error)


@pytest.mark.parametrize("option", [["--lr", "nan"], ["--beta", "nan"], ["--lr", "inf"], ["--batch-size", str(HUGE)]])
def test_cli_nan_and_huge_options_exit_2_with_one_line(option, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "vae", "--data", "fashion-mnist-mini", "--out", "x", "--epochs", "1", *option]) == 2
    err = capsys.readouterr().err.strip()
    assert option[0].lstrip("-").replace("-", "_") in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x" / "model.safetensors").exists()


# --------------------------------------------------------------------------------- run folders


def small_run(folder: Path, **config) -> Path:
    model = VAE(VAEConfig(**{**SMALL_VAE, **config}))
    write_config(folder, model, TrainConfig(), {"name": "test", "image_shape": [1, 8, 8]})
    save_tensors(folder / WEIGHTS_FILE, model.state_dict())
    return folder


def edit_config(run: Path, edit) -> None:
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))


def test_huge_latent_dim_in_config_json_is_refused_before_anything_is_allocated(tmp_path):
    run = small_run(tmp_path / "run")
    edit_config(run, lambda c: c["model"]["config"].update(latent_dim=1_000_000_000))
    peak, raised = peak_bytes(lambda: load(run))
    assert isinstance(raised, GenlabError), raised
    assert "config.json" in str(raised) and "latent_dim" in str(raised) and "1,000,000,000" in str(raised)
    assert peak < MEMORY_BUDGET


# ----------------------------------------------------------------------- 3. malformed config.json


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "'model' entry"),
        ('{"model": [1]}', "'model' entry"),
        ('{"model": {"kind": 3}}', "kind"),
        ('{"model": {"kind": "vae", "config": [1]}}', "config"),
        ('{"model": {"kind": "vae", "config": {}}, "dataset": [1]}', "dataset"),
        ('{"model": {"kind": "vae", "config": {}}, "train": "fast"}', "train"),
        ('{"model": {"kind": "vae", "config": {"latent_dim": "16"}}}', "latent_dim"),
        ('{"model": {"kind": "vae", "config": {"latent_dim": 16.5}}}', "latent_dim"),
        ('{"model": {"kind": "vae", "config": {"latent_dim": null}}}', "latent_dim"),
        ('{"model": {"kind": "vae", "config": {"image_shape": [1, 28]}}}', "image_shape"),
        ('{"model": {"kind": "vae", "config": {"image_shape": "1x28x28"}}}', "image_shape"),
        ('{"model": {"kind": "vae", "config": {"channels": [32, "x"]}}}', "channels"),
        ('{"model": {"kind": "vae", "config": {"channels": {"a": 1}}}}', "channels"),
        ('{"model": {"kind": "vae", "config": {"beta": NaN}}}', "beta"),
        ('{"model": {"kind": "vae", "config": {"beta": Infinity}}}', "beta"),
        ('{"model": {"kind": "vae", "config": {"binarize": "yes"}}}', "binarize"),
        ('{"model": {"kind": "vae", "config": {"likelihood": 3}}}', "likelihood"),
        ('{"model": {"kind": "vae", "config": {"extra": 1}}}', "extra"),
        ('{"model": {"kind": "gan", "config": {"betas": [0.5]}}}', "betas"),
        ('{"model": {"kind": "gan", "config": {"latent_dim": 1e400}}}', "latent_dim"),
        ('{"model": {"kind": "gan_encoder", "config": {"gan": [1]}}}', "gan"),
        ('{"model": {"kind": "gan_encoder", "config": {"gan": {"g_width": "wide"}}}}', "g_width"),
        ('{"model": {"kind": "judge", "config": {"channels": 5}}}', "channels"),
        ('{"model": {"kind": "sr", "config": {"scale": 3}}}', "scale"),
        ('{"model": {"kind": "nope", "config": {}}}', "nope"),
    ],
)
def test_malformed_config_json_is_one_line_naming_the_file_and_key(tmp_path, text, needle):
    run = small_run(tmp_path / "run")
    (run / "config.json").write_text(text)
    with pytest.raises((CheckpointError, ConfigError)) as error:
        load(run)
    message = one_line(error)
    assert "config.json" in message and needle in message


def test_config_from_dict_names_where_and_the_option():
    with pytest.raises(ConfigError, match=r"^RUN/config\.json: latent_dim must be an integer, got '16'$"):
        config_from_dict(VAEConfig, {"latent_dim": "16"}, where="RUN/config.json")
    with pytest.raises(ConfigError, match=r"^here: latent_dim must be at most 4,096 \(genlab's bound\), got 5,000$"):
        config_from_dict(VAEConfig, {"latent_dim": 5000}, where="here")
    with pytest.raises(ConfigError, match="expected a JSON object of options, got"):
        config_from_dict(VAEConfig, [1, 2], where="here")  # type: ignore[arg-type]
    assert config_from_dict(VAEConfig, {"channels": [8, 16], "beta": 1}).channels == (8, 16)  # JSON ints are floats


# --------------------------------------------------------------------- 2. safetensors against config


def test_integer_weights_where_floats_belong_are_named(tmp_path):
    run = small_run(tmp_path / "run")
    model = VAE(VAEConfig(**SMALL_VAE))
    weights = model.state_dict()
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.dim() > 1)
    save_tensors(run / WEIGHTS_FILE, {**weights, name: weights[name].to(torch.int32)})
    with pytest.raises(CheckpointError) as error:
        load(run)
    message = one_line(error)
    assert WEIGHTS_FILE in message and repr(name) in message and "I32" in message and "floating-point" in message


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_weights_are_named(tmp_path, bad):
    run = small_run(tmp_path / "run")
    weights = VAE(VAEConfig(**SMALL_VAE)).state_dict()
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.dim() > 1)
    weights[name].view(-1)[3] = bad
    save_tensors(run / WEIGHTS_FILE, weights)
    with pytest.raises(CheckpointError) as error:
        load(run)
    message = one_line(error)
    assert WEIGHTS_FILE in message and repr(name) in message and "non-finite" in message


def test_the_header_is_checked_before_any_tensor_is_read(tmp_path, monkeypatch):
    run = small_run(tmp_path / "run")
    weights = VAE(VAEConfig(**SMALL_VAE)).state_dict()
    name = next(k for k, v in weights.items() if v.dim() > 1)
    save_tensors(run / WEIGHTS_FILE, {**weights, name: torch.zeros(3, 3)})
    header, _ = read_header(run / WEIGHTS_FILE)
    assert header[name] == ("F32", (3, 3))

    def no_data(*args, **kwargs):
        raise AssertionError("tensor data read before the header was checked")

    monkeypatch.setattr("genlab.io.checkpoints._read_tensors", no_data)
    with pytest.raises(CheckpointError, match=rf"{name}.*shape \[3, 3\].*implies \[") as error:
        load(run)
    one_line(error)


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_unknown_dtypes_and_non_object_metadata_are_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    path.write_bytes(safetensors_bytes({"a": {"dtype": "U64", "shape": [2], "data_offsets": [0, 16]}}, bytes(16)))
    with pytest.raises(CheckpointError, match=r"w\.safetensors: tensor 'a' has dtype U64, expected one of F16"):
        read_header(path)
    save_file({"a": torch.zeros(2)}, str(path), metadata={"genlab": "[1, 2]"})
    with pytest.raises(CheckpointError, match="metadata must be a JSON object"):
        read_header(path)
    save_file({"a": torch.zeros(2)}, str(path), metadata={"genlab": "{oops"})
    with pytest.raises(CheckpointError, match="metadata is not valid JSON"):
        read_header(path)


def trained_state(folder: Path) -> tuple[VAE, dict, BatchSampler]:
    """A VAE one Adam step in, with its training_state.safetensors written to ``folder``."""
    model, optimizers, sampler = vae_one_step_in(VAEConfig(**SMALL_VAE))
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder, model, optimizers, None, sampler, {"step": 1})
    return model, optimizers, sampler


def rewrite_state(folder: Path, edit) -> None:
    tensors, meta = load_tensors(folder / STATE_FILE)
    edit(tensors, meta)
    save_tensors(folder / STATE_FILE, tensors, meta)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t, m: t.pop("rng/torch"), "rng/torch"),
        (lambda t, m: m.pop("sampler"), "sampler"),
        (lambda t, m: m.pop("step"), "step"),
        (lambda t, m: m.update(step="three"), "three"),
        (lambda t, m: m.update(optimizers=[1]), "optimizer"),
        (lambda t, m: m["optimizers"]["vae"].update(scalars=5), "malformed"),
        (lambda t, m: m["optimizers"]["vae"].update(param_groups={}), "malformed"),
        (lambda t, m: m["sampler"].update(rank_rng_bytes=[10**6]), "malformed"),
        (lambda t, m: t.update({"rng/torch": torch.zeros(3)}), "malformed"),
        (lambda t, m: t.update({"optimizer/vae/0/exp_avg": torch.zeros(2, 2)}), "exp_avg"),
        (lambda t, m: t.update({"optimizer/vae/x": torch.zeros(2)}), "malformed"),
        (lambda t, m: t.update({"model/decoder.net.0.weight": torch.zeros(1)}), "decoder.net.0.weight"),
        (lambda t, m: t.pop("model/decoder.net.0.bias"), "decoder.net.0.bias"),
    ],
)
def test_tampered_training_state_is_one_checkpoint_error(tmp_path, edit, needle):
    model, optimizers, sampler = trained_state(tmp_path)
    rewrite_state(tmp_path, edit)
    with pytest.raises(CheckpointError) as error:
        restore_checkpoint(tmp_path, model, optimizers, None, sampler)
    message = one_line(error)
    assert STATE_FILE in message and needle in message


def test_an_untampered_training_state_still_restores(tmp_path):
    model, optimizers, sampler = trained_state(tmp_path)
    meta = restore_checkpoint(tmp_path, model, optimizers, None, sampler)
    assert meta["step"] == 1 and sampler.position == 1


def test_model_weights_loaded_from_memory_are_checked_too(tmp_path):
    model = VAE(VAEConfig(**SMALL_VAE))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name].view(-1)[0] = math.nan
    with pytest.raises(CheckpointError, match=rf"state\.safetensors: tensor '{name}' holds 1 non-finite"):
        load_model_weights(model, tmp_path / "state.safetensors", weights)


# ------------------------------------------------------------------------------------ 4. data files


def npy_bytes(header: dict) -> bytes:
    """A .npy v1.0 file with ``header`` and no data."""
    text = repr(header).encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def test_npz_labels_claiming_a_trillion_entries_are_refused_from_the_header(tmp_path):
    path = tmp_path / "claims.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 8, 8), np.uint8))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", buffer.getvalue())
        archive.writestr("labels.npy", npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (10**12,)}) + bytes(64))
    peak, raised = peak_bytes(lambda: load_dataset(path))
    assert isinstance(raised, DataError), raised
    assert "claims.npz" in str(raised) and "'labels'" in str(raised) and "1,000,000,000,000" in str(raised)
    assert peak < MEMORY_BUDGET


def test_npz_array_claiming_more_than_the_member_holds(tmp_path):
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", npy_bytes({"descr": "|u1", "fortran_order": False, "shape": (1000, 28, 28)}) + bytes(99))
    with pytest.raises(DataError, match=r"short\.npz: 'images' claims shape \(1000, 28, 28\) of uint8 = 784,000 bytes, but") as error:
        load_dataset(path)
    one_line(error)


def test_npz_of_python_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"Python objects.*never unpickles"):
        load_dataset(path)


@pytest.mark.parametrize("content", [b"hello, I am text\n", b"", np.lib.format.MAGIC_PREFIX + b"\x01\x00"])
def test_a_file_that_is_not_an_npz_says_so_without_pickle_advice(tmp_path, content):
    path = tmp_path / "notes.npz"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        load_dataset(path)
    message = one_line(error)
    assert "notes.npz" in message and "pickle" not in message
    assert "not a .npz archive" in message or "holds one array" in message


def test_npz_with_a_nameless_member_is_a_data_error(tmp_path):
    """Found by tests/test_fuzz_parsers.py: zipfile's is_dir() raised IndexError on an empty member name."""
    path = tmp_path / "nameless.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 4, 4), np.uint8))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", buffer.getvalue())
        archive.writestr(zipfile.ZipInfo(""), b"x")
    assert load_dataset(path).image_shape == (1, 4, 4)


def test_npz_labels_naming_a_billion_classes_are_refused(tmp_path):
    path = tmp_path / "classes.npz"
    np.savez(path, images=np.zeros((2, 8, 8), np.uint8), labels=np.array([0, 10**9]))
    with pytest.raises(DataError, match=r"'labels' must be < 100,000"):
        load_dataset(path)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` grayscale pixels, with one tiny IDAT chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1 + width))) + chunk(b"IEND", b"")


def test_a_100_megapixel_png_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(10_000, 10_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's own DecompressionBombWarning would be an error here
        with pytest.raises(DataError) as error:
            read_image(path)
    message = one_line(error)
    assert "bomb.png" in message and "10000×10000 = 100,000,000 pixels" in message and f"{MAX_IMAGE_PIXELS:,}" in message


@pytest.mark.parametrize(("mode", "channels", "per_pixel"), [("RGBA", 4, 16), ("LA", 2, 8), ("I;16", 1, 8)])
def test_reading_an_image_costs_a_few_bytes_a_pixel(tmp_path, mode, channels, per_pixel):
    """Found by tests/test_fuzz_parsers.py: alpha compositing and 16-bit scaling ran in float64 temporaries,
    88 bytes a pixel for RGBA (2.9 GB at the pixel bound); in integers they are exact and take a few."""
    from PIL import Image

    rng = np.random.default_rng(0)
    if mode == "I;16":
        array = rng.integers(0, 65536, (500, 600), dtype=np.uint16)
        expected = np.clip(np.rint(array / 257.0), 0, 255)
        image = Image.fromarray(array)
    else:
        array = rng.integers(0, 256, (500, 600, channels), dtype=np.uint8)
        expected = np.rint(array[..., :-1] * (array[..., -1:] / 255.0))
        image = Image.fromarray(array, mode=mode)
    image.save(tmp_path / "image.png")
    tracemalloc.start()
    read = read_image(tmp_path / "image.png")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < per_pixel * 500 * 600
    np.testing.assert_array_equal(read.permute(1, 2, 0).numpy().reshape(expected.shape), expected.astype(np.uint8))


def test_a_png_chunk_claiming_a_gigabyte_allocates_nothing_of_the_sort(tmp_path):
    """Found by tests/test_fuzz_parsers.py: Pillow skips the rest of an IDAT chunk with one fp.read(length), and
    CPython allocates ``length`` bytes before reading: a 100-byte PNG claiming a 1 GB chunk allocated 1 GB."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((6, 7), np.uint8), mode="L").save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"IDAT") - 4
    data[at:at + 4] = struct.pack(">I", 1 << 30)
    (tmp_path / "chunk.png").write_bytes(bytes(data))
    peak, raised = peak_bytes(lambda: read_image(tmp_path / "chunk.png"))
    assert raised is None or isinstance(raised, DataError), raised
    assert peak < MEMORY_BUDGET


def test_read_image_refuses_a_resize_beyond_the_pixel_bound(tmp_path):
    with pytest.raises(ConfigError, match="pixels per image"):
        read_image(tmp_path / "any.png", size=(1 << 13, 1 << 13))


def test_folder_bounds_on_images_and_bytes(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8), mode="L").save(folder / f"{i}.png")
    monkeypatch.setattr(data_files, "MAX_ITEMS", 2)
    with pytest.raises(DataError, match=r"pictures: holds 3 images, more than genlab's bound of 2 per folder"):
        load_dataset(folder)
    monkeypatch.setattr(data_files, "MAX_ITEMS", 100)
    monkeypatch.setattr(data_files, "MAX_DATA_BYTES", 100)
    with pytest.raises(DataError, match=r"pictures: 3 images of shape \(1, 8, 8\) take 192 bytes, more than genlab's bound of 100"):
        load_dataset(folder)
    assert len(load_dataset(folder, image_size=4)) == 3  # resized to 4×4 on reading: 48 bytes


def idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def test_idx_dimensions_whose_product_overflows_int64(tmp_path):
    # 2^16 to the 4th is 2^64: in int64 that is 0, so the old size check expected a 20-byte file and got one.
    path = tmp_path / "overflow.idx"
    path.write_bytes(idx_header(0x08, (1 << 16,) * 4))
    with pytest.raises(DataError) as error:
        read_idx(path)
    message = one_line(error)
    assert "overflow.idx" in message and "65536×65536×65536" in message


def test_gzip_idx_claiming_more_than_it_holds(tmp_path):
    path = tmp_path / "claims.idx.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (60_000, 28, 28)) + bytes(10)))
    peak, raised = peak_bytes(lambda: read_idx(path))
    assert isinstance(raised, DataError) and "truncated" in str(raised) and "expected 47040016 bytes" in str(raised)
    assert peak < MEMORY_BUDGET


def test_gzip_idx_bomb_is_not_decompressed_past_its_header(tmp_path):
    """A 100 kB gzip file that inflates to 100 MB behind a header declaring 10 bytes: read 11 bytes, refuse."""
    path = tmp_path / "bomb.idx.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    parts = [compressor.compress(idx_header(0x08, (10,)))]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(100)]
    path.write_bytes(b"".join([*parts, compressor.flush()]))
    assert path.stat().st_size < 200_000
    peak, raised = peak_bytes(lambda: read_idx(path))
    assert isinstance(raised, DataError) and "oversized" in str(raised), raised
    assert peak < 8 << 20


def test_idx_header_beyond_the_bounds(tmp_path, monkeypatch):
    path = tmp_path / "big.idx"
    path.write_bytes(idx_header(0x08, (5, 20_000, 20_000)))
    with pytest.raises(DataError, match=r"big\.idx: IDX header declares images of 20000×20000 = 400,000,000 values"):
        read_idx(path)
    path.write_bytes(idx_header(0x0E, (1 << 31,)))
    with pytest.raises(DataError, match=r"declares 2,147,483,648 items"):
        read_idx(path)
    monkeypatch.setattr("genlab.data.idx.MAX_DATA_BYTES", 100)
    path.write_bytes(idx_header(0x0E, (20,)) + bytes(160))
    with pytest.raises(DataError, match=r"declares shape \(20,\) = 160 bytes, more than genlab's bound of 100"):
        read_idx(path)


def test_cifar_member_claiming_more_than_a_batch(tmp_path):
    path = tmp_path / "cifar.tar"
    with tarfile.open(path, "w") as tar:
        member = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        member.size = 10_001 * 3073
        tar.addfile(member, io.BytesIO(bytes(member.size)))
    with pytest.raises(DataError, match=r"test_batch\.bin: 30,733,073 bytes, more than a CIFAR-10 batch holds"):
        load_cifar10(path, "test")


# ------------------------------------------------------------------------------------- downloads


@pytest.fixture
def endless_server():
    """An HTTP/1.0 server whose every answer is 4 MiB of zeros, with or without a Content-Length."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            if "announce" in self.path:
                self.send_header("Content-Length", str(4 << 20))
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(bytes(64 << 10))
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("path", ["/silent.bin", "/announce.bin"])
def test_a_body_larger_than_expected_is_refused_and_nothing_kept(endless_server, tmp_path, path):
    dest = tmp_path / "cache" / "x.bin"
    with pytest.raises(DataError) as error:
        sources.download(endless_server + path, dest, "0" * 64, size=1000)
    message = one_line(error)
    assert "1,000 bytes" in message and ("larger than the expected" in message or "announces 4,194,304 bytes" in message)
    assert not (tmp_path / "cache").exists()


def test_named_datasets_know_their_download_sizes():
    from genlab.data.registry import DATASETS

    sizes = {file.filename: file.size for spec in DATASETS.values() for files in spec.files.values() for file in files}
    assert sizes["cifar-10-binary.tar.gz"] == 170_052_171 and all(sizes.values())
    assert max(sizes.values()) <= limits.MAX_DOWNLOAD_BYTES


def test_fetch_passes_the_size_to_download(monkeypatch, tmp_path):
    seen = {}

    def fake_download(url, dest, sha256, size=None):
        seen["size"] = size
        raise DataError("offline")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", ())
    monkeypatch.setattr(sources, "download", fake_download)
    with pytest.raises(DataError):
        load_dataset("mnist", split="test")
    assert seen["size"] == 1_648_877

