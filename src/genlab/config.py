"""Configs are dataclasses: typed, validated on construction, saved as JSON next to every checkpoint."""
from __future__ import annotations

import dataclasses
import math
import numbers
import reprlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin

from genlab.errors import ConfigError

C = TypeVar("C")

# Bounds on the sizes a config may ask for, so that a config.json of a few bytes cannot make genlab allocate
# gigabytes before a weight is read. Generous for what genlab trains (28–64-pixel images, widths of a few hundred).
MAX_LATENT_DIM = 4096
MAX_WIDTH = 4096  # channels of a conv, units of a fully connected layer
MAX_IMAGE_SIDE = 1024  # height or width of the images a model is built for
MAX_POINT_DIM = 4096  # dimensions of point data (image_shape=(D,))
MAX_LAYERS = 16  # entries of a list of conv widths (each halves the resolution)
MAX_BLOCKS = 64  # residual blocks, convs per block
MAX_CLASSES = 100_000
MAX_WEIGHTS = 1 << 28  # weights of one model, estimated from its config: 268,435,456 (1 GiB of float32)
MAX_BATCH_SIZE = 1 << 16
MAX_SAMPLE_IMAGES = 4096
MAX_SEED = 2**32 - 1  # what every RNG here takes (torch.manual_seed fails past 2**64; NumPy's legacy seeds past 2**32)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (tuples become lists)."""
    return _jsonable(dataclasses.asdict(config))


