"""Distribution metrics (FID, KID, PRDC, IS, class histogram) and image metrics (sharpness, PSNR, SSIM, paths).

Reference implementations checked against: scipy (matrix square root), torchmetrics 1.x (FID, KID, PSNR, SSIM),
the authors' ``prdc`` package, and hand NumPy versions of the papers' formulas.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from genlab.errors import ConfigError
from genlab.metrics import (
    class_histogram,
    distribution,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    inception_score,
    kernel_distance,
    laplacian_energy,
    latent_smoothness,
    precision_recall_density_coverage,
    psnr,
    sharpness,
    ssim,
)

pytestmark = pytest.mark.numerics  # `make test` runs these again under other CPU kernels


def gaussian(n: int, width: int, seed: int, *, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, width, generator=generator) * scale + shift


def correlated(n: int, width: int, seed: int) -> torch.Tensor:
    """Gaussian features with a random (non-diagonal) covariance and mean."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(width, width, generator=generator, dtype=torch.float64)
    shift = torch.randn(width, generator=generator, dtype=torch.float64)
    return torch.randn(n, width, generator=generator, dtype=torch.float64) @ mixing + shift


class Flatten(torch.nn.Module):
    """A torchmetrics "feature extractor" whose features are the pixels, so we control the features exactly."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # torchmetrics reads this instead of probing with a dummy image

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1).double()


def as_images(features: torch.Tensor) -> torch.Tensor:
    """N×8 features as N×1×2×4 "images" for torchmetrics' image-metric interface."""
    return features.reshape(len(features), 1, 2, 4)


# ------------------------------------------------------------------------------------------- FID


def test_feature_statistics_are_float64_mean_and_unbiased_covariance():
    x = gaussian(50, 4, seed=0)
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == torch.float64 and mu.shape == (4,) and sigma.shape == (4, 4)
    # float64 sums of 50 terms of size ~1: ≲ 50·ε ≈ 1e-14 absolute, i.e. ≲ 1e-13 relative for the means (≥ 0.05)
    # and ≲ 1e-11 for the covariances (the smallest entry is ~0.005)
    np.testing.assert_allclose(mu.numpy(), x.double().numpy().mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.double().numpy(), rowvar=False, ddof=1), rtol=1e-10)


@pytest.mark.parametrize(("n", "width"), [(300, 8), (10, 32)])  # the second has a rank-deficient covariance
def test_fid_of_a_set_with_itself_is_zero(n, width):
    x = correlated(n, width, seed=1)
    scale = float(feature_statistics(x)[1].trace())
    # Rank-deficient: each of the ~23 zero eigenvalues of M = Σ^½ΣΣ^½ comes out of eigh as ~ε‖Σ‖², which adds
    # √ε‖Σ‖ ≈ 1.5e-8‖Σ‖ to Tr(M^½): ≲ 1e-6 of the trace in all (full rank: ~d·ε).
    assert abs(frechet_distance(x, x)) < 1e-6 * scale


def test_fid_from_statistics_matches_closed_form_for_isotropic_gaussians():
    # N(0, I) vs N(m, s²I): ‖m‖² + Tr(I + s²I − 2sI) = ‖m‖² + d(1 − s)²
    d, s = 16, 0.3
    m = torch.linspace(-1, 2, d, dtype=torch.float64)
    expected = float(m.square().sum()) + d * (1 - s) ** 2
    eye = torch.eye(d, dtype=torch.float64)
    value = frechet_distance_from_statistics(torch.zeros(d), eye, m, s ** 2 * eye)
    assert value == pytest.approx(expected, rel=1e-12)  # Σa = I, no zero eigenvalue: well conditioned, ~d·ε


