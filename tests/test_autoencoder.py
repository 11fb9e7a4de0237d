"""The KL-regularised autoencoder (latent diffusion's first stage): its objective against hand computations,
latent shapes, posterior draws, training through the one loop and reloading, the latent scale, the
perceptual and adversarial options, and config errors."""
import csv
import math

import pytest
import torch
from conftest import make_blobs
from torch.distributions import Normal, kl_divergence

import genlab
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models import MODEL_KINDS
from genlab.models.autoencoder import Autoencoder, AutoencoderConfig, judge_distance

TINY = dict(image_shape=(1, 16, 16), channels=(8, 16), blocks=1, latent_channels=2, d_width=4)


def tiny(seed: int = 0, logvar_bias: tuple[float, ...] | None = None, **overrides) -> Autoencoder:
    """A small autoencoder (seeded init); ``logvar_bias`` sets the encoder's log σ² bias per latent channel so that
    σ is far from 1 (an untrained encoder gives log σ² ≈ 0, where σ, σ² and 1 cannot be told apart)."""
    torch.manual_seed(seed)
    model = Autoencoder(AutoencoderConfig(**{**TINY, **overrides}))
    if logvar_bias is not None:
        with torch.no_grad():
            model.encoder.net[-1].bias[model.config.latent_channels:] = torch.tensor(logvar_bias)
    return model.eval()


def train_config(tmp_path, name="run", **overrides) -> genlab.TrainConfig:
    values = dict(epochs=1, batch_size=16, out_dir=str(tmp_path / name), log_every=1, progress=False, tensorboard=False,
                  plots=False, num_sample_images=8, device="cpu", precision="fp32")
    return genlab.TrainConfig(**{**values, **overrides})


def logged(run, column: str) -> list[float]:
    with open(run / "metrics.csv", newline="") as file:
        return [float(row[column]) for row in csv.DictReader(file) if row.get(column)]


# ----- the objective against independent computations -----
@pytest.mark.numerics
def test_loss_is_summed_l1_plus_weighted_kl_computed_by_hand():
    model = tiny(logvar_bias=(-2.0, 1.0), kl_weight=0.3).train()
    x = make_blobs(6, 16).float_images()
    torch.manual_seed(1)
    out = model.loss(x)
    torch.manual_seed(1)  # the same ε: the loss's first random draw is ε ~ N(0, I) of the latent's shape
    with torch.no_grad():
        mean, logvar = model.posterior(x)
        std = torch.exp(0.5 * logvar)
        reconstruction = model.decode(mean + std * torch.randn_like(mean))
        l1 = (reconstruction - x).abs().sum(dim=(1, 2, 3))  # per image
        kl = kl_divergence(Normal(mean, std), Normal(torch.zeros_like(mean), torch.ones_like(std))).sum(dim=(1, 2, 3))
    # Sums of 256 (pixels) and 32 (latent elements) float32 terms in different orders: relative error ≤ n·ε ≈ 3·10⁻⁵.
    tol = dict(rtol=3e-5, atol=1e-6)
    torch.testing.assert_close(out["kl"], kl.mean(), **tol)
    torch.testing.assert_close(out["l1"], l1.mean() / 256, **tol)
    torch.testing.assert_close(out["mse"], (reconstruction - x).square().mean(), **tol)
    torch.testing.assert_close(out["loss"], l1.mean() + 0.3 * kl.mean(), **tol)
    assert out["kl"] > 1.0  # σ = e^−1 and e^½ are far from the prior's 1: the KL term is not vacuous here


