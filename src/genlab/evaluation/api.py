"""Evaluate a trained model, or a folder of generated images, with metrics addressed by name.

    test = genlab.load_dataset("fashion-mnist", split="test")
    genlab.evaluate(genlab.load("runs/gan"), test)                      # every metric that applies
    genlab.evaluate(model, test, ["fid", "kid"], num_samples=2000)      # just these
    genlab.evaluate_images("samples/", test)                            # images from anywhere

``dataset`` is the real reference (usually the test split). Samples are drawn once, in batches,
and passed through the judge (a small classifier, ``genlab.models.judge``) once; every metric
reads from that shared cache. The result is flat: metric names → numbers, plus ``num_samples``,
``num_real`` and ``seconds``. ``METRICS`` is the registry (as StyleGAN2-ADA's metrics are named).

Measured cost, 1×28×28, 10,000 samples against the 10,000 Fashion-MNIST test images, the
default-size judge, on a shared 2-core CPU (load 2-5): sampling 3 s; judge features 6-25 s per
10,000 images (once for samples, once for real, shared by every metric; logits come from the
same pass); fid < 1 s; kid 3-10 s; prdc 18-35 s (10,000² distances, three times);
inception_score, classes, sharpness, reconstruction < 1 s each; smoothness 1.5 s; likelihood
(IWAE k=100 on 1,000 images: 10^5 decodes) ~25 s. In all ~40 s for the demo's GAN, ~2 min for its
VAE on that machine. ``cas`` trains a judge on the samples with train_judge's recipe (12 epochs):
~120,000 image passes, about 8 minutes there; it applies only to conditional models (or labelled
images) and runs only when named: ``evaluate(model, test, ["cas"])``.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from genlab.data.dataset import Dataset
from genlab.data.files import load_folder, load_npz
from genlab.data.registry import resize_images
from genlab.errors import ConfigError, DataError
from genlab.evaluation.cas import classification_accuracy_score
from genlab.io.images import to_uint8
from genlab.metrics.distribution import (
    class_histogram,
    frechet_distance,
    inception_score,
    kernel_distance,
    precision_recall_density_coverage,
)
from genlab.metrics.image import laplacian_energy, latent_smoothness, psnr, ssim
from genlab.models.judge import resolve_judge
from genlab.models.vae import bits_per_dim
from genlab.nn.modes import eval_mode
from genlab.tools.latent import interpolation_path

# Defaults, documented in METRICS' summaries and the README.
PRDC_K = 5  # Naeem et al. 2020 use k = 5 with 10,000 samples
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Bińkowski et al. 2018's protocol
INCEPTION_SCORE_SPLITS = 10  # Salimans et al. 2016
LIKELIHOOD_IMAGES, IWAE_K = 1000, 100  # IWAE(k=100) on 1,000 real images: ~10^5 decodes
RECONSTRUCTION_IMAGES = 1000
SMOOTHNESS_PATHS, SMOOTHNESS_STEPS = 100, 16  # 100 slerp paths of 16 frames: 1,600 decodes
FEATURES = ("judge", "inception")
INCEPTION_WEIGHTS_ENV = "GENLAB_INCEPTION_WEIGHTS"


@dataclass(frozen=True)
class Metric:
    """One named metric: what it needs from the shared cache, when it applies, how it is computed."""

    name: str
    summary: str
    compute: Callable[[_Evaluation], dict[str, float]]
    needs: tuple[str, ...] = ()  # cached quantities to prepare first (for the progress bar): see _Evaluation
    applies: Callable[[_Evaluation], str | None] = lambda run: None  # None, or why it does not apply
    steps: Callable[[_Evaluation], int] = lambda run: 1  # its share of the progress bar
    default: bool = True  # computed when no metrics are named (False: only on request, e.g. cas trains a classifier)


# ------------------------------------------------------------------------------------- the shared cache


class _Evaluation:
    """One evaluation: the model (or images), the real data, and everything metrics share, made once.

    Real images: a seeded random permutation of ``dataset`` (at most ``num_samples`` of them), so
    any prefix of it is a random subset. Samples: ``num_samples`` images drawn in batches with
    per-batch seeds, quantised to uint8 as if saved to PNG (the FID convention); conditional
    models draw classes 0, 1, …, K−1, 0, … (a balanced mix).
    """

    def __init__(self, model: Any, dataset: Dataset, *, images: Dataset | None, judge: Any, features: str,
                 num_samples: int, seed: int, batch_size: int, progress: bool) -> None:
        self.model, self.dataset, self.images = model, dataset, images
        self.judge_spec, self.features_kind = judge, features
        self.num_samples, self.seed, self.batch_size = num_samples, seed, batch_size
        self.progress = progress
        self.bar: tqdm | None = None
        self.device = model.device if model is not None else torch.device("cpu")

    # ----- progress -----
    def step(self, stage: str, count: int = 1) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(stage, refresh=False)
            self.bar.update(count)

    def note(self, message: str) -> None:
        if self.progress:
            tqdm.write(f"genlab: {message}")

    # ----- what the model is -----
    @property
    def num_classes(self) -> int:
        return int(getattr(getattr(self.model, "config", None), "num_classes", 0) or 0)

    @property
    def model_text(self) -> str:
        return "a folder of images" if self.model is None else f"this {self.model.kind.upper()}"

    # ----- real images -----
    @cached_property
    def real_index(self) -> torch.Tensor:
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed))
        return order[: self.num_samples]

    @cached_property
    def real(self) -> torch.Tensor:
        return self.dataset.images[self.real_index]

    @cached_property
    def real_labels(self) -> torch.Tensor | None:
        return None if self.dataset.labels is None else self.dataset.labels[self.real_index]

    # ----- samples -----
    def batches(self, count: int) -> list[tuple[int, int]]:
        return [(start, min(start + self.batch_size, count)) for start in range(0, count, self.batch_size)]

    @cached_property
    def fake_labels(self) -> torch.Tensor | None:
        if self.images is not None:
            return None if self.images.labels is None else self.images.labels[self.fake_index]
        return torch.arange(self.num_samples) % self.num_classes if self.num_classes else None

    @cached_property
    def fake_index(self) -> torch.Tensor:  # images mode only: which of the given images are used
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(self.seed))
        return order[: self.num_samples]

    @cached_property
    def fakes(self) -> torch.Tensor:
        """The generated images as uint8 N×C×H×W (CPU)."""
        if self.images is not None:
            return self.images.images[self.fake_index]

        seeds = torch.randint(0, 2**62, (len(self.batches(self.num_samples)),),
                              generator=torch.Generator().manual_seed(self.seed)).tolist()
        parts = []
        for (start, stop), seed in zip(self.batches(self.num_samples), seeds):
            options = {"labels": self.fake_labels[start:stop]} if self.num_classes else {}
            parts.append(to_uint8(self.model.sample(stop - start, seed=seed, **options).cpu()))
            self.step("sampling", 1)
        return torch.cat(parts)

    # ----- the judge and the feature space -----
    @cached_property
    def judge(self) -> Any:
        return resolve_judge(self.judge_spec, self.dataset.image_shape, dataset_name=self.dataset.name)

    @cached_property
    def feature_extractor(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Float images [0, 1] → N×F features: the judge's penultimate layer, or InceptionV3's pool."""
        if self.features_kind == "inception":
            return inception_extractor(self.device)
        judge = self.judge
        return judge.features

    def featurize(self, images: torch.Tensor, stage: str) -> torch.Tensor:
        """N×F features of uint8 or float images, in batches, counted on the progress bar."""
        parts = []
        with torch.no_grad():
            for start, stop in self.batches(len(images)):
                parts.append(self.feature_extractor(Dataset.to_float(images[start:stop])).detach().float().cpu())
                self.step(stage, 1)
        return torch.cat(parts)

    def judge_logits(self, images: torch.Tensor, stage: str) -> torch.Tensor:
        parts = []
        with torch.no_grad():
            for start, stop in self.batches(len(images)):
                parts.append(self.judge.logits(Dataset.to_float(images[start:stop])).detach().float().cpu())
                self.step(stage, 1)
        return torch.cat(parts)

    @cached_property
    def real_features(self) -> torch.Tensor:
        return self.featurize(self.real, "features of real images")

    @cached_property
    def fake_features(self) -> torch.Tensor:
        return self.featurize(self.fakes, "features of samples")

    def _logits_of_features(self) -> bool:
        """True when logits can come from the cached judge features: the judge's head is one
        ``classifier`` module on top of ``features`` (genlab's Judge), saving a second pass."""
        return self.features_kind == "judge" and isinstance(getattr(self.judge, "classifier", None), torch.nn.Module)

    def _head(self, features: torch.Tensor) -> torch.Tensor:
        judge = self.judge
        with eval_mode(judge), torch.no_grad():  # eval: no dropout
            device = next(judge.parameters()).device
            return torch.cat([judge.classifier(part.to(device)).float().cpu() for part in features.split(4096)])

    @cached_property
    def fake_logits(self) -> torch.Tensor:
        if self._logits_of_features():
            return self._head(self.fake_features)
        return self.judge_logits(self.fakes, "judge on samples")

    @cached_property
    def real_predictions(self) -> torch.Tensor:
        if self._logits_of_features():
            return self._head(self.real_features).argmax(1)
        return self.judge_logits(self.real, "judge on real images").argmax(1)

    def prepare_steps(self, need: str) -> int:
        """Progress-bar steps that preparing ``need`` will take (0 when already cached)."""
        if need in self.__dict__:
            return 0
        n_fake = self.num_samples if self.images is None else len(self.fake_index)
        if need == "fakes":
            return len(self.batches(n_fake)) if self.images is None else 0
        if need in ("fake_logits", "real_predictions") and self._logits_of_features():
            return 0
        return len(self.batches(len(self.real) if need.startswith("real") else n_fake))


