"""What several commands share: the help format, option types, options built from the config dataclasses,
the data and inversion option groups, and class labels given by name or index."""
from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin

from genlab.data import Dataset, load_dataset
from genlab.errors import ConfigError, DataError
from genlab.io.checkpoints import read_run_config
from genlab.tools.editing import class_index, num_classes, repeat_to

# Metavars where the field's name says more than its type does; the rest: W (…_weight), N (int), X (float), TEXT (str).
METAVARS = {"betas": "B1,B2", "judge": "DIR", "diffaugment": "POLICY", "device": "DEVICE", "ema_decay": "DECAY",
            "lr_decay_start": "F", "log_every": "STEPS", "checkpoint_every": "STEPS", "out_dir": "RUN_DIR",
            "content_block": "K", "r1_every": "K", "r1_gamma": "G", "gp_weight": "L", "beta": "B", "gaussian_sigma": "S",
            "lr": "LR", "lr_g": "LR", "lr_d": "LR", "max_seconds": "S", "recovery_lr_factor": "F", "diversity_alarm": "F"}
SIMPLE_METAVARS = {int: "N", float: "X", str: "TEXT"}
IMAGE_SIZES = (4, 512)  # --image-size: a 60,000-image set at 512×512 is already 15 GB of pixels
MAX_PROJECTION_STEPS = 10000


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's range (for the types of ``bounded_int``/``bounded_float``) and default (a tuple
    as 32,64), except the uninformative None and False and where the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        allowed = getattr(action.type, "range_text", None)
        if allowed and allowed not in text:
            text += f" (range {allowed})"
        default = action.default
        if isinstance(action, argparse.BooleanOptionalAction):  # --x/--no-x: on or off, not True or False
            return text.replace(" (default: %(default)s)", "") + f" (default: {'on' if default else 'off'})"
        if (action.option_strings and default not in (None, "", argparse.SUPPRESS) and default is not False
                and "%(default)" not in text and "default:" not in text):
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else "%(default)s"
            text += f" (default: {shown})"
        return text.strip()


def subparser(**kwargs: Any) -> argparse.ArgumentParser:
    """The parser class of every sub-command (so each shows its defaults)."""
    return argparse.ArgumentParser(**{"formatter_class": HelpFormatter, **kwargs})


# ----------------------------------------------------------------------------- option types

MAX_SEED = 2**32 - 1  # seeds: what every RNG genlab's seeds reach accepts (torch takes up to 2**64 - 1)
MAX_INDEX = 2**31 - 1  # image indices: checked against the dataset's size once it is loaded