def test_fid_from_statistics_matches_closed_form_for_commuting_covariances():
    # Σa = Q diag(a) Qᵀ, Σb = Q diag(b) Qᵀ commute: Tr(Σa + Σb − 2(ΣaΣb)^½) = Σ (√a − √b)²
    generator = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=generator, dtype=torch.float64))
    a = torch.tensor([4.0, 1.0, 0.25, 9.0, 2.0, 0.0], dtype=torch.float64)  # one zero eigenvalue
    b = torch.tensor([1.0, 1.0, 1.0, 0.5, 3.0, 2.0], dtype=torch.float64)
    mu_a, mu_b = torch.zeros(6), torch.full((6,), 0.5)
    value = frechet_distance_from_statistics(mu_a, q @ torch.diag(a) @ q.T, mu_b, q @ torch.diag(b) @ q.T)
    # The zero eigenvalue of Σa comes out of eigh as η ≲ d·ε·‖Σa‖ (sign and size depend on the LAPACK kernel),
    # and √η, not 0, enters Σa^½: Tr((ΣaΣb)^½) gains up to √(η·b₆) (b₆ = 2 on that eigenvector), so the
    # honest accuracy is 2√(d·ε·‖Σa‖·b₆) ≈ 3e-7 absolute (three MKL code paths gave errors of 0, −5.7e-8, −7.0e-8).
    tolerance = 2 * math.sqrt(6 * torch.finfo(torch.float64).eps * 9.0 * 2.0)
    assert value == pytest.approx(6 * 0.25 + float((a.sqrt() - b.sqrt()).square().sum()), abs=tolerance)


def test_fid_matches_scipy_sqrtm_formula():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = correlated(400, 8, seed=3), correlated(300, 8, seed=4)
    mu_a, sigma_a = a.mean(0).numpy(), np.cov(a.numpy(), rowvar=False)
    mu_b, sigma_b = b.mean(0).numpy(), np.cov(b.numpy(), rowvar=False)
    root = scipy_linalg.sqrtm(sigma_a @ sigma_b).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a + sigma_b - 2 * root)
    # κ(Σb) ≈ 2e4: scipy's Schur sqrtm and our eigh route are each good to ~κ·d·ε ≈ 1e-11 relative
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-8)


def test_fid_matches_torchmetrics_with_a_custom_feature_extractor():
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    real, fake = correlated(200, 8, seed=5), correlated(150, 8, seed=6) * 0.8 + 0.3
    metric = fid_module.FrechetInceptionDistance(feature=Flatten(8))
    metric.update(as_images(real), real=True)
    metric.update(as_images(fake), real=False)
    expected = float(metric.compute())
    assert expected > 1.0  # the sets differ: this is not a comparison of two zeros
    # Both float64: torchmetrics' one-pass covariance (Σxxᵀ − nμμᵀ, ‖μ‖²/σ² ≤ 2 here) and eigvals of ΣaΣb
    # (κ ≤ 2e3) are good to ~1e-11 relative.
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)


def test_fid_rejects_bad_inputs():
    with pytest.raises(ConfigError, match=r"features_a must be a 2-D tensor N×F, got shape \(3, 4, 5\)"):
        frechet_distance(torch.zeros(3, 4, 5), torch.zeros(3, 4))
    with pytest.raises(ConfigError, match="features_b needs at least 2 row"):
        frechet_distance(torch.zeros(3, 4), torch.zeros(1, 4))
    with pytest.raises(ConfigError, match="same number of features, got 4 and 5"):
        frechet_distance(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ConfigError, match="features_a must be finite"):
        frechet_distance(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]), torch.zeros(3, 2))
    with pytest.raises(ConfigError, match=r"sigma_b must have shape \(2, 2\)"):
        frechet_distance_from_statistics(torch.zeros(2), torch.eye(2), torch.zeros(2), torch.eye(3))


# ------------------------------------------------------------------------------------------- KID


