"""THE training loop, for every model.

A model hands the loop its optimizers and a list of phases (see models/base.py); the loop owns
everything else: device and precision, data order, EMA, checkpoints, resume, the divergence guard,
Ctrl-C and SIGTERM, and the run folder's writer lock. It has no branch on the model's kind. What a run shows and writes along the way
(progress bar, metrics.csv, sample grids, plots) are callbacks (callbacks.py), the same events a
user's own callbacks get; the state they all see is one :class:`~genlab.training.state.TrainingRun`.

Speed: the dataset lives on the device as uint8 and batches are drawn by indexing; metrics are
summed on the device and read back only every ``log_every`` steps (the loop's only host syncs).
Options: ``precision`` (bf16/fp16 autocast, fp16 with loss scaling), ``channels_last`` memory
format for conv nets, ``compile`` (torch.compile of the model's sub-networks). Launched by
``torchrun`` the same loop trains data-parallel over several processes (see distributed.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genlab.config import TrainConfig, config_from_dict, config_to_dict
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError, ConfigError, GenlabError
from genlab.io.checkpoints import CONFIG_FILE, STATE_FILE, read_run_config, write_run_config
from genlab.io.files import remove_stale_temporaries
from genlab.models.base import GenerativeModel, Phase
from genlab.runs import write_config, writer_lock
from genlab.training.callbacks import Callback, CallbackList, built_in_callbacks
from genlab.training.distributed import SINGLE, Distributed
from genlab.training.distributed import setup as setup_distributed
from genlab.training.ema import EMA
from genlab.training.monitor import RunningMeans, gradient_norm, parameters_finite
from genlab.training.precision import Precision, choose_precision, fp32_outputs
from genlab.training.sampler import BatchSampler
from genlab.training.schedule import LRSchedule
from genlab.training.state import TrainingRun, noise_seed, restore, rng_bytes, save_checkpoint

__all__ = ["RESUMABLE", "BatchSampler", "LRSchedule", "Precision", "StepParts", "TrainingDiverged", "TrainingInterrupted",
           "compile_children", "run_step", "train"]

# TrainConfig fields a resumed run may change: when and how long it runs, what it shows and writes, where it
# runs. Every other field (lr, batch_size, seed, precision, ema_decay, the schedule, ...) decides what the
# run computes; a resume that gave another value would quietly become another run, so it is refused.
RESUMABLE = ("epochs", "max_steps", "max_seconds", "log_every", "checkpoint_every", "num_sample_images", "progress",
             "tensorboard", "plots", "diversity_alarm", "max_recoveries", "device", "channels_last", "compile", "out_dir")


class TrainingDiverged(GenlabError):
    """A loss became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (``signal_name`` "SIGINT") or SIGTERM stopped the run after its step ``step``, saved in a checkpoint."""

    def __init__(self, message: str, *, signal_name: str, step: int) -> None:
        super().__init__(message)
        self.signal_name, self.step = signal_name, step


def train(model: GenerativeModel, dataset: Dataset, config: TrainConfig | None = None, *, resume: bool = False,
          callbacks: Iterable[Callback] = ()) -> GenerativeModel:
    """Train ``model`` on ``dataset``; checkpoints, samples and metrics go to ``config.out_dir``.

    With ``resume=True`` the run continues from the last checkpoint in ``out_dir`` (same data
    order and RNG streams, so on CPU it ends with the weights an uninterrupted run would have).
    ``config`` must then equal the run's saved one except in the :data:`RESUMABLE` fields (each
    change is written to events.log and config.json); the data must have as many items, of the
    same shape and classes. A loss or weight that becomes NaN/Inf restores the last good
    checkpoint with lower learning rates (at most ``config.max_recoveries`` times). Ctrl-C or
    SIGTERM saves a checkpoint and raises :class:`TrainingInterrupted` (a KeyboardInterrupt).
    The process holds the run folder's writer lock throughout: a second writer fails at once.
    ``callbacks`` (:class:`~genlab.training.callbacks.Callback`) are told every event after the
    loop's own. Returns the model in eval mode with the weights to sample with (EMA if on).
    Started by ``torchrun`` with several processes, every process calls this with the same
    arguments and they train one model together (see genlab.distributed).
    """
    config = config or TrainConfig()
    _check_shapes(model, dataset)
    run_dir = Path(config.out_dir)
    if resume and not (run_dir / STATE_FILE).exists():  # checked before the lock creates the folder
        raise CheckpointError(f"{run_dir}: nothing to resume ({STATE_FILE} not found); start without --resume")
    dist, device = setup_distributed(resolve_device(config.device))
    if config.batch_size % dist.world_size:
        raise ConfigError(f"batch_size {config.batch_size} is the global batch and must be divisible by the "
                          f"{dist.world_size} processes")
    with _sole_writer(run_dir, dist):
        config = _resolve_precision(config, device, run_dir if resume else None, dist.is_main)
        with fp32_outputs(model, config.precision):
            return _train(model, dataset, config, resume, callbacks, dist, device)


@contextlib.contextmanager
def _sole_writer(run_dir: Path, dist: Distributed) -> Iterator[None]:
    """Rank 0 holds the run folder's writer lock for the whole run (every rank learns when it could not
    get it) and, as the one writer, deletes the temporary files a killed run left behind."""
    with contextlib.ExitStack() as stack:
        refused = None
        if dist.is_main:
            try:
                stack.enter_context(writer_lock(run_dir))
            except GenlabError as error:
                refused = error
        (busy,) = dist.any_rank(refused is not None)
        if busy:
            raise refused or CheckpointError(f"{run_dir}: rank 0 could not take the run folder's writer lock")
        if dist.is_main:
            remove_stale_temporaries(run_dir, recursive=True)
        yield


def _train(model: GenerativeModel, dataset: Dataset, config: TrainConfig, resume: bool, callbacks: Iterable[Callback],
           dist: Distributed, device: torch.device) -> GenerativeModel:
    precision = Precision(config.precision, device)
    memory_format = torch.channels_last if config.channels_last else torch.preserve_format
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: pick the fastest conv algorithms once
    model.to(device=device, memory_format=memory_format).train()
    optimizers = model.make_optimizers(config)
    phases = _checked_phases(model, optimizers)
    ema = EMA(model, config.ema_decay) if config.ema_decay else None
    sampler = BatchSampler(len(dataset), config.batch_size, config.seed, device, dist.rank, dist.world_size)
    run = TrainingRun(model, dataset, config, Path(config.out_dir), dist, device, optimizers, ema, sampler,
                      LRSchedule(config, optimizers, sampler), resumed=resume)
    if resume:
        saved, changes = _check_resumable(run.run_dir, model, dataset, config)
        meta = restore(run)
        run.seconds_before, run.recoveries = float(meta.get("elapsed", 0.0)), int(meta.get("recoveries", 0))
        run.lr_factor = float(meta.get("lr_factor", 1.0))
        if changes and dist.is_main:
            write_run_config(run.run_dir, {**saved, "train": config_to_dict(config)})
            for change in changes:
                _event(run, f"resumed at step {run.step} with {change}")
    else:
        if (run.run_dir / STATE_FILE).exists():
            raise CheckpointError(f"{run.run_dir} already holds a run; resume it (--resume) or choose another output folder")
        dist.barrier()  # every rank has looked before rank 0 writes
        dist.broadcast_module(model)  # the same initial weights everywhere
        torch.manual_seed(noise_seed(config.seed, dist.rank))
        if dist.is_main:
            write_config(run.run_dir, model, config, dataset.info())
    if config.compile:
        compile_children(model)
    labels = None if dataset.labels is None else dataset.labels.to(device)
    sources = None if dataset.sources is None else dataset.sources.to(device)  # a paired set's inputs (translation)
    parts = StepParts(phases, optimizers, sampler, dataset.images.to(device), labels, precision, memory_format, run.running, dist,
                      sources)
    callbacks = CallbackList([*built_in_callbacks(config, dist), *callbacks])
    callbacks.on_train_start(run)
    stop, terminated = _StopRequest(), False
    run.started = time.perf_counter()
    if not resume:
        _checkpoint(run, callbacks)  # step 0: there is always a good checkpoint to return to
    (time_up,) = dist.any_rank(run.out_of_time())
    with stop.installed():
        while sampler.epoch < config.epochs and (config.max_steps is None or run.step < config.max_steps) and not time_up:
            epochs_before = sampler.epoch
            run.schedule.apply(run.step, run.elapsed())
            run_step(parts, run.step)
            run.step += 1
            if ema is not None:
                ema.update(model, run.step)
            # Ranks must agree on when to stop (signals and the clock reach them at different steps).
            run.stop_requested, terminated, time_up = dist.any_rank(stop.requested, stop.terminated, run.out_of_time())
            callbacks.on_step_end(run)
            epoch_done = sampler.epoch > epochs_before
            if epoch_done:
                callbacks.on_epoch_end(run)
            if run.step % config.log_every == 0:
                means = run.pop_means()  # the loop's only host sync
                bad = [name for name, value in means.items() if not math.isfinite(value)]
                if bad:
                    _recover(run, f"{', '.join(bad)} not finite", callbacks)
                    continue
                callbacks.on_log(run, run.metric_row(means))
            due = epoch_done or run.stop_requested or (config.checkpoint_every and run.step % config.checkpoint_every == 0)
            if due and not _checkpoint(run, callbacks):
                continue  # it found non-finite values and went back to the last checkpoint instead
            if run.stop_requested:
                break
    if run.running.sums:
        means = run.pop_means()
        if all(math.isfinite(value) for value in means.values()):
            callbacks.on_log(run, run.metric_row(means))
    if run.saved_step != run.step:
        _checkpoint(run, callbacks)
    if config.compile:
        compile_children(model, undo=True)
    if memory_format is torch.channels_last:
        model.to(memory_format=torch.contiguous_format)  # callers get ordinary tensors back from the model
    callbacks.on_train_end(run)
    if run.stop_requested:
        raise TrainingInterrupted(f"training {'terminated' if terminated else 'interrupted'} at step {run.step}; checkpoint "
                                  f"saved in {run.run_dir} (continue with --resume)",
                                  signal_name="SIGTERM" if terminated else "SIGINT", step=run.step)
    if ema is not None:
        model.load_state_dict(ema.state_dict(model))
    return model.eval()


# ----- one training step: what the loop repeats, and what benchmarks/loop_options.py times -----
@dataclass(eq=False)
class StepParts:
    """What a training step works with: the model's phases and optimizers, the whole dataset on the
    device (uint8) with its order, the precision and memory format, and where logged values are summed."""

    phases: list[Phase]
    optimizers: dict[str, torch.optim.Optimizer]
    sampler: BatchSampler
    images: torch.Tensor
    labels: torch.Tensor | None
    precision: Precision
    memory_format: torch.memory_format = torch.preserve_format
    running: RunningMeans = field(default_factory=RunningMeans)
    dist: Distributed = SINGLE
    sources: torch.Tensor | None = None  # a paired dataset's inputs (uint8), drawn with the images' index
    parameters: dict[str, list[torch.Tensor]] = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = {name: [p for group in optimizer.param_groups for p in group["params"]]
                           for name, optimizer in self.optimizers.items()}


def run_step(parts: StepParts, step: int) -> None:
    """Training step ``step``: each phase due (``step % phase.every == 0``), ``phase.repeats`` times, draws
    a batch (or reuses the last), computes its loss under autocast, backpropagates, averages the gradients
    over the ranks and steps its optimizer. Losses and gradient norms are summed on the device (no host sync)."""
    sampler, precision, memory_format, labels = parts.sampler, parts.precision, parts.memory_format, parts.labels
    batch: tuple[torch.Tensor | None, ...] | None = None
    for phase in parts.phases:
        if step % phase.every:
            continue
        optimizer, parameters = parts.optimizers[phase.optimizer], parts.parameters[phase.optimizer]
        for _ in range(phase.repeats):
            if phase.new_batch or batch is None:
                index = sampler.next()
                batch = (_float_batch(parts.images[index], memory_format), None if labels is None else labels[index])
                if parts.sources is not None:  # a model that takes sources gets them as its loss's third argument
                    batch = (*batch, _float_batch(parts.sources[index], memory_format))
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                losses = phase.loss(*batch)
            precision.backward(losses["loss"])
            parts.dist.average_gradients(parameters)  # the data-parallel step (no-op in one process)
            precision.unscale_(optimizer)
            norm = gradient_norm(parameters)
            if precision.scaler is not None:
                # An overflowing fp16 step is skipped by design, not a divergence: log how often it happens.
                finite = torch.isfinite(norm)
                losses = {**losses, "amp_skipped": (~finite).float()}
                norm = torch.where(finite, norm, torch.zeros_like(norm))
            losses = {**losses, "grad_norm": norm}
            precision.step(optimizer)
            parts.running.add(phase.name, losses)


# ----- checkpoints and the divergence guard -----
def _checkpoint(run: TrainingRun, callbacks: Callback) -> bool:
    """Save the training state, unless something went non-finite since the last checkpoint: then the
    divergence guard goes back to that one instead, and this returns False."""
    dist = run.dist
    if not dist.every_rank(run.running.all_finite() & parameters_finite(run.model)):
        _recover(run, f"non-finite loss or weights before the checkpoint of step {run.step}", callbacks)
        return False
    dist.average_buffers(run.model, *run.ema_shadows)
    if dist.enabled:
        run.sampler.rank_rng_states = dist.gather_bytes(rng_bytes(run.device))
    if dist.is_main:
        save_checkpoint(run.run_dir, run.model, run.optimizers, run.ema, run.sampler,
                        {"step": run.step, "elapsed": run.elapsed(), "recoveries": run.recoveries, "lr_factor": run.lr_factor})
    dist.barrier()  # the checkpoint is complete before any rank may read it
    run.saved_step = run.step
    callbacks.on_checkpoint(run)
    return True


def _recover(run: TrainingRun, reason: str, callbacks: Callback) -> None:
    """The divergence guard: back to the last good checkpoint, with lower learning rates.

    The factor accumulates: the checkpoint's rates carry the factor applied when it was written
    (its metadata says which), so they are scaled to the run's factor so far times
    ``recovery_lr_factor``; three recoveries at 0.5 leave 1/8 of the rates, with or without a
    checkpoint between them."""
    config = run.config
    if run.recoveries >= config.max_recoveries:
        raise TrainingDiverged(
            f"training diverged ({reason}) after {run.recoveries} recoveries (learning rates at {run.lr_factor:g}× the "
            f"run's); the last good checkpoint is in {run.run_dir}: resume it with a larger --max-recoveries to lower "
            "them further, or start a new run with a lower learning rate"
        )
    failed_step = run.step
    meta = restore(run)
    run.recoveries += 1
    factor = run.lr_factor * config.recovery_lr_factor
    run.schedule.scale(factor / float(meta.get("lr_factor", 1.0)))
    run.lr_factor = factor
    run.running.clear()
    message = (f"step {failed_step}: {reason}; restored the checkpoint of step {run.step} and lowered the learning "
               f"rates to {factor:g}× the run's (recovery {run.recoveries} of {config.max_recoveries})")
    if run.dist.is_main:
        tqdm.write(message, file=sys.stderr)
    _event(run, message)
    callbacks.on_recover(run, message)


def _event(run: TrainingRun, message: str) -> None:
    """One line in the run's events.log (rank 0 writes it)."""
    if run.dist.is_main:
        with (run.run_dir / "events.log").open("a") as events:
            events.write(message + "\n")


