"""THE training loop, for every model.

A model hands the loop its optimizers and a list of phases (see models/base.py); the loop owns
everything else: device and precision, data order, EMA, logging, sample grids, checkpoints,
resume and Ctrl-C. It has no branch on the model's kind.

Speed: the dataset lives on the device as uint8 and batches are drawn by indexing; metrics are
summed on the device and read back only every ``log_every`` steps (the loop's only host syncs).
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from genlab.checkpoint import STATE_FILE, read_run_config, restore_checkpoint, save_checkpoint, write_run_config
from genlab.config import TrainConfig, config_to_dict
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError, ConfigError, GenlabError
from genlab.models.base import GenerativeModel, Phase
from genlab.monitor import METRICS_FILE, DiversityAlarm, MetricsLog, RunningMeans, gradient_norm, parameters_finite


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
            tqdm.write("Interrupted: saving a checkpoint after this step (Ctrl-C again to abort)", file=sys.stderr)

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def train(model: GenerativeModel, dataset: Dataset, config: TrainConfig | None = None, *, resume: bool = False) -> GenerativeModel:
    """Train ``model`` on ``dataset``; checkpoints, samples and metrics go to ``config.out_dir``.

    With ``resume=True`` the run continues from the last checkpoint in ``out_dir`` (same data
    order and RNG streams, so on CPU it ends with the weights an uninterrupted run would have).
    A loss or weight that becomes NaN/Inf restores the last good checkpoint with lower learning
    rates (at most ``config.max_recoveries`` times). Ctrl-C saves a checkpoint and raises
    KeyboardInterrupt. Returns the model in eval mode with the weights to sample with (EMA if on).
    """
    config = config or TrainConfig()
    if tuple(dataset.image_shape) != tuple(model.image_shape):
        raise ConfigError(
            f"dataset {dataset.name!r} has items of shape {dataset.image_shape} but the model expects "
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
    _warn_if_ema_outlasts_the_run(config, sampler)
    state = {"step": 0, "elapsed": 0.0, "recoveries": 0}
    if resume:
        _check_resumable(run_dir, model, dataset)
        state.update(restore_checkpoint(run_dir, model, optimizers, ema, sampler))
    else:
        if (run_dir / STATE_FILE).exists():
            raise CheckpointError(f"{run_dir} already holds a run; resume it (--resume) or choose another output folder")
        torch.manual_seed(config.seed)
        write_run_config(run_dir, model, config, dataset.info())
    step = int(state["step"])
    log = MetricsLog(run_dir, resume_step=step if resume else None, tensorboard=config.tensorboard)

    images = dataset.images.to(device)
    labels = None if dataset.labels is None else dataset.labels.to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    parameters = {name: [p for group in opt.param_groups for p in group["params"]] for name, opt in optimizers.items()}
    running, stop = RunningMeans(), _StopRequest()
    alarm = DiversityAlarm(dataset, config.diversity_alarm) if config.num_sample_images else None
    started = time.perf_counter()
    bar = tqdm(total=config.epochs * sampler.batches_per_epoch, initial=sampler.epoch * sampler.batches_per_epoch + sampler.position,
               unit="batch", disable=not config.progress, dynamic_ncols=True, desc=f"{model.kind} → {run_dir}",
               mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log file gets a line every 10 s, not a flood

    def elapsed() -> float:
        return float(state["elapsed"]) + time.perf_counter() - started

    def save() -> bool:
        """Checkpoint unless something went non-finite since the last one (then recover instead)."""
        nonlocal step
        if not bool(running.all_finite() & parameters_finite(model)):
            step = _recover(f"non-finite loss or weights before the checkpoint of step {step}")
            return False
        save_checkpoint(run_dir, model, optimizers, ema, sampler,
                        {"step": step, "elapsed": elapsed(), "recoveries": state["recoveries"]})
        state["saved_step"] = step
        return True

    def _recover(reason: str) -> int:
        """Divergence guard: back to the last good checkpoint with lower learning rates."""
        if state["recoveries"] >= config.max_recoveries:
            raise TrainingDiverged(
                f"training diverged ({reason}) after {state['recoveries']} recoveries; the last good checkpoint is in "
                f"{run_dir}: resume it with a lower learning rate"
            )
        restored = restore_checkpoint(run_dir, model, optimizers, ema, sampler)
        state["recoveries"] += 1
        schedule.scale(config.recovery_lr_factor)
        running.clear()
        log.truncate_after(int(restored["step"]))
        message = (f"step {step}: {reason}; restored the checkpoint of step {restored['step']} and multiplied the "
                   f"learning rates by {config.recovery_lr_factor} (recovery {state['recoveries']} of {config.max_recoveries})")
        tqdm.write(message, file=sys.stderr)
        with (run_dir / "events.log").open("a") as events:
            events.write(message + "\n")
        bar.n = sampler.epoch * sampler.batches_per_epoch + sampler.position
        return int(restored["step"])

    schedule = LRSchedule(config, optimizers, sampler)
    if not resume:
        save()  # step 0: there is always a good checkpoint to return to
    with stop.installed():
        while (sampler.epoch < config.epochs and (config.max_steps is None or step < config.max_steps)
               and (config.max_seconds is None or elapsed() < config.max_seconds)):
            epoch_before, batches_before = sampler.epoch, sampler.epoch * sampler.batches_per_epoch + sampler.position
            schedule.apply(step, elapsed())
            _run_phases(phases, step, optimizers, parameters, sampler, images, labels, autocast, running)
            step += 1
            if ema is not None:
                ema.update(model)
            bar.update(max(0, sampler.epoch * sampler.batches_per_epoch + sampler.position - batches_before))
            epoch_done = sampler.epoch > epoch_before
            if epoch_done and alarm is not None:
                _sample_and_watch(model, ema, config, alarm, running, sampler.epoch, run_dir, dataset)
            if step % config.log_every == 0:
                means = running.pop()
                bad = [name for name, value in means.items() if not math.isfinite(value)]
                if bad:
                    step = _recover(f"{', '.join(bad)} not finite")
                    continue
                _log(log, means, bar, step, sampler, elapsed())
            if epoch_done or stop.requested or (config.checkpoint_every and step % config.checkpoint_every == 0):
                if not save():
                    continue
            if stop.requested:
                break
    bar.close()
    if running.sums:
        means = running.pop()
        if all(math.isfinite(v) for v in means.values()):
            _log(log, means, bar, step, sampler, elapsed())
    if state.get("saved_step") != step:
        save()
    log.close()
    _plot_curves(model, run_dir)
    if stop.requested:
        raise KeyboardInterrupt(f"training interrupted at step {step}; checkpoint saved in {run_dir} (continue with --resume)")
    if ema is not None:
        model.load_state_dict(ema.state_dict(model))
    return model.eval()


class LRSchedule:
    """Anneals every optimizer's rate from its initial value to 0 over the end of the run.

    The factor is a function of progress only, so a resumed run follows the same curve: progress is
    the largest of batches drawn / (epochs × batches per epoch), step / max_steps and seconds /
    max_seconds, i.e. how close the run is to whichever limit stops it. "linear" is 1 − t; "cosine" is (1 + cos πt) / 2
    (SGDR, Loshchilov & Hutter 2017, Eq. 5 with η_min = 0), with t going 0 → 1 from
    ``lr_decay_start`` to the end. Each param group keeps its base rate as ``initial_lr`` (saved
    with the optimizer state); the divergence guard lowers that base.
    """

    def __init__(self, config: TrainConfig, optimizers: dict[str, torch.optim.Optimizer], sampler: BatchSampler) -> None:
        self.kind, self.start = config.lr_schedule, config.lr_decay_start
        self.epochs, self.max_steps, self.max_seconds, self.sampler = config.epochs, config.max_steps, config.max_seconds, sampler
        self.optimizers = optimizers
        for group in self.groups():
            group.setdefault("initial_lr", group["lr"])

    def groups(self) -> Iterator[dict[str, Any]]:
        """Looked up each time: restoring a checkpoint replaces the optimizers' param-group dicts."""
        for optimizer in self.optimizers.values():
            yield from optimizer.param_groups

    def factor(self, step: int, seconds: float = 0.0) -> float:
        if self.kind == "constant":
            return 1.0
        sampler = self.sampler
        progress = (sampler.epoch * sampler.batches_per_epoch + sampler.position) / (self.epochs * sampler.batches_per_epoch)
        if self.max_steps:
            progress = max(progress, step / self.max_steps)
        if self.max_seconds:
            progress = max(progress, seconds / self.max_seconds)
        t = min(1.0, max(0.0, (progress - self.start) / (1.0 - self.start)))
        return 1.0 - t if self.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))

    def apply(self, step: int, seconds: float = 0.0) -> None:
        if self.kind == "constant":
            return
        factor = self.factor(step, seconds)
        for group in self.groups():
            group["lr"] = group["initial_lr"] * factor

    def scale(self, factor: float) -> None:
        """Multiply the base and current rates (the divergence guard's "lower the learning rates")."""
        for group in self.groups():
            group["initial_lr"] *= factor
            group["lr"] *= factor


