"""The metrics genlab computes, addressed by name (as StyleGAN2-ADA's are): ``METRICS``, name → ``Metric``.

Each entry says what it measures, which cached quantities of the ``Session`` it reads (so they are
made first, under one progress bar), when it applies, its share of the progress bar, whether it
runs by default (``cas`` does not: it trains a classifier, minutes, so it runs only when named), and
the fewest samples (and real images) its estimator means anything on: below that evaluate refuses
with a one-line error naming the metric, the minimum and what was given; below ``reliable`` it warns
that the number is noisy or biased.

PRDC measured in the shipped judge's features, Fashion-MNIST-mini test images against disjoint test
images, against uniform noise and against 7×7-box-blurred test images (k = 5): with 10 per set, noise
and blurred images score precision 1.00 and coverage 1.00, as real images do (what ``evaluate -n 10
--metrics prdc`` reported); at 100, coverage tells them apart (real 0.93, blurred 0.20, noise 0.07)
while precision still leans to 1 (0.99, 0.79, 0.96); at 500, precision does too (0.96, 0.44, 0.20).
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
    # The fewest images the estimator means anything on, and why: (count, reason); below, evaluate refuses.
    minimum: Callable[[Session], tuple[int, str]] = lambda run: (1, "")
    counts: str = "both"  # what the minimum counts: "both" (samples and real images), "samples" or "real"
    reliable: tuple[int, str] | None = None  # below this many, a warning: (count, what goes wrong)


def _fid_minimum(run: Session) -> tuple[int, str]:
    width = run.feature_dim
    return width + 1, f"a full-rank covariance of its {width} features"


def _classes_minimum(run: Session) -> tuple[int, str]:
    classes = int(getattr(run.judge, "num_classes", 10))
    return 10 * classes, f"about 10 per class of the judge's {classes}"


def _cas_minimum(run: Session) -> tuple[int, str]:
    classes = run.images.num_classes if run.images is not None else run.num_classes
    return 10 * max(classes, 1), f"about 10 labelled samples per class of {classes} to train a classifier on"


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
# Sample-size floors (per set: samples and real images). PRDC: 20 per neighbour, k = 5; KID: subsets of 25.
PRDC_MINIMUM, PRDC_RELIABLE = 20 * PRDC_K, 1000
KID_MINIMUM = 50
FID_RELIABLE = 2000
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("fid", "Fréchet distance of judge features, samples vs real (Heusel et al. 2017); lower is better; "
                  "needs more samples than features (129 with the shipped judge, 2049 with inception)",
           measures.fid, needs=_FEATURES, minimum=_fid_minimum,
           reliable=(FID_RELIABLE, "FID is biased upwards at small N: compare FIDs only at equal N")),
    Metric("kid", f"kernel distance (unbiased MMD², Bińkowski et al. 2018), mean ± std over {KID_SUBSETS} subsets "
                  f"of min({KID_SUBSET_SIZE}, N/2); ~0 for matching distributions; N >= {KID_MINIMUM}", measures.kid,
           needs=_FEATURES, minimum=lambda run: (KID_MINIMUM, f"subsets of at least {KID_MINIMUM // 2} images")),
    Metric("prdc", f"precision/recall/density/coverage, k={PRDC_K} nearest neighbours (Naeem et al. 2020); "
                   f"N >= {PRDC_MINIMUM}",
           measures.prdc, needs=_FEATURES,
           minimum=lambda run: (PRDC_MINIMUM, f"in fewer, the k={PRDC_K} nearest-neighbour balls cover most of each set and "
                                              "precision, recall and coverage approach 1 for any samples"),
           reliable=(PRDC_RELIABLE, f"the k={PRDC_K} nearest-neighbour balls are wide, so the scores lean towards 1")),
    Metric("inception_score", f"Inception Score with the judge's classes, {INCEPTION_SCORE_SPLITS} splits; 1..K",
           measures.inception_score_of_judge, needs=("fakes", "fake_logits"), counts="samples",
           minimum=lambda run: (10 * INCEPTION_SCORE_SPLITS, f"10 samples in each of its {INCEPTION_SCORE_SPLITS} splits")),
    Metric("classes", "classes covered by the samples (judge's predictions) and KL(sample mix ‖ real mix)",
           measures.classes, needs=("fakes", "fake_logits"), minimum=_classes_minimum),
    Metric("sharpness", "Laplacian energy of samples relative to real images (1.0 = as sharp as the data)",
           measures.sharpness, needs=("fakes",)),
    Metric("cas", "Classification Accuracy Score: accuracy on the real data of a judge trained (train_judge's "
                  "recipe) on the labelled samples; minutes of training, so only when named",
           measures.cas, needs=("fakes",), applies=_cas_applies, default=False, counts="samples", minimum=_cas_minimum),
    Metric("likelihood", f"ELBO and IWAE(k={IWAE_K}) in nats and bits/dim on {LIKELIHOOD_IMAGES} real images",
           measures.likelihood, steps=_likelihood_steps, counts="real",
           applies=_needs_model("likelihood", "a likelihood bound (a VAE)", lambda m: hasattr(m, "log_likelihood"))),
    Metric("reconstruction", f"MSE/PSNR/SSIM of decode(encode(x)) on {RECONSTRUCTION_IMAGES} real images",
           measures.reconstruction, steps=_reconstruction_steps, counts="real",
           applies=_needs_model("reconstruction", "an encoder", lambda m: hasattr(m, "encode"))),
    Metric("smoothness", f"evenness/straightness of {SMOOTHNESS_PATHS} slerp paths of {SMOOTHNESS_STEPS} frames "
                         "in feature space", measures.smoothness, steps=_smoothness_steps,
           applies=_needs_model("smoothness", "a latent space", lambda m: hasattr(m, "encode") or hasattr(m, "generate"))),
)}
USES_FEATURES = {"fid", "kid", "prdc", "smoothness"}  # the feature space: judge or inception
USES_JUDGE_LOGITS = {"inception_score", "classes"}


def sample_counts(run: Session, metric: Metric) -> int:
    """How many images ``metric`` has by what its minimum counts: the smaller of samples and real images, or one of them."""
    return {"both": min(run.num_fakes, len(run.real)), "samples": run.num_fakes, "real": len(run.real)}[metric.counts]

__all__ = ["METRICS", "USES_FEATURES", "USES_JUDGE_LOGITS", "Metric", "sample_counts"]
