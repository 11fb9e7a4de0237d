"""How far generated samples are from real ones, measured on features (e.g. a classifier's penultimate layer).

Every function takes N×F feature tensors (any float dtype, any device), computes in float64 and returns
plain Python floats or dicts of floats:

- ``frechet_distance``: FID (Heusel et al. 2017), from features or from (mean, covariance) statistics.
- ``kernel_distance``: KID (Bińkowski et al. 2018), unbiased, so comparable across sample sizes.
- ``precision_recall_density_coverage``: k-NN manifold estimates (Kynkäänniemi et al. 2019; Naeem et al. 2020).
- ``inception_score``: IS (Salimans et al. 2016) from classifier logits.
- ``class_histogram``: which classes the generated samples fall into, and the reverse KL to the real class mix.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from genlab.errors import ConfigError

# Largest number of float64 distances held at once by precision_recall_density_coverage (2**23 = 64 MiB):
# 10,000×10,000 features are processed in row blocks of ~840 rows instead of one 800 MB matrix.
_CHUNK_ELEMENTS = 2 ** 23

# class_histogram: a class is covered when it gets at least this fraction of the samples it would get if the
# generated class mix matched the reference (uniform without one), and at least one sample. See class_histogram.
COVERED_FRACTION_OF_EXPECTED = 0.1


# ------------------------------------------------------------------------------------------- Fréchet distance


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (F,) and unbiased covariance (F×F, divided by N − 1) of N×F ``features``, both float64."""
    features = _check_features(features, "features", "feature_statistics", min_rows=2)
    mu = features.mean(dim=0)
    centered = features - mu
    sigma = centered.T @ centered / (len(features) - 1)
    return mu, sigma


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets: FID when the features are Inception's.

    Heusel et al. 2017 ("GANs Trained by a Two Time-Scale Update Rule ...", Eq. 6), the Fréchet (2-Wasserstein)
    distance between N(μa, Σa) and N(μb, Σb) of Dowson & Landau 1982:
        d² = ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^{1/2}).
    Means and covariances are the sample ones (``feature_statistics``). Needs at least 2 rows in each set; the
    estimate is biased upwards for small N, so compare values computed with the same numbers of samples.
    """
    features_a = _check_features(features_a, "features_a", "frechet_distance", min_rows=2)
    features_b = _check_features(features_b, "features_b", "frechet_distance", min_rows=2)
    _check_same_width(features_a, features_b, "frechet_distance")
    return frechet_distance_from_statistics(*feature_statistics(features_a), *feature_statistics(features_b))


def frechet_distance_from_statistics(mu_a: torch.Tensor, sigma_a: torch.Tensor, mu_b: torch.Tensor,
                                     sigma_b: torch.Tensor) -> float:
    """The Fréchet distance of ``frechet_distance`` from means (F,) and symmetric PSD covariances (F×F).

    Tr((Σa Σb)^{1/2}) is computed without a general matrix square root: Σa Σb is similar to the symmetric PSD
    matrix M = Σa^{1/2} Σb Σa^{1/2} (Σa^{1/2} from ``eigh``), so the trace is Σ_i sqrt(λ_i(M)) with the
    eigenvalues clamped at 0 (rounding makes tiny ones negative). In float64 this is stable even for
    rank-deficient covariances (fewer samples than features), where ``scipy.linalg.sqrtm`` can return complex
    junk. The result is clamped at 0, which a squared distance is and rounding can undershoot.
    """
    fn = "frechet_distance_from_statistics"
    mu_a, mu_b = _as_float64(mu_a, "mu_a", fn), _as_float64(mu_b, "mu_b", fn)
    sigma_a, sigma_b = _as_float64(sigma_a, "sigma_a", fn), _as_float64(sigma_b, "sigma_b", fn)
    if mu_a.dim() != 1:
        raise ConfigError(f"{fn}: mu_a must be a 1-D tensor (F,), got shape {tuple(mu_a.shape)}")
    width = len(mu_a)
    if mu_b.shape != (width,):
        raise ConfigError(f"{fn}: mu_b must have shape ({width},) like mu_a, got shape {tuple(mu_b.shape)}")
    for name, sigma in (("sigma_a", sigma_a), ("sigma_b", sigma_b)):
        if sigma.shape != (width, width):
            raise ConfigError(f"{fn}: {name} must have shape ({width}, {width}), got shape {tuple(sigma.shape)}")
    sqrt_sigma_a = _psd_sqrt(sigma_a)
    middle = sqrt_sigma_a @ sigma_b @ sqrt_sigma_a
    middle = (middle + middle.T) / 2  # symmetric up to rounding; eigvalsh reads only one triangle
    trace_sqrt_product = torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()
    distance = (mu_a - mu_b).square().sum() + sigma_a.trace() + sigma_b.trace() - 2 * trace_sqrt_product
    return max(float(distance), 0.0)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix (negative rounding-noise eigenvalues clamped to 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T


# ------------------------------------------------------------------------------------------- kernel distance


def kernel_distance(features_a: torch.Tensor, features_b: torch.Tensor, *, num_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Kernel Inception Distance: the unbiased MMD² with a cubic polynomial kernel, averaged over subsets.

    Bińkowski et al. 2018 ("Demystifying MMD GANs", §2 and the KID definition; Eq. 4 for the estimator).
    With k(x, y) = (xᵀy / F + 1)³ and subsets x_1..x_m, y_1..y_m,
        MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / m².
    Unlike FID, its expectation does not depend on m, and it is ~0 (and can be slightly negative) when both
    sets come from the same distribution.

    Each of ``num_subsets`` subsets takes ``subset_size`` rows of each set without replacement (a fresh
    permutation per subset and per set, from a ``torch.Generator`` seeded with ``seed``); ``subset_size`` is
    clipped to the smaller set. Returns "mean" and "std" (population std, ddof 0) of the subset estimates:
    the same definition as the authors' code and torchmetrics' ``KernelInceptionDistance``.
    """
    fn = "kernel_distance"
    features_a = _check_features(features_a, "features_a", fn, min_rows=2)
    features_b = _check_features(features_b, "features_b", fn, min_rows=2)
    _check_same_width(features_a, features_b, fn)
    _check_int(num_subsets, "num_subsets", fn, minimum=1)
    _check_int(subset_size, "subset_size", fn, minimum=2)
    _check_int(seed, "seed", fn, minimum=None)
    size = min(subset_size, len(features_a), len(features_b))
    generator = torch.Generator().manual_seed(seed)
    estimates = []
    for _ in range(num_subsets):
        rows_a = torch.randperm(len(features_a), generator=generator)[:size].to(features_a.device)
        rows_b = torch.randperm(len(features_b), generator=generator)[:size].to(features_b.device)
        estimates.append(_unbiased_mmd2(features_a[rows_a], features_b[rows_b]))
    scores = torch.stack(estimates)
    return {"mean": float(scores.mean()), "std": float(scores.std(correction=0))}


