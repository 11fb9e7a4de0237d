"""The judge: a small discriminative CNN that grades generative models.

Metrics read it in two ways: its penultimate-layer ``features`` stand in for Inception's in FID, KID
and precision/recall (an Inception network trained on ImageNet photos says little about 28×28
clothes; a classifier trained on the data itself is the usual substitute), and its ``logits`` give
class histograms, Inception-Score-like numbers and the Classification Accuracy Score
(``genlab.evaluation.cas``).

Network (VGG-style, as in Simonyan & Zisserman 2015, with batch norm, Ioffe & Szegedy 2015):

    image → [ (3×3 conv → BN → ReLU) × convs_per_block → 2×2 max-pool → dropout ] per ``channels`` entry
          → flatten → linear → ReLU  (= ``features``, F = ``feature_dim``)
          → dropout → linear          (= ``logits``)

It is trained by THE training loop like every model (one phase, cross-entropy), with random shifts
(and, if asked, horizontal flips) applied inside the loss. Fashion-MNIST weights ship with genlab
(``load_judge()``); train one for other data with ``genlab.train_judge`` or ``genlab judge train``.

Which judge a task uses is decided in one place, :func:`resolve_judge`: metrics, the projector's
feature term, direction measurement, the SRGAN content loss and the GAN encoder's feature term all ask it.
"""
from __future__ import annotations

import itertools
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import (
    MAX_BLOCKS,
    MAX_CLASSES,
    MAX_WIDTH,
    TrainConfig,
    check_image_shape,
    check_positive,
    check_size,
    check_weights,
    check_widths,
    config_from_dict,
)
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.io.checkpoints import CONFIG_FILE, WEIGHTS_FILE, load_model_weights, read_run_config
from genlab.models.base import GenerativeModel, Labels, Phase, adam
from genlab.nn.modes import eval_mode

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Names load_judge knows → the weights shipped with genlab (WEIGHTS_DIR/NAME.safetensors + NAME.json).
SHIPPED_JUDGES = {"fashion-mnist": "judge_fashion_mnist", "fashion-mnist-mini": "judge_fashion_mnist"}

# train_judge defaults; the shipped Fashion-MNIST judge was trained with exactly these.
DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 2e-3


