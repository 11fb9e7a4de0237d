"""Data augmentation by synthesis: a labelled synthetic dataset from a class-conditional model.

    genlab.tools.augment.augment("runs/cgan", "synth.npz", n_per_class=100)        # or a folder: "synth/"
    synth = genlab.load_dataset("synth.npz")                                       # like any real dataset

``synthesize`` draws ``n_per_class`` images of each class (a conditional GAN or VAE; ``labels`` picks
classes) and can keep only those a classifier calls their class with probability >= ``filter_confidence``,
drawing more until every class has its count. That classifier (a judge) must have been trained only on
the labelled data the user has: a filter that learned from labels the task pretends not to have (such as
the judge shipped with genlab, trained on all 60,000 Fashion-MNIST labels) would leak them into the
synthetic set, so the shipped judges are refused by name. ``write_synthetic`` writes a ``.npz`` (images,
labels and every class name: labels keep the model's class indices) or a folder with one sub-folder per
class, named ``NN_name`` so that their sorted order, which ``load_dataset`` labels by, is the class order.
"""
from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from genlab.data.dataset import Dataset
from genlab.data.limits import MAX_ITEMS
from genlab.data.mixing import conditional_classes, draw_samples
from genlab.errors import ConfigError, OutputError
from genlab.io.checkpoints import read_run_config
from genlab.io.files import atomic_write, fsync_directory, output_error, temporary_name
from genlab.models.judge import SHIPPED_JUDGES, Judge, load_judge
from genlab.runs import load
from genlab.tools.editing import class_index

MAX_DRAWS_PER_IMAGE = 20  # filtering: at most this many × n_per_class draws of a class before giving up
FILTER_JUDGE_HELP = ("a judge run trained ONLY on the labelled data you have (`genlab judge train --data YOUR_LABELLED_DATA "
                     "-o DIR`); a classifier that saw more labels would leak them into the synthetic set")


def check_conditional(model: Any, where: str = "the model") -> int:
    """The number of classes ``model`` draws, or a ConfigError saying why it cannot make labelled data."""
    kind = getattr(model, "kind", type(model).__name__)
    if kind == "judge":
        raise ConfigError(f"{where} holds a judge, a classifier: augment needs a class-conditional generative model")
    classes = conditional_classes(model)
    if not classes or not callable(getattr(model, "sample", None)):
        raise ConfigError(f"{where} holds an unconditional {kind} (num_classes=0): its samples have no labels; augment needs "
                          "a class-conditional model: train one with `genlab train gan --conditional` or "
                          "`genlab train vae --conditional`")
    return classes


def filter_judge_for(spec: Judge | str | os.PathLike, classes: Sequence[str] = ()) -> Judge:
    """The judge that filters by confidence: a Judge, or a judge run folder (its classes checked against ``classes``
    where both are known). The judges shipped with genlab are refused: see the module's docstring."""
    if isinstance(spec, Judge):
        return spec.eval()
    if str(spec) in SHIPPED_JUDGES:
        raise ConfigError(f"filter judge {str(spec)!r} is the judge shipped with genlab, trained on every Fashion-MNIST label; "
                          f"the filter must not know more labels than you have: use {FILTER_JUDGE_HELP}")
    path = Path(spec).expanduser()
    judge = load_judge(path)
    judged = tuple(read_run_config(path).get("dataset", {}).get("classes") or ())
    if classes and judged and tuple(judged) != tuple(classes):
        raise ConfigError(f"filter judge {path} was trained on the classes {', '.join(judged)}, the model draws "
                          f"{', '.join(classes)}; expected the same classes in the same order")
    return judge