# ------------------------------------------------------------------------------------------ judge resolution


def inception_extractor(device: torch.device | str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """torch-fidelity's FID InceptionV3 (2048-d pool features), if installed AND its weights are on disk.

    Never downloads and never falls back to the judge: FID in Inception features is only comparable
    with published numbers when it really is that network.
    """
    how = (f"install torch-fidelity (pip install torch-fidelity) and put its FID weights "
           f"weights-inception-2015-12-05-6726825d.pth in {Path(torch.hub.get_dir()) / 'checkpoints'} "
           f"or name the file in ${INCEPTION_WEIGHTS_ENV}")
    try:
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


# ----------------------------------------------------------------------------------------------- metrics


def _fid(run: _Evaluation) -> dict[str, float]:
    return {"fid": frechet_distance(run.real_features, run.fake_features)}


def _kid(run: _Evaluation) -> dict[str, float]:
    # Subsets of half the smaller set at most: subsets as large as the sets would all be the same
    # set, and the std over them 0 (meaningless).
    size = max(2, min(KID_SUBSET_SIZE, min(len(run.real_features), len(run.fake_features)) // 2))
    scores = kernel_distance(run.real_features, run.fake_features, num_subsets=KID_SUBSETS, subset_size=size, seed=run.seed)
    return {"kid_mean": scores["mean"], "kid_std": scores["std"]}


def _prdc(run: _Evaluation) -> dict[str, float]:
    return precision_recall_density_coverage(run.real_features, run.fake_features, k=PRDC_K)


def _inception_score(run: _Evaluation) -> dict[str, float]:
    scores = inception_score(run.fake_logits, splits=min(INCEPTION_SCORE_SPLITS, len(run.fake_logits)))
    return {"inception_score_mean": scores["mean"], "inception_score_std": scores["std"]}


def _classes(run: _Evaluation) -> dict[str, float]:
    """Classes of the samples by the judge's prediction. The reference mix is the real data's labels
    when they use the judge's classes, else the judge's predictions on the real images."""
    num_classes = run.fake_logits.shape[1]
    labels = run.real_labels
    usable = labels is not None and run.dataset.num_classes == num_classes
    reference = labels if usable else run.real_predictions
    histogram = class_histogram(run.fake_logits.argmax(1), num_classes, reference=reference)
    return {"classes_covered": float(histogram["classes_covered"]), "num_classes": float(num_classes),
            "classes_kl_to_reference": histogram["kl_to_reference"]}


def _sharpness(run: _Evaluation) -> dict[str, float]:
    """``genlab.metrics.image.sharpness``, in batches: mean Laplacian energy of samples / of real images."""
    def mean_energy(images: torch.Tensor) -> float:
        return float(torch.cat([laplacian_energy(Dataset.to_float(images[start:stop]))
                                for start, stop in run.batches(len(images))]).mean())

    real = mean_energy(run.real)
    if real == 0:
        raise DataError(f"'sharpness': the real images of {run.dataset.name!r} are all constant, so no ratio exists")
    return {"sharpness": mean_energy(run.fakes) / real}


def _cas(run: _Evaluation) -> dict[str, float]:
    """Classification Accuracy Score (Ravuri & Vinyals 2019): a classifier trained on labelled
    samples only, tested on the real data. Near the accuracy of one trained on real data: the
    samples carry their classes; near chance: they do not."""
    # The classifier's own training bar shows: this is the slowest metric (a judge trained on the samples).
    return {"cas": classification_accuracy_score(Dataset.to_float(run.fakes), run.fake_labels, run.dataset,
                                                 seed=run.seed, progress=run.progress)}


def _likelihood(run: _Evaluation) -> dict[str, float]:
    """ELBO and IWAE(k) (Burda et al. 2016) on the first LIKELIHOOD_IMAGES of the (shuffled) real images."""
    images = run.real[:LIKELIHOOD_IMAGES]
    elbo, iwae = [], []
    generator_seed = run.seed
    # The ELBO's one posterior sample comes from the global RNG: seeded for reproducibility inside
    # fork_rng, so the caller's RNG state (which e.g. a resumed training run depends on) is untouched.
    rng_devices = [run.device] if run.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=rng_devices):
        for start, stop in _chunks(len(images), 50):
            x = Dataset.to_float(images[start:stop]).to(run.device)
            torch.manual_seed(generator_seed + start)
            elbo.append(run.model.elbo(x).cpu())
            iwae.append(run.model.log_likelihood(x, num_samples=IWAE_K, seed=generator_seed + start).cpu())
            run.step("likelihood", 1)
    elbo_mean, iwae_mean = torch.cat(elbo).mean(), torch.cat(iwae).mean()
    return {"elbo_nats": float(elbo_mean), "iwae_nats": float(iwae_mean),
            "bits_per_dim": float(bits_per_dim(iwae_mean, run.model.image_shape)),
            "elbo_bits_per_dim": float(bits_per_dim(elbo_mean, run.model.image_shape)),
            "iwae_k": float(IWAE_K), "likelihood_images": float(len(images))}


def _reconstruction(run: _Evaluation) -> dict[str, float]:
    """Decode(encode(x)) (posterior mean, decoder mean) against x, on real images."""
    images = Dataset.to_float(run.real[:RECONSTRUCTION_IMAGES])
    mse, psnrs, ssims = [], [], []
    with torch.no_grad():
        for start, stop in run.batches(len(images)):
            x = images[start:stop]
            x_hat = run.model.decode(run.model.encode(x.to(run.device))).cpu().clamp(0, 1)
            mse.append((x_hat - x).square().flatten(1).mean(1))
            psnrs.append(torch.as_tensor(psnr(x_hat, x)).reshape(-1).double())
            ssims.append(torch.as_tensor(ssim(x_hat, x)).reshape(-1).double())
            run.step("reconstruction", 1)
    return {"recon_mse": float(torch.cat(mse).mean()), "recon_psnr": float(torch.cat(psnrs).mean()),
            "recon_ssim": float(torch.cat(ssims).mean())}


def _smoothness(run: _Evaluation) -> dict[str, float]:
    """Slerp paths between random pairs of codes, decoded and seen through the feature space.

    VAE: codes are the posterior means of pairs of real images; GAN: pairs of z ~ N(0, I) (a
    conditional GAN keeps one class along each path). ``evenness`` and ``straightness`` come from
    ``genlab.metrics.latent_smoothness`` over the paths' features (see there)."""
    paths, steps = min(SMOOTHNESS_PATHS, len(run.real) // 2 if run.model.kind == "vae" else SMOOTHNESS_PATHS), SMOOTHNESS_STEPS
    generator = torch.Generator().manual_seed(run.seed + 1)
    model = run.model
    with torch.no_grad():
        if hasattr(model, "encode"):
            pairs = Dataset.to_float(run.real[: 2 * paths]).to(run.device)
            codes = model.encode(pairs).cpu()
        else:
            codes = torch.randn(2 * paths, model.config.latent_dim, generator=generator)
        path_codes = torch.stack([interpolation_path(codes[2 * i], codes[2 * i + 1], steps) for i in range(paths)])
        flat = path_codes.reshape(paths * steps, -1)
        labels = (torch.arange(paths) % run.num_classes).repeat_interleave(steps) if run.num_classes else None
        frames = []
        for start, stop in run.batches(len(flat)):
            z = flat[start:stop].to(run.device)
            if hasattr(model, "decode"):
                frames.append(model.decode(z).cpu())
            else:
                frames.append(_generate(model, z, None if labels is None else labels[start:stop]))
        features = run.featurize(torch.cat(frames).clamp(0, 1), "smoothness paths")
    scores = latent_smoothness(features.reshape(paths, steps, -1))
    return {"smoothness_evenness": float(scores["evenness"]), "smoothness_straightness": float(scores["straightness"])}


def _generate(model: Any, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """G(z) with G in eval mode (batch-norm running statistics), as ``GAN.sample`` does."""
    with eval_mode(model.generator):
        return model.generate(z, labels).cpu()


def _chunks(count: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, count)) for start in range(0, count, size)]


# ----- when each applies -----


def _needs_model(name: str, what: str, test: Callable[[Any], bool]) -> Callable[[_Evaluation], str | None]:
    def applies(run: _Evaluation) -> str | None:
        if run.model is None:
            return f"{name!r} needs a model ({what}), not a folder of images"
        return None if test(run.model) else f"{name!r} needs {what}; {run.model_text} has none"

    return applies


def _cas_applies(run: _Evaluation) -> str | None:
    if run.images is not None:
        if run.images.labels is None:
            return "'cas' needs labelled images (one sub-folder per class); these images have no labels"
        classes = run.images.num_classes
    elif not run.num_classes:
        has = "has num_classes=0" if hasattr(run.model.config, "num_classes") else "draws no classes"
        return f"'cas' needs a conditional model; {run.model_text} {has}"
    else:
        classes = run.num_classes
    if run.dataset.labels is None or run.dataset.num_classes != classes:
        return (f"'cas' needs real data labelled with the same {classes} classes; {run.dataset.name!r} has "
                f"{run.dataset.num_classes if run.dataset.labels is not None else 'no'} labelled classes")
    return None


def _likelihood_steps(run: _Evaluation) -> int:
    return len(_chunks(min(LIKELIHOOD_IMAGES, len(run.real)), 50))


def _smoothness_steps(run: _Evaluation) -> int:
    return len(run.batches(SMOOTHNESS_PATHS * SMOOTHNESS_STEPS))


_JUDGE_NEEDS = ("fake_features", "real_features")
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("fid", "Fréchet distance of judge features, samples vs real (Heusel et al. 2017); lower is better",
           _fid, needs=("fakes", *_JUDGE_NEEDS)),
    Metric("kid", f"kernel distance (unbiased MMD², Bińkowski et al. 2018), mean ± std over {KID_SUBSETS} subsets "
                  f"of min({KID_SUBSET_SIZE}, N/2); ~0 for matching distributions", _kid, needs=("fakes", *_JUDGE_NEEDS)),
    Metric("prdc", f"precision/recall/density/coverage, k={PRDC_K} nearest neighbours (Naeem et al. 2020)",
           _prdc, needs=("fakes", *_JUDGE_NEEDS)),
    Metric("inception_score", f"Inception Score with the judge's classes, {INCEPTION_SCORE_SPLITS} splits; 1..K",
           _inception_score, needs=("fakes", "fake_logits")),
    Metric("classes", "classes covered by the samples (judge's predictions) and KL(sample mix ‖ real mix)",
           _classes, needs=("fakes", "fake_logits")),
    Metric("sharpness", "Laplacian energy of samples relative to real images (1.0 = as sharp as the data)",
           _sharpness, needs=("fakes",)),
    Metric("cas", "Classification Accuracy Score: accuracy on the real data of a judge trained (train_judge's "
                  "recipe) on the labelled samples; the slowest metric", 
           _cas, needs=("fakes",), applies=_cas_applies, default=False),
    Metric("likelihood", f"ELBO and IWAE(k={IWAE_K}) in nats and bits/dim on {LIKELIHOOD_IMAGES} real images",
           _likelihood, applies=_needs_model("likelihood", "a likelihood bound (a VAE)", lambda m: hasattr(m, "log_likelihood")),
           steps=_likelihood_steps),
    Metric("reconstruction", f"MSE/PSNR/SSIM of decode(encode(x)) on {RECONSTRUCTION_IMAGES} real images",
           _reconstruction, applies=_needs_model("reconstruction", "an encoder", lambda m: hasattr(m, "encode")),
           steps=lambda run: len(run.batches(min(RECONSTRUCTION_IMAGES, len(run.real))))),
    Metric("smoothness", f"evenness/straightness of {SMOOTHNESS_PATHS} slerp paths of {SMOOTHNESS_STEPS} frames "
                         "in feature space", _smoothness,
           applies=_needs_model("smoothness", "a latent space", lambda m: hasattr(m, "encode") or hasattr(m, "generate")),
           steps=lambda run: _smoothness_steps(run) * 2),
)}
_USES_FEATURES = {"fid", "kid", "prdc", "smoothness"}  # the feature space: judge or inception
_USES_JUDGE_LOGITS = {"inception_score", "classes"}