# ----- setting up -----
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


def _resolve_precision(config: TrainConfig, device: torch.device, resumed_dir: Path | None, announce: bool) -> TrainConfig:
    """``precision="auto"`` made concrete, so the run's config.json records what it trained with: on resume the
    run's saved precision, else bf16 where ``device`` has native bf16 units and fp32 elsewhere (printed)."""
    if config.precision != "auto":
        return config
    saved = read_run_config(resumed_dir).get("train", {}).get("precision") if resumed_dir is not None else None
    if saved in ("fp32", "bf16", "fp16"):
        return dataclasses.replace(config, precision=saved)
    chosen, why = choose_precision(device)
    if announce:
        tqdm.write(f"precision: {chosen} (auto: {why}; --precision fp32|bf16 to choose)", file=sys.stderr)
    return dataclasses.replace(config, precision=chosen)


def compile_children(model: torch.nn.Module, *, undo: bool = False) -> None:
    """torch.compile each sub-network in place (state-dict names unchanged), or undo it.

    Whole sub-networks, not the phases' loss functions: a GAN hands G's graph from D's phase to
    G's, which one compiled autograd function per phase could not backpropagate twice.
    """
    for child in model.children():
        if undo:
            child._compiled_call_impl = None  # what nn.Module.compile set; the plain forward again
        else:
            child.compile()


