"""Denoising diffusion: the schedule's closed forms against NumPy, the samplers against the equations they
implement (DDIM Eq. 12/16, DDPM Algorithm 2, classifier-free guidance Eq. 6), the U-Net, and the model through
the one training loop, in pixel space and in an autoencoder's latent space."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genlab
from genlab.config import config_to_dict
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.models.autoencoder import Autoencoder, AutoencoderConfig
from genlab.models.diffusion import (
    Diffusion,
    DiffusionConfig,
    NoiseSchedule,
    UNet,
    ddim_sample,
    ddim_sigma,
    ddim_timesteps,
    ddpm_sample,
    guidance_combine,
    guided,
    timestep_embedding,
)
from genlab.models.diffusion.schedule import at

U32, U64 = 2.0**-24, 2.0**-53  # unit roundoff of float32 and float64
TINY = dict(channels=(8, 16), blocks=1, timesteps=50, sample_steps=5)
TINY_AE = AutoencoderConfig(image_shape=(1, 16, 16), latent_channels=2, channels=(4, 8), blocks=0)


def blobs(n: int = 64, size: int = 16, seed: int = 0) -> Dataset:
    """Bright rectangles on black, labelled by the quadrant of their corner."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    for i in range(n):
        top, left = torch.randint(0, size - 6, (2,), generator=generator).tolist()
        images[i, :, top:top + 6, left:left + 5] = 255
        labels[i] = 2 * (top >= size // 2 - 3) + (left >= size // 2 - 3)
    return Dataset(images, labels, ("tl", "tr", "bl", "br"), f"blobs{size}")


def train_config(path, **overrides) -> genlab.TrainConfig:
    values = dict(epochs=100, batch_size=16, out_dir=str(path), log_every=10, progress=False, tensorboard=False,
                  num_sample_images=4, device="cpu", precision="fp32", plots=False, channels_last=False)
    return genlab.TrainConfig(**{**values, **overrides})


# ----- the schedule -----
def numpy_schedule(kind: str, timesteps: int) -> dict[str, np.ndarray]:
    """β_t, ᾱ_t, β̃_t and μ̃_t's coefficients in float64, written out from the papers independently of schedule.py."""
    if kind == "linear":  # Ho et al. 2020 §4, both ends scaled by 1000/T
        betas = np.minimum(np.linspace(1e-4, 0.02, timesteps) * 1000 / timesteps, 0.999)
    else:  # Nichol & Dhariwal 2021, Eq. 17, s = 0.008, β_t = 1 − ᾱ_t/ᾱ_{t−1} clipped at 0.999
        f = np.cos((np.arange(timesteps + 1) / timesteps + 0.008) / 1.008 * np.pi / 2) ** 2
        betas = np.minimum(1 - (f[1:] / f[0]) / (f[:-1] / f[0]), 0.999)
    alphas_cumprod = np.cumprod(1 - betas)
    previous = np.concatenate([[1.0], alphas_cumprod[:-1]])
    return {  # Ho Eqs. 6–7
        "betas": betas, "alphas_cumprod": alphas_cumprod, "previous": previous,
        "posterior_variance": (1 - previous) / (1 - alphas_cumprod) * betas,
        "posterior_mean_coef1": np.sqrt(previous) * betas / (1 - alphas_cumprod),
        "posterior_mean_coef2": np.sqrt(1 - betas) * (1 - previous) / (1 - alphas_cumprod),
    }


@pytest.mark.numerics
@pytest.mark.parametrize(("kind", "timesteps"), [("linear", 1000), ("cosine", 1000), ("linear", 40), ("cosine", 40)])
def test_schedule_constants_match_numpy_in_float64(kind, timesteps):
    schedule, reference = NoiseSchedule(kind, timesteps), numpy_schedule(kind, timesteps)
    for name in ("betas", "alphas_cumprod", "posterior_variance", "posterior_mean_coef1", "posterior_mean_coef2"):
        buffer = getattr(schedule, name)
        assert buffer.dtype == torch.float32
        # computed in float64 and stored as float32: one rounding, relative error at most 2⁻²⁴
        np.testing.assert_allclose(buffer.double().numpy(), reference[name], rtol=2 * U32, atol=0, err_msg=name)
    assert schedule.posterior_variance[0] == 0  # x_0 is known exactly after the last step
    if kind == "linear" and timesteps == 1000:  # Ho et al.'s own numbers
        assert schedule.betas[0].item() == pytest.approx(1e-4, rel=U32) and schedule.betas[-1].item() == pytest.approx(0.02, rel=U32)
    assert schedule.betas.max() <= 0.999 and reference["alphas_cumprod"][-1] < 1e-4  # x_T is about N(0, I)


@pytest.mark.numerics
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_the_posterior_is_consistent_with_the_marginals(kind):
    """q(x_{t−1}|x_0) = ∫ q(x_{t−1}|x_t, x_0) q(x_t|x_0) dx_t: the mean coef1 + coef2·√ᾱ_t = √ᾱ_{t−1} and the
    variance β̃_t + coef2²·(1 − ᾱ_t) = 1 − ᾱ_{t−1} (law of total variance); every term is positive, so float32
    buffers (each within 2⁻²⁴ relative) keep both sides within a few 2⁻²⁴."""
    schedule, reference = NoiseSchedule(kind, 1000), numpy_schedule(kind, 1000)
    c1, c2 = schedule.posterior_mean_coef1.double().numpy(), schedule.posterior_mean_coef2.double().numpy()
    alphas_cumprod = reference["alphas_cumprod"]
    np.testing.assert_allclose(c1 + c2 * np.sqrt(alphas_cumprod), np.sqrt(reference["previous"]), rtol=6 * U32, atol=0)
    total = schedule.posterior_variance.double().numpy() + c2**2 * (1 - alphas_cumprod)
    np.testing.assert_allclose(total, 1 - reference["previous"], rtol=6 * U32, atol=0)
    # the method applies them: μ̃ = coef1·x_0 + coef2·x_t (Ho Eq. 7)
    x0, xt, t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 1, 10, 500, 999])
    mean, variance = schedule.posterior_mean_variance(x0, xt, t)
    torch.testing.assert_close(mean, torch.as_tensor(c1)[t, None] * x0 + torch.as_tensor(c2)[t, None] * xt, rtol=4 * U64, atol=1e-15)
    torch.testing.assert_close(variance.flatten(), schedule.posterior_variance[t].double(), rtol=0, atol=0)


