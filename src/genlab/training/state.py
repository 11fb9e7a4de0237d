"""The whole training state, for resuming and for the divergence guard: ``training_state.safetensors``.

Raw weights, optimizer moments, EMA, RNG states and the data order, as tensors; everything else as
JSON metadata (no pickle). ``save_checkpoint`` also refreshes ``model.safetensors`` (the weights to
sample with), after the state file, so the sampling weights are never ahead of what a resume continues.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from genlab.errors import CheckpointError
from genlab.io.checkpoints import STATE_FILE, WEIGHTS_FILE, load_model_weights, load_tensors, save_tensors


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
