"""GAN/VAE inversion: the projector, its loss terms, the learned encoder, image-to-image interpolation."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import genlab
from genlab.errors import ConfigError
from genlab.models.gan.encoder import GANEncoder, judge_features
from genlab.tools.inversion import (
    _projection_loss,
    check_images,
    initial_codes,
    masked_mse,
    prior_energy,
    project,
    realness_loss,
    train_encoder,
)
from genlab.tools.latent import slerp


def tiny_gan(latent_dim: int = 4, seed: int = 0, **options) -> genlab.GAN:
    """A small 28×28 DCGAN with PyTorch's default (not DCGAN's tiny) init, a 10× output layer and batch-norm
    statistics from a few forward passes, so that G(z) spans much of [0, 1] and depends clearly on z, as a
    trained G's does. Eval mode."""
    torch.manual_seed(seed)
    gan = genlab.GAN(genlab.GANConfig(image_shape=(1, 28, 28), latent_dim=latent_dim, g_width=8, d_width=8, **options))
    for module in gan.generator.modules():
        if isinstance(module, nn.ConvTranspose2d):
            module.reset_parameters()
    with torch.no_grad():
        gan.generator.output.weight.mul_(10.0)
    gan.train()
    with torch.no_grad():
        for _ in range(10):
            gan.generator(torch.randn(64, latent_dim), gan.resolve_labels(64, None))
    return gan.eval()


def targets(gan: genlab.GAN, n: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.randn(n, gan.config.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return z, gan.generate(z)


def test_projector_recovers_the_code_of_a_generated_image():
    gan = tiny_gan()
    z_true, x = targets(gan)
    result = project(gan, x, steps=150, lr=0.1, feature_weight=0.0, prior_weight=0.0, init="mean", progress=False)
    assert len(result.losses) == 150
    assert result.losses[-1] < 1e-3 * result.losses[0]
    relative_error = (result.z - z_true).norm(dim=1) / z_true.norm(dim=1)
    assert relative_error.max() < 1e-2, relative_error
    assert (result.images - x).square().mean() < 1e-6
    torch.testing.assert_close(result.images, gan.generate(result.z).detach())
    assert result.final_losses.shape == (5,)


def test_projector_with_all_terms_still_fits_and_leaves_the_model_alone():
    gan = tiny_gan()
    _, x = targets(gan, n=3)
    gan.train()  # project must not change the mode it finds (nor any weight)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    result = project(gan, x, steps=100, lr=0.1, feature_weight=0.1, prior_weight=1e-3, d_weight=0.01, progress=False)
    assert result.losses[-1] < result.losses[0]  # (the D term, ≈ 0.01·log 2 here, does not go to 0)
    start = gan.eval().generate(torch.zeros(3, 4)).detach()
    assert (result.images - x).square().mean() < 0.1 * (start - x).square().mean()
    gan.train()
    assert gan.training and all(p.requires_grad for p in gan.parameters())
    for key, value in gan.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.numerics
def test_unknown_pixels_do_not_change_the_loss_gradient_or_the_result():
    gan = tiny_gan()
    judge = genlab.load_judge()
    _, x = targets(gan, n=2)
    mask = torch.ones(1, 1, 28, 28)
    mask[..., 8:20, 4:24] = 0
    other = x.clone()
    other[..., 8:20, 4:24] = torch.rand(2, 1, 12, 20)  # change only unknown pixels
    changed_known = x.clone()
    changed_known[..., 0:4, :] = 1.0 - changed_known[..., 0:4, :]

    def gradient(target: torch.Tensor) -> torch.Tensor:
        z = torch.randn(2, 4, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
        target_features = judge_features(judge, mask * target)
        loss = _projection_loss(gan, judge, z, gan.generate(z), target, mask, target_features, None, 1.0, 0.1, 1e-3, 0.0)
        loss.sum().backward()
        return z.grad

    torch.testing.assert_close(gradient(other), gradient(x), rtol=1e-5, atol=1e-7)
    assert not torch.allclose(gradient(changed_known), gradient(x), rtol=1e-3, atol=1e-6)
    options = {"mask": mask, "steps": 20, "init": "random", "progress": False, "judge": judge}
    torch.testing.assert_close(project(gan, other, **options).z, project(gan, x, **options).z)


@pytest.mark.numerics
def test_loss_terms_match_independent_computations():
    torch.manual_seed(0)
    generated, target = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    mask = (torch.rand(3, 1, 4, 4) > 0.5).float()
    expected = torch.stack([((generated[i] - target[i])[mask[i] > 0] ** 2).mean() for i in range(3)])
    torch.testing.assert_close(masked_mse(generated, target, mask), expected)
    z = torch.randn(5, 8)
    # −log N(z; 0, I) = ½‖z‖² + (d/2)·log 2π: prior_energy is its z-dependent part, times 2/d.
    neg_log_prior = -torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(prior_energy(z), (neg_log_prior - 4 * math.log(2 * math.pi)) * 2 / 8)
    gan = tiny_gan()
    images = gan.generate(z[:, :4]).detach()
    logits = gan.discriminator(images * 2 - 1)
    torch.testing.assert_close(realness_loss(gan, images, None), -torch.log(torch.sigmoid(logits)))


def test_init_choices_and_steps_zero():
    gan = tiny_gan()
    _, x = targets(gan, n=3)
    assert torch.equal(initial_codes(gan, x, "mean"), torch.zeros(3, 4))
    torch.testing.assert_close(initial_codes(gan, x, "random", seed=5),
                               torch.randn(3, 4, generator=torch.Generator().manual_seed(5)))
    start = torch.randn(4)
    result = project(gan, x, steps=0, init=start, progress=False)
    torch.testing.assert_close(result.z, start.expand(3, 4))
    assert result.losses == []
    with pytest.raises(ConfigError, match="encoder"):
        project(gan, x, steps=1, init="encoder", progress=False)
    with pytest.raises(ConfigError, match="init codes"):
        project(gan, x, steps=1, init=torch.zeros(2, 4), progress=False)


def test_vae_projection_starts_at_the_posterior_mean_and_improves_it():
    torch.manual_seed(0)
    vae = genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(8, 8), hidden_dim=16)).eval()
    x = torch.rand(4, 1, 16, 16)
    start = project(vae, x, steps=0, init="encoder", progress=False)
    torch.testing.assert_close(start.z, vae.encode(x).detach())
    with pytest.warns(UserWarning, match="no judge"):  # 16×16: the shipped judge cannot read them
        fitted = project(vae, x, steps=50, init="encoder", progress=False)
    assert fitted.losses[-1] < fitted.losses[0]
    with pytest.raises(ConfigError, match="discriminator"):
        project(vae, x, steps=1, d_weight=1.0, progress=False)


def test_bad_inputs_are_config_errors():
    gan = tiny_gan()
    _, x = targets(gan, n=2)
    with pytest.raises(ConfigError, match="32×32 but the model makes 1×28×28"):
        project(gan, torch.rand(2, 1, 32, 32), progress=False)
    with pytest.raises(ConfigError, match="3×28×28"):
        check_images(gan, torch.rand(2, 3, 28, 28))
    with pytest.raises(ConfigError, match="broadcast"):
        project(gan, x, mask=torch.ones(3, 1, 28, 28), progress=False)
    with pytest.raises(ConfigError, match="steps"):
        project(gan, x, steps=-1, progress=False)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        project(gan, x * 3, progress=False)
    conditional = tiny_gan(num_classes=3)
    with pytest.raises(ConfigError, match="labels"):
        project(conditional, x, steps=1, progress=False)
    assert project(conditional, x, steps=2, labels=[0, 2], progress=False).z.shape == (2, 4)


def test_encoder_trains_through_genlab_train_saves_loads_and_starts_the_projector(tmp_path):
    gan = tiny_gan()
    data = genlab.load_dataset("fashion-mnist-mini", split="test").subset(slice(0, 64))
    config = genlab.TrainConfig(epochs=1, batch_size=16, max_steps=3, out_dir=str(tmp_path / "enc"),
                                num_sample_images=0, progress=False, tensorboard=False)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    encoder = train_encoder(gan, data, config, hidden_dim=32, channels=(8, 16))
    assert isinstance(encoder, GANEncoder)
    assert (tmp_path / "enc" / "metrics.csv").read_text().count("\n") >= 2  # the loop logged E's losses
    for key, value in encoder.gan.state_dict().items():  # G and D were frozen: the copy is the GAN
        assert torch.equal(value, before[key]), key
    loaded = genlab.load(tmp_path / "enc")
    assert isinstance(loaded, GANEncoder) and not loaded.gan.training
    x = data.float_images(slice(0, 4))
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), encoder.encode(x))
    # init="encoder": the loaded run as the GAN's encoder, or as the model itself (hybrid inversion).
    z0 = project(gan, x, steps=0, init="encoder", encoder=loaded, progress=False).z
    torch.testing.assert_close(z0, loaded.encode(x).detach())
    hybrid = project(loaded, x, steps=5, init="encoder", progress=False, judge=False)
    assert hybrid.losses[-1] <= hybrid.losses[0]