@pytest.mark.numerics
def test_q_sample_has_the_marginal_mean_and_variance():
    """Ho Eq. 4: x_t | x_0 ~ N(√ᾱ_t·x_0, 1 − ᾱ_t), empirically over 100,000 draws per step."""
    schedule, n = NoiseSchedule("linear", 1000), 100_000
    generator = torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.7, -0.3]).expand(n, 2)
    for step in (0, 250, 999):
        t = torch.full((n,), step)
        xt = schedule.q_sample(x0, t, torch.randn(n, 2, generator=generator)).double()
        a = schedule.alphas_cumprod[step].double()
        # 5 standard errors: of a mean √((1 − ᾱ)/n), of a variance (1 − ᾱ)·√(2/(n − 1))
        assert torch.all((xt.mean(0) - a.sqrt() * x0[0].double()).abs() < 5 * ((1 - a) / n).sqrt())
        assert torch.all((xt.var(0) - (1 - a)).abs() < 5 * (1 - a) * math.sqrt(2 / (n - 1)))


@pytest.mark.numerics
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_predict_x0_inverts_q_sample(kind):
    schedule = NoiseSchedule(kind, 1000)
    generator = torch.Generator().manual_seed(1)
    x0, eps = torch.rand(1000, 6, generator=generator) * 2 - 1, torch.randn(1000, 6, generator=generator)
    t = torch.arange(1000)
    xt = schedule.q_sample(x0, t, eps)
    # x_t = a·x_0 + b·ε rounded, then (x_t − b·ε)/a: a few roundings of |x_t| + |b·ε| ≤ 6, amplified by 1/a
    tolerance = 4 * U32 * 6 / schedule.sqrt_alphas_cumprod[:, None]
    assert torch.all((schedule.predict_x0(xt, t, eps) - x0).abs() <= tolerance)
    assert torch.all((schedule.predict_eps(xt, t, x0) - eps).abs() <= 4 * U32 * 6 / schedule.sqrt_one_minus_alphas_cumprod[:, None])