def _unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MMD²_u of two m×F sets with the KID kernel (xᵀy / F + 1)³ (see ``kernel_distance``)."""
    m, width = x.shape
    k_xx = (x @ x.T / width + 1) ** 3
    k_yy = (y @ y.T / width + 1) ** 3
    k_xy = (x @ y.T / width + 1) ** 3
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


# --------------------------------------------------------------------------- precision / recall / density / coverage


def precision_recall_density_coverage(real_features: torch.Tensor, fake_features: torch.Tensor, *,
                                      k: int = 5) -> dict[str, float]:
    """Fidelity (precision, density) and diversity (recall, coverage) from k-nearest-neighbour balls.

    With real X_1..X_N, fake Y_1..Y_M, B(x, r) the open ball and NND_k(·) the distance to the k-th nearest
    neighbour within the same set (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
    Generative Models", Eqs. 1–4; precision and recall are Kynkäänniemi et al. 2019's k-NN version):
        precision = 1/M Σ_j 1[Y_j ∈ ∪_i B(X_i, NND_k(X_i))]        share of fakes inside the real manifold
        recall    = 1/N Σ_i 1[X_i ∈ ∪_j B(Y_j, NND_k(Y_j))]        share of reals inside the fake manifold
        density   = 1/(kM) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))]    like precision, counts balls; ~1 when equal
        coverage  = 1/N Σ_i 1[∃ j: Y_j ∈ B(X_i, NND_k(X_i))]       share of real balls holding a fake
    Euclidean distances, strict "<", as the authors' ``prdc`` package (whose results these match).
    Distances are float64 and computed in row blocks, so 10,000 × 10,000 samples need ~64 MiB at a time.
    Each set needs more than ``k`` rows (the k-th neighbour excludes the point itself).
    """
    fn = "precision_recall_density_coverage"
    _check_int(k, "k", fn, minimum=1)
    real = _check_features(real_features, "real_features", fn, min_rows=1)
    fake = _check_features(fake_features, "fake_features", fn, min_rows=1)
    _check_same_width(real, fake, fn, names=("real_features", "fake_features"))
    for kind, features in (("real", real), ("fake", fake)):
        if len(features) <= k:
            raise ConfigError(f"{fn}: k={k} needs more than {k} {kind} samples, got {len(features)}")
    # Distances do not change under a shared shift; centring keeps ‖x‖² + ‖y‖² − 2xᵀy well conditioned.
    center = real.mean(dim=0)
    real, fake = real - center, fake - center
    real_norms, fake_norms = real.square().sum(dim=1), fake.square().sum(dim=1)
    # Three distance matrices, each computed once, block by block: real–real and fake–fake give the radii,
    # real–fake all four scores.
    real_radii = _kth_neighbour_distances(real, real_norms, k)
    fake_radii = _kth_neighbour_distances(fake, fake_norms, k)

    inside_real_ball_count = torch.zeros(len(fake), dtype=torch.int64, device=fake.device)
    real_in_fake_manifold = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    real_ball_holds_fake = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for start, stop in _row_blocks(len(real), len(fake)):
        distances = _distances(real[start:stop], fake, real_norms[start:stop], fake_norms)  # reals × all fakes
        inside = distances < real_radii[start:stop, None]
        inside_real_ball_count += inside.sum(dim=0)
        real_in_fake_manifold[start:stop] = (distances < fake_radii[None, :]).any(dim=1)
        real_ball_holds_fake[start:stop] = inside.any(dim=1)
    return {
        "precision": float((inside_real_ball_count > 0).double().mean()),
        "recall": float(real_in_fake_manifold.double().mean()),
        "density": float(inside_real_ball_count.double().mean() / k),
        "coverage": float(real_ball_holds_fake.double().mean()),
    }


def _kth_neighbour_distances(features: torch.Tensor, norms: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (the (k+1)-th smallest, counting itself at 0)."""
    radii = torch.empty(len(features), dtype=features.dtype, device=features.device)
    for start, stop in _row_blocks(len(features), len(features)):
        distances = _distances(features[start:stop], features, norms[start:stop], norms)
        rows = torch.arange(stop - start, device=features.device)
        distances[rows, rows + start] = 0.0  # exactly 0 to itself, whatever the rounding
        # The (k+1) smallest, largest last: the same value as kthvalue(k + 1), several times faster on CPU.
        radii[start:stop] = distances.topk(k + 1, dim=1, largest=False, sorted=True).values[:, -1]
    return radii


