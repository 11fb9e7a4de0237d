"""THE training loop, for every model.

A model hands the loop its optimizers and a list of phases (see models/base.py); the loop owns
everything else: device and precision, data order, EMA, logging, sample grids, checkpoints,
resume and Ctrl-C. It has no branch on the model's kind.

Speed: the dataset lives on the device as uint8 and batches are drawn by indexing; metrics are
summed on the device and read back only every ``log_every`` steps (the loop's only host syncs).
"""
from __future__ import annotations

import contextlib
import csv
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from genlab.checkpoint import (
    STATE_FILE, WEIGHTS_FILE, load_model_weights, load_tensors, optimizer_from_tensors,
    optimizer_to_tensors, read_run_config, save_tensors, write_run_config,
)
from genlab.config import TrainConfig, config_to_dict
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError, ConfigError, GenlabError
from genlab.models.base import GenerativeModel, Phase

METRICS_FILE = "metrics.csv"


class TrainingDiverged(GenlabError):
    """A loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


class BatchSampler:
    """Shuffled index batches, epoch after epoch (the last incomplete batch is dropped).

    Its state is the RNG state at the start of the current epoch plus the position in it, so a
    run resumed mid-epoch sees exactly the batches an uninterrupted run would.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, device: torch.device) -> None:
        self.num_items = num_items
        self.batch_size = min(batch_size, num_items)
        self.batches_per_epoch = num_items // self.batch_size
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self._epoch_start_state = self.generator.get_state()
        self._order: torch.Tensor | None = None

    def next(self) -> torch.Tensor:
        if self._order is None:
            self._epoch_start_state = self.generator.get_state()
            self._order = torch.randperm(self.num_items, generator=self.generator).to(self.device)
        start = self.position * self.batch_size
        index = self._order[start:start + self.batch_size]
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        return index

    def state(self) -> tuple[torch.Tensor, dict[str, int]]:
        rng = self._epoch_start_state if self._order is not None else self.generator.get_state()
        return rng, {"epoch": self.epoch, "position": self.position}

    def restore(self, rng: torch.Tensor, state: dict[str, int]) -> None:
        self.generator.set_state(rng)
        self.epoch, self.position, self._order = state["epoch"], 0, None
        if state["position"]:
            self.next()  # regenerates this epoch's order from its starting RNG state
            self.position = state["position"]


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        current = model.state_dict()
        names = list(self.shadow)
        # shadow ← shadow + (1 − decay)·(current − shadow)
        torch._foreach_lerp_([self.shadow[k] for k in names], [current[k].detach() for k in names], 1.0 - self.decay)

    def state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with EMA values in place of the averaged tensors."""
        return {k: self.shadow.get(k, v) for k, v in model.state_dict().items()}

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Temporarily load the EMA weights into ``model`` (e.g. to sample)."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state_dict(model))
        try:
            yield
        finally:
            model.load_state_dict(backup)


class RunningMeans:
    """Sums of logged scalars kept on the device; read back (one host sync) only when logging."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, phase: str, values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            name = f"{phase}/{key}"
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def pop(self) -> dict[str, float]:
        if not self.sums:
            return {}
        names = list(self.sums)
        totals = torch.stack([self.sums[n] for n in names]).tolist()
        means = {n: total / self.counts[n] for n, total in zip(names, totals)}
        self.sums, self.counts = {}, {}
        return means