# ----- the samplers -----
def test_ddim_timesteps_are_evenly_spaced_from_the_noisiest_step():
    assert ddim_timesteps(5, 1000) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(1, 1000) == [999]
    assert ddim_timesteps(50, 50) == list(range(49, -1, -1))
    with pytest.raises(ValueError, match=r"1\.\.50"):
        ddim_timesteps(51, 50)


@pytest.mark.numerics
@pytest.mark.parametrize(("kind", "timesteps", "steps"), [("linear", 1000, 50), ("linear", 1000, 1), ("cosine", 1000, 7),
                                                         ("linear", 20, 20), ("cosine", 20, 20)])
def test_ddim_with_eta_0_follows_the_forward_marginals_exactly(kind, timesteps, steps):
    """Song et al. 2021, Eq. 12 with σ = 0: if ε̂ is the true noise ε₀ of x_T = √ᾱ_T·x_0 + √(1 − ᾱ_T)·ε₀, every
    DDIM state is √ᾱ_τ·x_0 + √(1 − ᾱ_τ)·ε₀ and the output is x_0. A wrong coefficient in any step leaves the
    path and the output misses x_0. In float64 each step adds a few roundings of |x| ≤ 6, amplified by 1/√ᾱ_τ."""
    schedule = NoiseSchedule(kind, timesteps)
    generator = torch.Generator().manual_seed(2)
    x0 = torch.rand(4, 1, 5, 5, generator=generator, dtype=torch.float64) * 2 - 1
    eps0 = torch.randn(4, 1, 5, 5, generator=generator, dtype=torch.float64).clamp(-5, 5)
    x_T = schedule.q_sample(x0, torch.full((4,), timesteps - 1), eps0)
    out = ddim_sample(lambda x, t: eps0, schedule, x_T, steps=steps, eta=0.0)
    tolerance = 8 * steps * U64 * 6 / schedule.sqrt_alphas_cumprod[-1].item()
    assert (out - x0).abs().max().item() <= tolerance


@pytest.mark.numerics
def test_ddim_sigma_at_eta_1_is_the_ddpm_posterior_deviation():
    """Song et al. 2021, Eq. 16 with η = 1 over consecutive steps: σ_t² = β̃_t of Ho Eq. 7."""
    reference = numpy_schedule("cosine", 1000)
    sigma = ddim_sigma(torch.as_tensor(reference["alphas_cumprod"][1:]), torch.as_tensor(reference["previous"][1:]), 1.0)
    np.testing.assert_allclose(sigma.numpy() ** 2, reference["posterior_variance"][1:], rtol=64 * U64)
    assert torch.all(ddim_sigma(torch.tensor([0.3]), torch.tensor([0.5]), 0.0) == 0)


