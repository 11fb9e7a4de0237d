"""Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score for
Conditional Generative Models", arXiv:1905.10887).

Train a classifier *only* on labelled samples from a conditional generative model, then report its
accuracy on the real test set. High CAS needs samples that are both right for their label and as
varied as the real class (a model that draws one good image per class scores poorly, which FID
and Inception Score can miss). The reference point is the same classifier trained on the real
training set: the shipped judge's accuracy for Fashion-MNIST (its JSON records it) when trained
on as many images, with the same epochs.
"""
from __future__ import annotations

import math
import sys
import tempfile
import time

import torch
from tqdm import tqdm

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.evaluation.judges import judge_accuracy, train_judge
from genlab.models.judge import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, Judge, JudgeConfig
from genlab.training.loop import resolve_device

TIMED_STEPS = 2  # training steps timed (after one warm-up step) to estimate the whole training's time


def classification_accuracy_score(train_images: torch.Tensor, train_labels: torch.Tensor, test_dataset: Dataset, *,
                                  epochs: int = DEFAULT_EPOCHS, seed: int = 0, progress: bool = False,
                                  batch_size: int = DEFAULT_BATCH_SIZE, config: JudgeConfig | None = None,
                                  device: str = "auto", announce: bool = True) -> float:
    """CAS: accuracy on real ``test_dataset`` of a judge trained only on (``train_images``, ``train_labels``).

    ``train_images``: generated float images in [0, 1], N×C×H×W of the test set's shape;
    ``train_labels``: the int64 class each was generated for. The judge architecture and recipe are
    those of ``train_judge`` (defaults: as the shipped judge); the run lives in a temporary folder.
    Cost: the same as training a judge on N images (minutes on a CPU for N = 10,000). With
    ``announce`` (the default) one line on stderr says so before training starts: the work, and the
    time it should take here, from timing a few training steps (``training_time``).
    """
    if train_images.dim() != 4 or tuple(train_images.shape[1:]) != tuple(test_dataset.image_shape):
        raise ConfigError(f"CAS: generated images must be N×{'×'.join(map(str, test_dataset.image_shape))} like the test set "
                          f"{test_dataset.name!r}, got shape {tuple(train_images.shape)}")
    if train_labels.shape != (len(train_images),) or train_labels.dtype != torch.int64:
        raise ConfigError(f"CAS: labels must be int64 of shape ({len(train_images)},), got "
                          f"{train_labels.dtype} {tuple(train_labels.shape)}")
    if len(train_images) == 0:
        raise ConfigError("CAS: no generated images to train on")
    if not train_images.is_floating_point():
        raise ConfigError(f"CAS: generated images must be float in [0, 1], got {train_images.dtype}")
    if test_dataset.labels is None:
        raise ConfigError(f"CAS: the test set {test_dataset.name!r} has no labels to score against")
    # Stored as a genlab Dataset (uint8, as every dataset is); rounding to 1/255 is below what matters here.
    images = train_images.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    generated = Dataset(images, train_labels.detach().cpu(), test_dataset.classes, "generated")
    if config is None:
        num_classes = max(test_dataset.num_classes, int(test_dataset.labels.max()) + 1, int(train_labels.max()) + 1, 2)
        config = JudgeConfig(image_shape=test_dataset.image_shape, num_classes=num_classes)  # type: ignore[arg-type]
    if announce:
        steps, seconds = training_time(len(generated), config, epochs=epochs, batch_size=batch_size, device=device)
        tqdm.write(f"cas: trains a judge on {len(generated)} samples for {epochs} epochs ({steps} steps of "
                   f"{min(batch_size, len(generated))} images), about {_duration(seconds)} on this machine (from "
                   f"{TIMED_STEPS} timed steps), then scores it on {len(test_dataset)} real images", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="genlab-cas-") as run_dir:
        judge = train_judge(generated, run_dir, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress,
                            config=config, device=device)
        return judge_accuracy(judge, test_dataset)


def training_time(num_images: int, config: JudgeConfig, *, epochs: int = DEFAULT_EPOCHS,
                  batch_size: int = DEFAULT_BATCH_SIZE, device: str = "auto") -> tuple[int, float]:
    """(steps, estimated seconds) of ``train_judge`` on ``num_images`` images: epochs × ⌊N / batch⌋
    steps (the loop drops the last incomplete batch), each as long as the mean of TIMED_STEPS
    forward/backward/Adam steps of a fresh judge on random images, after one warm-up step (the loop's
    own bookkeeping is left out). Checked on a 2-core CPU: 26 s estimated, 25.7 s taken (training and
    scoring) for 3,000 images × 2 epochs. Its own cost is those three steps (~1.7 s for the default
    judge there); the caller's RNG is untouched."""
    batch = min(batch_size, num_images)
    steps = epochs * (num_images // batch)
    target = resolve_device(device)
    with torch.random.fork_rng(devices=[target] if target.type == "cuda" else []):
        torch.manual_seed(0)
        judge = Judge(config).to(target).train()
        optimizer = torch.optim.Adam(judge.parameters())
        images = torch.rand(batch, *config.image_shape, device=target)
        labels = torch.randint(0, config.num_classes, (batch,), device=target)
        for step in range(TIMED_STEPS + 1):
            if step == 1:  # the first step pays for allocation and kernel selection
                started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = judge.loss(images, labels)["loss"]
            loss.backward()
            optimizer.step()
            loss.item()  # waits for the device
    return steps, (time.perf_counter() - started) / TIMED_STEPS * steps


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))} s" if seconds < 90 else f"{math.ceil(seconds / 60)} min"


__all__ = ["classification_accuracy_score", "training_time"]