def test_encoder_loss_terms_are_what_the_docstring_says():
    gan = tiny_gan()
    encoder = genlab.models.gan.encoder.encoder_for(gan, channels=(8,), hidden_dim=8, feature_weight=0.0,
                                                    latent_weight=0.0)
    x = torch.rand(3, 1, 28, 28)
    out = encoder.loss(x)
    with torch.no_grad():
        expected = F.mse_loss(gan.generate(encoder.encode(x)), x)
    torch.testing.assert_close(out["image_mse"].detach(), expected)
    torch.testing.assert_close(out["loss"].detach(), expected)
    with pytest.raises(ConfigError, match="both be 0"):
        genlab.models.gan.encoder.encoder_for(gan, latent_weight=0.0, image_weight=0.0)


@pytest.mark.numerics
def test_slerp_norm_lies_between_the_endpoint_norms():
    """Interpolated codes keep the prior's radius: constant for equal norms, between them otherwise
    (for codes at most 90° apart, as independent Gaussian codes in many dimensions are)."""
    torch.manual_seed(0)
    t = torch.linspace(0, 1, 11)
    for _ in range(20):
        a, b = torch.randn(32), torch.randn(32) * 1.5
        if torch.dot(a, b) < 0:
            b = -b
        norms = slerp(a, b, t).norm(dim=-1)
        low, high = min(a.norm(), b.norm()), max(a.norm(), b.norm())
        # float32 norms ≈ 8 (ulp 9.5e-7) of float64 slerps rounded to float32: a few ulp
        assert (norms >= low - 1e-5).all() and (norms <= high + 1e-5).all()
        torch.testing.assert_close(slerp(a, b / b.norm() * a.norm(), t).norm(dim=-1), a.norm().expand(11))