@pytest.mark.numerics
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddim_with_eta_1_over_all_steps_is_ddpm_draw_for_draw(kind):
    """Two routes to the same chain: DDPM's posterior mean μ̃_t(x_t, x̂_0) + √β̃_t·z (Ho Eq. 7, Algorithm 2) and
    DDIM's √ᾱ_{t−1}·x̂_0 + √(1 − ᾱ_{t−1} − σ²)·ε̂ + σ·z with σ(η = 1) (Song Eqs. 12, 16), fed the same noise. They
    use differently rounded float32 constants (2⁻²⁴ each), so over T steps of |x| about 2 they part by ≲ 8·T·2⁻²⁴·2."""
    timesteps = 20
    schedule = NoiseSchedule(kind, timesteps)

    def predictor(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # the ideal ε̂ for N(0, I) data, perturbed
        return at(schedule.sqrt_one_minus_alphas_cumprod, t, x) * x + 0.1 * torch.sin(t.to(x.dtype).view(-1, 1, 1, 1) + x)

    x_T = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ddpm = ddpm_sample(predictor, schedule, x_T, generator=torch.Generator().manual_seed(4))
    ddim = ddim_sample(predictor, schedule, x_T, steps=timesteps, eta=1.0, generator=torch.Generator().manual_seed(4))
    assert ddpm.abs().max() < 4
    torch.testing.assert_close(ddim, ddpm, rtol=0, atol=8 * timesteps * U32 * 4)
    other_noise = ddpm_sample(predictor, schedule, x_T, generator=torch.Generator().manual_seed(5))
    assert (other_noise - ddpm).abs().max() > 0.1  # the noise matters, so the agreement above says something


@pytest.mark.numerics
def test_guidance_at_w_0_is_the_conditional_prediction_and_batches_both_halves():
    torch.manual_seed(0)
    unet = UNet(1, (8, 16), 1, num_classes=3).eval()
    randomize(unet)
    calls = []

    def model(x, t, labels):
        calls.append(x.shape[0])
        return unet(x, t, labels)

    x, t, labels = torch.randn(4, 1, 7, 7), torch.tensor([0, 10, 20, 49]), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        conditional, unconditional = unet(x, t, labels), unet(x, t, torch.full_like(labels, 3))
        assert torch.equal(guided(model, labels, 3, 0.0)(x, t), conditional)
        assert calls == [4]
        w = 2.0
        guided_eps = guided(model, labels, 3, w)(x, t)
    assert calls == [4, 8]  # one forward pass over [x; x] with labels [y; ∅]
    # Ho & Salimans Eq. 6 by hand; the doubled batch may take other float32 kernels: a few 2⁻²⁴ of |ε| ≲ 10, × (1 + 2w)
    expected = (1 + w) * conditional - w * unconditional
    torch.testing.assert_close(guided_eps, expected, rtol=0, atol=16 * U32 * 10 * (1 + 2 * w))
    assert torch.equal(guidance_combine(conditional, unconditional, 0.0), conditional)
    assert torch.equal(guided(model, None, 3, 5.0)(x, t), unet(x, t, None).detach())  # no labels: no guidance


# ----- the U-Net -----
def randomize(unet: UNet) -> None:
    """Random weights for the layers that start at zero (each block starts as the identity), so everything matters."""
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, torch.nn.Conv2d) and not module.weight.any():
                torch.nn.init.normal_(module.weight, std=0.1)


@pytest.mark.parametrize(("shape", "channels"), [((4, 7, 7), (16, 32)), ((1, 28, 28), (8, 16, 32, 32)), ((3, 5, 9), (8, 16, 16))])
def test_the_unet_keeps_odd_and_even_shapes(shape, channels):
    unet = UNet(shape[0], channels, 2, num_classes=10)
    x = torch.randn(2, *shape)
    assert unet(x, torch.tensor([0, 999]), torch.tensor([3, 10])).shape == x.shape


def test_the_class_embedding_matters_and_the_null_label_is_index_k():
    torch.manual_seed(0)
    unet = UNet(4, (16, 32), 1, num_classes=5)
    x, t = torch.randn(3, 4, 7, 7), torch.tensor([5, 50, 500])
    with torch.no_grad():
        at_init = [unet(x, t, torch.full((3,), label)) for label in range(6)]
        assert all(torch.equal(a, at_init[0]) for a in at_init)  # identity blocks: nothing depends on the label yet
        randomize(unet)
        a, b = unet(x, t, torch.tensor([0, 1, 2])), unet(x, t, torch.tensor([3, 4, 0]))
        assert (a - b).abs().max() > 1e-3
        assert torch.equal(unet(x, t, None), unet(x, t, torch.full((3,), 5)))  # None: ∅ for every image
        assert (unet(x, t + 1, None) - unet(x, t, None)).abs().max() > 0  # and the step matters too


@pytest.mark.numerics
def test_timestep_embedding_is_vaswanis_sinusoid():
    t, dim = torch.tensor([0, 3, 999]), 8
    embedding = timestep_embedding(t, dim).double()
    frequencies = 10_000.0 ** (-np.arange(4) / 4)  # ω_i = 10000^(−2i/d), i < d/2
    expected = np.concatenate([np.sin(np.outer(t.numpy(), frequencies)), np.cos(np.outer(t.numpy(), frequencies))], axis=1)
    np.testing.assert_allclose(embedding.numpy(), expected, rtol=0, atol=4 * U32 * 999)  # argument rounding, |t·ω| ≤ 999
    assert timestep_embedding(t, 7).shape == (3, 7)


