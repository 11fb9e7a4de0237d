"""THE training loop, for every model.

A model hands the loop its optimizers and a list of phases (see models/base.py); the loop owns
everything else: device and precision, data order, EMA, logging, sample grids, checkpoints,
resume and Ctrl-C. It has no branch on the model's kind.

Speed: the dataset lives on the device as uint8 and batches are drawn by indexing; metrics are
summed on the device and read back only every ``log_every`` steps (the loop's only host syncs).
Options: ``precision`` (bf16/fp16 autocast, fp16 with loss scaling), ``channels_last`` memory
format for conv nets, ``compile`` (torch.compile of the model's sub-networks). Launched by
``torchrun`` the same loop trains data-parallel over several processes (see distributed.py).
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

from genlab.config import TrainConfig, config_to_dict
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError, ConfigError, GenlabError
from genlab.io.checkpoints import STATE_FILE, read_run_config
from genlab.io.plots import plot_metrics, plot_monitor
from genlab.models.base import GenerativeModel, Phase
from genlab.runs import write_config
from genlab.training.distributed import Distributed
from genlab.training.distributed import setup as setup_distributed
from genlab.training.monitor import (
    METRICS_FILE,
    DiversityAlarm,
    MetricsLog,
    RunningMeans,
    gradient_norm,
    parameters_finite,
    write_sample_picture,
)
from genlab.training.state import restore_checkpoint, save_checkpoint


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

    Several processes: ``batch_size`` is the global batch; every rank draws the same order
    (same seed) and takes the items ``rank, rank + world_size, ...`` of each global batch. Before
    a checkpoint the loop puts every rank's noise-RNG state in ``rank_rng_states``; they are saved
    and restored with the sampler's own (``state``/``restore``), so a resumed multi-process run
    continues every rank's noise stream.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, device: torch.device,
                 rank: int = 0, world_size: int = 1) -> None:
        self.num_items = num_items
        self.batch_size = min(batch_size, num_items) // world_size * world_size
        if self.batch_size < 1:
            raise ConfigError(f"the dataset has {num_items} items, fewer than the {world_size} processes")
        self.batches_per_epoch = num_items // self.batch_size
        self.device = device
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self._epoch_start_state = self.generator.get_state()
        self._order: torch.Tensor | None = None
        self.rank_rng_states: list[torch.Tensor] | None = None

    def next(self) -> torch.Tensor:
        if self._order is None:
            self._epoch_start_state = self.generator.get_state()
            self._order = torch.randperm(self.num_items, generator=self.generator).to(self.device)
        start = self.position * self.batch_size
        index = self._order[start:start + self.batch_size]
        if self.world_size > 1:
            index = index[self.rank::self.world_size]
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        return index

    def state(self) -> tuple[torch.Tensor, dict[str, Any]]:
        rng = self._epoch_start_state if self._order is not None else self.generator.get_state()
        state: dict[str, Any] = {"epoch": self.epoch, "position": self.position}
        if self.rank_rng_states:
            rng = torch.cat([rng, *self.rank_rng_states])
            state["rank_rng_bytes"] = [int(r.numel()) for r in self.rank_rng_states]
        return rng, state

    def restore(self, rng: torch.Tensor, state: dict[str, Any]) -> None:
        sizes = state.get("rank_rng_bytes", [])
        own = rng.numel() - sum(sizes)
        self.rank_rng_states = list(rng[own:].split(sizes)) if sizes else None
        self.generator.set_state(rng[:own].clone())
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
    Started by ``torchrun`` with several processes, every process calls this with the same
    arguments and they train one model together (see genlab.distributed).
    """
    config = config or TrainConfig()
    if tuple(dataset.image_shape) != tuple(model.image_shape):
        raise ConfigError(
            f"dataset {dataset.name!r} has items of shape {dataset.image_shape} but the model expects "
            f"{tuple(model.image_shape)}; build the model with image_shape={dataset.image_shape} or resize the data"
        )
    run_dir = Path(config.out_dir)
    dist, device = setup_distributed(resolve_device(config.device))
    if config.batch_size % dist.world_size:
        raise ConfigError(f"batch_size {config.batch_size} is the global batch and must be divisible by the "
                          f"{dist.world_size} processes")
    precision = Precision(config.precision, device)
    memory_format = torch.channels_last if config.channels_last else torch.preserve_format
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: pick the fastest conv algorithms once
    model.to(device=device, memory_format=memory_format).train()
    optimizers = model.make_optimizers(config)
    phases = model.training_phases()
    for phase in phases:
        if phase.optimizer not in optimizers:
            raise ValueError(f"phase {phase.name!r} names optimizer {phase.optimizer!r}, not one of {list(optimizers)}")
    ema = EMA(model, config.ema_decay) if config.ema_decay else None
    sampler = BatchSampler(len(dataset), config.batch_size, config.seed, device, dist.rank, dist.world_size)
    if dist.is_main:
        _warn_if_ema_outlasts_the_run(config, sampler)
    state = {"step": 0, "elapsed": 0.0, "recoveries": 0}
    if resume:
        _check_resumable(run_dir, model, dataset)
        state.update(restore_checkpoint(run_dir, model, optimizers, ema, sampler))
        _restore_rank_rng(sampler, dist, device, config.seed, int(state["step"]))
        _match_layouts(model, optimizers, ema)
    else:
        if (run_dir / STATE_FILE).exists():
            raise CheckpointError(f"{run_dir} already holds a run; resume it (--resume) or choose another output folder")
        dist.barrier()  # every rank has looked before rank 0 writes
        dist.broadcast_module(model)  # the same initial weights everywhere
        torch.manual_seed(_noise_seed(config.seed, dist.rank))
        if dist.is_main:
            write_config(run_dir, model, config, dataset.info())
    step = int(state["step"])
    log = MetricsLog(run_dir, resume_step=step if resume else None, tensorboard=config.tensorboard) if dist.is_main else _NoLog()
    if config.compile:
        _compile_children(model)

    images = dataset.images.to(device)
    labels = None if dataset.labels is None else dataset.labels.to(device)
    parameters = {name: [p for group in opt.param_groups for p in group["params"]] for name, opt in optimizers.items()}
    running, stop = RunningMeans(), _StopRequest()
    alarm = DiversityAlarm(dataset, config.diversity_alarm) if config.num_sample_images and dist.is_main else None
    started = time.perf_counter()
    bar = tqdm(total=config.epochs * sampler.batches_per_epoch, initial=sampler.epoch * sampler.batches_per_epoch + sampler.position,
               unit="batch", disable=not (config.progress and dist.is_main), dynamic_ncols=True, desc=f"{model.kind} → {run_dir}",
               mininterval=0.1 if sys.stderr.isatty() else 10.0)  # a log file gets a line every 10 s, not a flood

    def elapsed() -> float:
        return float(state["elapsed"]) + time.perf_counter() - started

    def out_of_time() -> bool:
        return config.max_seconds is not None and elapsed() >= config.max_seconds

    def save() -> bool:
        """Checkpoint unless something went non-finite since the last one (then recover instead)."""
        nonlocal step
        if not dist.every_rank(running.all_finite() & parameters_finite(model)):
            step = _recover(f"non-finite loss or weights before the checkpoint of step {step}")
            return False
        dist.average_buffers(model, *([ema.shadow] if ema is not None else []))
        if dist.enabled:
            sampler.rank_rng_states = dist.gather_bytes(_rng_bytes(device))
        if dist.is_main:
            save_checkpoint(run_dir, model, optimizers, ema, sampler,
                            {"step": step, "elapsed": elapsed(), "recoveries": state["recoveries"]})
        dist.barrier()  # the checkpoint is complete before any rank may read it
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
        _restore_rank_rng(sampler, dist, device, config.seed, int(restored["step"]))
        _match_layouts(model, optimizers, ema)
        state["recoveries"] += 1
        schedule.scale(config.recovery_lr_factor)
        running.clear()
        log.truncate_after(int(restored["step"]))
        message = (f"step {step}: {reason}; restored the checkpoint of step {restored['step']} and multiplied the "
                   f"learning rates by {config.recovery_lr_factor} (recovery {state['recoveries']} of {config.max_recoveries})")
        if dist.is_main:
            tqdm.write(message, file=sys.stderr)
            with (run_dir / "events.log").open("a") as events:
                events.write(message + "\n")
        bar.n = sampler.epoch * sampler.batches_per_epoch + sampler.position
        return int(restored["step"])

    schedule = LRSchedule(config, optimizers, sampler)
    if not resume:
        save()  # step 0: there is always a good checkpoint to return to
    (time_up,) = dist.any_rank(out_of_time())
    with stop.installed():
        while (sampler.epoch < config.epochs and (config.max_steps is None or step < config.max_steps)
               and not time_up):
            epoch_before, batches_before = sampler.epoch, sampler.epoch * sampler.batches_per_epoch + sampler.position
            schedule.apply(step, elapsed())
            _run_phases(phases, step, optimizers, parameters, sampler, images, labels, precision, memory_format,
                        running, dist)
            step += 1
            if ema is not None:
                ema.update(model)
            # Ranks must agree on when to stop (Ctrl-C and the clock reach them at different steps).
            stop.requested, time_up = dist.any_rank(stop.requested, out_of_time())
            bar.update(max(0, sampler.epoch * sampler.batches_per_epoch + sampler.position - batches_before))
            epoch_done = sampler.epoch > epoch_before
            if epoch_done and config.num_sample_images:
                dist.average_buffers(model, *([ema.shadow] if ema is not None else []))
                ratio = _sample_and_watch(model, ema, config, alarm, sampler.epoch, run_dir, dataset) if dist.is_main else None
                running.add("monitor", {"diversity": _from_main(ratio, dist)})  # logged with the next row
            if step % config.log_every == 0:
                means = _pop_means(running, dist)
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
        means = _pop_means(running, dist)
        if all(math.isfinite(v) for v in means.values()):
            _log(log, means, bar, step, sampler, elapsed())
    if state.get("saved_step") != step:
        save()
    log.close()
    if dist.is_main:
        _plot_curves(model, run_dir)
    if config.compile:
        _compile_children(model, undo=True)
    if memory_format is torch.channels_last:
        model.to(memory_format=torch.contiguous_format)  # callers get ordinary tensors back from the model
    if stop.requested:
        raise KeyboardInterrupt(f"training interrupted at step {step}; checkpoint saved in {run_dir} (continue with --resume)")
    if ema is not None:
        model.load_state_dict(ema.state_dict(model))
    return model.eval()