def synthesize(model: Any, n_per_class: int, *, labels: Sequence[int | str] | None = None, truncation: float | None = None,
               seed: int = 0, classes: Sequence[str] = (), filter_judge: Judge | str | os.PathLike | None = None,
               filter_confidence: float | None = None, batch_size: int = 500) -> tuple[Dataset, dict[str, Any]]:
    """(a Dataset of ``n_per_class`` uint8 images of each class in ``labels`` (default: every class), its counts).

    Images are in class order; the same seed gives the same images. ``classes`` names the model's classes (they
    become the dataset's; default "0", "1", ...). With ``filter_confidence`` C and ``filter_judge``: only images
    whose class the judge gives probability >= C are kept (see the module's docstring); a class that stays short
    after MAX_DRAWS_PER_IMAGE × n_per_class draws is a ConfigError naming it.
    """
    num_classes = check_conditional(model)
    names = tuple(classes) or tuple(str(i) for i in range(num_classes))
    if len(names) != num_classes:
        raise ConfigError(f"classes gives {len(names)} names, but the model draws {num_classes} classes")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
        raise ConfigError(f"n_per_class must be an integer >= 1, got {n_per_class!r}")
    wanted = list(range(num_classes)) if labels is None else [class_index(label, names, what="label") for label in labels]
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        raise ConfigError("labels must name at least one class")
    if n_per_class * len(wanted) > MAX_ITEMS:
        raise ConfigError(f"{n_per_class:,} images × {len(wanted)} classes is more than genlab's bound of {MAX_ITEMS:,} images")
    judge = None
    if (filter_judge is None) != (filter_confidence is None):
        raise ConfigError("filtering needs both filter_confidence (--filter-confidence C) and filter_judge (--filter-judge DIR)")
    if filter_confidence is not None:
        if not (isinstance(filter_confidence, int | float) and 0 < filter_confidence <= 1):
            raise ConfigError(f"filter_confidence must be a probability in (0, 1], got {filter_confidence!r}")
        judge = filter_judge_for(filter_judge, tuple(classes))  # names checked only where the caller knows them
        judge.check_images(torch.zeros(1, *model.image_shape))
        if judge.num_classes < num_classes:
            raise ConfigError(f"the filter judge knows {judge.num_classes} classes, the model draws {num_classes}")
    kept = {label: [] for label in wanted}
    drawn = dict.fromkeys(wanted, 0)
    for round_index in range(MAX_DRAWS_PER_IMAGE):
        short = {label: n_per_class - sum(len(x) for x in kept[label]) for label in wanted}
        short = {label: count for label, count in short.items() if count > 0}
        if not short:
            break
        # Each round draws what is missing, scaled up by the acceptance seen so far (at least 1×, at most 4×).
        rates = {label: sum(len(x) for x in kept[label]) / drawn[label] if drawn[label] else 1.0 for label in short}
        counts = {label: min(4 * count, max(count, math.ceil(count / max(rates[label], 0.25)))) for label, count in short.items()}
        counts = {label: min(count, MAX_DRAWS_PER_IMAGE * n_per_class - drawn[label]) for label, count in counts.items()}
        counts = {label: count for label, count in counts.items() if count > 0}
        if not counts:
            break
        round_labels = torch.cat([torch.full((count,), label, dtype=torch.int64) for label, count in counts.items()])
        round_seed = int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0])
        images = draw_samples(model, round_labels, seed=round_seed, truncation=truncation, batch_size=batch_size)
        keep = torch.ones(len(images), dtype=torch.bool)
        if judge is not None:
            probabilities = torch.softmax(judge.logits(images.float().div(255.0), batch_size), dim=1)
            keep = probabilities[torch.arange(len(images)), round_labels] >= filter_confidence
        for label, count in counts.items():
            drawn[label] += count
            mine = (round_labels == label) & keep
            kept[label].append(images[mine][: short[label]])
    short = {label: n_per_class - sum(len(x) for x in kept[label]) for label in wanted}
    failed = {label: count for label, count in short.items() if count > 0}
    if failed:
        label = next(iter(failed))
        got = n_per_class - failed[label]
        raise ConfigError(f"only {got} of {drawn[label]:,} images drawn of class {label} ({names[label]!r}) reached "
                          f"confidence {filter_confidence:g} under the filter judge (it draws at most {MAX_DRAWS_PER_IMAGE} × "
                          f"n_per_class a class); lower --filter-confidence or use a better model or judge")
    images = torch.cat([torch.cat(kept[label]) for label in wanted])
    label_tensor = torch.cat([torch.full((n_per_class,), label, dtype=torch.int64) for label in wanted])
    counts = {"images": len(images), "n_per_class": n_per_class, "classes": [names[label] for label in wanted],
              "drawn": sum(drawn.values()), "kept": len(images), "filter_confidence": filter_confidence}
    return Dataset(images, label_tensor, names, "synthetic"), counts