# ----- the model -----
def test_label_dropout_replaces_labels_at_its_rate():
    model = Diffusion(DiffusionConfig(num_classes=10, label_dropout=0.2, **TINY))
    labels = torch.arange(200_000) % 10
    dropped = model.drop_labels(labels, torch.Generator().manual_seed(0))
    rate = (dropped == 10).double().mean().item()
    assert abs(rate - 0.2) < 5 * math.sqrt(0.2 * 0.8 / labels.numel())  # 5 binomial standard errors
    kept = dropped != 10
    assert torch.equal(dropped[kept], labels[kept])
    never = Diffusion(DiffusionConfig(num_classes=10, label_dropout=0.0, guidance=0.0, **TINY))
    assert torch.equal(never.drop_labels(labels), labels)


def test_sampling_is_seeded_in_range_and_follows_the_contract():
    torch.manual_seed(0)
    model = Diffusion(DiffusionConfig(image_shape=(1, 12, 12), num_classes=3, **TINY)).eval()
    randomize(model.unet)
    images = model.sample(4, seed=0)
    assert images.shape == (4, 1, 12, 12) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, model.sample(4, seed=0))  # DDIM, η = 0: deterministic given the noise
    assert not torch.equal(images, model.sample(4, seed=1))
    assert torch.equal(images, model.sample_with(4, seed=0, labels=[0, 1, 2, 0]))  # default labels cycle the classes
    assert not torch.equal(images, model.sample_with(4, seed=0, labels=[1, 1, 1, 1]))
    assert not torch.equal(images, model.sample_with(4, seed=0, guidance=0.0))
    for options in (dict(sampler="ddpm"), dict(eta=1.0, steps=3), dict(truncation=0.5)):
        again = model.sample_with(4, seed=0, **options)
        assert torch.equal(again, model.sample_with(4, seed=0, **options)) and not torch.equal(again, images), options
    with pytest.raises(ConfigError, match=r"labels must be in 0\.\.2"):
        model.sample(2, labels=[0, 3])
    with pytest.raises(ConfigError, match="steps must be at most timesteps"):
        model.sample_with(2, steps=51)
    with pytest.raises(ConfigError, match="diffusion model is unconditional"):
        Diffusion(DiffusionConfig(**TINY)).sample(2, labels=[0, 1])
    assert model.grid_columns == 3 and Diffusion(DiffusionConfig(**TINY)).grid_columns is None


def test_given_noise_is_x_T_and_set_sampling_changes_what_sample_uses():
    """``noise`` replaces the seeded draw of x_T (so a slerp path of noises gives a DDIM morph); ``set_sampling``
    changes sample()'s defaults, checked like the config."""
    torch.manual_seed(0)
    model = Diffusion(DiffusionConfig(image_shape=(1, 12, 12), num_classes=3, **TINY)).eval()
    randomize(model.unet)
    x_T = torch.randn((2, *model.diffusion_shape), generator=torch.Generator().manual_seed(5))
    assert torch.equal(model.sample_with(2, seed=5, labels=[0, 1]), model.sample_with(2, labels=[0, 1], noise=x_T))
    with pytest.raises(ConfigError, match=r"noise: expected x_T of shape \(3, 1, 12, 12\)"):
        model.sample_with(3, noise=x_T)
    before = model.sample(2, seed=1)
    model.set_sampling(steps=3, guidance=0.0)
    assert (model.config.sample_steps, model.config.guidance) == (3, 0.0)
    assert torch.equal(model.sample(2, seed=1), model.sample_with(2, seed=1, steps=3, guidance=0.0))
    assert not torch.equal(model.sample(2, seed=1), before)
    with pytest.raises(ConfigError, match="eta"):
        model.set_sampling(eta=2.0)