@pytest.mark.numerics
def test_judge_distance_is_lpips_with_unit_weights_on_the_judges_pre_pool_maps():
    """Captured independently: hooks on the judge's max-pools record what the full forward pass feeds them."""
    judge = genlab.load_judge()
    a, b = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    pools = [m for m in judge.body.modules() if isinstance(m, torch.nn.MaxPool2d)]
    seen: list[torch.Tensor] = []
    handles = [p.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone())) for p in pools]
    with torch.no_grad():
        judge.eval()(a), judge(b)
    for handle in handles:
        handle.remove()
    expected = torch.zeros(3)
    for fa, fb in zip(seen[:len(pools)], seen[len(pools):], strict=True):
        ua = fa / fa.norm(dim=1, keepdim=True).clamp_min(1e-10)
        ub = fb / fb.norm(dim=1, keepdim=True).clamp_min(1e-10)
        expected += (ua - ub).square().sum(1).mean(dim=(1, 2))
    # Sums over ≤ 48 channels and means over ≤ 784 positions, in other orders: relative error ≤ n·ε ≈ 5·10⁻⁵.
    torch.testing.assert_close(judge_distance(judge, a, b), expected, rtol=5e-5, atol=1e-6)
    torch.testing.assert_close(judge_distance(judge, a, a), torch.zeros(3), rtol=0, atol=1e-5)
    assert (expected > 0).all() and (expected <= 2 * len(pools)).all()  # unit vectors: at most 2 per block


# ----- shapes, draws, ranges -----
@pytest.mark.parametrize(("overrides", "latent"), [
    (dict(image_shape=(1, 28, 28), channels=(32, 64)), (4, 7, 7)),  # the default: f = 4
    (dict(image_shape=(1, 28, 28), channels=(8,)), (4, 14, 14)),  # f = 2
    (dict(image_shape=(3, 32, 32), channels=(8, 8, 8), latent_channels=3), (3, 4, 4)),  # f = 8
])
def test_latents_are_f_times_smaller(overrides, latent):
    model = tiny(**{"latent_channels": 4, **overrides})
    assert model.latent_shape == latent
    x = torch.rand(2, *model.image_shape)
    z = model.encode(x)
    assert z.shape == (2, *latent)
    assert model.decode(z).shape == x.shape and model.reconstruct(x).shape == x.shape
    assert AutoencoderConfig().factor == 4 and Autoencoder().latent_shape == (4, 7, 7)


def test_a_size_the_latent_grid_does_not_divide_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"image_shape \(1, 30, 30\).*multiples of 4.*channels") as error:
        AutoencoderConfig(image_shape=(1, 30, 30))
    assert "\n" not in str(error.value)


def test_sampled_latents_are_reproducible_and_spread_by_sigma():
    model = tiny(logvar_bias=(-3.0, 1.0))
    x = make_blobs(4, 16).float_images()
    mean, logvar = model.posterior(x)
    draws = torch.stack([model.encode(x, sample=True, generator=torch.Generator().manual_seed(s)) for s in range(200)])
    again = model.encode(x, sample=True, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, draws[0], rtol=0, atol=0)
    assert not torch.equal(draws[0], draws[1])
    torch.testing.assert_close(model.encode(x), mean, rtol=0, atol=0)  # no sampling: the posterior mean
    eps = (draws - mean) / torch.exp(0.5 * logvar)  # should be N(0, 1): n = 200·4·32 = 25,600 values
    n = eps.numel()
    assert abs(eps.mean().item()) < 5 / math.sqrt(n)  # 5 standard errors
    assert abs(eps.std().item() - 1.0) < 5 / math.sqrt(2 * n)
    per_channel = (draws - mean).std(dim=0).mean(dim=(0, 2, 3))  # σ = e^−1.5 and e^0.5 (≈ 0.22 and 1.65)
    torch.testing.assert_close(per_channel, torch.exp(0.5 * logvar).mean(dim=(0, 2, 3)), rtol=0.05, atol=0)


