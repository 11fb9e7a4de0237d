"""The VAE's maths, each against an independent computation."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from genlab.errors import ConfigError
from genlab.models.vae import (
    VAE,
    DiagonalGaussian,
    VAEConfig,
    bits_per_dim,
    kl_to_standard_normal,
    reparameterize,
)


@pytest.mark.numerics
@pytest.mark.parametrize(
    ("mu", "sigma", "eps", "expected"),
    [
        ([0.5, -0.2], [0.1, 0.3], [0.5, -1.0], [0.55, -0.5]),
        ([0.2, 0.7, -0.3], [0.4, 0.1, 0.5], [1.0, -0.5, 0.2], [0.6, 0.65, -0.2]),
    ],
)
def test_reparameterize_worked_examples(mu, sigma, eps, expected):
    z = reparameterize(torch.tensor(mu), torch.tensor(sigma), torch.tensor(eps))
    torch.testing.assert_close(z, torch.tensor(expected))


@pytest.mark.numerics
def test_reparameterize_gradients_flow_through_mu_and_sigma():
    mu = torch.tensor([0.5, -0.2], requires_grad=True)
    sigma = torch.tensor([0.1, 0.3], requires_grad=True)
    eps = torch.tensor([0.5, -1.0])
    reparameterize(mu, sigma, eps).sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(2))
    torch.testing.assert_close(sigma.grad, eps)  # dz/dσ = ε


@pytest.mark.numerics
def test_reparameterize_draws_have_the_posterior_moments():
    torch.manual_seed(0)
    mu, sigma = torch.full((200_000,), 1.5), torch.full((200_000,), 0.5)
    z = reparameterize(mu, sigma)
    # standard errors of 200,000 draws: 0.0011 (mean) and 0.0008 (std), so 0.01 is ≥ 9 of them
    assert abs(z.mean().item() - 1.5) < 0.01 and abs(z.std().item() - 0.5) < 0.01


@pytest.mark.numerics
def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, sigma = torch.randn(7, 5), torch.rand(7, 5) + 0.05
    reference = kl_divergence(Independent(Normal(mu, sigma), 1), Independent(Normal(torch.zeros(5), torch.ones(5)), 1))
    torch.testing.assert_close(kl_to_standard_normal(mu, sigma), reference)
    assert torch.all(kl_to_standard_normal(torch.zeros(3, 4), torch.ones(3, 4)) == 0)  # exact: 0 + 1 − 1 − 2·log 1


@pytest.mark.numerics
def test_posterior_log_prob_matches_torch_distributions():
    torch.manual_seed(1)
    mu, sigma, z = torch.randn(4, 6), torch.rand(4, 6) + 0.1, torch.randn(4, 6)
    reference = Independent(Normal(mu, sigma), 1).log_prob(z)
    torch.testing.assert_close(DiagonalGaussian(mu, sigma).log_prob(z), reference)


@pytest.mark.numerics
def test_bernoulli_reconstruction_matches_torch_distributions():
    torch.manual_seed(2)
    model = VAE(VAEConfig(likelihood="bernoulli"))
    logits, x = torch.randn(3, 1, 28, 28), torch.rand(3, 1, 28, 28).round()
    reference = -Independent(Bernoulli(logits=logits), 3).log_prob(x)
    torch.testing.assert_close(model.reconstruction_nll(logits, x), reference)


@pytest.mark.numerics
@pytest.mark.parametrize("learn_sigma", [False, True])
def test_gaussian_reconstruction_matches_torch_distributions(learn_sigma):
    torch.manual_seed(3)
    model = VAE(VAEConfig(likelihood="gaussian", gaussian_sigma=0.2, learn_sigma=learn_sigma))
    logits, x = torch.randn(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    reference = -Independent(Normal(torch.sigmoid(logits), 0.2), 3).log_prob(x)
    torch.testing.assert_close(model.reconstruction_nll(logits, x), reference)
    assert ("log_sigma" in dict(model.named_parameters())) == learn_sigma


@pytest.mark.numerics
def test_loss_is_negative_elbo_with_beta_weighted_kl():
    torch.manual_seed(4)
    x = torch.rand(5, 1, 28, 28)
    model = VAE(VAEConfig(beta=4.0))
    out = model.loss(x)
    torch.testing.assert_close(out["loss"], out["recon"] + 4.0 * out["kl"])
    torch.testing.assert_close(out["elbo"], -(out["recon"] + out["kl"]))
    assert out["kl"] >= 0


@pytest.mark.numerics
def test_iwae_bound_is_above_elbo_and_tightens_with_k():
    torch.manual_seed(5)
    model = VAE(VAEConfig(latent_dim=4, channels=(8, 16), hidden_dim=32))
    # A posterior far from the true one (which, for an untrained decoder, is about the prior):
    # q = N(2, 0.3²) for every image. The ELBO pays the full KL; IWAE recovers part of it.
    head = model.to_posterior[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([2.0] * 4 + [math.log(0.09)] * 4))
    x = torch.rand(16, 1, 28, 28).round()
    elbo = model.elbo(x).mean().item()
    bounds = [model.log_likelihood(x, num_samples=k, seed=0).mean().item() for k in (1, 10, 100, 1000)]
    # k = 1 is a single-sample ELBO estimate: equal to the ELBO in expectation.
    assert abs(bounds[0] - elbo) < 0.02 * abs(elbo)
    assert elbo <= bounds[1] <= bounds[2] <= bounds[3]
    # With weights this uneven, L_k can gain at most about log k (6.9 nats at k = 1000) of the ~11.
    assert bounds[3] - elbo > 3.0


@pytest.mark.numerics
def test_iwae_equals_logsumexp_of_importance_weights_computed_by_hand():
    torch.manual_seed(6)
    model = VAE(VAEConfig(latent_dim=3, channels=(4,), hidden_dim=8, image_shape=(1, 8, 8)))
    x = torch.rand(2, 1, 8, 8).round()
    k = 7
    ours = model.log_likelihood(x, num_samples=k, seed=123, max_batch=4)  # forces chunking
    generator = torch.Generator().manual_seed(123)
    q = model.posterior(x)
    eps = torch.randn((2, k, 3), generator=generator)
    z = q.mean.unsqueeze(1) + q.stddev.unsqueeze(1) * eps
    # Our chunks draw eps in pieces; recompute the same pieces in order.
    generator = torch.Generator().manual_seed(123)
    chunk = max(1, 4 // 2)
    pieces = [torch.randn((2, min(chunk, k - s), 3), generator=generator) for s in range(0, k, chunk)]
    z = q.mean.unsqueeze(1) + q.stddev.unsqueeze(1) * torch.cat(pieces, 1)
    log_w = torch.empty(2, k)
    for i in range(2):
        for j in range(k):
            probs = model.decode(z[i, j][None])[0]
            log_px = Independent(Bernoulli(probs=probs.clamp(1e-7, 1 - 1e-7)), 3).log_prob(x[i])
            log_pz = Normal(0.0, 1.0).log_prob(z[i, j]).sum()
            log_qz = Normal(q.mean[i], q.stddev[i]).log_prob(z[i, j]).sum()
            log_w[i, j] = log_px + log_pz - log_qz
    reference = torch.logsumexp(log_w, 1) - math.log(k)
    # float32 decoder run at other batch sizes (chunks of 4 against 1): each logit can move by ~1e-5 (conv
    # accumulations in another kernel), and log p(x|z) sums 64 of them: ≲ 1e-3 nats of |log w| ≈ 45
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-3)


@pytest.mark.numerics
def test_bits_per_dim():
    ll = torch.tensor([-784 * math.log(2)])
    torch.testing.assert_close(bits_per_dim(ll, (1, 28, 28)), torch.tensor([1.0]))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 32, 32), (3, 64, 64)])
def test_shapes_and_ranges(shape):
    model = VAE(VAEConfig(image_shape=shape, latent_dim=8))
    x = torch.rand(2, *shape)
    assert model.encode(x).shape == (2, 8)
    out = model.reconstruct(x)
    assert out.shape == (2, *shape) and out.min() >= 0 and out.max() <= 1
    samples = model.sample(3, seed=0)
    assert samples.shape == (3, *shape)
    torch.testing.assert_close(samples, model.sample(3, seed=0))
    assert not torch.equal(samples, model.sample(3, seed=1))


def test_sampling_with_a_seed_leaves_the_global_rng_alone():
    model = VAE()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model.sample(4, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_dynamic_binarization_only_while_training():
    torch.manual_seed(7)
    model = VAE(VAEConfig(binarize=True))
    x = torch.full((2, 1, 28, 28), 0.5)
    model.eval()
    torch.manual_seed(0)
    a = model.loss(x)["recon"]
    torch.manual_seed(0)
    b = model.loss(x)["recon"]
    torch.testing.assert_close(a, b)
    model.train()
    # On binarized targets, BCE differs from BCE against the grey image.
    assert not torch.allclose(model.loss(x)["recon"], a)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_shape": (2, 28, 28)}, "1 or 3 channels"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"image_shape": (1, 8, 8), "channels": (8, 8, 8, 8)}, "too small"),
        ({"beta": -1.0}, "beta"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        VAEConfig(**kwargs)
