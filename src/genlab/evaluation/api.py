"""Evaluate a trained model, or a folder of generated images, with metrics addressed by name.

    test = genlab.load_dataset("fashion-mnist", split="test")
    genlab.evaluate(genlab.load("runs/gan"), test)                      # every default metric that applies
    genlab.evaluate(model, test, ["fid", "kid"], num_samples=2000)      # just these
    genlab.evaluate_images("samples/", test)                            # images from anywhere

``dataset`` is the real reference (usually the test split). Samples are drawn once, in batches,
and passed through the judge (a small classifier, ``genlab.models.judge``) once; every metric
reads from that shared ``Session``. The result is flat: metric names → numbers, plus
``num_samples``, ``num_real`` and ``seconds``. The metrics are ``registry.METRICS``; how each is
computed is in ``measures``.

Measured cost, 1×28×28, 10,000 samples against the 10,000 Fashion-MNIST test images, the
default-size judge, on a shared 2-core CPU (load 2-5): sampling 3 s; judge features 6-25 s per
10,000 images (once for samples, once for real, shared by every metric; logits come from the
same pass); fid < 1 s; kid 3-10 s; prdc 18-35 s (three 10,000² distance matrices, real–real,
fake–fake and real–fake, each computed once; since they are computed in place and the radii
taken with topk, 2.2 s instead of 6.7 s on the same CPU idle); inception_score, classes,
sharpness, reconstruction < 1 s each; smoothness 1.5 s; likelihood (IWAE k=100 on 1,000 images:
10^5 decodes) ~25 s. In all ~40 s for the demo's GAN, ~2 min for its VAE on that machine.
``cas`` trains a judge on the samples with train_judge's recipe (10 epochs of ⌊N/128⌋ steps:
~100,000 image passes for 10,000 samples, about 7 minutes on that CPU idle, at 0.56 s a step):
it applies only to conditional models (or labelled images), runs only when named,
``evaluate(model, test, ["cas"])``, and announces its expected time on stderr before it starts.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from genlab.data.dataset import Dataset
from genlab.data.files import load_folder, load_npz
from genlab.data.registry import resize_images
from genlab.errors import ConfigError, DataError
from genlab.evaluation.registry import METRICS, USES_FEATURES, USES_JUDGE_LOGITS, Metric, sample_counts
from genlab.evaluation.session import FEATURES, Session
from genlab.io.images import to_uint8
from genlab.nn.modes import eval_mode


def evaluate(model: Any, dataset: Dataset, metrics: Sequence[str] | str | None = None, num_samples: int = 10000, *,
             judge: Any = None, features: str = "judge", seed: int = 0, batch_size: int = 500,
             progress: bool = True, timings: dict[str, float] | None = None) -> dict[str, float]:
    """Measure ``model`` against the real images of ``dataset`` (usually the test split).

    ``metrics``: names from ``METRICS`` (a list, or one comma-separated string); None = every
    metric that applies to this model except ``cas``, which trains a classifier for minutes and so
    runs only when named (it announces its expected time on stderr before it starts).
    ``num_samples`` samples are drawn (and at most that many real images used). ``judge``: a Judge,
    a judge run directory, or None for the shipped Fashion-MNIST judge (1×28×28 only).
    ``features="inception"`` computes fid/kid/prdc/smoothness in torch-fidelity's InceptionV3
    features instead (installed and with local weights, or an error).
    Returns flat names → numbers (e.g. ``fid``, ``kid_mean``, ``precision``, ``bits_per_dim``) plus
    ``num_samples``, ``num_real`` and ``seconds``. Pass a dict as ``timings`` to get the seconds
    each stage took (sampling, features, each metric).
    """
    if model is None or not hasattr(model, "sample"):
        raise ConfigError(f"evaluate: expected a genlab model (e.g. genlab.load(RUN)), got {type(model).__name__}")
    shape = tuple(model.image_shape)
    if len(shape) != 3:
        raise DataError(f"evaluate measures image models; this {model.kind.upper()} makes {shape[0]}-D points "
                        "(see genlab.metrics.mode_coverage for point data)")
    _check_dataset(dataset, shape, f"the model makes {'×'.join(map(str, shape))} images")
    return _run(model, dataset, None, metrics, num_samples, judge=judge, features=features, seed=seed,
                batch_size=batch_size, progress=progress, timings=timings)


def evaluate_images(images: str | os.PathLike | Dataset | torch.Tensor, dataset: Dataset,
                    metrics: Sequence[str] | str | None = None, num_samples: int | None = None, *, judge: Any = None,
                    features: str = "judge", seed: int = 0, batch_size: int = 500,
                    progress: bool = True, timings: dict[str, float] | None = None) -> dict[str, float]:
    """Measure images made by anything (a folder, a .npz, a Dataset or a uint8/float tensor) against
    ``dataset``. They are resized (bilinear, antialiased) and converted (RGB → gray by luma, gray →
    RGB by repetition) to the dataset's shape when they differ. Applies: fid, kid, prdc,
    inception_score, classes, sharpness (and cas, when named, if the images are labelled: class sub-folders)."""
    given = _as_image_dataset(images)
    given = _conform(given, tuple(dataset.image_shape) if not dataset.is_points else (), dataset)
    count = len(given) if num_samples is None else num_samples
    return _run(None, dataset, given, metrics, count, judge=judge, features=features, seed=seed,
                batch_size=batch_size, progress=progress, timings=timings)


def applicable_metrics(model: Any, dataset: Dataset) -> list[str]:
    """The names of the metrics that apply to ``model`` measured against ``dataset``, opt-in ones
    (``cas``) included; ``evaluate(..., metrics=None)`` computes those with ``Metric.default``."""
    run = Session(model, dataset, images=None, judge=None, features="judge", num_samples=2, seed=0, batch_size=1,
                  progress=False)
    return [name for name, metric in METRICS.items() if metric.applies(run) is None]


def parse_metrics(metrics: Sequence[str] | str | None) -> list[str] | None:
    """Metric names from a list or a comma-separated string, checked against ``METRICS``."""
    if metrics is None:
        return None
    names = [part.strip() for part in metrics.split(",")] if isinstance(metrics, str) else [str(m).strip() for m in metrics]
    names = [name for name in names if name]
    if not names:
        raise ConfigError(f"no metric names given; expected some of {', '.join(METRICS)}")
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def _run(model: Any, dataset: Dataset, images: Dataset | None, metrics: Sequence[str] | str | None, num_samples: int,
         *, judge: Any, features: str, seed: int, batch_size: int, progress: bool,
         timings: dict[str, float] | None = None) -> dict[str, float]:
    started = time.perf_counter()
    if features not in FEATURES:
        raise ConfigError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    for name, value, low in (("num_samples", num_samples, 2), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
    run = Session(model, dataset, images=images, judge=judge, features=features, num_samples=num_samples,
                  seed=seed, batch_size=batch_size, progress=progress)
    names = _chosen(run, metrics)
    # Resolve the judge / Inception network before any expensive work, so a bad --judge fails at once.
    if any(name in USES_FEATURES for name in names):
        run.feature_extractor  # noqa: B018
    if any(name in USES_JUDGE_LOGITS for name in names):
        run.judge  # noqa: B018
    _check_sizes(run, names, named=metrics is not None)
    timings = {} if timings is None else timings
    with eval_mode(*([model] if model is not None else [])):
        results = _measure(run, [METRICS[name] for name in names], timings)
    results["num_samples"] = float(len(run.fakes)) if "fakes" in run.__dict__ else float(run.num_fakes)
    results["num_real"] = float(len(run.real))
    results["seconds"] = round(time.perf_counter() - started, 2)
    return {key: float(value) for key, value in results.items()}


def _chosen(run: Session, metrics: Sequence[str] | str | None) -> list[str]:
    """The named metrics (each must apply), or by default every default metric that applies."""
    names = parse_metrics(metrics)
    if names is None:
        names = [name for name, metric in METRICS.items() if metric.default and metric.applies(run) is None]
        no_judge = run.judge_spec is None and tuple(run.dataset.image_shape) != (1, 28, 28)
        if run.features_kind == "inception" and no_judge:  # only asked for Inception; no judge for the logits
            names = [name for name in names if name not in USES_JUDGE_LOGITS]
        return names
    for name in names:
        reason = METRICS[name].applies(run)
        if reason is not None:
            raise ConfigError(reason)
    return names


def _measure(run: Session, metrics: list[Metric], timings: dict[str, float]) -> dict[str, float]:
    """Prepare what the metrics share, then compute each, under one progress bar; ``timings`` gets
    the seconds of each preparation and metric."""
    needs = list(dict.fromkeys(need for metric in metrics for need in metric.needs))
    if "fake_logits" in needs and run.logits_of_features():  # logits come from the features
        needs.insert(needs.index("fake_logits"), "fake_features")
        needs = list(dict.fromkeys(needs))
    total = sum(run.prepare_steps(need) for need in needs) + sum(metric.steps(run) for metric in metrics)
    results: dict[str, float] = {}
    with tqdm(total=total, desc="evaluate", unit="step", disable=not run.progress, leave=False,
              dynamic_ncols=True) as bar:
        run.bar = bar
        for need in needs:
            clock = time.perf_counter()
            getattr(run, need)
            timings[need] = time.perf_counter() - clock
        for metric in metrics:
            before, clock = bar.n, time.perf_counter()
            bar.set_postfix_str(metric.name)
            results.update(metric.compute(run))
            timings[metric.name] = time.perf_counter() - clock
            bar.update(max(0, metric.steps(run) - (bar.n - before)))  # metrics that count their own steps
        run.bar = None
    return results


def _check_dataset(dataset: Dataset, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"expected the real images as a genlab Dataset (genlab.load_dataset), got {type(dataset).__name__}")
    if dataset.is_points or tuple(dataset.image_shape) != tuple(shape):
        data_shape = "×".join(map(str, dataset.image_shape))
        raise DataError(f"{what} but {dataset.name!r} holds {data_shape} "
                        f"{'points' if dataset.is_points else 'images'}; compare with data of the model's shape")
    if len(dataset) < 2:
        raise DataError(f"{dataset.name!r} holds {len(dataset)} image(s); evaluation needs at least 2")


def _check_sizes(run: Session, names: list[str], *, named: bool = True) -> None:
    """Before the expensive part: refuse a metric given fewer images than its estimator means anything on
    (``Metric.minimum``), with one line naming the metric, the minimum and what was given; warn below
    ``Metric.reliable``."""
    n_fake, n_real = run.num_fakes, len(run.real)
    for name in names:
        metric = METRICS[name]
        have = sample_counts(run, metric)
        least, why = metric.minimum(run)
        what = {"both": "samples and as many real images", "samples": "samples", "real": "real images"}[metric.counts]
        given = {"both": f"{n_fake} samples and {n_real} real images", "samples": f"{n_fake} samples",
                 "real": f"{n_real} real images"}[metric.counts]
        if have < least:
            reason = f" ({why})" if why else ""
            raise ConfigError(f"{name!r} needs at least {least} {what}{reason}, got {given}; {_remedy(run, least, named)}")
        if metric.reliable is not None and have < metric.reliable[0]:
            warnings.warn(f"{name!r} on {given}: {metric.reliable[1]} ({metric.reliable[0]:,} or more recommended)",
                          stacklevel=3)


def _remedy(run: Session, least: int, named: bool) -> str:
    """What to change where a metric has too few images: -n, the folder of images, or the real data."""
    if run.num_samples < least:
        remedy = f"raise -n / num_samples to {least} or more"
    elif run.images is not None and len(run.images) < least:
        remedy = f"{run.images.name!r} holds only {len(run.images)} images"
    else:
        remedy = f"the real data {run.dataset.name!r} holds only {len(run.dataset)} images"
    return remedy if named else remedy + ", or name other metrics (--metrics / metrics=)"


def _as_image_dataset(images: Any) -> Dataset:
    if isinstance(images, Dataset):
        given = images
    elif isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8:
            images = to_uint8(images)
        given = Dataset(images.cpu(), name="images")
    elif isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            given = load_folder(path)
        elif path.is_file() and path.suffix.lower() == ".npz":
            given = load_npz(path)
        else:
            raise DataError(f"{path}: expected a folder of images or a .npz file")
    else:
        raise ConfigError(f"evaluate_images: expected a folder, .npz, Dataset or tensor, got {type(images).__name__}")
    if given.is_points:
        raise DataError(f"{given.name!r} holds points, not images")
    return given


def _conform(given: Dataset, shape: tuple[int, ...], dataset: Dataset) -> Dataset:
    """``given`` resized and converted to ``shape`` (C, H, W)."""
    if len(shape) != 3:
        raise DataError(f"{dataset.name!r} holds points, not images; evaluate images against images")
    images = given.images
    if images.shape[2:] != shape[1:]:
        images = resize_images(Dataset(images, name=given.name), tuple(shape[1:])).images
    if images.shape[1] != shape[0]:
        if shape[0] == 1:  # ITU-R 601-2 luma, as PIL's convert("L")
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            images = images.expand(-1, 3, -1, -1).contiguous()
    return Dataset(images, given.labels, given.classes, given.name)


def describe_metrics() -> str:
    """One line per metric, for --help."""
    return "\n".join(f"  {name:<16} {metric.summary}" for name, metric in METRICS.items())


def format_results(results: dict[str, float]) -> str:
    """A small two-column table of results."""
    lines = []
    for key, value in results.items():
        text = f"{value:.4g}" if not float(value).is_integer() or abs(value) >= 1e6 else f"{int(value)}"
        if math.isinf(value) or math.isnan(value):
            text = str(value)
        lines.append(f"  {key:<26} {text:>12}")
    return "\n".join(lines)
