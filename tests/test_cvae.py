"""The conditional VAE (VAEConfig.num_classes > 0): its ELBO against a hand computation, labels that change what
it encodes and decodes, the marginal bound without labels, and unconditional configs that build today's network."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import make_blobs
from torch import distributions as D
from torch import nn

import genlab
from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.nn import ConvDecoder, ConvEncoder
from genlab.training.precision import Precision, fp32_outputs

TINY = {"image_shape": (1, 16, 16), "latent_dim": 4, "channels": (4, 8), "hidden_dim": 16}


def tiny_cvae(classes: int = 3, seed: int = 0, **overrides) -> genlab.VAE:
    torch.manual_seed(seed)
    return genlab.VAE(genlab.VAEConfig(**{**TINY, "num_classes": classes, **overrides})).eval()


# ----- unconditional VAEs stay exactly as they were -----
def test_an_unconditional_config_builds_the_network_saved_runs_hold():
    """The shapes of every weight of the tiny VAE as written before conditioning existed: old runs load."""
    assert genlab.VAEConfig().num_classes == 0
    shapes = {name: tuple(t.shape) for name, t in tiny_cvae(0).state_dict().items()}
    assert shapes == {
        "encoder.net.0.weight": (4, 1, 4, 4), "encoder.net.0.bias": (4,), "encoder.net.2.weight": (8, 4, 4, 4),
        "encoder.net.2.bias": (8,), "to_posterior.1.weight": (16, 128), "to_posterior.1.bias": (16,),
        "to_posterior.3.weight": (8, 16), "to_posterior.3.bias": (8,), "from_latent.0.weight": (16, 4),
        "from_latent.0.bias": (16,), "from_latent.2.weight": (128, 16), "from_latent.2.bias": (128,),
        "decoder.net.0.weight": (8, 4, 4, 4), "decoder.net.0.bias": (4,), "decoder.net.2.weight": (4, 1, 4, 4),
        "decoder.net.2.bias": (1,),
    }


def test_an_unconditional_vae_is_initialised_as_before():
    """Same seed, same weights as the network built layer by layer in the original order."""
    model = tiny_cvae(0)
    torch.manual_seed(0)
    reference = [ConvEncoder(1, 16, 16, (4, 8)), nn.Linear(128, 16), nn.Linear(16, 8), nn.Linear(4, 16), nn.Linear(16, 128),
                 ConvDecoder(1, 16, 16, (4, 8))]
    expected = [t for module in reference for t in module.state_dict().values()]
    assert len(expected) == len(model.state_dict())
    for (name, got), want in zip(model.state_dict().items(), expected, strict=True):
        assert torch.equal(got, want), name


def test_a_config_json_without_num_classes_loads_as_unconditional():
    old = {"image_shape": [1, 16, 16], "latent_dim": 4, "channels": [4, 8], "hidden_dim": 16, "likelihood": "bernoulli",
           "binarize": False, "gaussian_sigma": 0.1, "learn_sigma": False, "beta": 1.0}  # a run's config.json before
    model = build_model("vae", old)
    assert model.config.num_classes == 0 and model.grid_columns is None
    model.load_state_dict(tiny_cvae(0).state_dict())  # strict: same names and shapes


def test_labels_widen_only_the_two_first_fully_connected_layers():
    plain, conditional = tiny_cvae(0).state_dict(), tiny_cvae(3).state_dict()
    wider = {name for name in plain if plain[name].shape != conditional[name].shape}
    assert wider == {"to_posterior.1.weight", "from_latent.0.weight"}
    assert conditional["to_posterior.1.weight"].shape == (16, 128 + 3)
    assert conditional["from_latent.0.weight"].shape == (16, 4 + 3)


# ----- the objective -----
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_cvae_loss_terms_match_a_hand_computation(likelihood):
    """−ELBO = E_q(z|x,y)[−log p(x|z,y)] + KL(q(z|x,y) ‖ N(0, I)) (Sohn et al. 2015, Eq. 4), rebuilt from the
    layers with torch.distributions and the same ε."""
    model = tiny_cvae(3, likelihood=likelihood, beta=0.5)
    x = make_blobs(6).float_images()
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    torch.manual_seed(7)
    out = model.loss(x, y)

    one_hot = F.one_hot(y, 3).float()
    h = torch.cat([model.encoder(x).flatten(1), one_hot], dim=1)
    first, second = model.to_posterior[1], model.to_posterior[3]  # Linear → ReLU → Linear
    mu, log_var = second(torch.relu(first(h))).chunk(2, dim=1)
    sigma = torch.exp(0.5 * log_var)
    torch.manual_seed(7)
    z = mu + sigma * torch.randn_like(mu)
    logits = model.decoder(model.from_latent(torch.cat([z, one_hot], dim=1)))
    if likelihood == "bernoulli":
        log_px = D.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    else:
        log_px = D.Normal(torch.sigmoid(logits), model.config.gaussian_sigma).log_prob(x).flatten(1).sum(1)
    kl = D.kl_divergence(D.Normal(mu, sigma), D.Normal(torch.zeros_like(mu), torch.ones_like(sigma))).sum(1)
    torch.testing.assert_close(out["recon"], -log_px.mean())
    torch.testing.assert_close(out["kl"], kl.mean())
    torch.testing.assert_close(out["loss"], -log_px.mean() + 0.5 * kl.mean())
    torch.testing.assert_close(out["elbo"], (log_px - kl).mean())


def test_the_loss_depends_on_the_labels_and_an_unconditional_vae_ignores_them():
    model = tiny_cvae(3)
    x = make_blobs(4).float_images()
    torch.manual_seed(0)
    first = model.loss(x, torch.tensor([0, 0, 0, 0]))["loss"]
    torch.manual_seed(0)
    assert not torch.equal(first, model.loss(x, torch.tensor([2, 2, 2, 2]))["loss"])
    plain = tiny_cvae(0)
    torch.manual_seed(0)
    without = plain.loss(x)["loss"]
    torch.manual_seed(0)
    assert torch.equal(without, plain.loss(x, torch.tensor([0, 1, 2, 3]))["loss"])  # labelled data, unconditional model


def test_without_labels_the_bound_is_on_the_marginal_with_uniform_classes():
    """log p(x) ≥ log (1/K) Σ_y exp(L(x|y)): the per-class bounds, log-mean-exp'd, and so between max − log K and max."""
    model = tiny_cvae(3)
    x = make_blobs(5).float_images()
    per_class = torch.stack([model.log_likelihood(x, 4, seed=1, labels=[y] * 5) for y in range(3)])
    marginal = model.log_likelihood(x, 4, seed=1)
    torch.testing.assert_close(marginal, torch.logsumexp(per_class, 0) - math.log(3))
    assert torch.all(marginal <= per_class.max(0).values) and torch.all(marginal >= per_class.max(0).values - math.log(3))
    torch.manual_seed(3)
    elbo = model.elbo(x)
    torch.manual_seed(3)
    by_class = [model.elbo(x, [y] * 5) for y in range(3)]
    torch.testing.assert_close(elbo, torch.logsumexp(torch.stack(by_class), 0) - math.log(3))


