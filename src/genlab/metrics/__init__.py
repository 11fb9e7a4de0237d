"""Metrics: each a pure function over tensors, returning plain numbers. (The Classification Accuracy
Score trains a classifier, so it lives with the evaluation: ``genlab.evaluation.cas``.)

    from genlab.metrics import frechet_distance, kernel_distance, precision_recall_density_coverage
    fid = frechet_distance(real_features, fake_features)             # N×F features, e.g. a classifier's
    kid = kernel_distance(real_features, fake_features)["mean"]
    prdc = precision_recall_density_coverage(real_features, fake_features, k=5)
    scores = mode_coverage(samples, centers, std)   # VEEGAN/PacGAN protocol for 2-D mixtures
    sharp = sharpness(generated_images, reference=real_images)       # 1.0 = as sharp as the real data
"""
from genlab.metrics.distribution import (
    class_histogram,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    inception_score,
    kernel_distance,
    precision_recall_density_coverage,
)
from genlab.metrics.image import (
    laplacian_energy,
    latent_smoothness,
    psnr,
    sharpness,
    ssim,
)
from genlab.metrics.modes import mode_coverage

__all__ = [
    "class_histogram",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "inception_score",
    "kernel_distance",
    "laplacian_energy",
    "latent_smoothness",
    "mode_coverage",
    "precision_recall_density_coverage",
    "psnr",
    "sharpness",
    "ssim",
]
