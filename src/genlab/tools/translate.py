"""Translate images with a pix2pix or CycleGAN run, and picture the result: input | output | target.

    from genlab.tools.translate import inputs_from_data, inputs_from_files, translation_grid
    inputs, targets = inputs_from_data(model, "fashion-mnist", split="test", n=8)   # edges made from test images
    outputs = model.translate(inputs)
    save_image(translation_grid(inputs, outputs, targets), "grid.png")

Where inputs come from:

- image files or folders (``inputs_from_files``): read with the channels the model takes, resized to its
  training size; no targets;
- a dataset (``inputs_from_data``): for a pix2pix run trained on a paired task (edges, masked, gray), the
  task makes the inputs from the images, which are then the targets; for one trained on side-by-side A|B
  files, a folder of such files gives both; for a CycleGAN, a domain spec (``fashion-mnist:sneaker``), no
  targets. Without a dataset, the run's own (its config.json) at ``split``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from genlab.data.domains import load_domain
from genlab.data.pairs import TASKS, image_files, load_side_by_side, task_inputs
from genlab.data.registry import load_dataset
from genlab.errors import ConfigError, DataError
from genlab.io.checkpoints import read_run_config
from genlab.io.grids import concat_images, make_grid
from genlab.io.images import read_image
from genlab.models.translation.common import Translator, as_channels

MAX_IMAGES = 1024  # images in one picture


def check_translator(model: object, where: str = "the run") -> Translator:
    if not isinstance(model, Translator):
        kind = getattr(model, "kind", type(model).__name__)
        raise ConfigError(f"{where} holds a {kind} run; translate needs a pix2pix or cyclegan run")
    return model


def inputs_from_files(model: Translator, paths: Sequence[str | os.PathLike[str]], direction: str = "a2b",
                      n: int | None = None) -> torch.Tensor:
    """Images from files and folders (every image directly in a folder, sorted), as float N×C×H×W in [0, 1]
    with the channels and size the model was trained on; at most ``n``."""
    check_translator(model).check_direction(direction)
    files: list[Path] = []
    for path in paths:
        path = Path(path).expanduser()
        files += image_files(path) if path.is_dir() else [path]
    if not files:
        raise DataError("no input images given: name image files or folders")
    files = files[: n or MAX_IMAGES]
    size = tuple(model.config.image_shape[1:])
    images = [read_image(file, channels=model.input_channels(direction), size=size) for file in files]
    return torch.stack(images).float() / 255.0


def inputs_from_data(model: Translator, data: str | None, run: str | os.PathLike[str] | None = None, *,
                     direction: str = "a2b", split: str = "test", n: int = 8) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` inputs from a dataset, and their targets where the run's training says what they are (else None).
    ``data`` None: the run's own data (``run`` names the run folder)."""
    model = check_translator(model)
    model.check_direction(direction)
    size = tuple(model.config.image_shape[1:])
    if model.kind == "cyclegan":
        spec = data or (model.config.domain_a if direction == "a2b" else model.config.domain_b)
        if not spec:
            raise ConfigError("the run does not record its domains: give the images (files, or --data SPEC)")
        images = load_domain(spec, split=split, image_size=size).images[:n]
        return _with_channels(images, model.input_channels(direction), spec), None
    task = model.config.task
    if data is None:
        saved = read_run_config(run).get("dataset", {}).get("name") if run is not None else None
        if not saved:
            raise ConfigError("give the images to translate (files, or --data NAME_OR_PATH)")
        data = saved
    if task == "side-by-side":
        pairs = load_side_by_side(data, size, direction=model.config.direction)
        return pairs.float_sources(slice(0, n)), pairs.float_images(slice(0, n))
    if task not in TASKS:
        raise ConfigError(f"this pix2pix run learnt from pairs of folders (task {task!r}): the inputs cannot be made "
                          f"from {data!r}; give the input images (files or a folder)")
    targets = load_dataset(data, split=split, image_size=size)
    if targets.is_points:
        raise DataError(f"{data!r} holds points, not images")
    targets = targets.images[:n]
    if targets.shape[1] != model.config.image_shape[0]:
        raise DataError(f"{data!r} has {targets.shape[1]}-channel images; this run makes {model.config.image_shape[0]}-channel ones")
    return task_inputs(targets, task, repr(data)).float() / 255.0, targets.float() / 255.0


def _with_channels(images: torch.Tensor, channels: int, spec: str) -> torch.Tensor:
    if images.shape[1] != channels:
        raise DataError(f"domain {spec!r} has {images.shape[1]}-channel images; this direction takes {channels}-channel ones")
    return images.float() / 255.0


def translation_grid(inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """A picture with one row per image and the columns input | output (| target), labelled (C×H×W in [0, 1])."""
    columns = [inputs, outputs] + ([targets] if targets is not None else [])
    channels = max(column.shape[1] for column in columns)
    grids = [make_grid(as_channels(column.cpu(), channels), nrow=1) for column in columns]
    return concat_images(grids, labels=["input", "output", "target"][: len(columns)])


__all__ = ["MAX_IMAGES", "check_translator", "inputs_from_data", "inputs_from_files", "translation_grid"]