class MetricsLog:
    """metrics.csv (one row per log interval) and TensorBoard scalars when tensorboard is installed."""

    def __init__(self, run_dir: Path, *, resume_step: int | None, tensorboard: bool) -> None:
        self.path = run_dir / METRICS_FILE
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.exists():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                # Rows logged after the checkpoint we resume from will be logged again.
                self.rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) <= resume_step]
        self._rewrite()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)

    def write(self, row: dict[str, Any]) -> None:
        row = {k: (f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in row.items()}
        self.rows.append(row)
        if any(k not in self.columns for k in row):  # a phase that logs for the first time
            self.columns += [k for k in row if k not in self.columns]
            self._rewrite()
        else:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, self.columns).writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self.writer.add_scalar(key, float(value), int(row["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _StopRequest:
    """First Ctrl-C asks the loop to finish its step, save and stop; a second one aborts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            self.requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)
            tqdm.write("Interrupted: saving a checkpoint after this step (Ctrl-C again to abort)")

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def train(model: GenerativeModel, dataset: Dataset, config: TrainConfig | None = None, *, resume: bool = False) -> GenerativeModel:
    """Train ``model`` on ``dataset``; checkpoints, samples and metrics go to ``config.out_dir``.

    With ``resume=True`` the run continues from the last checkpoint in ``out_dir`` (same data
    order and RNG streams, so on CPU it ends with the weights an uninterrupted run would have).
    Returns the model, in eval mode, holding the weights to sample with (EMA weights if enabled).
    Ctrl-C saves a checkpoint and raises KeyboardInterrupt.
    """
    config = config or TrainConfig()
    if tuple(dataset.image_shape) != tuple(model.image_shape):
        raise ConfigError(
            f"dataset {dataset.name!r} has images of shape {dataset.image_shape} but the model expects "
            f"{tuple(model.image_shape)}; build the model with image_shape={dataset.image_shape} or resize the data"
        )
    run_dir = Path(config.out_dir)
    device = resolve_device(config.device)
    model.to(device).train()
    optimizers = model.make_optimizers(config)
    phases = model.training_phases()
    for phase in phases:
        if phase.optimizer not in optimizers:
            raise ValueError(f"phase {phase.name!r} names optimizer {phase.optimizer!r}, not one of {list(optimizers)}")
    ema = EMA(model, config.ema_decay) if config.ema_decay else None
    sampler = BatchSampler(len(dataset), config.batch_size, config.seed, device)
    step, elapsed_before = 0, 0.0
    if resume:
        step, elapsed_before = _restore(run_dir, model, dataset, optimizers, ema, sampler)
    else:
        if (run_dir / STATE_FILE).exists():
            raise CheckpointError(f"{run_dir} already holds a run; resume it (--resume) or choose another output folder")
        torch.manual_seed(config.seed)
        write_run_config(run_dir, model, config, dataset.info())
    log = MetricsLog(run_dir, resume_step=step if resume else None, tensorboard=config.tensorboard)

    images = dataset.images.to(device)
    labels = None if dataset.labels is None else dataset.labels.to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    running, stop = RunningMeans(), _StopRequest()
    started = time.perf_counter()
    saved_step = step
    bar = tqdm(total=config.epochs * sampler.batches_per_epoch, initial=sampler.epoch * sampler.batches_per_epoch + sampler.position,
               unit="batch", disable=not config.progress, dynamic_ncols=True, desc=f"{model.kind} → {run_dir}",
               mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log file gets a line every 10 s, not a flood

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    def save() -> None:
        nonlocal saved_step
        _save_checkpoint(run_dir, model, optimizers, ema, sampler, step, elapsed())
        saved_step = step

    with stop.installed():
        while sampler.epoch < config.epochs and (config.max_steps is None or step < config.max_steps):
            epoch_before, batches_before = sampler.epoch, sampler.epoch * sampler.batches_per_epoch + sampler.position
            _run_phases(phases, step, optimizers, sampler, images, labels, autocast, running)
            step += 1
            if ema is not None:
                ema.update(model)
            bar.update(sampler.epoch * sampler.batches_per_epoch + sampler.position - batches_before)
            if step % config.log_every == 0:
                _log(log, running, bar, step, sampler, elapsed(), run_dir)
            epoch_done = sampler.epoch > epoch_before
            if epoch_done and config.num_sample_images:
                _write_sample_grid(model, ema, config, run_dir / "samples" / f"epoch_{sampler.epoch:03d}.png")
            if epoch_done or stop.requested or (config.checkpoint_every and step % config.checkpoint_every == 0):
                save()
            if stop.requested:
                break
    bar.close()
    if running.sums:
        _log(log, running, bar, step, sampler, elapsed(), run_dir)
    if saved_step != step:
        save()
    log.close()
    _plot_losses(run_dir)
    if stop.requested:
        raise KeyboardInterrupt(f"training interrupted at step {step}; checkpoint saved in {run_dir} (continue with --resume)")
    if ema is not None:
        model.load_state_dict(ema.state_dict(model))
    return model.eval()


def _run_phases(phases: list[Phase], step: int, optimizers: dict[str, torch.optim.Optimizer], sampler: BatchSampler,
                images: torch.Tensor, labels: torch.Tensor | None, autocast: Any, running: RunningMeans) -> None:
    batch: tuple[torch.Tensor, torch.Tensor | None] | None = None
    for phase in phases:
        if step % phase.every:
            continue
        optimizer = optimizers[phase.optimizer]
        for _ in range(phase.repeats):
            if phase.new_batch or batch is None:
                index = sampler.next()
                batch = (Dataset.to_float(images[index]), None if labels is None else labels[index])
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                losses = phase.loss(*batch)
            losses["loss"].backward()
            optimizer.step()
            running.add(phase.name, losses)


def _log(log: MetricsLog, running: RunningMeans, bar: Any, step: int, sampler: BatchSampler, elapsed: float, run_dir: Path) -> None:
    means = running.pop()
    bad = [name for name, value in means.items() if not math.isfinite(value)]
    if bad:
        raise TrainingDiverged(
            f"training diverged by step {step}: {', '.join(bad)} not finite; the last good checkpoint is in "
            f"{run_dir} (resume it with a lower learning rate)"
        )
    epoch = sampler.epoch + sampler.position / sampler.batches_per_epoch
    log.write({"step": step, "epoch": round(epoch, 4), **means, "time": round(elapsed, 2)})
    phases = {name.split("/", 1)[0] for name in means}
    # With one phase its name is noise; with several (D, G, ...) it is the point.
    shown = {(name.split("/", 1)[1] if len(phases) == 1 else name): value for name, value in means.items()}
    bar.set_postfix({name: f"{value:.4g}" for name, value in shown.items()}, refresh=False)


def _write_sample_grid(model: GenerativeModel, ema: EMA | None, config: TrainConfig, path: Path) -> None:
    from genlab.images import save_image

    with ema.applied(model) if ema is not None else contextlib.nullcontext():
        model.eval()
        samples = model.sample(config.num_sample_images, seed=config.seed)  # the same noise every epoch
        model.train()
    save_image(samples, path, scale=2)


def _plot_losses(run_dir: Path) -> None:
    from genlab.report import plot_metrics

    try:
        plot_metrics(run_dir / METRICS_FILE, run_dir / "loss.png")
    except (GenlabError, ValueError):
        pass  # too few logged rows to plot is not an error in training


def _save_checkpoint(run_dir: Path, model: GenerativeModel, optimizers: dict[str, torch.optim.Optimizer],
                     ema: EMA | None, sampler: BatchSampler, step: int, elapsed: float) -> None:
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"step": step, "elapsed": elapsed, "sampler": sampler.state()[1], "optimizers": {}}
    for name, optimizer in optimizers.items():
        optimizer_tensors, meta["optimizers"][name] = optimizer_to_tensors(name, optimizer)
        tensors.update(optimizer_tensors)
    if ema is not None:
        tensors.update({f"ema/{k}": v for k, v in ema.shadow.items()})
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/sampler"] = sampler.state()[0]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    # Resume state first: if we are killed between the two writes, the sampling weights are one
    # checkpoint behind, never ahead of what --resume continues from.
    save_tensors(run_dir / STATE_FILE, tensors, meta)
    weights = ema.state_dict(model) if ema is not None else model.state_dict()
    save_tensors(run_dir / WEIGHTS_FILE, weights, {"step": step, "epoch": sampler.epoch, "ema": ema is not None})


def _restore(run_dir: Path, model: GenerativeModel, dataset: Dataset, optimizers: dict[str, torch.optim.Optimizer],
             ema: EMA | None, sampler: BatchSampler) -> tuple[int, float]:
    state_path = run_dir / STATE_FILE
    if not state_path.exists():
        raise CheckpointError(f"{run_dir}: nothing to resume ({STATE_FILE} not found); start without --resume")
    saved = read_run_config(run_dir)
    if saved["model"] != {"kind": model.kind, "config": config_to_dict(model.config)}:
        raise CheckpointError(f"{run_dir / 'config.json'}: the run was trained with a different model config; resume with the same model")
    if saved.get("dataset", {}).get("image_shape") != list(dataset.image_shape):
        raise CheckpointError(f"{run_dir / 'config.json'}: the run was trained on images of shape {saved['dataset'].get('image_shape')}, not {list(dataset.image_shape)}")
    tensors, meta = load_tensors(state_path)
    load_model_weights(model, state_path, {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    for name, optimizer in optimizers.items():
        if name not in meta.get("optimizers", {}):
            raise CheckpointError(f"{state_path}: no state for optimizer {name!r}")
        optimizer.load_state_dict(optimizer_from_tensors(name, tensors, meta["optimizers"][name]))
    if ema is not None:
        saved_ema = {k[len("ema/"):]: v.to(model.device) for k, v in tensors.items() if k.startswith("ema/")}
        ema.shadow = saved_ema or {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    torch.set_rng_state(tensors["rng/torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    sampler.restore(tensors["rng/sampler"], meta["sampler"])
    return int(meta["step"]), float(meta.get("elapsed", 0.0))
