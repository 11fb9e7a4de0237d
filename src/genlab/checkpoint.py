"""The one checkpoint format: a run directory of JSON + safetensors, written atomically.

    RUN/config.json                  model kind + config, train config, dataset info, genlab version
    RUN/model.safetensors            the weights to sample with (the EMA weights when EMA is on)
    RUN/training_state.safetensors   everything --resume needs: raw weights, optimizer moments,
                                     EMA, RNG states, data order; non-tensor state as JSON metadata

Every file is written to a temporary name, flushed to disk and renamed over the old one, so a kill
at any moment leaves each file either the previous good version or the new one. Each file is
self-consistent on its own: sampling reads only the first two, resuming only the last.
Nothing here unpickles: safetensors holds only tensors, JSON holds the rest.
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

from genlab.config import config_to_dict
from genlab.errors import CheckpointError
from genlab.fileio import atomic_write

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.safetensors"
_META_KEY = "genlab"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    with atomic_write(path) as stream:
        stream.write(data)


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


def write_run_config(run_dir: str | os.PathLike, model: Any, train_config: Any, dataset_info: dict[str, Any]) -> None:
    from genlab import __version__

    config = {
        "genlab_version": __version__,
        "model": {"kind": model.kind, "config": config_to_dict(model.config)},
        "train": config_to_dict(train_config),
        "dataset": dataset_info,
    }
    atomic_write_bytes(Path(run_dir) / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
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


def load(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> Any:
    """A trained model from its run directory, ready to sample; needs no dataset."""
    from genlab.models import build_model

    config = read_run_config(run_dir)
    model = build_model(config["model"]["kind"], config["model"].get("config", {}), where=str(Path(run_dir) / CONFIG_FILE))
    load_model_weights(model, Path(run_dir) / WEIGHTS_FILE)
    return model.to(device).eval()


# ----- optimizer state as tensors + JSON (no pickle) -----
def optimizer_to_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, parameter_state in state["state"].items():
        for key, value in parameter_state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{name}/{index}/{key}"] = value
            else:
                scalars[f"{index}/{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optimizer/{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix):].split("/", 1)
            state.setdefault(int(index), {})[field] = value
    for key, value in meta["scalars"].items():
        index, field = key.split("/", 1)
        state.setdefault(int(index), {})[field] = value
    return {"state": state, "param_groups": meta["param_groups"]}


# ----- the whole training state, for --resume and for recovering from divergence -----
def save_checkpoint(run_dir: str | os.PathLike, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                    ema: Any, sampler: Any, meta: dict[str, Any]) -> None:
    """Write ``training_state.safetensors`` (everything --resume needs) and ``model.safetensors``.

    ``ema`` (or None) has ``shadow`` and ``state_dict(model)``; ``sampler`` has ``state()`` →
    (RNG tensor, JSON-able dict); ``meta`` (JSON-able: step, elapsed time, ...) is stored as is.
    """
    run_dir = Path(run_dir)
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    sampler_rng, sampler_state = sampler.state()
    meta = {**meta, "sampler": sampler_state, "optimizers": {}}
    for name, optimizer in optimizers.items():
        optimizer_tensors, meta["optimizers"][name] = optimizer_to_tensors(name, optimizer)
        tensors.update(optimizer_tensors)
    if ema is not None:
        tensors.update({f"ema/{k}": v for k, v in ema.shadow.items()})
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/sampler"] = sampler_rng
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    # Resume state first: if we are killed between the two writes, the sampling weights are one
    # checkpoint behind, never ahead of what --resume continues from.
    save_tensors(run_dir / STATE_FILE, tensors, meta)
    weights = ema.state_dict(model) if ema is not None else model.state_dict()
    save_tensors(run_dir / WEIGHTS_FILE, weights, {"step": meta.get("step"), "epoch": sampler_state.get("epoch"),
                                                   "ema": ema is not None})


def restore_checkpoint(run_dir: str | os.PathLike, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                       ema: Any, sampler: Any) -> dict[str, Any]:
    """Load what :func:`save_checkpoint` wrote back into the live objects; returns its ``meta``."""
    state_path = Path(run_dir) / STATE_FILE
    tensors, meta = load_tensors(state_path)
    device = next(model.parameters()).device
    load_model_weights(model, state_path, {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    for name, optimizer in optimizers.items():
        if name not in meta.get("optimizers", {}):
            raise CheckpointError(f"{state_path}: no state for optimizer {name!r}")
        optimizer.load_state_dict(optimizer_from_tensors(name, tensors, meta["optimizers"][name]))
    if ema is not None:
        saved_ema = {k[len("ema/"):]: v.to(device) for k, v in tensors.items() if k.startswith("ema/")}
        ema.shadow = saved_ema or {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    torch.set_rng_state(tensors["rng/torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    sampler.restore(tensors["rng/sampler"], meta["sampler"])
    return meta
