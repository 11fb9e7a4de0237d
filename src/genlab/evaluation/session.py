"""One evaluation's shared state: the real images, the samples, and their features and judge logits,
each made once (on first use) and read by every metric that needs it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.io.images import to_uint8
from genlab.models.judge import resolve_judge
from genlab.nn.modes import eval_mode

FEATURES = ("judge", "inception")
INCEPTION_FEATURES = 2048  # the width of InceptionV3's pool features
INCEPTION_WEIGHTS_ENV = "GENLAB_INCEPTION_WEIGHTS"


class Session:
    """One call of evaluate: the model (or given images), the real data, and what metrics share.

    Real images: a seeded random permutation of ``dataset`` (at most ``num_samples`` of them), so
    any prefix of it is a random subset. Samples: ``num_samples`` images drawn in batches with
    per-batch seeds, quantised to uint8 as if saved to PNG (the FID convention); conditional
    models draw classes 0, 1, …, K−1, 0, … (a balanced mix). Given images: a seeded random
    ``num_samples`` of them.
    """

    def __init__(self, model: Any, dataset: Dataset, *, images: Dataset | None, judge: Any, features: str,
                 num_samples: int, seed: int, batch_size: int, progress: bool) -> None:
        self.model, self.dataset, self.images = model, dataset, images
        self.judge_spec, self.features_kind = judge, features
        self.num_samples, self.seed, self.batch_size = num_samples, seed, batch_size
        self.progress = progress
        self.bar: tqdm | None = None  # set by the caller while it runs the metrics
        self.device = model.device if model is not None else torch.device("cpu")

    def step(self, stage: str, count: int = 1) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(stage, refresh=False)
            self.bar.update(count)

    def batches(self, count: int) -> list[tuple[int, int]]:
        return [(start, min(start + self.batch_size, count)) for start in range(0, count, self.batch_size)]

    @property
    def num_classes(self) -> int:
        return int(getattr(getattr(self.model, "config", None), "num_classes", 0) or 0)

    @property
    def model_text(self) -> str:
        return "a folder of images" if self.model is None else f"this {self.model.kind.upper()}"

    @property
    def num_fakes(self) -> int:
        return self.num_samples if self.images is None else min(self.num_samples, len(self.images))

    # ----- images -----
    def _seeded_index(self, count: int) -> torch.Tensor:
        order = torch.randperm(count, generator=torch.Generator().manual_seed(self.seed))
        return order[: self.num_samples]

    @cached_property
    def real_index(self) -> torch.Tensor:
        return self._seeded_index(len(self.dataset))

    @cached_property
    def real(self) -> torch.Tensor:
        return self.dataset.images[self.real_index]

    @cached_property
    def real_labels(self) -> torch.Tensor | None:
        return None if self.dataset.labels is None else self.dataset.labels[self.real_index]

    @cached_property
    def fake_index(self) -> torch.Tensor:  # given images only: which of them are used
        return self._seeded_index(len(self.images))

    @cached_property
    def fake_labels(self) -> torch.Tensor | None:
        if self.images is not None:
            return None if self.images.labels is None else self.images.labels[self.fake_index]
        return torch.arange(self.num_samples) % self.num_classes if self.num_classes else None

    @cached_property
    def fakes(self) -> torch.Tensor:
        """The generated images as uint8 N×C×H×W (CPU)."""
        if self.images is not None:
            return self.images.images[self.fake_index]
        batches = self.batches(self.num_samples)
        seeds = torch.randint(0, 2**62, (len(batches),), generator=torch.Generator().manual_seed(self.seed)).tolist()
        parts = []
        for (start, stop), seed in zip(batches, seeds, strict=True):
            options = {"labels": self.fake_labels[start:stop]} if self.num_classes else {}
            parts.append(to_uint8(self.model.sample(stop - start, seed=seed, **options).cpu()))
            self.step("sampling", 1)
        return torch.cat(parts)

    # ----- the judge and the feature space -----
    @cached_property
    def judge(self) -> Any:
        return resolve_judge(self.judge_spec, self.dataset.image_shape, dataset_name=self.dataset.name)

    @property
    def feature_dim(self) -> int:
        """The width of the feature space fid/kid/prdc compare in (the judge's is known without loading Inception)."""
        return INCEPTION_FEATURES if self.features_kind == "inception" else int(self.judge.feature_dim)

    @cached_property
    def feature_extractor(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Float images [0, 1] → N×F features: the judge's penultimate layer, or InceptionV3's pool."""
        return inception_extractor(self.device) if self.features_kind == "inception" else self.judge.features

    def featurize(self, images: torch.Tensor, stage: str) -> torch.Tensor:
        """N×F features of uint8 or float images, in batches, counted on the progress bar."""
        return self._in_batches(self.feature_extractor, images, stage)

    def _in_batches(self, network: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                    stage: str) -> torch.Tensor:
        parts = []
        with torch.no_grad():
            for start, stop in self.batches(len(images)):
                parts.append(network(Dataset.to_float(images[start:stop])).detach().float().cpu())
                self.step(stage, 1)
        return torch.cat(parts)

    @cached_property
    def real_features(self) -> torch.Tensor:
        return self.featurize(self.real, "features of real images")

    @cached_property
    def fake_features(self) -> torch.Tensor:
        return self.featurize(self.fakes, "features of samples")

    def logits_of_features(self) -> bool:
        """True when logits can come from the cached judge features: the judge's head is one
        ``classifier`` module on top of ``features`` (genlab's Judge), saving a second pass."""
        return self.features_kind == "judge" and isinstance(getattr(self.judge, "classifier", None), torch.nn.Module)

    def _logits(self, images: torch.Tensor, features: str, stage: str) -> torch.Tensor:
        if not self.logits_of_features():
            return self._in_batches(self.judge.logits, images, stage)
        judge = self.judge
        with eval_mode(judge), torch.no_grad():  # eval: no dropout
            device = next(judge.parameters()).device
            return torch.cat([judge.classifier(part.to(device)).float().cpu()
                              for part in getattr(self, features).split(4096)])

    @cached_property
    def fake_logits(self) -> torch.Tensor:
        return self._logits(self.fakes, "fake_features", "judge on samples")

    @cached_property
    def real_predictions(self) -> torch.Tensor:
        return self._logits(self.real, "real_features", "judge on real images").argmax(1)

    def prepare_steps(self, need: str) -> int:
        """Progress-bar steps that preparing the cached ``need`` (e.g. "fake_features") will take (0 when already cached)."""
        if need in self.__dict__:
            return 0
        if need == "fakes":
            return len(self.batches(self.num_fakes)) if self.images is None else 0
        if need in ("fake_logits", "real_predictions") and self.logits_of_features():
            return 0
        return len(self.batches(len(self.real) if need.startswith("real") else self.num_fakes))


def inception_extractor(device: torch.device | str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """torch-fidelity's FID InceptionV3 (2048-d pool features), if installed AND its weights are on disk.

    Never downloads and never falls back to the judge: FID in Inception features is only comparable
    with published numbers when it really is that network.
    """
    how = (f"install torch-fidelity (pip install torch-fidelity) and put its FID weights "
           f"weights-inception-2015-12-05-6726825d.pth in {Path(torch.hub.get_dir()) / 'checkpoints'} "
           f"or name the file in ${INCEPTION_WEIGHTS_ENV}")
    try:  # an optional third-party package, imported only when asked for
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
    except ImportError:
        raise ConfigError(f"--features inception needs torch-fidelity, which is not installed: {how}") from None
    weights = Path(os.environ.get(INCEPTION_WEIGHTS_ENV) or
                   Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1])
    if not weights.is_file():
        raise ConfigError(f"--features inception: no InceptionV3 weights at {weights}: {how}")
    network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    network = network.to(device).eval()

    def features(images: torch.Tensor) -> torch.Tensor:
        pixels = images.mul(255).round().clamp(0, 255).to(torch.uint8)  # it takes uint8 RGB, any size
        pixels = pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels
        return network(pixels.to(device))[0]

    return features


__all__ = ["FEATURES", "INCEPTION_WEIGHTS_ENV", "Session", "inception_extractor"]
