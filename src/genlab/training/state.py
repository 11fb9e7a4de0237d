"""The training state: live in a :class:`TrainingRun` (what the loop and its callbacks share), and on
disk in ``training_state.safetensors``, for resuming and for the divergence guard.

Raw weights, optimizer moments, EMA, RNG states and the data order, as tensors; everything else as
JSON metadata (no pickle). ``save_checkpoint`` also refreshes ``model.safetensors`` (the weights to
sample with), after the state file, so the sampling weights are never ahead of what a resume continues.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genlab.config import TrainConfig
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError
from genlab.io.checkpoints import (
    STATE_FILE,
    WEIGHTS_FILE,
    check_header,
    check_moments,
    load_model_weights,
    load_tensors,
    malformed,
    save_tensors,
    tensor_header,
)
from genlab.models.base import GenerativeModel
from genlab.training.distributed import Distributed
from genlab.training.ema import EMA
from genlab.training.monitor import RunningMeans
from genlab.training.sampler import BatchSampler
from genlab.training.schedule import LRSchedule


@dataclass(eq=False)
class TrainingRun:
    """One training run as the loop sees it: what it trains, with what, and how far it has got.

    The loop keeps its state here and hands this object to every callback event. Callbacks read
    it; only the loop moves it on (``step``, the sampler's position) or back (the divergence guard
    restoring a checkpoint). ``step`` counts optimisation steps (each runs every phase that is
    due) from 0 at the start of the run, over resumes; ``sampler.epoch`` counts whole epochs.
    """

    model: GenerativeModel
    dataset: Dataset
    config: TrainConfig
    run_dir: Path
    dist: Distributed
    device: torch.device
    optimizers: dict[str, torch.optim.Optimizer]
    ema: EMA | None
    sampler: BatchSampler
    schedule: LRSchedule
    running: RunningMeans = field(default_factory=RunningMeans)
    resumed: bool = False
    step: int = 0
    recoveries: int = 0  # divergence-guard restores so far
    lr_factor: float = 1.0  # what the divergence guard has multiplied the learning rates by so far (saved in checkpoints)
    saved_step: int | None = None  # the step of the latest checkpoint written
    stop_requested: bool = False  # Ctrl-C or SIGTERM: the run saves and stops after this step
    seconds_before: float = 0.0  # training time of the runs this one resumes
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds of training, summed over resumes (the clock of ``max_seconds``)."""
        return self.seconds_before + time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        return self.config.max_seconds is not None and self.elapsed() >= self.config.max_seconds

    @property
    def epoch(self) -> float:
        """Epochs done, with the fraction of the current one."""
        return self.sampler.epoch + self.sampler.position / self.sampler.batches_per_epoch

    @property
    def ema_shadows(self) -> list[dict[str, torch.Tensor]]:
        return [self.ema.shadow] if self.ema is not None else []

    def pop_means(self) -> dict[str, float]:
        """The running means of the logged values (one host sync), averaged over the ranks: every
        rank gets the same numbers, so every rank takes the same decision on them (e.g. the
        divergence guard's)."""
        running, dist = self.running, self.dist
        if dist.enabled and running.sums:
            names = list(running.sums)  # the same order everywhere: phases add in the same order
            stacked = torch.stack([running.sums[name].to(dist.collective_device) for name in names])
            dist.average_([stacked])
            running.sums = dict(zip(names, stacked.unbind(), strict=True))
        return running.pop()

    def metric_row(self, means: dict[str, float]) -> dict[str, Any]:
        """One row of metrics.csv: step, epoch, the means, seconds of training."""
        return {"step": self.step, "epoch": round(self.epoch, 4), **means, "time": round(self.elapsed(), 2)}


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
    with malformed(state_path):  # a tampered file (a key missing, a wrong type or size): one CheckpointError naming it
        load_model_weights(model, state_path, {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
        for name, optimizer in optimizers.items():
            if name not in meta.get("optimizers", {}):
                raise CheckpointError(f"{state_path}: no state for optimizer {name!r}")
            optimizer.load_state_dict(optimizer_from_tensors(name, tensors, meta["optimizers"][name]))
            check_moments(state_path, name, optimizer)
        if ema is not None:
            saved_ema = {k[len("ema/"):]: v.to(device) for k, v in tensors.items() if k.startswith("ema/")}
            averaged = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
            if saved_ema:
                check_header(state_path, tensor_header(saved_ema), averaged, "the model's EMA")
            ema.shadow = saved_ema or {k: v.detach().clone() for k, v in averaged.items()}
        torch.set_rng_state(tensors["rng/torch"])
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
        if cuda_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_states)
        sampler.restore(tensors["rng/sampler"], meta["sampler"])
        meta["step"] = int(meta["step"])
    return meta


# ----- a checkpoint back into a live run: on --resume and when the divergence guard recovers -----
def restore(run: TrainingRun) -> dict[str, Any]:
    """Load ``run``'s checkpoint into its live objects (every rank reads it) and move ``run.step``
    back to it; returns the checkpoint's metadata."""
    meta = restore_checkpoint(run.run_dir, run.model, run.optimizers, run.ema, run.sampler)
    run.step = int(meta["step"])
    _restore_rank_rng(run)
    _match_layouts(run.model, run.optimizers, run.ema)
    return meta


def noise_seed(seed: int, rank: int, step: int = 0) -> int:
    """Seed of a rank's noise RNG: rank 0 (and a single process) uses ``seed`` itself."""
    return seed + 1_000_003 * rank + 7_919 * step


def rng_bytes(device: torch.device) -> torch.Tensor:
    """This process's noise RNG state(s) as one uint8 vector: the CPU generator, then the GPU's."""
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return torch.cat(states)


def _restore_rank_rng(run: TrainingRun) -> None:
    """This rank's own noise RNG from the checkpoint, or a fresh per-rank seed when the checkpoint
    holds none for this many processes (written by a run of another size)."""
    dist = run.dist
    if not dist.enabled:
        return
    saved = run.sampler.rank_rng_states
    if saved and len(saved) == dist.world_size:
        mine = saved[dist.rank]
        cpu_bytes = torch.get_rng_state().numel()
        torch.set_rng_state(mine[:cpu_bytes].clone())
        if run.device.type == "cuda" and mine.numel() > cpu_bytes:
            torch.cuda.set_rng_state(mine[cpu_bytes:].clone(), run.device)
    else:
        torch.manual_seed(noise_seed(run.config.seed, dist.rank, run.step))


def _match_layouts(model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer], ema: EMA | None) -> None:
    """Give restored optimizer moments and EMA tensors their parameter's memory layout.

    Checkpoints hold contiguous (NCHW) tensors; with ``channels_last`` the parameters are NHWC.
    Fused/foreach optimizers pair a parameter with its moments element by element in memory, so
    moments in another layout than their parameter would be updated against the wrong entries.
    """
    for optimizer in optimizers.values():
        for parameter, values in optimizer.state.items():
            for key, value in values.items():
                if torch.is_tensor(value) and value.shape == parameter.shape:
                    values[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)
    if ema is not None:
        current = model.state_dict()
        ema.shadow = {k: torch.empty_like(current[k]).copy_(v) for k, v in ema.shadow.items()}
