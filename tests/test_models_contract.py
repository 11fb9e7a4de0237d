"""What every model promises its users: one sample() signature, inference without autograd unless
gradients are asked for, and eval_mode that always gives the mode back."""
from __future__ import annotations

import inspect

import pytest
import torch

import genlab
from genlab.config import config_to_dict
from genlab.errors import ConfigError
from genlab.models import MODEL_KINDS
from genlab.models.base import truncated_normal
from genlab.models.gan.encoder import GANEncoder, GANEncoderConfig
from genlab.nn import eval_mode

TINY_VAE = genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(4, 8), hidden_dim=16)
TINY_GAN = genlab.GANConfig(image_shape=(1, 28, 28), latent_dim=4, g_width=8, d_width=8)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_sample_takes_the_same_keyword_only_arguments(kind):
    parameters = inspect.signature(MODEL_KINDS[kind].sample).parameters
    assert list(parameters) == ["self", "n", "seed", "labels", "truncation"]
    assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in ("seed", "labels", "truncation"))
    assert all(parameters[name].default is None for name in ("seed", "labels", "truncation"))


def test_an_unconditional_vae_refuses_labels_and_truncates_its_prior():
    vae = genlab.VAE(TINY_VAE).eval()
    with pytest.raises(ConfigError, match="vae model is unconditional: it does not take labels"):
        vae.sample(2, labels=[0, 1])
    truncated = vae.sample(3, seed=0, truncation=0.5)
    assert truncated.shape == (3, 1, 16, 16)
    assert torch.equal(truncated, vae.sample(3, seed=0, truncation=0.5))
    assert not torch.equal(truncated, vae.sample(3, seed=0))  # other codes: redrawn beyond ±0.5


def test_truncated_normal_stays_inside_the_threshold_and_redraws_rather_than_clamps():
    z = truncated_normal((20000,), 0.5, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5
    # Clamping would put ~62 % of the mass exactly at ±0.5; redrawing keeps a density with no atom there.
    assert (z.abs() > 0.49).float().mean() < 0.05


def test_vae_inference_runs_without_autograd_after_loading(tmp_path):
    model = genlab.VAE(TINY_VAE)
    data = genlab.Dataset(torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8), name="noise16")
    genlab.train(model, data, genlab.TrainConfig(epochs=1, batch_size=32, out_dir=str(tmp_path / "run"),
                                                 progress=False, num_sample_images=0))
    loaded = genlab.load(tmp_path / "run")
    x = data.float_images(slice(0, 4))
    for output in (loaded.encode(x), loaded.decode(loaded.encode(x)), loaded.reconstruct(x), loaded.posterior(x).mean):
        assert not output.requires_grad
        output.numpy()  # the new user's stumble: "Can't call numpy() on Tensor that requires grad"


def test_vae_inference_gives_gradients_when_asked():
    model = genlab.VAE(TINY_VAE).eval()
    z = torch.zeros(2, 4, requires_grad=True)  # a code being optimised (inversion, inpainting)
    model.decode(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    model.train()  # training: gradients for the weights
    assert model.encode(torch.rand(2, 1, 16, 16)).requires_grad
    with torch.no_grad():  # and the caller's no_grad always wins
        assert not model.decode(z).requires_grad


def test_gan_and_encoder_inference_follow_the_same_rule():
    gan = genlab.GAN(TINY_GAN).eval()
    assert not gan.generate(torch.randn(2, 4)).requires_grad
    assert gan.generate(torch.randn(2, 4, requires_grad=True)).requires_grad
    encoder = GANEncoder(GANEncoderConfig(gan=config_to_dict(TINY_GAN), channels=(4,), hidden_dim=8, feature_weight=0.0)).eval()
    x = torch.rand(2, 1, 28, 28)
    assert not encoder.encode(x).requires_grad and not encoder.reconstruct(x).requires_grad
    assert encoder.sample(2, seed=0, truncation=0.7).shape == (2, 1, 28, 28)


def test_eval_mode_restores_each_modules_mode_even_when_the_block_raises():
    a, b = torch.nn.Dropout(), torch.nn.Dropout()
    a.train()
    b.eval()

    def fail_inside() -> None:
        with eval_mode(a, b, object()):  # objects without a mode are left alone
            assert not a.training and not b.training
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert a.training and not b.training