def test_cvae_losses_are_fp32_under_bf16_autocast():
    """The loop's precision hooks sit on the VAE's child modules: the labelled path must still call each one whole."""
    model = tiny_cvae(4).train()
    blobs = make_blobs(8)
    with fp32_outputs(model, "bf16"), Precision("bf16", torch.device("cpu")).autocast():
        losses = model.loss(blobs.float_images(), blobs.labels)
    assert {name: value.dtype for name, value in losses.items()} == dict.fromkeys(losses, torch.float32)


# ----- labels in, labels out -----
def test_labels_change_what_the_decoder_and_encoder_give():
    model = tiny_cvae(3)
    z = torch.randn(4, 4)
    images = model.decode(z, [0, 0, 0, 0])
    assert images.shape == (4, 1, 16, 16)
    assert not torch.allclose(images, model.decode(z, [1, 1, 1, 1]))
    x = make_blobs(4).float_images()
    assert not torch.allclose(model.encode(x, [0] * 4), model.encode(x, [2] * 4))


def test_sampling_cycles_the_classes_by_default_and_takes_chosen_ones():
    model = tiny_cvae(3)
    assert model.grid_columns == 3
    assert torch.equal(model.sample(5, seed=0), model.sample(5, seed=0, labels=[0, 1, 2, 0, 1]))
    chosen = model.sample(5, seed=0, labels=torch.tensor([2] * 5))
    assert not torch.equal(chosen, model.sample(5, seed=0))
    assert torch.equal(chosen, model.sample(5, seed=0, labels=[2] * 5))


@pytest.mark.parametrize(("call", "message"), [
    (lambda m, x: m.encode(x), r"class-conditional \(num_classes=3\): pass labels"),
    (lambda m, x: m.decode(torch.zeros(2, 4)), r"class-conditional \(num_classes=3\): pass labels"),
    (lambda m, x: m.reconstruct(x, [0, 3]), r"labels must be in 0\.\.2 \(num_classes=3\), got 0\.\.3"),
    (lambda m, x: m.sample(2, labels=[0]), r"one class per image \(2\), got 1"),
    (lambda m, x: m.sample(2, labels=1), "single value"),
    (lambda m, x: m.loss(x), "num_classes=3 needs a labelled dataset"),
])
def test_a_conditional_vae_asked_without_or_with_bad_labels_says_so(call, message):
    with pytest.raises(ConfigError, match=message):
        call(tiny_cvae(3), make_blobs(2).float_images())


def test_bad_num_classes_is_a_config_error():
    with pytest.raises(ConfigError, match="num_classes"):
        genlab.VAEConfig(**TINY, num_classes=-1)


def test_a_trained_cvae_draws_its_classes_and_loads_from_its_run(tmp_path):
    """Blobs labelled by quadrant: after a short training, a class's samples are brightest in its quadrant."""
    data = make_blobs(256, seed=0)
    torch.manual_seed(0)
    model = genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(8, 16), hidden_dim=64,
                                        num_classes=4))
    genlab.train(model, data, genlab.TrainConfig(epochs=40, batch_size=32, lr=3e-3, out_dir=str(tmp_path / "run"),
                                                 progress=False, num_sample_images=0, device="cpu"))
    loaded = genlab.load(tmp_path / "run")
    assert loaded.config.num_classes == 4
    labels = torch.arange(4).repeat_interleave(32)
    samples = loaded.sample(128, seed=0, labels=labels)
    torch.testing.assert_close(samples, model.eval().sample(128, seed=0, labels=labels))
    top, left = samples[:, 0, :8].mean((1, 2)), samples[:, 0, :, :8].mean((1, 2))  # brightness of the top / left halves
    bottom, right = samples[:, 0, 8:].mean((1, 2)), samples[:, 0, :, 8:].mean((1, 2))
    quadrant = 2 * (bottom > top).long() + (right > left).long()  # make_blobs' labels: tl, tr, bl, br
    assert (quadrant == labels).float().mean() > 0.7