# ---------------------------------------------------------------------------------------------- the API


def evaluate(model: Any, dataset: Dataset, metrics: Sequence[str] | str | None = None, num_samples: int = 10000, *,
             judge: Any = None, features: str = "judge", seed: int = 0, batch_size: int = 500,
             progress: bool = True, timings: dict[str, float] | None = None) -> dict[str, float]:
    """Measure ``model`` against the real images of ``dataset`` (usually the test split).

    ``metrics``: names from ``METRICS`` (a list, or one comma-separated string); None = every
    metric that applies to this model, except ``cas`` (minutes of classifier training: name it). ``num_samples`` samples are drawn (and at most that many
    real images used). ``judge``: a Judge, a judge run directory, or None for the shipped
    Fashion-MNIST judge (1×28×28 only). ``features="inception"`` computes fid/kid/prdc/smoothness
    in torch-fidelity's InceptionV3 features instead (installed and with local weights, or an error).
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
    run = _Evaluation(model, dataset, images=None, judge=None, features="judge", num_samples=2, seed=0, batch_size=1,
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
    run = _Evaluation(model, dataset, images=images, judge=judge, features=features, num_samples=num_samples,
                      seed=seed, batch_size=batch_size, progress=progress)
    names = parse_metrics(metrics)
    if names is None:
        names = [name for name, metric in METRICS.items() if metric.default and metric.applies(run) is None]
        if features == "inception" and judge is None and tuple(dataset.image_shape) != (1, 28, 28):
            names = [name for name in names if name not in _USES_JUDGE_LOGITS]  # no judge; only asked for Inception
    else:
        for name in names:
            reason = METRICS[name].applies(run)
            if reason is not None:
                raise ConfigError(reason)
    _check_sizes(run, names)
    # Resolve the judge / Inception network before any expensive work, so a bad --judge fails at once.
    if any(name in _USES_FEATURES for name in names):
        run.feature_extractor  # noqa: B018
    if any(name in _USES_JUDGE_LOGITS for name in names):
        run.judge  # noqa: B018

    with eval_mode(*([model] if model is not None else [])):
        needs = list(dict.fromkeys(need for name in names for need in METRICS[name].needs))
        if "fake_logits" in needs and run._logits_of_features():  # logits come from the features
            needs.insert(needs.index("fake_logits"), "fake_features")
            needs = list(dict.fromkeys(needs))
        total = sum(run.prepare_steps(need) for need in needs) + sum(METRICS[name].steps(run) for name in names)
        with tqdm(total=total, desc="evaluate", unit="step", disable=not progress, leave=False, dynamic_ncols=True) as bar:
            run.bar = bar
            timings = {} if timings is None else timings
            for need in needs:
                clock = time.perf_counter()
                getattr(run, need)
                timings[need] = time.perf_counter() - clock
            results: dict[str, float] = {}
            for name in names:
                before, clock = bar.n, time.perf_counter()
                bar.set_postfix_str(name)
                results.update(METRICS[name].compute(run))
                timings[name] = time.perf_counter() - clock
                bar.update(max(0, METRICS[name].steps(run) - (bar.n - before)))  # metrics that count their own steps
            run.bar = None
    results["num_samples"] = float(len(run.fakes)) if "fakes" in run.__dict__ else float(num_samples)
    results["num_real"] = float(len(run.real))
    results["seconds"] = round(time.perf_counter() - started, 2)
    return {key: float(value) for key, value in results.items()}


def _check_dataset(dataset: Dataset, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"expected the real images as a genlab Dataset (genlab.load_dataset), got {type(dataset).__name__}")
    if dataset.is_points or tuple(dataset.image_shape) != tuple(shape):
        data_shape = "×".join(map(str, dataset.image_shape))
        raise DataError(f"{what} but {dataset.name!r} holds {data_shape} "
                        f"{'points' if dataset.is_points else 'images'}; compare with data of the model's shape")
    if len(dataset) < 2:
        raise DataError(f"{dataset.name!r} holds {len(dataset)} image(s); evaluation needs at least 2")


def _check_sizes(run: _Evaluation, names: list[str]) -> None:
    """Errors before the expensive part: sample counts too small for a metric's estimator."""
    n_fake = run.num_samples if run.images is None else min(run.num_samples, len(run.images))
    n_real = len(run.real)
    for name in names:
        if name == "prdc" and min(n_fake, n_real) <= PRDC_K:
            raise ConfigError(f"'prdc' with k={PRDC_K} needs more than {PRDC_K} samples and real images, got "
                              f"{n_fake} and {n_real}; raise -n / num_samples")
        if name in ("fid", "kid") and min(n_fake, n_real) < 2:
            raise ConfigError(f"{name!r} needs at least 2 samples and 2 real images, got {n_fake} and {n_real}")


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