def test_decoded_images_are_in_the_unit_range_and_batches_do_not_mix():
    model = tiny()
    images = model.decode(10.0 * torch.randn(5, 2, 4, 4))  # far beyond the prior
    assert images.shape == (5, 1, 16, 16) and images.min() >= 0.0 and images.max() <= 1.0
    x = make_blobs(6, 16)
    torch.testing.assert_close(model.encode(x.images), model.encode(x.float_images()))  # uint8 is read as /255
    model.train()  # where batch norm would use the batch's statistics; group norm never does
    torch.testing.assert_close(model.encode(x.float_images()[:2]), model.encode(x.float_images())[:2])
    model.eval()
    with pytest.raises(ConfigError, match="decode expects float latents N×2×h×w"):
        model.decode(torch.rand(1, 3, 4, 4))
    with pytest.raises(ConfigError, match="reads 1-channel images, got 3 channels"):
        model.encode(torch.rand(1, 3, 16, 16))


def test_sample_says_what_to_do_instead():
    with pytest.raises(ConfigError, match=r"genlab train diffusion --first-stage RUN"):
        tiny().sample(4, seed=0)
    assert MODEL_KINDS["autoencoder"] is Autoencoder


# ----- training through the one loop, reloading -----
def test_training_lowers_the_reconstruction_error_and_the_run_reloads(tmp_path):
    data = make_blobs(96, 16)
    model = tiny().eval()
    x = data.float_images()
    before = (model.reconstruct(x) - x).abs().mean().item()
    genlab.train(model, data, train_config(tmp_path, epochs=10, lr=2e-3))
    model.eval()
    after = (model.reconstruct(x) - x).abs().mean().item()
    assert after < 0.5 * before, (before, after)
    run = tmp_path / "run"
    assert (run / "samples" / "epoch_010.png").is_file()  # the per-epoch original | reconstruction pairs
    for column in ("AE/l1", "AE/mse", "AE/kl", "AE/loss"):
        assert logged(run, column), column
    assert logged(run, "AE/l1")[-1] < logged(run, "AE/l1")[0]
    loaded = genlab.load(run)
    assert isinstance(loaded, Autoencoder) and loaded.config == model.config
    torch.testing.assert_close(loaded.reconstruct(x[:8]), model.reconstruct(x[:8]))
    torch.testing.assert_close(loaded.encode(x[:8]), model.encode(x[:8]))


def test_preview_pairs_each_original_with_its_reconstruction():
    model, data = tiny(), make_blobs(20, 16)
    tiles = model.preview(8, seed=3, dataset=data)
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(3))[:4]
    assert tiles.shape == (8, 1, 16, 16) and model.grid_columns == 8
    torch.testing.assert_close(tiles[0::2], data.float_images(index), rtol=0, atol=0)
    torch.testing.assert_close(tiles[1::2], model.reconstruct(data.float_images(index)))