def _warn_if_ema_outlasts_the_run(config: TrainConfig, sampler: BatchSampler) -> None:
    """An EMA averages over about 1/(1 − decay) steps; over a shorter run it mostly holds early weights."""
    if not config.ema_decay:
        return
    horizon = 1.0 / (1.0 - config.ema_decay)
    steps = config.epochs * sampler.batches_per_epoch  # at most; GAN phases may draw several batches a step
    if horizon > steps / 3:
        tqdm.write(f"warning: ema_decay={config.ema_decay} averages over ~{horizon:.0f} steps but the run has at most "
                   f"{steps}; the averaged weights will lag far behind (use a decay below {1 - 3 / steps:.4f})",
                   file=sys.stderr)


def _run_phases(phases: list[Phase], step: int, optimizers: dict[str, torch.optim.Optimizer],
                parameters: dict[str, list[torch.Tensor]], sampler: BatchSampler, images: torch.Tensor,
                labels: torch.Tensor | None, autocast: Any, running: RunningMeans) -> None:
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
            losses = {**losses, "grad_norm": gradient_norm(parameters[phase.optimizer])}
            optimizer.step()
            running.add(phase.name, losses)


def _log(log: MetricsLog, means: dict[str, float], bar: Any, step: int, sampler: BatchSampler, elapsed: float) -> None:
    epoch = sampler.epoch + sampler.position / sampler.batches_per_epoch
    log.write({"step": step, "epoch": round(epoch, 4), **means, "time": round(elapsed, 2)})
    shown = {name: value for name, value in means.items() if not name.endswith("grad_norm")}
    phases = {name.split("/", 1)[0] for name in shown}
    # With one phase its name is noise; with several (D, G, ...) it is the point.
    shown = {(name.split("/", 1)[1] if len(phases) == 1 else name): value for name, value in shown.items()}
    bar.set_postfix({name: f"{value:.4g}" for name, value in shown.items()}, refresh=False)


