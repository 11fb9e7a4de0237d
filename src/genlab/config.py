"""Configs are dataclasses: typed, validated on construction, saved as JSON next to every checkpoint."""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin

from genlab.errors import ConfigError

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (tuples become lists)."""
    return _jsonable(dataclasses.asdict(config))


def config_from_dict(cls: type[C], values: dict[str, Any], *, where: str = "config") -> C:
    """Build ``cls`` from a dict (e.g. read from config.json), with clear errors for unknown keys.

    Lists become tuples where the field is a tuple, so a config survives a JSON round trip unchanged.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; expected some of {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value) for name, value in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as error:  # e.g. a required field missing
        raise ConfigError(f"{where}: {error}") from None


def check_choice(option: str, value: Any, annotation: Any) -> None:
    """Raise ConfigError unless ``value`` is one of the ``Literal`` choices in ``annotation``."""
    choices = get_args(annotation)
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_positive(option: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{option} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def documented(default: Any, help: str) -> Any:
    """A config field with its help text: one line, shown by ``genlab train ... --help`` (the CLI builds its
    options from the config dataclasses) and read here. A comment beside a field says why; the help says what."""
    return field(default=default, metadata={"help": help})


Precision = Literal["fp32", "bf16", "fp16"]
LRSchedule = Literal["constant", "linear", "cosine"]


@dataclass
class TrainConfig:
    """How to train (the same for every model; what to optimise lives in the model's own config)."""

    epochs: int = documented(10, "passes over the data (the total, also when resuming)")
    batch_size: int = documented(128, "items per step (the global batch under torchrun)")
    lr: float = documented(1e-3, "Adam learning rate; a model may use its own rates instead (a GAN: lr_g and lr_d)")
    seed: int = documented(0, "weight init, data order, noise")
    out_dir: str = documented("runs/run", "run directory (checkpoints, samples, metrics)")
    device: str = documented("auto", "auto (cuda when available, else cpu), cpu, cuda or cuda:N")
    precision: Precision = documented("fp32", "bf16/fp16: forward passes under autocast (fp16: CUDA only, with loss scaling; "
                                              "bf16 pays only on CPUs/GPUs with bf16 units)")
    channels_last: bool = documented(True, "NHWC memory format for 4-D weights and images (oneDNN/cuDNN conv kernels)")
    compile: bool = documented(False, "torch.compile each sub-network (on a 2-core CPU: 12–27 s to compile, then no faster "
                                      "than channels-last eager; see the README)")
    ema_decay: float | None = documented(None, "keep an exponential moving average of the weights with this decay "
                                               "(e.g. 0.999), used for sampling and saving")
    lr_schedule: LRSchedule = documented("constant", "linear/cosine: anneal every optimizer's rate to 0 by the end of the run")
    lr_decay_start: float = documented(0.0, "fraction of the run after which the annealing begins (0: from the start)")
    log_every: int = documented(50, "steps between metric rows (and the only host syncs of the loop)")
    checkpoint_every: int = documented(0, "steps between checkpoints (0: at the end of each epoch only)")
    num_sample_images: int = documented(64, "images in the fixed-noise grid written after each epoch (0: none)")
    max_steps: int | None = documented(None, "stop after this many steps (smoke tests; --dry-run is 2)")
    max_seconds: float | None = documented(None, "stop after this many seconds of training (wall clock, summed over resumes)")
    max_recoveries: int = documented(3, "divergence guard: a NaN/Inf loss restores the last checkpoint, this many times at most")
    recovery_lr_factor: float = documented(0.5, "divergence guard: each recovery multiplies the learning rates by this")
    diversity_alarm: float = documented(0.3, "warn when samples are less diverse than this fraction of the data")
    progress: bool = documented(True, "a progress bar")
    tensorboard: bool = documented(True, "also write TensorBoard scalars when tensorboard is installed")
    plots: bool = documented(True, "draw loss.png (and monitor.png) from metrics.csv when the run ends")  # 1–3 s a run

    def __post_init__(self) -> None:
        check_positive("epochs", self.epochs)
        check_positive("batch_size", self.batch_size)
        check_positive("lr", self.lr)
        check_positive("log_every", self.log_every)
        check_positive("checkpoint_every", self.checkpoint_every, allow_zero=True)
        check_positive("num_sample_images", self.num_sample_images, allow_zero=True)
        check_choice("precision", self.precision, Precision)
        check_choice("lr_schedule", self.lr_schedule, LRSchedule)
        if not 0.0 <= self.lr_decay_start < 1.0:
            raise ConfigError(f"lr_decay_start must be in [0, 1), got {self.lr_decay_start!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in (0, 1), got {self.ema_decay!r}")
        check_positive("max_recoveries", self.max_recoveries, allow_zero=True)
        if not 0.0 < self.recovery_lr_factor <= 1.0:
            raise ConfigError(f"recovery_lr_factor must be in (0, 1], got {self.recovery_lr_factor!r}")
        check_positive("diversity_alarm", self.diversity_alarm, allow_zero=True)
        if self.max_steps is not None:
            check_positive("max_steps", self.max_steps)
        if self.max_seconds is not None:
            check_positive("max_seconds", self.max_seconds)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _coerce(annotation: Any, value: Any) -> Any:
    """Turn JSON lists back into tuples where the annotation asks for a tuple."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None) and get_origin(arg) is tuple and isinstance(value, list):
                return tuple(value)
        return value
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value