@dataclass
class JudgeConfig:
    image_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    # Conv widths, one block per entry, each block halving the resolution. None picks by channel
    # count: (24, 48) for grayscale (28×28), (32, 64, 128) for colour (32×32).
    channels: tuple[int, ...] | None = None
    convs_per_block: int = 2
    feature_dim: int = 128  # width of the penultimate layer: the features FID/KID/PRDC compare
    # The defaults below were chosen on Fashion-MNIST (train on 50,000 training images, 10 epochs,
    # validate on the other 10,000): dropout/feature_dropout 0.25/0.5 with flips 90.6%; 0.1/0.3
    # 92.5%; 0/0.2 93.1% (92.9% with flips); 0/0 93.5%. In 10 epochs the net underfits, so the
    # shifts are regularisation enough; dropout is for long runs or small sets.
    dropout: float = 0.0  # after each conv block
    feature_dropout: float = 0.0  # between the features and the classifier
    # Training augmentation, applied inside the loss: shift each image by up to max_shift pixels
    # (zero fill) and, with flip, mirror half of them left-right (only for classes that are
    # mirror-symmetric: clothes, photos; not digits or text).
    max_shift: int = 2
    flip: bool = False

    def __post_init__(self) -> None:
        self.image_shape = check_image_shape("image_shape", self.image_shape)  # type: ignore[assignment]
        if self.channels is None:
            self.channels = (24, 48) if self.image_shape[0] == 1 else (32, 64, 128)
        self.channels = check_widths("channels", self.channels)
        smallest = 2 ** len(self.channels)
        if min(self.image_shape[1:]) < smallest:
            raise ConfigError(f"image_shape {self.image_shape} is too small for {len(self.channels)} pooling blocks "
                              f"(needs height and width >= {smallest}); use fewer channels entries")
        check_size("num_classes", self.num_classes, MAX_CLASSES, minimum=2)
        check_size("convs_per_block", self.convs_per_block, MAX_BLOCKS)
        check_size("feature_dim", self.feature_dim, MAX_WIDTH)
        check_size("max_shift", self.max_shift, min(self.image_shape[1:]), minimum=0)
        for name in ("dropout", "feature_dropout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        check_weights("judge config", self._weight_count())

    def _weight_count(self) -> int:
        """About how many weights the judge has (convs and linear layers, biases left out)."""
        image_channels, height, width = self.image_shape
        widths = (image_channels, *self.channels)
        convs = sum(9 * a * b + 9 * b * b * (self.convs_per_block - 1) for a, b in itertools.pairwise(widths))
        pooled = (height >> len(self.channels)) * (width >> len(self.channels))
        return convs + self.channels[-1] * pooled * self.feature_dim + self.feature_dim * self.num_classes


def shift_and_flip(x: torch.Tensor, max_shift: int, flip: bool) -> torch.Tensor:
    """Each image shifted by its own random (dy, dx) in [−max_shift, max_shift]² (zero fill) and,
    if ``flip``, mirrored left-right with probability ½; one gather for both. Uses the global RNG,
    which the training loop seeds and checkpoints, so runs and resumes are reproducible."""
    n, _, height, width = x.shape
    device = x.device
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, n, 1), device=device)
    rows = torch.arange(height, device=device) + max_shift - dy  # N×H: source rows in the padded image
    cols = torch.arange(width, device=device).expand(n, width)
    if flip:
        mirrored = torch.rand(n, 1, device=device) < 0.5
        cols = torch.where(mirrored, width - 1 - cols, cols)
    cols = cols + max_shift - dx
    padded = F.pad(x, (max_shift,) * 4)
    # (batch, :, rows, cols) indexing puts the channel last: N×H×W×C; permuting back keeps that
    # memory layout, i.e. channels_last, which is what the convs want.
    batch = torch.arange(n, device=device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class Judge(GenerativeModel):
    """A classifier with the model interface, so the one training loop and checkpoint format serve it.

    ``forward(x)`` gives differentiable logits (training, gradients through the judge);
    ``logits``, ``features`` and ``predict`` are for judging: eval mode, no gradients, any number
    of images (processed ``batch_size`` at a time on the judge's device, returned on x's device).
    """

    kind = "judge"
    config_class = JudgeConfig

    def __init__(self, config: JudgeConfig | None = None) -> None:
        config = config or JudgeConfig()
        super().__init__(config)
        in_channels, height, width = config.image_shape
        blocks: list[nn.Module] = []
        previous = in_channels
        for channels in config.channels:
            layers: list[nn.Module] = []
            for _ in range(config.convs_per_block):
                # No conv bias: the batch norm right after it has its own.
                layers += [nn.Conv2d(previous, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
                previous = channels
            blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2), nn.Dropout(config.dropout)))
        self.body = nn.Sequential(*blocks)
        pooled = (height >> len(config.channels)) * (width >> len(config.channels))
        self.to_features = nn.Sequential(nn.Flatten(), nn.Linear(previous * pooled, config.feature_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(config.feature_dropout), nn.Linear(config.feature_dim, config.num_classes))
        # channels_last: measured 20-30% faster training steps on this project's CPU machine (oneDNN
        # convolutions and max-pool); weights are saved in the usual layout either way.
        self.to(memory_format=torch.channels_last)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    # ----- the network -----
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_features(self.body(x.contiguous(memory_format=torch.channels_last)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits N×num_classes for float images in [0, 1], with gradients (no chunking, no checks)."""
        return self.classifier(self._features(x))

    # ----- judging: any number of images, no gradients -----
    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as float images of the judge's shape (uint8 images are scaled to [0, 1]), or a ConfigError."""
        expected = "×".join(map(str, self.image_shape))
        if x.dim() != 4:
            raise ConfigError(f"the judge expects images N×{expected}, got a tensor of shape {tuple(x.shape)}")
        if tuple(x.shape[1:]) != self.image_shape:
            raise ConfigError(f"the judge expects {expected} images, got {'×'.join(map(str, x.shape[1:]))} "
                              "(use --judge DIR trained on this data)")
        return Dataset.to_float(x) if x.dtype == torch.uint8 else x

    @torch.no_grad()
    def _judge(self, x: torch.Tensor, head: nn.Module | None, batch_size: int) -> torch.Tensor:
        x = self.check_images(x)
        check_positive("batch_size", batch_size)
        outputs = []
        with eval_mode(self):
            for chunk in x.split(batch_size):
                features = self._features(chunk.to(self.device, torch.float32))
                outputs.append((features if head is None else head(features)).to(x.device))
        width = self.feature_dim if head is None else self.num_classes
        return torch.cat(outputs) if outputs else torch.empty(0, width, device=x.device)

    def logits(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Class logits N×num_classes of float images in [0, 1] (N×C×H×W)."""
        return self._judge(x, self.classifier, batch_size)

    def features(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate-layer features N×feature_dim (after the ReLU): what FID/KID/PRDC compare."""
        return self._judge(x, None, batch_size)

    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The most likely class of each image (int64, N)."""
        return self.logits(x, batch_size).argmax(dim=1)

    # ----- the objective -----
    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Cross-entropy of the labels under softmax(logits), on randomly shifted (and flipped) images."""
        if labels is None:
            raise DataError("the judge learns from labelled images; this dataset has no labels")
        if self.training and (self.config.max_shift or self.config.flip):
            x = shift_and_flip(x, self.config.max_shift, self.config.flip)
        logits = self(x)
        loss = F.cross_entropy(logits, labels)
        return {"loss": loss, "accuracy": (logits.argmax(dim=1) == labels).float().mean()}

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        if train.num_sample_images:
            # The loop draws a sample grid after each epoch; a classifier has nothing to draw.
            raise ConfigError("the judge is a classifier and cannot sample: train it with num_sample_images=0 "
                              "(train_judge does)")
        return {"judge": adam(self.parameters(), lr=train.lr)}

    def training_phases(self) -> list[Phase]:
        return [Phase("judge", optimizer="judge", loss=self.loss)]

    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        raise ConfigError("a judge is a classifier, not a generative model: it cannot sample images")


# ----------------------------------------------------------------------------------- loading


def load_judge(spec: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Judge:
    """A trained judge, in eval mode.

    ``spec``: None or "fashion-mnist" for the weights shipped with genlab, or the run directory
    of a judge trained with ``train_judge`` / ``genlab judge train``. Never unpickles anything.
    """
    if spec is None or (isinstance(spec, str) and spec in SHIPPED_JUDGES):
        return _load_shipped(SHIPPED_JUDGES[spec or "fashion-mnist"]).to(device).eval()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"unknown judge {str(spec)!r}: expected 'fashion-mnist' (shipped with genlab) or the run "
                              "directory of a judge trained with `genlab judge train --data DATA -o DIR`")
    config = read_run_config(path)
    if config["model"]["kind"] != Judge.kind:
        raise CheckpointError(f"{path} holds a {config['model']['kind']} run, not a judge; "
                              "train one with `genlab judge train --data DATA -o DIR`")
    model = Judge(config_from_dict(JudgeConfig, config["model"].get("config", {}), where=str(path / CONFIG_FILE)))
    load_model_weights(model, path / WEIGHTS_FILE)
    return model.to(device).eval()


def _load_shipped(name: str) -> Judge:
    info_path, weights_path = WEIGHTS_DIR / f"{name}.json", WEIGHTS_DIR / f"{name}.safetensors"
    if not info_path.is_file() or not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: shipped judge weights missing, expected them installed with genlab "
                              "(reinstall the package, or train one with `genlab judge train`)")
    try:
        info = json.loads(info_path.read_text())
        config = info["model"]["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{info_path}: not a judge description ({error})") from None
    model = Judge(config_from_dict(JudgeConfig, config, where=str(info_path)))
    load_model_weights(model, weights_path)
    return model.eval()


# ------------------------------------------------------------------------------- the one policy

SHIPPED_SHAPE = (1, 28, 28)
TRAIN_HINT = "train one with `genlab judge train --data DATA -o DIR` and pass --judge DIR (judge=DIR in Python)"


def resolve_judge(judge: Judge | str | os.PathLike | bool | None, image_shape: tuple[int, ...], *,
                  purpose: str | None = None, dataset_name: str = "") -> Judge | None:
    """The judge a task uses for images of ``image_shape``; the one rule every caller follows.

    ``judge``: a Judge (used as is), a judge run directory or shipped name (loaded), or None/"auto"
    (the judge shipped with genlab, which reads 1×28×28 images). ``purpose`` names what the judge is
    for when the task can go without one (e.g. "the SRGAN content loss"): then False/"none" turns it
    off, and "auto" for a shape no judge ships for warns and returns None. Without ``purpose`` a judge
    is required and every way of not having one is a ConfigError. A judge that reads another image
    shape is always a ConfigError. Using the Fashion-MNIST judge on other data warns: its features suit
    other data less well.
    """
    shape_text = "×".join(map(str, image_shape))
    if judge is False or judge == "none":
        if purpose is None:
            raise ConfigError(f"this task needs a judge for {shape_text} images; {TRAIN_HINT}")
        return None
    if judge is None or judge is True or judge == "auto":
        if tuple(image_shape) != SHIPPED_SHAPE:
            if purpose is None:
                raise ConfigError(f"no judge ships for {shape_text} images (only for 1×28×28 Fashion-MNIST); {TRAIN_HINT}")
            warnings.warn(f"no judge for {shape_text} images (the shipped one reads 1×28×28), so {purpose} is left out; "
                          f"{TRAIN_HINT}", UserWarning, stacklevel=2)
            return None
        if dataset_name and not str(dataset_name).startswith("fashion-mnist"):
            warnings.warn(f"using the judge trained on Fashion-MNIST for {dataset_name!r}; its features suit other data "
                          f"less well ({TRAIN_HINT})", UserWarning, stacklevel=2)
        return load_judge()
    if isinstance(judge, (str, os.PathLike)):
        judge = load_judge(judge)
    if tuple(judge.image_shape) != tuple(image_shape):
        raise ConfigError(f"the judge takes {'×'.join(map(str, judge.image_shape))} images but the data are {shape_text}; "
                          f"{TRAIN_HINT}")
    return judge


__all__ = ["Judge", "JudgeConfig", "load_judge", "resolve_judge", "shift_and_flip"]
