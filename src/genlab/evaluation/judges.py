"""Judges trained by genlab: ``train_judge`` (the recipe the shipped judge was made with) and
``judge_accuracy``. The network is ``genlab.models.judge.Judge``; which judge a task uses is decided by
``genlab.models.judge.resolve_judge``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from genlab.config import TrainConfig
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.io.files import atomic_write
from genlab.models.judge import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, Judge, JudgeConfig
from genlab.training import train

JUDGE_INFO_FILE = "judge.json"  # written by train_judge beside config.json: accuracy, time, versions


def train_judge(dataset: Dataset, out_dir: str | os.PathLike, *, epochs: int = DEFAULT_EPOCHS,
                batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, progress: bool = True,
                test_dataset: Dataset | None = None, lr: float = DEFAULT_LR, config: JudgeConfig | None = None,
                device: str = "auto") -> Judge:
    """Train a judge on labelled ``dataset`` with genlab.train; the run goes to ``out_dir``.

    Adam with a cosine-annealed learning rate. On CPU the same seed gives the same weights. With
    ``test_dataset`` the accuracy on it is measured at the end; it is written with the training
    time and versions to ``out_dir/judge.json``. ``load_judge(out_dir)`` loads the result.
    """
    num_classes = _check_labelled(dataset, "dataset")
    if config is None:
        config = JudgeConfig(image_shape=dataset.image_shape, num_classes=num_classes)  # type: ignore[arg-type]
    if num_classes > config.num_classes:
        raise ConfigError(f"dataset {dataset.name!r} has {num_classes} classes but the judge config has {config.num_classes}")
    if test_dataset is not None:
        _check_labelled(test_dataset, "test_dataset")
        if test_dataset.image_shape != dataset.image_shape:
            raise DataError(f"test_dataset {test_dataset.name!r} has images of shape {test_dataset.image_shape}, "
                            f"the training set {dataset.image_shape}; score the judge on data like its training data")
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the initial weights follow the seed too, without touching the caller's RNG
        torch.manual_seed(seed)
        judge = Judge(config)
    train_config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, out_dir=str(out_dir), device=device,
                               lr_schedule="cosine", num_sample_images=0, progress=progress)
    train(judge, dataset, train_config)
    info: dict = {"train_time_s": round(time.perf_counter() - started, 1), "torch_version": torch.__version__,
                  "dataset": dataset.info()}
    if test_dataset is not None:
        accuracy = judge_accuracy(judge, test_dataset)
        info.update(test_accuracy=accuracy, test_dataset=test_dataset.info())
    with atomic_write(Path(out_dir) / JUDGE_INFO_FILE) as stream:
        stream.write((json.dumps(info, indent=2) + "\n").encode())
    return judge


def judge_accuracy(judge: Judge, dataset: Dataset, batch_size: int = 1000) -> float:
    """The fraction of ``dataset``'s labelled images the judge classifies correctly."""
    num_classes = _check_labelled(dataset, "dataset")
    if num_classes > judge.num_classes:
        raise ConfigError(f"dataset {dataset.name!r} has {num_classes} classes but the judge knows {judge.num_classes}")
    judge.check_images(dataset.images[:1])
    correct = 0
    for start in range(0, len(dataset), batch_size):  # uint8 → float one chunk at a time
        predictions = judge.predict(dataset.float_images(slice(start, start + batch_size)), batch_size)
        correct += int((predictions == dataset.labels[start:start + batch_size].to(predictions.device)).sum())
    return correct / len(dataset)


def _check_labelled(dataset: Dataset, what: str) -> int:
    """The number of classes of a labelled image dataset, or a DataError."""
    if dataset.is_points:
        raise DataError(f"{what} {dataset.name!r} holds points, not images; the judge classifies images")
    if dataset.labels is None:
        raise DataError(f"{what} {dataset.name!r} has no labels; the judge learns and is scored on labelled images")
    if len(dataset) == 0:
        raise DataError(f"{what} {dataset.name!r} is empty")
    if int(dataset.labels.min()) < 0:
        raise DataError(f"{what} {dataset.name!r}: labels must be >= 0, found {int(dataset.labels.min())}")
    return max(dataset.num_classes, int(dataset.labels.max()) + 1, 2)


__all__ = ["judge_accuracy", "train_judge"]