def _distances(x: torch.Tensor, y: torch.Tensor, x_norms: torch.Tensor, y_norms: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of x and of y (float64, via the Gram matrix), given their
    squared norms: sqrt(‖x‖² + ‖y‖² − 2xᵀy), in place in one len(x)×len(y) buffer."""
    squared = torch.addmm(y_norms[None, :], x, y.T, alpha=-2)
    return squared.add_(x_norms[:, None]).clamp_(min=0).sqrt_()


def _row_blocks(num_rows: int, num_columns: int) -> list[tuple[int, int]]:
    rows_per_block = max(1, _CHUNK_ELEMENTS // max(num_columns, 1))
    return [(start, min(start + rows_per_block, num_rows)) for start in range(0, num_rows, rows_per_block)]


# ------------------------------------------------------------------------------------------- classifier scores


def inception_score(logits: torch.Tensor, *, splits: int = 10) -> dict[str, float]:
    """Inception Score exp(E_x KL(p(y|x) ‖ p(y))) from N×K classifier logits (Salimans et al. 2016, §4).

    As in the authors' code, the N samples are cut in ``splits`` consecutive parts (no shuffling); in each part
    p(y) is the mean of the softmax over that part, and the score is exp of the mean KL. Returns "mean" and
    "std" (population std, ddof 0, as ``np.std`` there) over the parts. Ranges from 1 (every prediction the
    same, or every prediction uniform) to K (confident predictions spread evenly over the K classes).
    Log-probabilities come from ``log_softmax`` and p(y) from ``logsumexp``, so huge logits are fine.
    """
    fn = "inception_score"
    logits = _check_features(logits, "logits", fn, min_rows=1)
    _check_int(splits, "splits", fn, minimum=1)
    if len(logits) < splits:
        raise ConfigError(f"{fn}: splits={splits} needs at least {splits} samples, got {len(logits)}")
    log_p = torch.log_softmax(logits, dim=1)
    scores = []
    for i in range(splits):
        part = log_p[i * len(log_p) // splits:(i + 1) * len(log_p) // splits]
        log_marginal = torch.logsumexp(part, dim=0) - math.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores.append(kl.exp())
    stacked = torch.stack(scores)
    return {"mean": float(stacked.mean()), "std": float(stacked.std(correction=0))}


def class_histogram(predicted: torch.Tensor, num_classes: int, *,
                    reference: torch.Tensor | None = None) -> dict[str, Any]:
    """Class mix of generated samples (``predicted``: their class indices, e.g. a classifier's argmax).

    Returns "counts" (ints, one per class), "fractions" (counts / N), "classes_covered" and, with
    ``reference`` (the real data's labels), "kl_to_reference".

    classes_covered: a class counts when it has at least one sample *and* at least
    ``COVERED_FRACTION_OF_EXPECTED`` (10%) of the samples it would get if the generated mix matched the
    reference mix (N · p_reference(c); N / num_classes without a reference). A bare ">= 1 sample" rule
    counts a collapsed generator as covering every class as soon as the classifier misfiles a handful of
    its samples, and it grows with N; the 10% rule does not, yet any class generated at a tenth of its real
    rate or more still counts. For small N (expected count ≤ 10) it is the ">= 1 sample" rule.

    kl_to_reference: KL(p_generated ‖ p_reference) = Σ_c p_g(c) log(p_g(c) / p_r(c)) in nats, with 0·log 0 = 0.
    This is the reverse KL used for mode collapse (as PacGAN §5.1 and ``mode_coverage``): missing classes in
    the generated data keep it finite (all mass on one of K equally likely classes gives log K). It is inf
    only when the generator produces a class that never occurs in ``reference``.
    """
    fn = "class_histogram"
    _check_int(num_classes, "num_classes", fn, minimum=1)
    predicted = _check_labels(predicted, "predicted", fn, num_classes)
    counts = torch.bincount(predicted, minlength=num_classes).cpu()
    fractions = counts.double() / len(predicted)
    if reference is None:
        reference_fractions = torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
    else:
        reference = _check_labels(reference, "reference", fn, num_classes)
        reference_fractions = torch.bincount(reference, minlength=num_classes).cpu().double() / len(reference)
    expected = len(predicted) * reference_fractions
    covered = counts >= (COVERED_FRACTION_OF_EXPECTED * expected).clamp_min(1.0)
    result: dict[str, Any] = {
        "counts": counts.tolist(),
        "classes_covered": int(covered.sum()),
        "fractions": fractions.tolist(),
    }
    if reference is not None:
        present = fractions > 0
        if bool((reference_fractions[present] == 0).any()):
            result["kl_to_reference"] = math.inf
        else:
            p, q = fractions[present], reference_fractions[present]
            result["kl_to_reference"] = max(float((p * (p / q).log()).sum()), 0.0)  # rounding can dip below 0
    return result


# ------------------------------------------------------------------------------------------- input checks


def _as_float64(value: Any, name: str, fn: str) -> torch.Tensor:
    tensor = torch.as_tensor(value).detach()
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise ConfigError(f"{fn}: {name} must be a real-valued tensor, got dtype {tensor.dtype}")
    tensor = tensor.double()
    if not torch.isfinite(tensor).all():
        raise ConfigError(f"{fn}: {name} must be finite, found NaN or inf")
    return tensor


def _check_features(value: Any, name: str, fn: str, *, min_rows: int) -> torch.Tensor:
    tensor = torch.as_tensor(value).detach()
    if tensor.dim() != 2:
        raise ConfigError(f"{fn}: {name} must be a 2-D tensor N×F, got shape {tuple(tensor.shape)}")
    if len(tensor) < min_rows or tensor.shape[1] == 0:
        raise ConfigError(f"{fn}: {name} needs at least {min_rows} row(s) and 1 column, got shape "
                          f"{tuple(tensor.shape)}")
    return _as_float64(tensor, name, fn)


def _check_same_width(a: torch.Tensor, b: torch.Tensor, fn: str,
                      names: tuple[str, str] = ("features_a", "features_b")) -> None:
    if a.shape[1] != b.shape[1]:
        raise ConfigError(f"{fn}: {names[0]} and {names[1]} must have the same number of features, "
                          f"got {a.shape[1]} and {b.shape[1]}")


def _check_int(value: Any, name: str, fn: str, *, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        expected = "an int" if minimum is None else f"an int >= {minimum}"
        raise ConfigError(f"{fn}: {name} must be {expected}, got {value!r}")


def _check_labels(value: Any, name: str, fn: str, num_classes: int) -> torch.Tensor:
    tensor = torch.as_tensor(value).detach()
    if tensor.dim() != 1 or tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise ConfigError(f"{fn}: {name} must be a 1-D tensor of integer class indices, got shape "
                          f"{tuple(tensor.shape)} and dtype {tensor.dtype}")
    if len(tensor) == 0:
        raise ConfigError(f"{fn}: {name} must hold at least one label, got none")
    tensor = tensor.long()
    low, high = int(tensor.min()), int(tensor.max())
    if low < 0 or high >= num_classes:
        raise ConfigError(f"{fn}: {name} must hold class indices in [0, {num_classes - 1}], "
                          f"found values in [{low}, {high}]")
    return tensor