def bounded_int(low: int, high: int):
    """An argparse type: an integer in ``low..high`` (both included), else
    ``argument -n: expected an integer in 1..10000, got -3``. Its range shows in --help (HelpFormatter)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {text.strip()}")
        return value

    parse.range_text = f"{low}..{high}"  # type: ignore[attr-defined]
    parse.__name__ = "integer"
    return parse


def bounded_float(low: float, high: float, *, low_open: bool = False):
    """An argparse type: a finite number in ``low..high`` (``low`` excluded with ``low_open``), else
    ``argument --lr: expected a number > 0 and <= 1, got 5``."""
    allowed = f"> {low:g} and <= {high:g}" if low_open else f"{low:g}..{high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        if not (value > low if low_open else value >= low) or not value <= high:  # NaN fails both
            raise argparse.ArgumentTypeError(f"expected a number {'in ' if not low_open else ''}{allowed}, got {text.strip()}")
        return value

    parse.range_text = allowed  # type: ignore[attr-defined]
    parse.__name__ = "number"
    return parse


def seed_type():
    """--seed: 0..2**32 − 1."""
    return bounded_int(0, MAX_SEED)


def add_seed_option(parser: Any, what: str) -> None:
    """--seed, the same range for every command."""
    parser.add_argument("--seed", type=seed_type(), default=0, help=what)


def comma_separated(item: type, count: int | None = None, example: str = "32,64"):
    """An argparse type: ``"32,64"`` → (32, 64), with ``count`` items when given."""
    kind = "integers" if item is int else "numbers"

    def parse(text: str) -> tuple:
        try:
            values = tuple(item(part) for part in text.split(","))
        except ValueError:
            values = ()
        if not values or (count is not None and len(values) != count):
            amount = f"{count} " if count is not None else ""
            raise argparse.ArgumentTypeError(f"expected {amount}comma-separated {kind} like {example}, got {text!r}")
        return values

    return parse


def _or_none(parse: Any) -> Any:
    """An argparse type that reads "none" as None and anything else with ``parse``."""

    def wrapped(text: str) -> Any:
        return None if text.strip().lower() == "none" else parse(text)

    wrapped.__name__ = getattr(parse, "__name__", "value")
    if hasattr(parse, "range_text"):
        wrapped.range_text = parse.range_text  # type: ignore[attr-defined]
    return wrapped


def _argument(annotation: Any, default: Any, name: str) -> dict[str, Any]:
    """argparse keywords for a field of type ``annotation``: type, choices, action, metavar."""
    if get_origin(annotation) in (typing.Union, types.UnionType):  # X | None: an option that may stay unset
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"{name}: no command-line option for the type {annotation}")
        keywords = _argument(inner[0], default, name)
        if inner[0] in SIMPLE_METAVARS:  # "none" unsets it where a command's default sets it (e.g. --ema none)
            keywords["type"] = _or_none(keywords["type"])
        return keywords
    if annotation is bool:  # --x turns on a default-off switch; --no-x turns off a default-on one
        return {"action": argparse.BooleanOptionalAction if default else "store_true"}
    if get_origin(annotation) is Literal:
        choices = list(get_args(annotation))
        return {"type": type(choices[0]), "choices": choices}
    if get_origin(annotation) is tuple:
        items = get_args(annotation)
        variable = len(items) == 2 and items[1] is Ellipsis
        item = items[0]
        if item not in (int, float) or not (variable or all(each is item for each in items)):
            raise TypeError(f"{name}: no command-line option for the type {annotation}")
        count = None if variable else len(items)
        example = (",".join(map(str, default)) if isinstance(default, tuple)
                   else ",".join(["0.5", "0.999"][:count]) if item is float and count else "32,64")
        metavar = METAVARS.get(name) or ("W,W" if variable else ",".join(["X"] * count))
        return {"type": comma_separated(item, count, example), "metavar": metavar}
    if annotation in SIMPLE_METAVARS:
        simple = "W" if name.endswith("_weight") else SIMPLE_METAVARS[annotation]
        return {"type": annotation, "metavar": METAVARS.get(name, simple)}
    raise TypeError(f"{name}: no command-line option for the type {annotation}")


def add_config_options(group: Any, cls: type, *, skip: Sequence[str] = (), flags: dict[str, list[str]] | None = None,
                       defaults: dict[str, Any] | None = None, helps: dict[str, str] | None = None,
                       required: Sequence[str] = ()) -> list[str]:
    """One option per field of config dataclass ``cls`` (except ``skip``), named --field-name (or ``flags``),
    typed, with the field's default (or ``defaults``) and the help text the field carries (or ``helps``).
    Returns the field names added; ``config_values`` reads them back."""
    hints = typing.get_type_hints(cls)
    added = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in skip:
            continue
        default = (defaults or {}).get(field.name, field.default)
        if default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: a field without a default needs a CLI default or a skip")
        text = (helps or {}).get(field.name) or field.metadata.get("help", "")
        names = (flags or {}).get(field.name) or [f"--{field.name.replace('_', '-')}"]
        extra = {"required": True} if field.name in required else {"default": default}
        group.add_argument(*names, dest=field.name, help=text.replace("%", "%%"), **extra,
                           **_argument(hints[field.name], default, field.name))
        added.append(field.name)
    return added


def config_values(cls: type, args: argparse.Namespace, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The parsed values of the options ``add_config_options`` made for ``cls`` (with the same ``skip``), by field name."""
    names = {field.name for field in dataclasses.fields(cls)} - set(skip)  # type: ignore[arg-type]
    return {name: value for name, value in vars(args).items() if name in names}