class Precision:
    """Mixed precision: autocast to bf16/fp16 for forward passes; fp16 also scales the loss.

    fp16 has a narrow range, so its gradients are computed for loss × S and unscaled before the
    step; steps whose gradients overflow are skipped and S shrinks (torch.amp.GradScaler;
    Micikevicius et al. 2018, "Mixed Precision Training", §3.2). Weights and optimizer state stay fp32.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        if name == "fp16" and device.type != "cuda":
            raise ConfigError(f"precision 'fp16' needs a CUDA device (this run is on {device.type}); use 'bf16' or 'fp32'")
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name)
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> Any:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)  # skipped when the unscaled gradients hold Inf/NaN
            self.scaler.update()


class _NoLog:
    """The metrics log of ranks other than 0: they compute everything and write nothing."""

    def write(self, row: dict[str, Any]) -> None:
        pass

    def truncate_after(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def _noise_seed(seed: int, rank: int, step: int = 0) -> int:
    """Seed of a rank's noise RNG: rank 0 (and a single process) uses ``seed`` itself."""
    return seed + 1_000_003 * rank + 7_919 * step


def _rng_bytes(device: torch.device) -> torch.Tensor:
    """This process's noise RNG state(s) as one uint8 vector: the CPU generator, then the GPU's."""
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return torch.cat(states)


