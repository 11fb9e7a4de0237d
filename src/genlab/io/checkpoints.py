"""The one checkpoint format, as files: a run folder of JSON + safetensors, written atomically.

    RUN/config.json                  model kind + config, train config, dataset info, genlab version
    RUN/model.safetensors            the weights to sample with (the EMA weights when EMA is on)
    RUN/training_state.safetensors   everything resuming needs (written by genlab.training.state)

Every file is written to a temporary name, flushed to disk and renamed over the old one, so a kill
at any moment leaves each file either the previous good version or the new one. Each file is
self-consistent on its own: sampling reads only the first two, resuming only the last.
Nothing here unpickles: safetensors holds only tensors, JSON holds the rest.

This module knows the format and nothing about model kinds; ``genlab.runs`` builds models from it.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors_bytes

from genlab.errors import CheckpointError, GenlabError
from genlab.io.files import atomic_write_bytes

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.safetensors"
_META_KEY = "genlab"
MAX_CONFIG_BYTES = 16 << 20  # a run's config.json is about 2 kB (with class names: ~30 bytes a class)


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Atomically write tensors (copied to CPU, contiguous, unshared) and JSON metadata as safetensors."""
    flat = {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in tensors.items()}
    header = {_META_KEY: json.dumps(metadata or {})}
    atomic_write_bytes(path, save_safetensors_bytes(flat, metadata=header))


# safetensors dtype names → what genlab stores: floats (weights, moments), integers (counters, RNG bytes).
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
STORED_DTYPES = (*FLOAT_DTYPES, "I64", "I32", "I16", "I8", "U8", "BOOL")
_TORCH_DTYPE_NAMES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
                      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                      torch.bool: "BOOL"}
# What safetensors and its Rust core raise on a malformed file (a header that is not JSON, offsets past the end, ...).
_READ_ERRORS = (SafetensorError, OSError, ValueError, TypeError, KeyError, RuntimeError, OverflowError, UnicodeError)

Header = dict[str, tuple[str, tuple[int, ...]]]  # tensor name → (safetensors dtype name, shape)


def read_header(path: str | os.PathLike) -> tuple[Header, dict[str, Any]]:
    """The tensors a safetensors file holds (name → (dtype name, shape)) and its genlab metadata, from the header
    alone: no tensor data is read, so a file can be checked against what it should hold before anything is allocated.

    Raises CheckpointError naming the file for a missing or malformed file, metadata that is not a JSON object,
    or a dtype genlab never writes (anything but F16/BF16/F32/F64 and I64/I32/I16/I8/U8/BOOL).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw_metadata = handle.metadata() or {}
            header: Header = {}
            for name in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                view = handle.get_slice(name)
                header[name] = (str(view.get_dtype()), tuple(int(size) for size in view.get_shape()))
    except _READ_ERRORS as error:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({_first_line(error)})") from None
    try:
        metadata = json.loads(raw_metadata.get(_META_KEY, "{}"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, or an integer of more than 4300 digits
        raise CheckpointError(f"{path}: its {_META_KEY!r} metadata is not valid JSON ({_first_line(error)})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: its {_META_KEY!r} metadata must be a JSON object, got {type(metadata).__name__}")
    for name, (dtype, _) in header.items():
        if dtype not in STORED_DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype}, expected one of {', '.join(STORED_DTYPES)}")
    return header, metadata


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file written by :func:`save_tensors` (tensors on CPU, metadata dict).

    The header is checked first (:func:`read_header`); the tensors are then read one by one from the
    memory-mapped file, never the whole file into memory at once.
    """
    path = Path(path)
    header, metadata = read_header(path)
    return _read_tensors(path, header), metadata


def check_header(path: str | os.PathLike, header: Header, expected: dict[str, torch.Tensor], what: str = "the model") -> None:
    """Raise CheckpointError unless ``header`` holds exactly the names of ``expected``, each with its shape, and a
    floating-point dtype where ``expected`` holds floats (an integer where it holds integers)."""
    missing, unexpected = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match {what} in its config.json "
            f"(missing: {_names(missing)}; unexpected: {_names(unexpected)})"
        )
    for name, target in expected.items():
        dtype, shape = header[name]
        if shape != tuple(target.shape):
            raise CheckpointError(f"{path}: weights do not fit {what}: tensor {name!r} has shape {list(shape)}, "
                                  f"its config.json implies {list(target.shape)}")
        if target.is_floating_point() != (dtype in FLOAT_DTYPES):
            kind = "floating-point" if target.is_floating_point() else "integer"
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype}, expected a {kind} dtype "
                                  f"({_TORCH_DTYPE_NAMES.get(target.dtype, target.dtype)})")


