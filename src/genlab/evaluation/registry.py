"""The metrics genlab computes, addressed by name (as StyleGAN2-ADA's are): ``METRICS``, name → ``Metric``.

Each entry says what it measures, which cached quantities of the ``Session`` it reads (so they are
made first, under one progress bar), when it applies, its share of the progress bar, and whether it
runs by default. ``cas`` does not: it trains a classifier (minutes), so it runs only when named.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genlab.evaluation import measures
from genlab.evaluation.measures import (
    INCEPTION_SCORE_SPLITS,
    IWAE_K,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    LIKELIHOOD_IMAGES,
    PRDC_K,
    RECONSTRUCTION_IMAGES,
    SMOOTHNESS_PATHS,
    SMOOTHNESS_STEPS,
)
from genlab.evaluation.session import Session


@dataclass(frozen=True)
class Metric:
    """One named metric: what it needs from the shared session, when it applies, how it is computed."""

    name: str
    summary: str
    compute: Callable[[Session], dict[str, float]]
    needs: tuple[str, ...] = ()  # cached Session attributes to prepare first, e.g. "fake_features"
    applies: Callable[[Session], str | None] = lambda run: None  # None, or why it does not apply
    steps: Callable[[Session], int] = lambda run: 1  # its share of the progress bar
    default: bool = True  # computed when no metrics are named (False: only on request)


def _needs_model(name: str, what: str, test: Callable[[Any], bool]) -> Callable[[Session], str | None]:
    def applies(run: Session) -> str | None:
        if run.model is None:
            return f"{name!r} needs a model ({what}), not a folder of images"
        return None if test(run.model) else f"{name!r} needs {what}; {run.model_text} has none"

    return applies


def _cas_applies(run: Session) -> str | None:
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


def _likelihood_steps(run: Session) -> int:
    return len(measures.likelihood_batches(min(LIKELIHOOD_IMAGES, len(run.real))))


def _reconstruction_steps(run: Session) -> int:
    return len(run.batches(min(RECONSTRUCTION_IMAGES, len(run.real))))


def _smoothness_steps(run: Session) -> int:
    return 2 * len(run.batches(SMOOTHNESS_PATHS * SMOOTHNESS_STEPS))  # decoding, then features


_FEATURES = ("fakes", "fake_features", "real_features")
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("fid", "Fréchet distance of judge features, samples vs real (Heusel et al. 2017); lower is better",
           measures.fid, needs=_FEATURES),
    Metric("kid", f"kernel distance (unbiased MMD², Bińkowski et al. 2018), mean ± std over {KID_SUBSETS} subsets "
                  f"of min({KID_SUBSET_SIZE}, N/2); ~0 for matching distributions", measures.kid, needs=_FEATURES),
    Metric("prdc", f"precision/recall/density/coverage, k={PRDC_K} nearest neighbours (Naeem et al. 2020)",
           measures.prdc, needs=_FEATURES),
    Metric("inception_score", f"Inception Score with the judge's classes, {INCEPTION_SCORE_SPLITS} splits; 1..K",
           measures.inception_score_of_judge, needs=("fakes", "fake_logits")),
    Metric("classes", "classes covered by the samples (judge's predictions) and KL(sample mix ‖ real mix)",
           measures.classes, needs=("fakes", "fake_logits")),
    Metric("sharpness", "Laplacian energy of samples relative to real images (1.0 = as sharp as the data)",
           measures.sharpness, needs=("fakes",)),
    Metric("cas", "Classification Accuracy Score: accuracy on the real data of a judge trained (train_judge's "
                  "recipe) on the labelled samples; minutes of training, so only when named",
           measures.cas, needs=("fakes",), applies=_cas_applies, default=False),
    Metric("likelihood", f"ELBO and IWAE(k={IWAE_K}) in nats and bits/dim on {LIKELIHOOD_IMAGES} real images",
           measures.likelihood, steps=_likelihood_steps,
           applies=_needs_model("likelihood", "a likelihood bound (a VAE)", lambda m: hasattr(m, "log_likelihood"))),
    Metric("reconstruction", f"MSE/PSNR/SSIM of decode(encode(x)) on {RECONSTRUCTION_IMAGES} real images",
           measures.reconstruction, steps=_reconstruction_steps,
           applies=_needs_model("reconstruction", "an encoder", lambda m: hasattr(m, "encode"))),
    Metric("smoothness", f"evenness/straightness of {SMOOTHNESS_PATHS} slerp paths of {SMOOTHNESS_STEPS} frames "
                         "in feature space", measures.smoothness, steps=_smoothness_steps,
           applies=_needs_model("smoothness", "a latent space", lambda m: hasattr(m, "encode") or hasattr(m, "generate"))),
)}
USES_FEATURES = {"fid", "kid", "prdc", "smoothness"}  # the feature space: judge or inception
USES_JUDGE_LOGITS = {"inception_score", "classes"}

__all__ = ["METRICS", "USES_FEATURES", "USES_JUDGE_LOGITS", "Metric"]