def _restore_rank_rng(sampler: BatchSampler, dist: Distributed, device: torch.device, seed: int, step: int) -> None:
    """After a checkpoint is restored: this rank's own noise RNG from it, or a fresh per-rank seed
    when the checkpoint holds none for this many processes (written by a run of another size)."""
    if not dist.enabled:
        return
    saved = sampler.rank_rng_states
    if saved and len(saved) == dist.world_size:
        mine = saved[dist.rank]
        cpu_bytes = torch.get_rng_state().numel()
        torch.set_rng_state(mine[:cpu_bytes].clone())
        if device.type == "cuda" and mine.numel() > cpu_bytes:
            torch.cuda.set_rng_state(mine[cpu_bytes:].clone(), device)
    else:
        torch.manual_seed(_noise_seed(seed, dist.rank, step))


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


def _from_main(value: torch.Tensor | None, dist: Distributed) -> torch.Tensor:
    """Rank 0's 0-dim float ``value`` on every rank (others pass None)."""
    if not dist.enabled:
        return value  # type: ignore[return-value]
    value = torch.zeros((), device=dist.collective_device) if value is None else value.float().to(dist.collective_device)
    dist.broadcast_([value])
    return value


def _pop_means(running: RunningMeans, dist: Distributed) -> dict[str, float]:
    """The running means, averaged over the ranks (every rank gets the same numbers, so every rank
    takes the same decision on them, e.g. the divergence guard's)."""
    if dist.enabled and running.sums:
        names = list(running.sums)  # the same order everywhere: phases add in the same order
        stacked = torch.stack([running.sums[name].to(dist.collective_device) for name in names])
        dist.average_([stacked])
        running.sums = dict(zip(names, stacked.unbind()))
    return running.pop()


