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

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from genlab.errors import CheckpointError
from genlab.io.files import atomic_write_bytes

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.safetensors"
_META_KEY = "genlab"


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Atomically write tensors (copied to CPU, contiguous, unshared) and JSON metadata as safetensors."""
    flat = {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in tensors.items()}
    header = {_META_KEY: json.dumps(metadata or {})}
    atomic_write_bytes(path, save_safetensors_bytes(flat, metadata=header))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file written by :func:`save_tensors` (tensors on CPU, metadata dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = json.loads((handle.metadata() or {}).get(_META_KEY, "{}"))
        tensors = load_safetensors_bytes(path.read_bytes())
    except (SafetensorError, json.JSONDecodeError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({error})") from None
    return tensors, metadata


def write_run_config(run_dir: str | os.PathLike, config: dict[str, Any]) -> None:
    """``run_dir/config.json``, atomically (``config`` as built by ``genlab.runs.run_config``)."""
    atomic_write_bytes(Path(run_dir) / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run_dir/config.json`` as a dict, checked to name a model kind."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: run directory not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; is {run_dir} a genlab run directory?")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict) or "model" not in config or "kind" not in config.get("model", {}):
        raise CheckpointError(f"{path}: expected a genlab run config with a 'model' entry naming its kind")
    return config


def load_model_weights(model: torch.nn.Module, path: str | os.PathLike, tensors: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Load ``model``'s weights from a safetensors file, strictly; returns the file's metadata."""
    metadata: dict[str, Any] = {}
    if tensors is None:
        tensors, metadata = load_tensors(path)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the model in its config.json "
            f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})"
        )
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:  # shape mismatch
        raise CheckpointError(f"{path}: weights do not fit the model ({str(error).splitlines()[-1].strip()})") from None
    return metadata