# ----------------------------------------------------------------------------- option groups


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The training data of `genlab train ...`."""
    data = parser.add_argument_group("data")
    data.add_argument("--data", default="fashion-mnist", help="dataset name (see `genlab data list`), image folder or .npz")
    data.add_argument("--split", default="train", help="which split of a named dataset")
    data.add_argument("--image-size", type=bounded_int(*IMAGE_SIZES), default=None, metavar="N", help="resize images to N×N")


def add_image_source(parser: argparse.ArgumentParser) -> None:
    """Where a command that uses a trained run takes its images from."""
    parser.add_argument("--data", default=None, help="dataset to take images from (default: the run's own dataset)")
    parser.add_argument("--split", default="test", help="which split of a named dataset")


def add_reference_options(parser: argparse.ArgumentParser) -> None:
    """The real data (and the feature space) evaluate and compare measure against."""
    parser.add_argument("--data", required=True, help="the real data to measure against (name, folder or .npz)")
    parser.add_argument("--split", default="test", help="which split of a named dataset")
    parser.add_argument("--judge", default=None, metavar="DIR",
                        help="judge run from `genlab judge train` (default: the shipped one, 1×28×28 Fashion-MNIST only)")
    parser.add_argument("--features", choices=["judge", "inception"], default="judge",
                        help="feature space of fid/kid/prdc/smoothness; inception needs torch-fidelity and its weights")


def add_inversion_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inversion (GAN runs)")
    group.add_argument("--encoder", default=None, metavar="RUN",
                       help="a GAN-encoder run (`genlab train encoder`) to start the projector from")
    group.add_argument("--projection-steps", type=bounded_int(0, MAX_PROJECTION_STEPS), default=None, metavar="N",
                       help="projector steps per image (default: 200 from the prior mean, 100 from --encoder; VAEs: 0)")


def add_labels_option(parser: Any, what: str) -> None:
    """--labels, the same for every command that takes classes: names or indices, parsed by ``parse_labels``."""
    parser.add_argument("--labels", default=None, metavar="C,C",
                        help="classes of a class-conditional GAN or VAE, by index or by the run's class names (e.g. 7 or "
                             f"Sneaker,'Ankle boot'); {what}")


# ----------------------------------------------------------------------------- classes and images


def run_classes(run: str) -> tuple[str, ...]:
    """The class names of the data a run was trained on (stored in its config.json), or () where it had none."""
    return tuple(read_run_config(run).get("dataset", {}).get("classes") or ())


def parse_labels(text: str, classes: Sequence[str], option: str = "--labels") -> list[int]:
    """``"Sneaker,ankle-boot,7"`` → class indices, by name (case, hyphens and spaces do not count) or by index.
    With no class names known, only indices are accepted (unchecked: the model checks its own range)."""
    parts = [part.strip().strip("'\"") for part in text.split(",")]
    if not all(parts):
        raise ConfigError(f"{option} {text!r}: expected comma-separated class names or indices, e.g. 0,7 or Sneaker,'Ankle boot'")
    if not classes:
        names = [part for part in parts if not part.isdigit()]
        if names:
            raise ConfigError(f"{option} {names[0]!r}: the run stores no class names (its data had none); give class indices like 0,1,2")
        return [int(part) for part in parts]
    return [class_index(part, classes, what=f"{option} class") for part in parts]


def labels_for(args: argparse.Namespace, model: Any, n: int | None, *, at_most: int | None = None) -> list[int] | None:
    """``--labels`` as ``n`` class indices (repeated in order; as given where ``n`` is None), or None where not
    given; a ConfigError for a model that takes no labels, or for more than ``at_most`` classes."""
    if args.labels is None:
        return None
    labels = parse_labels(args.labels, run_classes(args.run))
    if at_most is not None and len(labels) > at_most:
        raise ConfigError(f"--labels {args.labels!r}: give at most {at_most} classes, got {len(labels)}")
    if not num_classes(model):
        raise ConfigError(f"--labels: this {model.kind} model does not take labels (it is not class-conditional); leave --labels out")
    return labels if n is None else repeat_to(labels, n).tolist()


def require_labels(model: Any, labels: Any, what: str) -> None:
    """A class-conditional GAN cannot project images of unknown class: say which option gives them."""
    if num_classes(model) and labels is None:
        raise ConfigError(f"this GAN is class-conditional: pass --labels with the class of {what} "
                          "(names or indices, e.g. --labels Sneaker or --labels 7)")


def first_n(n: int | None, dataset: Dataset, split: str, default: int = 16) -> int:
    """How many of the first images of ``dataset`` -n takes: ``n`` (a DataError where the dataset holds fewer),
    or by default ``default`` or all of fewer."""
    if n is None:
        return min(default, len(dataset))
    if n > len(dataset):
        raise DataError(f"-n {n}: {dataset.name!r} ({split}) holds only {len(dataset)} images; use -n {len(dataset)} or fewer")
    return n


def images_for(args: argparse.Namespace) -> Dataset:
    """The dataset a command takes its images from: --data, or the run's own."""
    name = args.data or read_run_config(args.run).get("dataset", {}).get("name")
    try:
        return load_dataset(name, split=args.split)
    except DataError as error:
        if args.data:
            raise
        raise DataError(f"cannot load the run's dataset {name!r} ({error}); pass --data NAME_OR_PATH") from None