def config_from_dict(cls: type[C], values: dict[str, Any], *, where: str = "config", saved: bool = False) -> C:
    """Build ``cls`` from a dict (e.g. read from config.json), with clear errors for unknown keys.

    ``saved``: the dict was written by an earlier genlab (a run's config.json, which holds every field
    there was). A field it lacks was added since; where the field's default would change what the saved
    model is, ``cls.SAVED_BEFORE`` names the value that reproduces it (e.g. GANConfig: label_inputs False).

    Lists become tuples where the field is a tuple, so a config survives a JSON round trip unchanged.
    Every value is checked against its field's type first (a string where a number belongs, NaN, a list
    of the wrong length), so a hand-edited or tampered config.json fails with one ConfigError naming
    ``where`` and the option, never a TypeError from deep inside a model.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a JSON object of options, got {_short(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(name) if str(name).isprintable() else _short(name) for name in set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; expected some of {', '.join(fields)}")
    if saved:
        values = {**{name: value for name, value in getattr(cls, "SAVED_BEFORE", {}).items() if name not in values}, **values}
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, name, where) for name, value in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(f"{where}:") else f"{where}: {message}") from None
    except (TypeError, ValueError, OverflowError) as error:  # e.g. a required field missing
        raise ConfigError(f"{where}: {error}") from None


def check_choice(option: str, value: Any, annotation: Any) -> None:
    """Raise ConfigError unless ``value`` is one of the ``Literal`` choices in ``annotation``."""
    choices = get_args(annotation)
    if not isinstance(value, str | int | float | bool | None) or value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(map(repr, choices))}, got {_short(value)}")


def check_positive(option: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a finite number > 0 (>= 0 with ``allow_zero``); NaN and ±inf fail."""
    check_finite(option, value)
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{option} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def check_finite(option: str, value: float) -> None:
    """Raise ConfigError unless ``value`` is a real number other than NaN and ±inf."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{option} must be a number, got {_short(value)}")
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value!r}")


def check_size(option: str, value: int, maximum: int, *, minimum: int = 1) -> None:
    """Raise ConfigError unless ``value`` is an integer in [minimum, maximum] (a size: widths, dims, counts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{option} must be an integer, got {_short(value)}")
    if value < minimum:
        raise ConfigError(f"{option} must be >= {minimum}, got {value}")
    if value > maximum:
        raise ConfigError(f"{option} must be at most {maximum:,} (genlab's bound), got {value:,}")


def check_widths(option: str, widths: Any, maximum: int = MAX_WIDTH) -> tuple[int, ...]:
    """``widths`` as a tuple of 1 to MAX_LAYERS integers in [1, maximum], or a ConfigError."""
    if not isinstance(widths, tuple | list) or not 1 <= len(widths) <= MAX_LAYERS:
        raise ConfigError(f"{option} must be a non-empty list of at most {MAX_LAYERS} positive widths, got {_short(widths)}")
    for width in widths:
        check_size(f"each of {option}", width, maximum)
    return tuple(widths)


def check_image_shape(option: str, shape: Any, *, points: bool = False) -> tuple[int, ...]:
    """``shape`` as a tuple: (C, H, W) with C = 1 or 3 and sides in [1, MAX_IMAGE_SIDE] (or, with ``points``,
    also (D,) with D in [1, MAX_POINT_DIM]), or a ConfigError."""
    expected = "(channels, height, width) with 1 or 3 channels" + (", or (dim,) for points" if points else "")
    if not isinstance(shape, tuple | list) or len(shape) not in ((1, 3) if points else (3,)):
        raise ConfigError(f"{option} must be {expected}, got {_short(shape)}")
    if len(shape) == 1:
        check_size(f"{option} dim", shape[0], MAX_POINT_DIM)
        return tuple(shape)
    for side in shape:
        if isinstance(side, bool) or not isinstance(side, numbers.Integral):
            raise ConfigError(f"{option} must be {expected}, got {_short(shape)}")
    if shape[0] not in (1, 3):
        raise ConfigError(f"{option} must be {expected}, got {tuple(shape)}")
    check_size(f"{option} height", shape[1], MAX_IMAGE_SIDE)
    check_size(f"{option} width", shape[2], MAX_IMAGE_SIDE)
    return tuple(shape)


def check_weights(what: str, count: int) -> None:
    """Raise ConfigError if a model would hold more than MAX_WEIGHTS weights (``count``, estimated from its config)."""
    if count > MAX_WEIGHTS:
        raise ConfigError(f"{what}: these sizes make about {count:,} weights, more than genlab's bound of {MAX_WEIGHTS:,} "
                          f"({MAX_WEIGHTS * 4 >> 30} GiB of float32); use smaller widths, latent_dim or images")


def documented(default: Any, help: str) -> Any:
    """A config field with its help text: one line, shown by ``genlab train ... --help`` (the CLI builds its
    options from the config dataclasses) and read here. A comment beside a field says why; the help says what."""
    return field(default=default, metadata={"help": help})


Precision = Literal["auto", "fp32", "bf16", "fp16"]
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
    precision: Precision = documented("auto", "auto: bf16 where the CPU/GPU multiplies bf16 natively (AMX, AVX-512 BF16, "
                                              "Ampere+), else fp32; bf16/fp16: forward passes under autocast (fp16: CUDA "
                                              "only, with loss scaling)")
    channels_last: bool = documented(True, "NHWC memory format for 4-D weights and images (oneDNN/cuDNN conv kernels)")
    compile: bool = documented(False, "torch.compile each sub-network (on a 2-core CPU: 12–27 s to compile, then no faster "
                                      "than channels-last eager; see the README)")
    ema_decay: float | None = documented(None, "keep an exponential moving average of the weights with this decay "
                                               "(e.g. 0.999), used for sampling and saving; none: off")
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
        check_size("batch_size", self.batch_size, MAX_BATCH_SIZE)
        check_size("seed", self.seed, MAX_SEED, minimum=0)
        check_positive("lr", self.lr)
        check_positive("log_every", self.log_every)
        check_positive("checkpoint_every", self.checkpoint_every, allow_zero=True)
        check_size("num_sample_images", self.num_sample_images, MAX_SAMPLE_IMAGES, minimum=0)
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


def _coerce(annotation: Any, value: Any, option: str, where: str) -> Any:
    """``value`` checked against the field's type (a ConfigError naming ``where`` and ``option`` if it does not
    fit), with JSON lists turned back into tuples where the annotation asks for a tuple."""
    fits, coerced = _match(annotation, value)
    if not fits:
        raise ConfigError(f"{where}: {option} must be {_describe(annotation)}, got {_short(value)}")
    return coerced


def _match(annotation: Any, value: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits ``annotation``, the value with lists made tuples where asked for)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            fits, coerced = _match(arg, value)
            if fits:
                return True, coerced
        return False, value
    if origin is Literal:
        return any(type(value) is type(choice) and value == choice for choice in args), value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False, value
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            return False, value
        matched = [_match(item, element) for item, element in zip(items, value, strict=True)]
        return all(fits for fits, _ in matched), tuple(element for _, element in matched)
    if origin is dict or annotation is dict:
        return isinstance(value, dict), value
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:  # JSON has NaN and Infinity; no option wants them
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and math.isfinite(value)), value
    if annotation is str:
        return isinstance(value, str), value
    return True, value  # Any, or a type the dataclass checks itself


def _describe(annotation: Any) -> str:
    """What a value of ``annotation`` looks like in JSON, for error messages."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({_describe(args[0])})"
        return f"a list of {len(args)} ({', '.join(_describe(arg) for arg in args)})"
    names = {type(None): "null", bool: "true or false", int: "an integer", float: "a finite number", str: "a string", dict: "an object"}
    return names.get(origin if origin is dict else annotation, getattr(annotation, "__name__", str(annotation)))


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about values read from files."""
    text = reprlib.repr(value)  # a long list or string from a file is elided, not printed whole
    return text if len(text) <= limit else text[: limit - 3] + "..."