@pytest.mark.parametrize(("options", "option"), [
    (dict(timesteps=1), "timesteps"), (dict(schedule="quadratic"), "schedule"), (dict(sampler="euler"), "sampler"),
    (dict(sample_steps=2000), "sample_steps"), (dict(label_dropout=1.0), "label_dropout"), (dict(eta=1.5), "eta"),
    (dict(guidance=-1.0), "guidance"), (dict(channels=()), "channels"), (dict(blocks=0), "blocks"),
    (dict(scale_factor=0.0), "scale_factor"), (dict(num_classes=-1), "num_classes"), (dict(dropout=float("nan")), "dropout"),
    (dict(num_classes=3, label_dropout=0.0), "label_dropout"), (dict(image_shape=(2, 8, 8)), "image_shape"),
    (dict(first_stage={**config_to_dict(TINY_AE), "image_shape": [1, 32, 32]}), "image_shape"),
    (dict(first_stage={"latent_dims": 4}), "latent_dims"), (dict(channels=(4096,) * 16), "weights"),
])
def test_bad_config_values_name_the_option(options, option):
    with pytest.raises(ConfigError, match=option) as error:
        DiffusionConfig(**options)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A conditional pixel-space model trained 60 steps on blobs, with its fixed-noise loss before and after."""
    data = blobs()
    torch.manual_seed(0)
    model = Diffusion(DiffusionConfig(image_shape=(1, 16, 16), num_classes=4, schedule="cosine", **TINY))
    before = fixed_loss(model, data)
    run = tmp_path_factory.mktemp("diffusion") / "run"
    genlab.train(model, data, train_config(run, lr=2e-3, max_steps=60))
    return model, run, before, fixed_loss(model, data)


def fixed_loss(model: Diffusion, data: Dataset) -> float:
    """L_simple on the whole set with the same steps, noise and dropped labels every time (a paired comparison)."""
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(123)
        return sum(model.loss(data.float_images(), data.labels)["loss"].item() for _ in range(4)) / 4


def test_training_lowers_the_loss_and_writes_a_run(trained):
    _, run, before, after = trained
    assert after < 0.7 * before, (before, after)
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"unet/loss", "unet/x0_std", "unet/dropped"} <= set(header)
    assert (run / "samples" / "epoch_001.png").is_file() and (run / "model.safetensors").is_file()


def test_a_run_loads_and_samples_identically_without_its_data(trained):
    model, run, _, _ = trained
    loaded = genlab.load(run)
    assert isinstance(loaded, Diffusion) and loaded.config == model.config and not loaded.training
    assert torch.equal(loaded.sample(4, seed=7), model.sample(4, seed=7))
    assert torch.equal(loaded.sample_with(2, seed=7, sampler="ddpm", labels=[3, 1]),
                       model.sample_with(2, seed=7, sampler="ddpm", labels=[3, 1]))


def test_a_conditional_model_needs_labels_to_train(tmp_path):
    data = blobs(16)
    unlabelled = Dataset(data.images, name="unlabelled")
    with pytest.raises(ConfigError, match="needs a labelled dataset"):
        genlab.train(Diffusion(DiffusionConfig(image_shape=(1, 16, 16), num_classes=4, **TINY)), unlabelled,
                     train_config(tmp_path / "run", max_steps=1))


def test_latent_diffusion_stores_a_frozen_first_stage_and_loads_alone(tmp_path):
    torch.manual_seed(0)
    data = blobs(32)
    autoencoder = Autoencoder(TINY_AE).eval()
    model = Diffusion.from_first_stage(autoencoder, data, first_stage_run="runs/ae", **TINY)
    assert model.diffusion_shape == (2, 4, 4) == autoencoder.latent_shape
    assert model.config.scale_factor == pytest.approx(autoencoder.latent_scale(data), rel=1e-12)
    assert model.config.first_stage == config_to_dict(TINY_AE) and model.config.image_shape == (1, 16, 16)
    first_stage = {k: v.clone() for k, v in model.first_stage.state_dict().items()}
    assert all(torch.equal(first_stage[k], v) for k, v in autoencoder.state_dict().items())
    # x_0 = scale·z: about unit variance over the data (a sampled latent per image; 2,048 values)
    assert model.to_diffusion_space(data.float_images()).std().item() == pytest.approx(1.0, abs=0.1)
    model.train()
    assert model.unet.training and not model.first_stage.training
    assert not any(p.requires_grad for p in model.first_stage.parameters())
    genlab.train(model, data, train_config(tmp_path / "run", max_steps=3, num_sample_images=2))
    assert all(torch.equal(first_stage[k], v) for k, v in model.first_stage.state_dict().items())  # frozen through training
    loaded = genlab.load(tmp_path / "run")  # the autoencoder's weights come from this run's own file
    assert all(torch.equal(first_stage[k], v) for k, v in loaded.first_stage.state_dict().items())
    images = loaded.sample(3, seed=0)
    assert images.shape == (3, 1, 16, 16) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, model.sample(3, seed=0))
    rebuilt = build_model("diffusion", config_to_dict(model.config))
    assert isinstance(rebuilt.first_stage, Autoencoder) and rebuilt.diffusion_shape == (2, 4, 4)
