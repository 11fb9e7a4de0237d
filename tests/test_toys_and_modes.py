"""The 2-D mode-collapse toys (ring8, grid25) and the VEEGAN/PacGAN mode-coverage metric."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genlab.data import dataset_info, list_datasets, load_dataset
from genlab.data.toys import TOYS, make_toy, mode_centers, mode_std
from genlab.errors import ConfigError, DataError
from genlab.metrics import mode_coverage

# ------------------------------------------------------------------------------------- datasets


@pytest.mark.numerics
def test_ring8_centres_and_std():
    centers = mode_centers("ring8")
    assert centers.shape == (8, 2) and centers.dtype == torch.float32
    torch.testing.assert_close(centers.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(centers[:, 1], centers[:, 0]).remainder(2 * math.pi)
    # float32 angles up to 7π/4 (ulp 4.8e-7): atan2 (≤ 1 ulp of π), the remainder's fl(2π) and two roundings: ≲ 9e-7
    torch.testing.assert_close(angles, torch.arange(8) * (2 * math.pi / 8), atol=1e-6, rtol=0)
    assert mode_std("ring8") == 0.02


def test_grid25_centres_and_std():
    centers = mode_centers("grid25")
    assert centers.shape == (25, 2)
    assert {tuple(row) for row in centers.tolist()} == {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert mode_std("grid25") == 0.05


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_points_come_from_their_labelled_mode_with_the_right_spread(name):
    data = make_toy(name, 20_000, seed=3)
    centers, std = mode_centers(name), mode_std(name)
    assert data.is_points and data.images.dtype == torch.float32 and data.image_shape == (2,)
    assert data.labels.dtype == torch.int64 and data.classes == tuple(f"mode {k}" for k in range(len(centers)))
    offsets = data.images - centers[data.labels]
    for k in range(len(centers)):  # per mode: mean at the centre, std σ in each coordinate
        mine = offsets[data.labels == k]
        assert len(mine) > 0.5 * len(data) / len(centers)  # equal weights (loose: a binomial count)
        assert mine.mean(0).abs().max() < 4 * std / math.sqrt(len(mine))
        # ~800 points per mode (grid25; ring8 ~2,500): the sample std's relative standard error 1/√(2n) is ≲ 2.5%
        torch.testing.assert_close(mine.std(0), torch.full((2,), std), rtol=0.1, atol=0)
    counts = torch.bincount(data.labels, minlength=len(centers)).double()
    assert (counts / len(data) - 1 / len(centers)).abs().max() < 0.02  # binomial standard error ≤ 0.0023


def test_make_toy_is_deterministic_per_seed():
    a, b, c = make_toy("ring8", 500, seed=7), make_toy("ring8", 500, seed=7), make_toy("ring8", 500, seed=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_make_toy_rejects_bad_arguments():
    with pytest.raises(DataError, match=r"unknown toy dataset 'ring9'.*ring8, grid25"):
        make_toy("ring9", 10)
    with pytest.raises(DataError, match="n must be an int >= 0"):
        make_toy("ring8", -1)
    with pytest.raises(DataError, match="unknown toy"):
        mode_centers("nope")


def test_registry_loads_the_toys():
    test = load_dataset("ring8", split="test")
    assert len(test) == 2500 and test.is_points and test.name == "ring8"
    assert torch.equal(test.images, load_dataset("ring8", split="test").images)  # a fixed seed per split
    train = load_dataset("grid25")
    assert len(train) == 100_000 and train.num_classes == 25
    assert not torch.equal(train.images[:2500], load_dataset("grid25", split="test").images)
    info = dataset_info("grid25")
    assert info["location"].startswith("generated") and info["files"] == [] and info["image_shape"] == [2]
    names = {entry["name"]: entry for entry in list_datasets()}
    assert set(TOYS) <= set(names) and names["ring8"]["num_images"] == {"train": 100_000, "test": 2500}


def test_image_size_is_refused_for_points():
    with pytest.raises(DataError, match=r"ring8.*points.*image_size"):
        load_dataset("ring8", split="test", image_size=28)


# --------------------------------------------------------------------------------------- metric


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_at_every_centre_cover_everything(name):
    centers = mode_centers(name)
    scores = mode_coverage(centers.repeat(100, 1), centers, mode_std(name))
    assert scores["modes_captured"] == scores["num_modes"] == len(centers)
    # exact: N of N samples, and q·K = (100/N)·K rounds to 1.0 in float64, whose log is 0
    assert scores["high_quality_fraction"] == 1.0 and scores["reverse_kl"] == 0.0
    assert scores["mode_counts"] == [100] * len(centers) and scores["num_samples"] == 100 * len(centers)


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_collapse_to_one_centre(name):
    centers = mode_centers(name)
    scores = mode_coverage(centers[3].repeat(2500, 1), centers, mode_std(name))
    assert scores["modes_captured"] == 1 and scores["high_quality_fraction"] == 1.0
    assert scores["reverse_kl"] == pytest.approx(math.log(len(centers)))


@pytest.mark.numerics
def test_far_samples_are_not_high_quality():
    centers = mode_centers("ring8")
    scores = mode_coverage(torch.full((50, 2), 10.0), centers, 0.02)
    assert scores["modes_captured"] == 0 and scores["high_quality_fraction"] == 0.0
    assert math.isnan(scores["reverse_kl"])
    # Halfway between two modes is off the mixture too; non-finite samples count as low quality.
    between = torch.tensor([[0.0, 0.0], [float("nan"), 1.0], [float("inf"), 0.0]])
    assert mode_coverage(between, centers, 0.02)["high_quality_fraction"] == 0.0


@pytest.mark.numerics
def test_the_3_sigma_boundary_and_min_per_mode():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor([[0.29, 0.0], [0.0, -0.29], [0.31, 0.0], [10.0, 0.29]])  # σ = 0.1
    scores = mode_coverage(samples, centers, 0.1)
    assert scores["mode_counts"] == [2, 1] and scores["high_quality_fraction"] == 0.75
    assert scores["modes_captured"] == 2
    assert mode_coverage(samples, centers, 0.1, min_per_mode=2)["modes_captured"] == 1
    assert mode_coverage(samples, centers, 0.1, quality_sigmas=4.0)["mode_counts"] == [3, 1]


@pytest.mark.numerics
def test_reverse_kl_is_kl_of_generated_to_uniform():
    # q = (3/4, 1/4, 0, 0) against p = 1/4 each: KL(q‖p) = 3/4·log 3 + 1/4·log 1 (finite though modes are missing).
    centers = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    samples = torch.cat([centers[0].repeat(3, 1), centers[1:2]])
    assert mode_coverage(samples, centers, 0.1)["reverse_kl"] == pytest.approx(0.75 * math.log(3))


@pytest.mark.numerics
def test_real_data_scores_like_the_true_mixture():
    # A 2-D Gaussian has 1 − exp(−9/2) ≈ 98.9 % of its mass within 3σ: the best a generator can score.
    test = load_dataset("grid25", split="test")
    scores = mode_coverage(test.images, mode_centers("grid25"), mode_std("grid25"))
    assert scores["modes_captured"] == 25 and scores["reverse_kl"] < 0.02
    # 2,500 points, each within 3σ with p = 0.989: binomial standard error 0.002, so 0.006 is 3 of them
    assert scores["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)


@pytest.mark.parametrize(
    ("samples", "centers", "std", "kwargs", "message"),
    [
        (torch.zeros(5, 3), torch.zeros(2, 2), 0.1, {}, r"samples must be N×2 like the centers, got shape \(5, 3\)"),
        (torch.zeros(5), torch.zeros(2, 2), 0.1, {}, r"samples must be N×2"),
        (torch.zeros(5, 2), torch.zeros(2), 0.1, {}, r"centers must be K×D with K >= 1"),
        (torch.zeros(5, 2), torch.zeros(0, 2), 0.1, {}, r"centers must be K×D with K >= 1"),
        (torch.zeros(5, 2), torch.full((2, 2), float("nan")), 0.1, {}, "centers must be finite"),
        (torch.zeros(5, 2), torch.zeros(2, 2), 0.0, {}, "std must be a finite number > 0, got 0.0"),
        (torch.zeros(5, 2), torch.zeros(2, 2), -1, {}, "std must be a finite number > 0"),
        (torch.zeros(5, 2), torch.zeros(2, 2), "wide", {}, "std must be a finite number > 0"),
        (torch.zeros(5, 2), torch.zeros(2, 2), 0.1, {"quality_sigmas": 0}, "quality_sigmas must be"),
        (torch.zeros(5, 2), torch.zeros(2, 2), 0.1, {"min_per_mode": 0}, "min_per_mode must be an int >= 1"),
    ],
)
def test_mode_coverage_rejects_bad_input(samples, centers, std, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        mode_coverage(samples, centers, std, **kwargs)


# ------------------------------------------------------------------------------- end to end


@pytest.fixture
def one_thread():
    """Tiny MLPs gain nothing from more threads, and on a busy 2-core machine the OpenMP threads of
    torch's default wait on each other: this test took ~10 min with 2 threads and ~7 s with 1."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_small_gan_covers_most_of_ring8(tmp_path, one_thread):
    """The whole path the benchmark takes (registry → GAN → train → sample → metric), kept short:
    the benchmark's recipe with narrower nets and 600 steps. Over seeds 0–11 it covered 6–8 modes
    (7 for seed 0, in ~7 s); without β1 = 0 and R1 one seed in twelve fell to 3 modes."""
    import genlab
    from genlab.models.gan.model import GAN, GANConfig

    torch.manual_seed(0)
    model = GAN(GANConfig(image_shape=(2,), g_width=64, d_width=64, lr_g=1e-3, lr_d=2e-3, betas=(0.0, 0.99),
                          r1_gamma=0.1, r1_every=4))
    config = genlab.TrainConfig(max_steps=600, batch_size=256, ema_decay=0.99, seed=0, device="cpu",
                                out_dir=str(tmp_path / "run"), progress=False, tensorboard=False,
                                num_sample_images=0, log_every=600)
    genlab.train(model, load_dataset("ring8"), config)
    scores = mode_coverage(model.sample(2500, seed=0), mode_centers("ring8"), mode_std("ring8"))
    assert scores["modes_captured"] >= 6, scores


def test_mode_collapse_benchmark_scores_do_not_depend_on_parallel_jobs(monkeypatch):
    # The benchmark trains seeds in spawned worker processes with --jobs; a seed's score must be the same.
    import argparse

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(repo))  # spawned workers get this sys.path, so they import `benchmarks` too
    from benchmarks import mode_collapse

    args = argparse.Namespace(seeds=2, steps_factor=0.004, threads=1, jobs=1)  # 12 steps per ring8 run
    serial = list(mode_collapse._runs("ring8", "genlab", args))
    parallel = list(mode_collapse._runs("ring8", "genlab", argparse.Namespace(**{**vars(args), "jobs": 2})))
    assert [r["seed"] for r in parallel] == [0, 1]
    for one, other in zip(serial, parallel, strict=True):
        assert one["steps"] == other["steps"] == 12
        same = [key for key in one if key != "train_seconds"]
        # exact: the same computation on the same CPU, one thread each, only in another process; repr: NaN equals NaN
        assert repr([one[key] for key in same]) == repr([other[key] for key in same])