def class_folder_names(classes: Sequence[str]) -> list[str]:
    """``NN_name`` per class: zero-padded indices (their sorted order is the class order) and names made safe for files."""
    width = len(str(max(len(classes) - 1, 0)))
    return [f"{index:0{width}d}_{re.sub(r'[^0-9A-Za-z._-]+', '-', name).strip('-.') or 'class'}"
            for index, name in enumerate(classes)]


def write_synthetic(dataset: Dataset, out: str | os.PathLike) -> Path:
    """Write a labelled image dataset as ``OUT.npz`` (images N×C×H×W uint8, labels int64, classes) or as a new
    folder ``OUT/`` with one sub-folder of PNGs per class present; both load with ``genlab.load_dataset``."""
    out = Path(out).expanduser()
    if dataset.labels is None or dataset.is_points:
        raise ConfigError(f"dataset {dataset.name!r}: write_synthetic writes labelled images")
    if out.suffix.lower() == ".npz":
        with atomic_write(out) as stream:
            np.savez_compressed(stream, images=dataset.images.numpy(), labels=dataset.labels.numpy(),
                                classes=np.array(dataset.classes, dtype=str))
        return out
    if out.suffix and not out.is_dir():
        raise ConfigError(f"--out {out}: expected a .npz file or a folder (a path without a suffix), got a {out.suffix} file")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists and is not an empty folder; augment writes a new folder (choose another --out)")
    temporary = temporary_name(out)
    try:
        folders = class_folder_names(dataset.classes)
        for label in dataset.labels.unique().tolist():
            folder = temporary / folders[label]
            folder.mkdir(parents=True)
            for number, index in enumerate((dataset.labels == label).nonzero().squeeze(1).tolist()):
                pixels = dataset.images[index].permute(1, 2, 0).numpy()
                image = Image.fromarray(pixels[:, :, 0], mode="L") if pixels.shape[2] == 1 else Image.fromarray(pixels, "RGB")
                image.save(folder / f"{number:06d}.png")
        os.replace(temporary, out)  # a new (or empty) folder appears whole, or not at all
        fsync_directory(out.parent)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise output_error(out, error) from None
    return out


def load_conditional(run: str | os.PathLike, device: str = "cpu") -> tuple[Any, tuple[str, ...]]:
    """(the class-conditional model in run folder ``run``, the class names of its data), or a ConfigError."""
    model = load(run, device=device)
    check_conditional(model, f"run {run}")
    classes = tuple(read_run_config(run).get("dataset", {}).get("classes") or ())
    # A run trained on data whose class names do not match its classes: its indices stand, unnamed.
    return model, classes if len(classes) == conditional_classes(model) else ()


def augment(run: str | os.PathLike | Any, out: str | os.PathLike, n_per_class: int, *, labels: Sequence[int | str] | None = None,
            truncation: float | None = None, seed: int = 0, filter_judge: Judge | str | os.PathLike | None = None,
            filter_confidence: float | None = None, classes: Sequence[str] = (), device: str = "cpu") -> dict[str, Any]:
    """Write ``n_per_class`` synthetic images of each class of a conditional model to ``out`` (.npz or a folder);
    returns what was written (path, counts). ``run``: a run folder (its data's class names are used) or a model
    (named by ``classes``). See ``synthesize``."""
    if isinstance(run, str | os.PathLike):
        model, classes = load_conditional(run, device)
    else:
        model = run
    dataset, counts = synthesize(model, n_per_class, labels=labels, truncation=truncation, seed=seed, classes=classes,
                                 filter_judge=filter_judge, filter_confidence=filter_confidence)
    path = write_synthetic(dataset, out)
    return {"path": str(path), **counts}


__all__ = ["FILTER_JUDGE_HELP", "augment", "check_conditional", "class_folder_names", "filter_judge_for", "load_conditional", "synthesize",
           "write_synthetic"]