def torchmetrics_kid(real: torch.Tensor, fake: torch.Tensor, **kwargs) -> tuple[float, float]:
    kid_module = pytest.importorskip("torchmetrics.image.kid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer"
        metric = kid_module.KernelInceptionDistance(feature=Flatten(8), **kwargs)
    metric.update(as_images(real), real=True)
    metric.update(as_images(fake), real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


def test_kid_matches_torchmetrics_on_full_sets():
    # With subset_size = N every subset is the whole set (permuted), so both must agree up to rounding.
    real, fake = correlated(120, 8, seed=7), correlated(120, 8, seed=8) * 0.9 + 0.2
    expected_mean, _ = torchmetrics_kid(real, fake, subsets=1, subset_size=120)
    assert expected_mean > 0.1
    for num_subsets in (1, 3):
        result = kernel_distance(real, fake, num_subsets=num_subsets, subset_size=120, seed=num_subsets)
        # float64 sums of 120² kernel values (≤ 6e4) that cancel to the mean (~160) by a factor Σ|k|/MMD² ≈ 4, in
        # another order (permuted subsets): ~log₂(n²)·4·ε ≈ 1e-14 relative.
        assert result["mean"] == pytest.approx(expected_mean, rel=1e-10)
        assert result["std"] == pytest.approx(0.0, abs=1e-10 * expected_mean)


def test_kid_matches_a_hand_computation_of_the_unbiased_estimator():
    x, y = gaussian(30, 5, seed=9).double(), gaussian(30, 5, seed=10, shift=0.5).double()

    def kernel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u @ v.T / 5 + 1) ** 3

    m = 30
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    expected = ((k_xx.sum() - k_xx.trace()) / (m * (m - 1)) + (k_yy.sum() - k_yy.trace()) / (m * (m - 1))
                - 2 * k_xy.mean())
    # float64 sums of 900 kernel values that cancel by Σ|k|/MMD² ≈ 10, in permuted order: ≲ 1e-13 relative
    assert kernel_distance(x, y, num_subsets=2, subset_size=m)["mean"] == pytest.approx(float(expected), rel=1e-12)


def test_kid_is_unbiased_for_samples_of_one_distribution():
    # The biased (V-statistic) estimator would sit at ~ +2·E k(x, x)/m > 0; the unbiased one averages to 0.
    same = kernel_distance(gaussian(2000, 8, seed=11), gaussian(2000, 8, seed=12), num_subsets=50, subset_size=100)
    shifted = kernel_distance(gaussian(2000, 8, seed=11), gaussian(2000, 8, seed=12, shift=0.3),
                              num_subsets=50, subset_size=100)
    assert abs(same["mean"]) < 3 * same["std"] / math.sqrt(50) + 1e-3 * shifted["mean"]
    assert abs(same["mean"]) < 0.05 * shifted["mean"]
    assert same["std"] > 0


def test_kid_subsets_are_seeded_and_subset_size_is_clipped():
    a, b = gaussian(60, 4, seed=13), gaussian(50, 4, seed=14, shift=0.2)
    first = kernel_distance(a, b, num_subsets=5, subset_size=20, seed=3)
    # exact: the same computation twice in one process (a clipped subset_size is the same computation too)
    assert first == kernel_distance(a, b, num_subsets=5, subset_size=20, seed=3)
    assert first != kernel_distance(a, b, num_subsets=5, subset_size=20, seed=4)
    assert kernel_distance(a, b, subset_size=10_000, num_subsets=2) == kernel_distance(a, b, subset_size=50,
                                                                                        num_subsets=2)
    with pytest.raises(ConfigError, match="features_b needs at least 2 row"):
        kernel_distance(a, b[:1])
    with pytest.raises(ConfigError, match="num_subsets must be an int >= 1, got 0"):
        kernel_distance(a, b, num_subsets=0)


# ------------------------------------------------------------------------------------------- PRDC


def assert_prdc_close(result: dict[str, float], expected: dict[str, float], num_real: int, num_fake: int, k: int) -> None:
    """PRDC scores count points against k-NN radii, so a distance within rounding of a radius (float32 in ``prdc``,
    another matmul kernel for another block shape) can land on the other side. One such pair moves precision by
    ≤ 1/M, density by 1/(kM), recall and coverage by ≤ 1/N: one item may differ, two may not (1.5 items of slack,
    so that the division's rounding cannot fail a single flip)."""
    one_item = {"precision": 1 / num_fake, "recall": 1 / num_real, "density": 1 / (k * num_fake), "coverage": 1 / num_real}
    assert set(result) == set(one_item)
    for name, item in one_item.items():
        assert result[name] == pytest.approx(float(expected[name]), abs=1.5 * item), name


@pytest.fixture
def force_small_chunks(monkeypatch):
    monkeypatch.setattr(distribution, "_CHUNK_ELEMENTS", 1000)  # blocks of 3-4 rows instead of one matrix


@pytest.mark.parametrize("chunked", [False, True])
def test_prdc_matches_the_prdc_package(chunked, request):
    prdc = pytest.importorskip("prdc")
    if chunked:
        request.getfixturevalue("force_small_chunks")
        assert len(distribution._row_blocks(300, 250)) == 75
    real = gaussian(300, 10, seed=15)
    fake = gaussian(250, 10, seed=16, shift=0.3, scale=1.2)
    expected = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    result = precision_recall_density_coverage(real, fake, k=5)
    assert all(isinstance(value, float) for value in result.values())
    assert_prdc_close(result, expected, len(real), len(fake), k=5)
    assert 0 < result["precision"] < 1 and 0 < result["coverage"] < 1  # a comparison of non-trivial values


def test_prdc_chunked_equals_unchunked(monkeypatch):
    real, fake = gaussian(90, 6, seed=17), gaussian(70, 6, seed=18, shift=0.5)
    whole = precision_recall_density_coverage(real, fake, k=3)
    monkeypatch.setattr(distribution, "_CHUNK_ELEMENTS", 50)
    assert_prdc_close(precision_recall_density_coverage(real, fake, k=3), whole, len(real), len(fake), k=3)


def test_prdc_computes_each_distance_matrix_once(monkeypatch):
    # real–real (the real radii), fake–fake (the fake radii), real–fake (all four scores): each pair of rows once.
    real, fake = gaussian(90, 6, seed=17), gaussian(70, 6, seed=18, shift=0.5)
    whole = precision_recall_density_coverage(real, fake, k=3)
    computed, distances = [], distribution._distances

    def counted(x, y, *norms):
        computed.append(len(x) * len(y))
        return distances(x, y, *norms)

    monkeypatch.setattr(distribution, "_distances", counted)
    monkeypatch.setattr(distribution, "_CHUNK_ELEMENTS", 1000)  # in blocks, too
    assert_prdc_close(precision_recall_density_coverage(real, fake, k=3), whole, len(real), len(fake), k=3)
    assert sum(computed) == 90 * 90 + 70 * 70 + 90 * 70


def test_prdc_of_a_set_with_itself_is_perfect():
    x = gaussian(200, 8, seed=19)
    result = precision_recall_density_coverage(x, x.clone(), k=5)
    # Exact counts: each fake's distance to its twin (≈ √rounding ≈ 1e-8) is far inside every radius, and the two
    # distance matrices are the same computation. Density is exactly 1 too: each real ball holds itself and its
    # k − 1 nearer neighbours.
    assert result == {"precision": 1.0, "recall": 1.0, "density": pytest.approx(1.0), "coverage": 1.0}


def test_prdc_of_far_apart_sets_is_zero():
    result = precision_recall_density_coverage(gaussian(50, 4, seed=20), gaussian(40, 4, seed=21, shift=100.0))
    assert result == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_rejects_too_few_samples():
    with pytest.raises(ConfigError, match="k=5 needs more than 5 real samples, got 3"):
        precision_recall_density_coverage(torch.zeros(3, 2), torch.zeros(10, 2))
    with pytest.raises(ConfigError, match="k=2 needs more than 2 fake samples, got 2"):
        precision_recall_density_coverage(torch.zeros(10, 2), torch.zeros(2, 2), k=2)
    with pytest.raises(ConfigError, match="k must be an int >= 1"):
        precision_recall_density_coverage(torch.zeros(10, 2), torch.zeros(10, 2), k=0)


# ------------------------------------------------------------------------------------------- Inception Score


def test_inception_score_of_uniform_predictions_is_one():
    result = inception_score(torch.zeros(100, 10), splits=5)
    assert result["mean"] == pytest.approx(1.0, abs=1e-12) and result["std"] == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_evenly_spread_predictions_is_the_number_of_classes():
    labels = torch.arange(1000) % 10  # each split of 100 holds every class 10 times
    logits = 1000.0 * torch.nn.functional.one_hot(labels, 10).float()  # softmax = one-hot (huge logits on purpose)
    result = inception_score(logits, splits=10)
    assert result["mean"] == pytest.approx(10.0, rel=1e-9) and result["std"] == pytest.approx(0.0, abs=1e-9)


def test_inception_score_matches_the_original_numpy_computation():
    logits = 3 * gaussian(500, 7, seed=22).double()
    preds = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(axis=1, keepdims=True)
    scores = []
    for i in range(4):  # Salimans et al.'s improved-gan inception_score: consecutive splits, np.std
        part = preds[i * len(preds) // 4:(i + 1) * len(preds) // 4]
        kl = part * (np.log(part) - np.log(part.mean(axis=0, keepdims=True)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    result = inception_score(logits, splits=4)
    assert result["mean"] == pytest.approx(float(np.mean(scores)), rel=1e-12)
    assert result["std"] == pytest.approx(float(np.std(scores)), rel=1e-9)
    assert result["std"] > 0
    with pytest.raises(ConfigError, match="splits=10 needs at least 10 samples, got 4"):
        inception_score(logits[:4])


# ------------------------------------------------------------------------------------------- class histogram


def test_class_histogram_of_a_collapsed_generator():
    reference = torch.arange(1000) % 10  # uniform real classes
    result = class_histogram(torch.full((200,), 3), 10, reference=reference)
    assert result["counts"] == [0, 0, 0, 200, 0, 0, 0, 0, 0, 0]
    assert result["fractions"][3] == 1.0 and sum(result["fractions"]) == 1.0
    assert result["classes_covered"] == 1
    assert result["kl_to_reference"] == pytest.approx(math.log(10), rel=1e-12)


def test_class_histogram_matching_reference_has_zero_kl_and_full_coverage():
    labels = torch.arange(500) % 5
    result = class_histogram(labels.flip(0), 5, reference=labels)
    assert result["classes_covered"] == 5 and result["kl_to_reference"] == pytest.approx(0.0, abs=1e-15)


def test_class_histogram_coverage_ignores_a_handful_of_strays():
    # 1000 samples over 10 classes: expected 100 each, so a class needs >= 10 samples to count.
    predicted = torch.cat([torch.zeros(982, dtype=torch.int64), torch.arange(1, 10).repeat(2)])
    assert class_histogram(predicted, 10)["classes_covered"] == 1
    predicted[:10 * 9] = torch.arange(1, 10).repeat_interleave(10)  # now 10+2 samples in each of 1..9
    assert class_histogram(predicted, 10)["classes_covered"] == 10
    assert class_histogram(torch.tensor([0, 1, 2]), 10)["classes_covered"] == 3  # small N: >= 1 sample
    assert "kl_to_reference" not in class_histogram(torch.tensor([0, 1, 2]), 10)


def test_class_histogram_kl_follows_an_imbalanced_reference_and_is_inf_for_unseen_classes():
    reference = torch.tensor([0] * 75 + [1] * 25)
    result = class_histogram(torch.tensor([0, 1]), 3, reference=reference)
    assert result["kl_to_reference"] == pytest.approx(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25))
    assert class_histogram(torch.tensor([0, 2]), 3, reference=reference)["kl_to_reference"] == math.inf
    with pytest.raises(ConfigError, match=r"predicted must hold class indices in \[0, 2\], found values in \[0, 3\]"):
        class_histogram(torch.tensor([0, 3]), 3)
    with pytest.raises(ConfigError, match="predicted must be a 1-D tensor of integer class indices"):
        class_histogram(torch.tensor([0.0, 1.0]), 3)


# ------------------------------------------------------------------------------------------- sharpness


def test_laplacian_energy_of_a_point_uses_the_valid_region_only():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    # valid 3×3 response: -4 in the middle, +1 at the 4 neighbours, 0 at the corners → mean 0, variance 20/9
    assert laplacian_energy(image).tolist() == [pytest.approx(20 / 9, rel=1e-12)]


def test_blurring_lowers_sharpness_and_constant_images_have_none():
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(23))
    box = torch.full((3, 1, 3, 3), 1 / 9)
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate"), box, groups=3)
    energy, blurred_energy = laplacian_energy(images), laplacian_energy(blurred)
    assert energy.shape == (4,) and energy.dtype == torch.float64
    assert (blurred_energy < 0.5 * energy).all()
    assert sharpness(blurred, reference=images) < 0.5
    assert sharpness(images, reference=images) == pytest.approx(1.0)
    assert sharpness(torch.full((2, 1, 8, 8), 0.7)) == 0.0
    with pytest.raises(ConfigError, match="reference images are all constant"):
        sharpness(images, reference=torch.zeros(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="images must be floats in"):
        laplacian_energy(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


# ------------------------------------------------------------------------------------------- PSNR / SSIM


def image_pair(seed: int, shape=(3, 2, 24, 20)) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.nn.functional.avg_pool2d(torch.rand(shape[0], shape[1], shape[2] + 2, shape[3] + 2,
                                                  generator=generator, dtype=torch.float64), 3, stride=1)
    b = (a + 0.1 * torch.randn(a.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return a, b


def test_psnr_matches_torchmetrics_and_is_inf_for_identical_images():
    tm = pytest.importorskip("torchmetrics.functional.image")
    a, b = image_pair(24)
    expected = tm.peak_signal_noise_ratio(b, a, data_range=1.0, reduction="none", dim=(1, 2, 3))
    torch.testing.assert_close(psnr(b, a), expected, rtol=1e-6, atol=0)  # torchmetrics' 10/ln(10) is float32
    assert psnr(a, a).tolist() == [math.inf] * 3
    with pytest.raises(ConfigError, match=r"a and b must have the same shape"):
        psnr(a, b[:2])


def test_ssim_matches_torchmetrics_on_the_valid_region():
    # torchmetrics reflect-pads by 5 and averages the whole H×W map, borders included; its full map cropped by
    # 5 pixels per side (return_full_image=True) is exactly the valid-region map of Wang et al. that we average.
    tm = pytest.importorskip("torchmetrics.functional.image")
    a, b = image_pair(25)
    _, full_map = tm.structural_similarity_index_measure(b, a, data_range=1.0, reduction="none",
                                                         return_full_image=True)
    expected = full_map[..., 5:-5, 5:-5].flatten(1).mean(dim=1)
    # float64, 121-tap windows, σ² = E[x²] − μ² cancelling by ~30 and divided by σ² + C2 ≳ 0.01: ≲ 1e-12
    torch.testing.assert_close(ssim(b, a), expected, rtol=0, atol=1e-10)
    # float32 input (then float64 inside): pixels move by ≤ 3e-8, and a pixel moves SSIM by ≲ 50× that
    torch.testing.assert_close(ssim(b.float(), a.float()), expected, rtol=0, atol=1e-5)
    padded = tm.structural_similarity_index_measure(b, a, data_range=1.0, reduction="none")
    assert (padded - expected).abs().max() > 1e-4  # the two conventions really differ: the crop is needed


def test_ssim_of_an_image_with_itself_is_one_and_less_for_a_noisy_copy():
    a, b = image_pair(26)
    torch.testing.assert_close(ssim(a, a), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (ssim(a, b) < 0.99).all()
    with pytest.raises(ConfigError, match=r"needs N, C >= 1 and H, W >= 11, got shape \(1, 1, 8, 8\)"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ConfigError, match="window_size must be an odd int"):
        ssim(a, b, window_size=10)


# ------------------------------------------------------------------------------------------- latent paths


def test_latent_smoothness_of_an_evenly_spaced_straight_line():
    start, end = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([3.0, -1.0, 5.0])
    line = start + torch.linspace(0, 1, 9)[:, None] * (end - start)  # T×F
    result = latent_smoothness(line)
    # the points are exact (multiples of 1/8) and the maths is float64: only float64 rounding is left
    assert result["evenness"] == pytest.approx(0.0, abs=1e-12)
    assert result["straightness"] == pytest.approx(1.0, rel=1e-12)
    assert latent_smoothness(torch.stack([line, 2 * line])) == pytest.approx(result, abs=1e-12)  # N×T×F


def test_latent_smoothness_sees_jumps_and_detours():
    even = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    jump = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [3.9, 0.0], [4.0, 0.0]])  # same ends, one big step
    steps = np.array([0.1, 0.1, 3.7, 0.1])
    result = latent_smoothness(jump)
    # float32 inputs: 3.9 is off by ~1e-7, which moves the evenness by ~4e-8 relative
    assert result["evenness"] == pytest.approx(steps.std() / steps.mean(), rel=1e-6)
    assert result["evenness"] > 1.0 > latent_smoothness(even)["evenness"] + 0.5
    assert result["straightness"] == pytest.approx(1.0)  # the jump is along the line
    corner = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # equal steps around a corner
    assert latent_smoothness(corner) == pytest.approx({"evenness": 0.0, "straightness": math.sqrt(2) / 2})


def test_latent_smoothness_rejects_short_or_misshapen_paths():
    with pytest.raises(ConfigError, match=r"needs T >= 3 frames per path .* got shape \(2, 4\)"):
        latent_smoothness(torch.zeros(2, 4))
    with pytest.raises(ConfigError, match=r"must be a T×F or N×T×F tensor, got shape \(5,\)"):
        latent_smoothness(torch.zeros(5))
    with pytest.raises(ConfigError, match="path_features must be finite"):
        latent_smoothness(torch.full((3, 2), float("nan")))