def check_finite(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Raise CheckpointError naming the first floating-point tensor that holds a NaN or an infinity."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{path}: tensor {name!r} holds {bad} non-finite value(s) (NaN or ±inf) of {tensor.numel()}; "
                                  "the weights are unusable")


def tensor_header(tensors: dict[str, torch.Tensor]) -> Header:
    """The :data:`Header` of tensors already in memory (to check them like a file's)."""
    return {name: (_TORCH_DTYPE_NAMES.get(t.dtype, str(t.dtype)), tuple(t.shape)) for name, t in tensors.items()}


def _read_tensors(path: Path, header: Header) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: handle.get_tensor(name) for name in header}
    except _READ_ERRORS as error:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({_first_line(error)})") from None


def _names(names: list[str]) -> str:
    """The first five ``names`` for a one-line message (a name with a line break or other control character quoted)."""
    return ", ".join(name if name.isprintable() else repr(name) for name in names[:5]) or "none"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def write_run_config(run_dir: str | os.PathLike, config: dict[str, Any]) -> None:
    """``run_dir/config.json``, atomically (``config`` as built by ``genlab.runs.run_config``)."""
    atomic_write_bytes(Path(run_dir) / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run_dir/config.json`` as a dict, checked to name a model kind (a string) with its config (an object),
    and to hold objects where a run config holds them ("train", "dataset"); one CheckpointError naming the
    file and the key otherwise."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: run directory not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; is {run_dir} a genlab run directory?")
    try:
        with path.open("rb") as file:
            text = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read it ({_first_line(error)})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: more than {MAX_CONFIG_BYTES:,} bytes, far more than a run config holds")
    try:
        config = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, a 5000-digit integer
        raise CheckpointError(f"{path}: not valid JSON ({_first_line(error)})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or "kind" not in config["model"]:
        raise CheckpointError(f"{path}: expected a genlab run config with a 'model' entry naming its kind")
    model = config["model"]
    if not isinstance(model["kind"], str):
        raise CheckpointError(f"{path}: 'model' 'kind' must be a string naming the model kind, got {type(model['kind']).__name__}")
    if not isinstance(model.get("config", {}), dict):
        raise CheckpointError(f"{path}: 'model' 'config' must be an object of options, got {type(model['config']).__name__}")
    for key in ("train", "dataset"):
        if not isinstance(config.get(key, {}), dict):
            raise CheckpointError(f"{path}: {key!r} must be an object, got {type(config[key]).__name__}")
    return config


def load_model_weights(model: torch.nn.Module, path: str | os.PathLike, tensors: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Load ``model``'s weights from a safetensors file, strictly; returns the file's metadata.

    The file's header is checked against the model (names, shapes, float or integer dtypes) before any
    tensor is read, and the tensors must be finite. With ``tensors`` given (already read, e.g. from the
    training state) those are checked the same way and ``path`` only names them in errors.
    """
    metadata: dict[str, Any] = {}
    expected = model.state_dict()
    if tensors is None:
        header, metadata = read_header(path)
        check_header(path, header, expected)
        tensors = _read_tensors(Path(path), header)
    else:
        check_header(path, tensor_header(tensors), expected)
    check_finite(path, tensors)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:  # what check_header did not foresee
        raise CheckpointError(f"{path}: weights do not fit the model ({str(error).splitlines()[-1].strip()})") from None
    return metadata


def check_moments(path: str | os.PathLike, name: str, optimizer: torch.optim.Optimizer) -> None:
    """Raise CheckpointError if optimizer ``name``'s restored state holds a tensor (a moment) whose shape is not its
    parameter's: the optimizer accepts it at load time and would fail at its next step."""
    for index, (parameter, values) in enumerate(optimizer.state.items()):
        for key, value in values.items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape != parameter.shape:
                raise CheckpointError(f"{path}: optimizer {name!r} state {index}/{key} has shape {list(value.shape)}, "
                                      f"its parameter {list(parameter.shape)}")


@contextlib.contextmanager
def malformed(path: str | os.PathLike) -> Iterator[None]:
    """Turn what restoring from a tampered file raises (a missing key, a value of the wrong type or size) into one
    CheckpointError naming ``path``; genlab's own errors and running out of memory pass through."""
    try:
        yield
    except GenlabError:
        raise
    except torch.cuda.OutOfMemoryError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError) as error:
        reason = f"missing {error}" if isinstance(error, KeyError) else _first_line(error)
        raise CheckpointError(f"{path}: malformed checkpoint ({type(error).__name__}: {reason})") from None