def _check_shapes(model: GenerativeModel, dataset: Dataset) -> None:
    if tuple(dataset.image_shape) != tuple(model.image_shape):
        raise ConfigError(
            f"dataset {dataset.name!r} has items of shape {dataset.image_shape} but the model expects "
            f"{tuple(model.image_shape)}; build the model with image_shape={dataset.image_shape} or resize the data"
        )
    if model.takes_sources != (dataset.sources is not None):  # pairs for translation models, images for the rest
        held, wanted = ("images alone", "(input, target) pairs") if model.takes_sources else ("pairs", "images alone")
        raise ConfigError(f"dataset {dataset.name!r} holds {held} but a {model.kind} model trains on {wanted}; image-to-image "
                          "models (pix2pix, cyclegan) take pairs from genlab.data.pairs or genlab.data.domains")
    if model.takes_sources and tuple(dataset.source_shape) != tuple(model.source_shape):
        raise ConfigError(f"dataset {dataset.name!r} has inputs of shape {dataset.source_shape} but the model expects "
                          f"{tuple(model.source_shape)}; build the model with source_channels={dataset.source_shape[0]}")


def _float_batch(images: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """A batch as models take it (``Dataset.to_float``), in the loop's memory format."""
    x = Dataset.to_float(images)
    return x.contiguous(memory_format=memory_format) if x.dim() == 4 and memory_format is torch.channels_last else x


def _checked_phases(model: GenerativeModel, optimizers: dict[str, torch.optim.Optimizer]) -> list[Phase]:
    phases = model.training_phases()
    for phase in phases:
        if phase.optimizer not in optimizers:
            raise ValueError(f"phase {phase.name!r} names optimizer {phase.optimizer!r}, not one of {list(optimizers)}")
    return phases


def _check_resumable(run_dir: Path, model: GenerativeModel, dataset: Dataset, config: TrainConfig) -> tuple[dict[str, Any], list[str]]:
    """The run's saved config, and the changes ``config`` makes to it (``name: saved → given``, RESUMABLE fields
    only); a CheckpointError for another model, other data, or a change to any other field."""
    if not (run_dir / STATE_FILE).exists():
        raise CheckpointError(f"{run_dir}: nothing to resume ({STATE_FILE} not found); start without --resume")
    saved, where = read_run_config(run_dir), run_dir / CONFIG_FILE
    if saved["model"].get("kind") != model.kind or config_to_dict(model.config) != config_to_dict(  # fields added since: as saved
            config_from_dict(type(model.config), saved["model"].get("config", {}), where=str(where), saved=True)):
        raise CheckpointError(f"{where}: the run was trained with a different model config; resume with the same model")
    data, given = saved.get("dataset", {}), dataset.info()
    for key in ("image_shape", "num_images", "classes"):
        if key in data and data[key] != given[key]:
            raise CheckpointError(f"{where}: the run was trained on {data.get('name')!r} with {key} {data[key]}, this data "
                                  f"({given['name']!r}) has {given[key]}; resume on the run's own data")
    before, after = saved.get("train", {}), config_to_dict(config)
    changed = [name for name in after if name in before and before[name] != after[name]]
    refused = [f"{name}: {before[name]} → {after[name]}" for name in changed if name not in RESUMABLE]
    if refused:
        raise CheckpointError(f"{where}: --resume continues the run as it was trained, but these differ from its saved "
                              f"config: {'; '.join(refused)}. Give the saved values (or leave those options out), or start "
                              f"a new run in another folder. What may change on resume: {', '.join(RESUMABLE)}")
    return saved, [f"{name}: {before[name]} → {after[name]}" for name in changed]


class _StopRequest:
    """The first Ctrl-C (SIGINT) or SIGTERM (kill, timeout, Docker, Slurm, systemd) asks the loop to finish
    its step, save and stop; the same signal again aborts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = self.terminated = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.getsignal(signum) for signum in self.SIGNALS}

        def handler(signum: int, frame: Any) -> None:
            self.requested = True
            self.terminated = self.terminated or signum == signal.SIGTERM
            interrupt = signum == signal.SIGINT
            signal.signal(signum, signal.default_int_handler if interrupt else signal.SIG_DFL)
            tqdm.write(f"{'Interrupted' if interrupt else 'Terminated (SIGTERM)'}: saving a checkpoint after this step "
                       f"({'Ctrl-C' if interrupt else 'SIGTERM'} again to abort)", file=sys.stderr)

        for signum in self.SIGNALS:
            signal.signal(signum, handler)
        try:
            yield
        finally:
            for signum, before in previous.items():
                signal.signal(signum, before if before is not None else signal.SIG_DFL)