# ----- the latent scale -----
def test_latent_scale_is_one_over_the_std_of_sampled_latents():
    model = tiny(logvar_bias=(-1.0, -1.0))
    with torch.no_grad():  # latents far from unit variance, so that a scale of 1 would fail
        model.encoder.net[-1].weight[:2] *= 8.0
    data = Dataset(torch.randint(0, 256, (2000, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    small = data.subset(slice(0, 64))
    z = model.encode(small.float_images(), sample=True, generator=torch.Generator().manual_seed(0))
    assert model.latent_scale(small, seed=0, batch_size=64) == pytest.approx(1.0 / z.std().item(), rel=1e-5)
    raw = model.encode(data.float_images(), sample=True, generator=torch.Generator().manual_seed(1)).std().item()
    assert not 0.7 < raw < 1.4
    scale = model.latent_scale(data, max_images=500, seed=0, batch_size=128)  # a random 500 of the 2,000
    # Counting each image as one independent sample (its 32 latents are correlated): standard error of a std
    # estimate ≤ 1/√(2·500) for the scale and 1/√(2·2000) for the check, 5 of each.
    assert abs(scale * raw - 1.0) < 5 / math.sqrt(1000) + 5 / math.sqrt(4000)
    assert model.latent_scale(data, max_images=500, seed=0, batch_size=128) == scale  # seeded
    with pytest.raises(ConfigError, match="max_images"):
        model.latent_scale(data, max_images=0)


# ----- the perceptual and adversarial options -----
@pytest.fixture(scope="module")
def mini() -> Dataset:
    return genlab.load_dataset("fashion-mnist-mini", split="test").subset(slice(0, 32))


def test_perceptual_term_trains_and_is_weighted_per_pixel(tmp_path, mini):
    options = dict(image_shape=(1, 28, 28), channels=(8, 8), latent_channels=2)
    model = tiny(perceptual_weight=0.5, **options).train()
    x = mini.float_images(slice(0, 8))
    plain_model = tiny(**options).train()  # the same weights, without the judge
    torch.manual_seed(2)
    out = model.loss(x)
    torch.manual_seed(2)  # the same ε
    plain = plain_model.loss(x)
    assert out["perceptual"] > 0
    torch.testing.assert_close(out["loss"], plain["loss"] + 0.5 * 784 * out["perceptual"], rtol=1e-5, atol=1e-4)
    genlab.train(model, mini, train_config(tmp_path, "perceptual", max_steps=2))
    assert all(p > 0 for p in logged(tmp_path / "perceptual", "AE/perceptual"))
    assert "_judge" not in "".join(genlab.load(tmp_path / "perceptual").state_dict())  # the judge is not saved


def test_adversarial_option_adds_a_patchgan_phase(tmp_path, mini):
    plain_model = tiny(image_shape=(1, 28, 28), channels=(8, 8), latent_channels=2).train()  # the same weights, no D
    model = tiny(adversarial_weight=2.0, image_shape=(1, 28, 28), channels=(8, 8), latent_channels=2).train()
    assert [p.name for p in model.training_phases()] == ["D", "AE"]
    assert set(model.make_optimizers(genlab.TrainConfig(lr=1e-3))) == {"AE", "D"}
    x = mini.float_images(slice(0, 8))
    torch.manual_seed(4)
    d = model.discriminator_loss(x)
    g = model.loss(x)  # reuses the reconstruction D's phase made from this batch
    torch.manual_seed(4)
    plain = plain_model.loss(x)
    torch.manual_seed(4)
    with torch.no_grad():  # x̂ again from the same ε; D is unchanged since
        mean, logvar = model.posterior(x)
        fake = model.discriminator(model.decode(mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)) * 2 - 1)
    torch.testing.assert_close(g["adversarial"], -fake.mean(), rtol=1e-5, atol=1e-6)  # the hinge G term
    torch.testing.assert_close(g["loss"], plain["loss"] + 2.0 * g["adversarial"], rtol=1e-5, atol=1e-4)
    assert 0 <= d["real_prob"] <= 1 and d["loss"] > 0
    genlab.train(model, mini, train_config(tmp_path, "adversarial", max_steps=2))
    run = tmp_path / "adversarial"
    for column in ("D/real_prob", "D/fake_prob", "D/loss", "AE/adversarial", "AE/l1"):
        assert logged(run, column), column
    assert hasattr(genlab.load(run), "discriminator")


# ----- config errors -----
@pytest.mark.parametrize(("overrides", "message"), [
    (dict(latent_channels=0), "latent_channels"),
    (dict(channels=()), "channels"),
    (dict(channels=(8, 0)), "channels"),
    (dict(blocks=-1), "blocks"),
    (dict(kl_weight=-1e-6), "kl_weight"),
    (dict(perceptual_weight=float("nan")), "perceptual_weight"),
    (dict(adversarial_weight=-1.0), "adversarial_weight"),
    (dict(lr_d=0.0), "lr_d"),
    (dict(d_layers=9), "d_layers"),
    (dict(adversarial_weight=1.0, d_layers=3), "d_layers 3 leaves no patch"),
    (dict(image_shape=(2, 28, 28)), "image_shape"),
    (dict(image_shape=(1, 28, 28), channels=(8, 8, 8)), "image_shape .*multiples of 8"),
    (dict(perceptual_weight=1.0), "perceptual_weight needs the shipped judge, which reads 1×28×28 images, not 1×16×16"),
])
def test_bad_config_is_a_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        AutoencoderConfig(**{**TINY, **overrides})
    assert "\n" not in str(error.value)