def _sample_and_watch(model: GenerativeModel, ema: EMA | None, config: TrainConfig, alarm: DiversityAlarm,
                      running: RunningMeans, epoch: int, run_dir: Path, dataset: Dataset) -> None:
    """After each epoch: the fixed-noise sample picture, and the mode-collapse alarm on those samples."""
    from genlab.visuals import write_sample_picture

    with ema.applied(model) if ema is not None else contextlib.nullcontext():
        model.eval()
        columns = model.grid_columns  # e.g. one per class: a whole number of rows
        n = max(columns, config.num_sample_images // columns * columns) if columns else config.num_sample_images
        samples = model.sample(n, seed=config.seed)  # the same noise every epoch
        model.train()
    write_sample_picture(samples, run_dir / "samples" / f"epoch_{epoch:03d}", dataset.name, nrow=columns)
    ratio = alarm.ratio(samples)
    running.add("monitor", {"diversity": ratio})  # logged with the next row
    if ratio.item() < alarm.threshold:
        tqdm.write(f"epoch {epoch}: possible mode collapse: samples are {ratio.item():.2f}× as diverse as the data "
                   f"(alarm below {alarm.threshold}); see {run_dir / 'samples'}", file=sys.stderr)


def _plot_curves(model: GenerativeModel, run_dir: Path) -> None:
    from genlab.report import plot_metrics, plot_monitor

    try:
        plot_metrics(run_dir / METRICS_FILE, run_dir / "loss.png")
        if model.monitor_columns:
            plot_monitor(run_dir / METRICS_FILE, run_dir / "monitor.png", list(model.monitor_columns))
    except (GenlabError, ValueError):
        pass  # too few logged rows to plot is not an error in training


def _check_resumable(run_dir: Path, model: GenerativeModel, dataset: Dataset) -> None:
    if not (run_dir / STATE_FILE).exists():
        raise CheckpointError(f"{run_dir}: nothing to resume ({STATE_FILE} not found); start without --resume")
    saved = read_run_config(run_dir)
    if saved["model"] != {"kind": model.kind, "config": config_to_dict(model.config)}:
        raise CheckpointError(f"{run_dir / 'config.json'}: the run was trained with a different model config; resume with the same model")
    if saved.get("dataset", {}).get("image_shape") != list(dataset.image_shape):
        raise CheckpointError(f"{run_dir / 'config.json'}: the run was trained on data of shape "
                              f"{saved['dataset'].get('image_shape')}, not {list(dataset.image_shape)}")
