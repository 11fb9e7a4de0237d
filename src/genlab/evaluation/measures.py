"""How each named metric is computed from a ``Session``: one function per metric, returning flat
names → numbers. The formulas are the pure functions of ``genlab.metrics`` (and ``cas``); these
only choose the inputs (samples, real images, features, logits) and the protocol's sizes.
"""
from __future__ import annotations

from typing import Any

import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError
from genlab.evaluation.cas import classification_accuracy_score
from genlab.evaluation.session import Session
from genlab.metrics.distribution import (
    class_histogram,
    frechet_distance,
    inception_score,
    kernel_distance,
    precision_recall_density_coverage,
)
from genlab.metrics.image import laplacian_energy, latent_smoothness, psnr, ssim
from genlab.models.vae import bits_per_dim
from genlab.nn.modes import eval_mode
from genlab.tools.latent import interpolation_path

# Protocol sizes, documented in the registry's summaries and the README.
PRDC_K = 5  # Naeem et al. 2020 use k = 5 with 10,000 samples
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Bińkowski et al. 2018's protocol
INCEPTION_SCORE_SPLITS = 10  # Salimans et al. 2016
LIKELIHOOD_IMAGES, IWAE_K = 1000, 100  # IWAE(k=100) on 1,000 real images: ~10^5 decodes
LIKELIHOOD_BATCH = 50  # images per IWAE pass: 50 × k=100 decodes at once
RECONSTRUCTION_IMAGES = 1000
SMOOTHNESS_PATHS, SMOOTHNESS_STEPS = 100, 16  # 100 slerp paths of 16 frames: 1,600 decodes


def fid(run: Session) -> dict[str, float]:
    return {"fid": frechet_distance(run.real_features, run.fake_features)}


def kid(run: Session) -> dict[str, float]:
    # Subsets of half the smaller set at most: subsets as large as the sets would all be the same
    # set, and the std over them 0 (meaningless).
    size = max(2, min(KID_SUBSET_SIZE, min(len(run.real_features), len(run.fake_features)) // 2))
    scores = kernel_distance(run.real_features, run.fake_features, num_subsets=KID_SUBSETS, subset_size=size, seed=run.seed)
    return {"kid_mean": scores["mean"], "kid_std": scores["std"]}


def prdc(run: Session) -> dict[str, float]:
    return precision_recall_density_coverage(run.real_features, run.fake_features, k=PRDC_K)


def inception_score_of_judge(run: Session) -> dict[str, float]:
    scores = inception_score(run.fake_logits, splits=min(INCEPTION_SCORE_SPLITS, len(run.fake_logits)))
    return {"inception_score_mean": scores["mean"], "inception_score_std": scores["std"]}


def classes(run: Session) -> dict[str, float]:
    """Classes of the samples by the judge's prediction. The reference mix is the real data's labels
    when they use the judge's classes, else the judge's predictions on the real images."""
    num_classes = run.fake_logits.shape[1]
    labels = run.real_labels
    usable = labels is not None and run.dataset.num_classes == num_classes
    reference = labels if usable else run.real_predictions
    histogram = class_histogram(run.fake_logits.argmax(1), num_classes, reference=reference)
    return {"classes_covered": float(histogram["classes_covered"]), "num_classes": float(num_classes),
            "classes_kl_to_reference": histogram["kl_to_reference"]}


def sharpness(run: Session) -> dict[str, float]:
    """``genlab.metrics.image.sharpness``, in batches: mean Laplacian energy of samples / of real images."""
    def mean_energy(images: torch.Tensor) -> float:
        return float(torch.cat([laplacian_energy(Dataset.to_float(images[start:stop]))
                                for start, stop in run.batches(len(images))]).mean())

    real = mean_energy(run.real)
    if real == 0:
        raise DataError(f"'sharpness': the real images of {run.dataset.name!r} are all constant, so no ratio exists")
    return {"sharpness": mean_energy(run.fakes) / real}


def cas(run: Session) -> dict[str, float]:
    """Classification Accuracy Score (Ravuri & Vinyals 2019): a classifier trained on labelled
    samples only, tested on the real data. Near the accuracy of one trained on real data: the
    samples carry their classes; near chance: they do not. It announces its cost on stderr first
    (minutes: a judge is trained), and the classifier's own training bar shows with ``progress``."""
    return {"cas": classification_accuracy_score(Dataset.to_float(run.fakes), run.fake_labels, run.dataset,
                                                 seed=run.seed, progress=run.progress)}


def likelihood(run: Session) -> dict[str, float]:
    """ELBO and IWAE(k) (Burda et al. 2016) on the first LIKELIHOOD_IMAGES of the (shuffled) real images."""
    images = run.real[:LIKELIHOOD_IMAGES]
    elbo, iwae = [], []
    # The ELBO's one posterior sample comes from the global RNG: seeded for reproducibility inside
    # fork_rng, so the caller's RNG state (which e.g. a resumed training run depends on) is untouched.
    rng_devices = [run.device] if run.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=rng_devices):
        for start, stop in likelihood_batches(len(images)):
            x = Dataset.to_float(images[start:stop]).to(run.device)
            torch.manual_seed(run.seed + start)
            elbo.append(run.model.elbo(x).cpu())
            iwae.append(run.model.log_likelihood(x, num_samples=IWAE_K, seed=run.seed + start).cpu())
            run.step("likelihood", 1)
    elbo_mean, iwae_mean = torch.cat(elbo).mean(), torch.cat(iwae).mean()
    return {"elbo_nats": float(elbo_mean), "iwae_nats": float(iwae_mean),
            "bits_per_dim": float(bits_per_dim(iwae_mean, run.model.image_shape)),
            "elbo_bits_per_dim": float(bits_per_dim(elbo_mean, run.model.image_shape)),
            "iwae_k": float(IWAE_K), "likelihood_images": float(len(images))}


def likelihood_batches(count: int) -> list[tuple[int, int]]:
    return [(start, min(start + LIKELIHOOD_BATCH, count)) for start in range(0, count, LIKELIHOOD_BATCH)]


def reconstruction(run: Session) -> dict[str, float]:
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


def smoothness(run: Session) -> dict[str, float]:
    """Slerp paths between random pairs of codes, decoded and seen through the feature space.

    VAE: codes are the posterior means of pairs of real images; GAN: pairs of z ~ N(0, I) (a
    conditional GAN keeps one class along each path). ``evenness`` and ``straightness`` come from
    ``genlab.metrics.latent_smoothness`` over the paths' features (see there)."""
    model, steps = run.model, SMOOTHNESS_STEPS
    paths = min(SMOOTHNESS_PATHS, len(run.real) // 2) if hasattr(model, "encode") else SMOOTHNESS_PATHS
    with torch.no_grad():
        if hasattr(model, "encode"):
            codes = model.encode(Dataset.to_float(run.real[: 2 * paths]).to(run.device)).cpu()
        else:
            codes = torch.randn(2 * paths, model.config.latent_dim, generator=torch.Generator().manual_seed(run.seed + 1))
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