def _compile_children(model: torch.nn.Module, *, undo: bool = False) -> None:
    """torch.compile each sub-network in place (state-dict names unchanged), or undo it.

    Whole sub-networks, not the phases' loss functions: a GAN hands G's graph from D's phase to
    G's, which one compiled autograd function per phase could not backpropagate twice.
    """
    for child in model.children():
        if undo:
            child._compiled_call_impl = None  # what nn.Module.compile set; the plain forward again
        else:
            child.compile()


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
                labels: torch.Tensor | None, precision: Precision, memory_format: torch.memory_format,
                running: RunningMeans, dist: Distributed) -> None:
    batch: tuple[torch.Tensor, torch.Tensor | None] | None = None
    for phase in phases:
        if step % phase.every:
            continue
        optimizer = optimizers[phase.optimizer]
        for _ in range(phase.repeats):
            if phase.new_batch or batch is None:
                index = sampler.next()
                x = Dataset.to_float(images[index])
                if x.dim() == 4 and memory_format is torch.channels_last:
                    x = x.contiguous(memory_format=memory_format)
                batch = (x, None if labels is None else labels[index])
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                losses = phase.loss(*batch)
            precision.backward(losses["loss"])
            dist.average_gradients(parameters[phase.optimizer])  # the data-parallel step (no-op in one process)
            precision.unscale_(optimizer)
            norm = gradient_norm(parameters[phase.optimizer])
            if precision.scaler is not None:
                # An overflowing fp16 step is skipped by design, not a divergence: log how often it happens.
                finite = torch.isfinite(norm)
                losses = {**losses, "amp_skipped": (~finite).float()}
                norm = torch.where(finite, norm, torch.zeros_like(norm))
            losses = {**losses, "grad_norm": norm}
            precision.step(optimizer)
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
                      epoch: int, run_dir: Path, dataset: Dataset) -> torch.Tensor:
    """After each epoch: the fixed-noise sample picture, and the mode-collapse alarm on those
    samples; returns the diversity ratio (logged with the next row)."""
    with ema.applied(model) if ema is not None else contextlib.nullcontext():
        model.eval()
        columns = model.grid_columns  # e.g. one per class: a whole number of rows
        n = max(columns, config.num_sample_images // columns * columns) if columns else config.num_sample_images
        samples = model.preview(n, seed=config.seed, dataset=dataset).contiguous()  # the same noise every epoch
        model.train()
    write_sample_picture(samples, run_dir / "samples" / f"epoch_{epoch:03d}", dataset.name, nrow=columns)
    ratio = alarm.ratio(samples)
    if ratio.item() < alarm.threshold:
        tqdm.write(f"epoch {epoch}: possible mode collapse: samples are {ratio.item():.2f}× as diverse as the data "
                   f"(alarm below {alarm.threshold}); see {run_dir / 'samples'}", file=sys.stderr)
    return ratio


def _plot_curves(model: GenerativeModel, run_dir: Path) -> None:
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
