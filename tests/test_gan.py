"""The GAN family: networks, conditioning, sampling, spectral norm, DiffAugment, training through the loop."""
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import genlab
from genlab.config import config_from_dict, config_to_dict
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.io.checkpoints import STATE_FILE
from genlab.models.gan.model import GAN, GANConfig, truncated_normal
from genlab.nn.diffaugment import brightness, cutout, diff_augment, saturation, translation

TINY = dict(latent_dim=8, g_width=4, d_width=4)


def tiny(seed: int = 0, **overrides) -> GAN:
    torch.manual_seed(seed)
    return GAN(GANConfig(**{**TINY, **overrides}))


def make_blobs(n: int = 64, size: int = 28, seed: int = 0) -> Dataset:
    """A bright rectangle on black, labelled by the half of the image it starts in."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    for i in range(n):
        top, left = torch.randint(0, size - 8, (2,), generator=generator).tolist()
        images[i, :, top:top + 8, left:left + 6] = 255
        labels[i] = int(top >= size // 2)
    return Dataset(images, labels, ("upper", "lower"), f"blobs{size}")


def randomize_class_embeddings(model: GAN) -> None:
    """Conditional BN starts as plain BN (class gains and biases 0); give each class its own, as training would."""
    with torch.no_grad():
        for name, parameter in model.generator.named_parameters():
            if name.endswith(("gain.weight", "bias.weight")):
                parameter.normal_(0.0, 0.5)


def train_config(tmp_path, name="run", **overrides) -> genlab.TrainConfig:
    values = dict(epochs=2, batch_size=16, out_dir=str(tmp_path / name), log_every=1000, progress=False,
                  tensorboard=False, num_sample_images=0)
    return genlab.TrainConfig(**{**values, **overrides})


# ----- networks and config -----
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_dcgan_shapes(size, channels, num_classes):
    model = tiny(image_shape=(channels, size, size), num_classes=num_classes).eval()
    x = model.sample(5, seed=0)
    assert x.shape == (5, channels, size, size) and x.min() >= 0.0 and x.max() <= 1.0
    labels = model.resolve_labels(5, None)
    assert model.discriminator(model.to_model_range(x), labels).shape == (5,)


@pytest.mark.parametrize("num_classes", [0, 4])
def test_mlp_for_points_has_a_linear_output(num_classes):
    model = GAN(GANConfig(image_shape=(2,), num_classes=num_classes))
    assert (model.config.architecture, model.config.latent_dim, model.config.g_width, model.config.d_width) == ("mlp", 2, 400, 200)
    with torch.no_grad():
        model.generator.output.bias.fill_(-3.0)  # a linear output goes where its bias says; tanh could not
    points = model.sample(7, seed=0)
    assert points.shape == (7, 2) and points.max() < -2.0
    assert model.discriminator(points, model.resolve_labels(7, None)).shape == (7,)


def test_config_fills_in_auto_choices_and_round_trips_through_json():
    default = GANConfig()
    assert (default.architecture, default.latent_dim, default.d_norm, default.loss) == ("dcgan", 100, "batch", "ns")
    assert GANConfig(loss="wgan-gp").d_norm == "none"  # no batch norm in a gradient-penalised critic
    assert GANConfig(spectral_norm=True).d_norm == "none"
    for config in (default, GANConfig(image_shape=(3, 32, 32), num_classes=10, loss="hinge", diffaugment="color")):
        assert config_from_dict(GANConfig, json.loads(json.dumps(config_to_dict(config)))) == config


@pytest.mark.parametrize(("overrides", "match"), [
    (dict(image_shape=(1, 16, 16)), "28×28"),
    (dict(image_shape=(1, 28, 32)), "28×28"),
    (dict(image_shape=(2, 28, 28)), "channels"),
    (dict(image_shape=(2,), architecture="dcgan"), "architecture 'dcgan'"),
    (dict(architecture="mlp"), "architecture 'mlp'"),
    (dict(loss="wgan-gp", d_norm="batch"), "d_norm 'batch'"),
    (dict(loss="wasserstein"), "loss"),
    (dict(image_shape=(2,), diffaugment="translation"), "point data"),
    (dict(diffaugment="translation,flip"), "flip"),
    (dict(lr_d=0.0), "lr_d"),
    (dict(betas=(0.5, 1.0)), "betas"),
    (dict(d_steps=0), "d_steps"),
])
def test_bad_configs_are_one_line_errors(overrides, match):
    with pytest.raises(ConfigError, match=match) as error:
        GANConfig(**overrides)
    assert "\n" not in str(error.value)


# ----- conditioning -----
def test_conditional_sampling_honours_the_labels():
    model = tiny(num_classes=4).eval()
    randomize_class_embeddings(model)
    threes = model.sample(2, labels=[3, 3], seed=5)
    assert torch.equal(threes, model.sample(2, labels=[3, 3], seed=5))
    assert not torch.allclose(threes, model.sample(2, labels=[1, 1], seed=5))
    assert model.resolve_labels(6, None).tolist() == [0, 1, 2, 3, 0, 1]  # a grid shows every class in order
    for labels, match in (([4, 0], "0..3"), ([-1, 0], "0..3"), ([1], "one class per sample"), (2, "single value")):
        with pytest.raises(ConfigError, match=match):
            model.sample(2, labels=labels)
    with pytest.raises(ConfigError, match="unconditional"):
        tiny().sample(2, labels=[0, 1])


def test_projection_discriminator_logit_depends_on_the_label():
    model = tiny(num_classes=3)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    first, second = model.discriminator(x, torch.zeros(4, dtype=torch.long)), model.discriminator(x, torch.full((4,), 2))
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("image_shape", [(1, 28, 28), (3, 32, 32), (2,)])
def test_label_inputs_reach_g_and_d_from_the_first_step(image_shape):
    """With label_inputs the label changes G's output and D's features at initialisation, before conditional
    BN's class gains (which start at 0) or the projection have learnt anything; without, G ignores it."""
    shape = image_shape if len(image_shape) == 3 else (image_shape[0],)
    with_inputs, without = tiny(image_shape=shape, num_classes=3), tiny(image_shape=shape, num_classes=3, label_inputs=False)
    z = torch.randn(4, with_inputs.config.latent_dim)
    zeros, twos = torch.zeros(4, dtype=torch.long), torch.full((4,), 2)
    for model, moves in ((with_inputs, True), (without, False)):
        model.eval()
        assert (not torch.allclose(model.generator(z, zeros), model.generator(z, twos))) is moves
    x = torch.rand(4, *shape) * 2 - 1
    features = with_inputs.discriminator.features
    plain = GANConfig(image_shape=shape, num_classes=3, label_inputs=False, **TINY)
    first = next(m for m in features.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    width_in = first.in_features if isinstance(first, torch.nn.Linear) else first.in_channels
    assert width_in == shape[0] + 3  # the one-hot label sits beside the image (or point) it judges
    assert GAN(plain).discriminator(x, zeros).shape == with_inputs.discriminator(x, zeros).shape == (4,)


@pytest.mark.parametrize("overrides", [dict(num_classes=10), dict(num_classes=10, label_inputs=False), dict(),
                                       dict(image_shape=(3, 64, 64), num_classes=5), dict(image_shape=(2,), num_classes=4)])
def test_the_weight_estimate_counts_the_label_inputs(overrides):
    """The config's size check (before any tensor exists) follows the real networks within their biases
    and batch-norm parameters."""
    config = GANConfig(**overrides)
    model = GAN(config)
    actual = sum(p.numel() for p in model.parameters())
    assert 0.97 * actual <= config._weight_count() <= actual


def test_lr_d_defaults_by_conditioning():
    assert GANConfig(num_classes=10).lr_d == 4e-4 and GANConfig().lr_d == 1e-4
    assert GANConfig(num_classes=10, lr_d=2e-4).lr_d == 2e-4


def test_a_conditional_gan_needs_labelled_data():
    with pytest.raises(ConfigError, match="labelled dataset"):
        tiny(num_classes=2).discriminator_loss(torch.rand(4, 1, 28, 28), None)


# ----- sampling -----
def test_seeded_sampling_leaves_the_global_rng_and_the_training_mode_alone():
    model = tiny().train()
    state = torch.get_rng_state()
    first = model.sample(3, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.generator.training  # switched to eval (batch-norm running statistics) and back
    assert torch.equal(first, model.eval().sample(3, seed=1))
    z = truncated_normal((3, 8), None, torch.Generator().manual_seed(1))
    assert torch.equal(model.generate(z), first)


def test_truncation_redraws_instead_of_clamping():
    z = truncated_normal((4000, 50), 0.5, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5
    assert (z.abs() == 0.5).sum() == 0  # clamping would pile ~62% of the entries at exactly ±0.5
    # N(0, 1) truncated to [−0.5, 0.5]: P(|z| > 0.45) = (Φ(0.5) − Φ(0.45)) / (Φ(0.5) − ½) ≈ 0.093
    assert 0.08 < (z.abs() > 0.45).float().mean() < 0.11
    assert torch.equal(z, truncated_normal((4000, 50), 0.5, torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError, match="truncation"):
        tiny().sample(2, truncation=0.0)
    assert tiny().sample(2, seed=0, truncation=0.7).shape == (2, 1, 28, 28)


# ----- spectral norm -----
@pytest.mark.numerics
@pytest.mark.parametrize("image_shape", [(1, 28, 28), (2,)])
def test_spectral_norm_bounds_every_discriminator_layer(image_shape):
    torch.manual_seed(0)  # the weights and their gap σ₂/σ₁, which sets how fast the power iteration converges
    model = GAN(GANConfig(image_shape=image_shape, num_classes=3, spectral_norm=True, d_width=8))
    x = torch.randn((16, *image_shape))
    labels = torch.arange(16) % 3
    for _ in range(100):  # one power iteration per training-mode forward pass
        model.discriminator(x, labels)
    layers = [m for m in model.discriminator.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == (5 if image_shape == (2,) else 4)  # every weight layer, the class embedding included
    for layer in layers:
        weight = layer.weight.detach()
        # W / σ̂, with σ̂ from the power iteration: it approaches σ₁ from below by a factor (σ₂/σ₁)² per step, not
        # by rounding. After 20 steps 5 seeds in 40 were still > 1% short (up to 3.7%); after 100, ≤ 0.3%.
        assert torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2) <= 1.0 + 1e-2


# ----- DiffAugment -----
def test_diffaugment_keeps_shape_and_passes_gradients():
    x = (torch.rand(6, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, "translation,cutout,color")
    assert y.shape == x.shape and not torch.equal(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert diff_augment(x, "") is x


def test_each_augmentation_does_what_it_says():
    ones = torch.ones(8, 1, 16, 16)
    generator = torch.Generator().manual_seed(0)
    shifted = translation(ones, generator)  # zero-filled where the image moved away from
    assert set(shifted.unique().tolist()) <= {0.0, 1.0} and (shifted == 0).any()
    holes = (cutout(ones, generator) == 0).flatten(1).sum(1)
    assert (holes > 0).all() and (holes <= 8 * 8).all()  # at most a half-size square, clipped at the border
    grey = torch.rand(4, 1, 8, 8)
    assert torch.allclose(saturation(grey, generator), grey)  # one channel is all grey already
    shift = brightness(grey, generator) - grey  # one offset in [−0.5, 0.5) per image
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift)) and shift.abs().max() <= 0.5
    again = diff_augment(ones, "translation,cutout", torch.Generator().manual_seed(3))
    assert torch.equal(again, diff_augment(ones, "translation,cutout", torch.Generator().manual_seed(3)))
    with pytest.raises(ConfigError, match="point data"):
        diff_augment(torch.randn(4, 2), "color")


# ----- the training phases -----
def test_phases_and_optimizers_follow_the_config():
    model = tiny(d_steps=3, r1_gamma=1.0, r1_every=4, lr_g=1e-4, lr_d=4e-4)
    phases = model.training_phases()
    assert [(p.name, p.optimizer, p.repeats, p.every, p.new_batch) for p in phases] == [
        ("D", "D", 3, 1, True), ("G", "G", 1, 1, False), ("D_reg", "D", 1, 4, True)]
    assert [p.name for p in tiny().training_phases()] == ["D", "G"]
    optimizers = model.make_optimizers(genlab.TrainConfig())
    d_params = {id(p) for g in optimizers["D"].param_groups for p in g["params"]}
    g_params = {id(p) for g in optimizers["G"].param_groups for p in g["params"]}
    assert d_params == {id(p) for p in model.discriminator.parameters()}
    assert g_params == {id(p) for p in model.generator.parameters()}
    assert optimizers["D"].param_groups[0]["lr"] == 4e-4 and optimizers["G"].param_groups[0]["lr"] == 1e-4


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_phase_losses_return_scalars_and_touch_only_their_player(loss):
    model = tiny(loss=loss, num_classes=2, r1_gamma=1.0)
    x, labels = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 0, 1, 0, 1])
    d = model.discriminator_loss(x, labels)
    expected = {"loss", "real_prob", "fake_prob", "accuracy"} | ({"gp"} if loss == "wgan-gp" else set())
    assert set(d) == expected and all(v.dim() == 0 for v in d.values())
    d["loss"].backward()
    assert all(p.grad is None for p in model.generator.parameters())  # fakes made without a G graph
    model.zero_grad(set_to_none=True)
    g = model.generator_loss(x, labels)
    assert set(g) == {"loss", "fake_prob"} and all(v.dim() == 0 for v in g.values())
    g["loss"].backward()
    assert all(p.grad is None for p in model.discriminator.parameters())  # D frozen in G's phase
    assert all(p.requires_grad for p in model.discriminator.parameters())  # ... and unfrozen after
    assert any(p.grad is not None for p in model.generator.parameters())
    r1 = model.r1_loss(x, labels)
    assert set(r1) == {"loss", "r1"} and r1["loss"].item() == pytest.approx(16 * r1["r1"].item())


# ----- through the training loop -----
def test_a_tiny_gan_trains_saves_and_loads(tmp_path):
    data = make_blobs()
    model = genlab.train(tiny(num_classes=2), data, train_config(tmp_path))
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert {"D/loss", "D/real_prob", "D/fake_prob", "D/accuracy", "G/loss", "G/fake_prob"} <= set(rows[0].split(","))
    loaded = genlab.load(tmp_path / "run")
    assert isinstance(loaded, GAN) and loaded.config == model.config
    assert torch.equal(model.sample(6, labels=[1] * 6, seed=2), loaded.sample(6, labels=[1] * 6, seed=2))


def test_a_conditional_run_saved_before_label_inputs_loads_as_it_was_trained(tmp_path):
    """config.json files written before GANConfig had label_inputs hold no such key; their networks had no
    label inputs, so loading must not build the new default (whose first layers have other shapes)."""
    model = genlab.train(tiny(num_classes=2, label_inputs=False), make_blobs(), train_config(tmp_path, epochs=1))
    config_path = tmp_path / "run" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["model"]["config"]["label_inputs"]
    config_path.write_text(json.dumps(saved))
    loaded = genlab.load(tmp_path / "run")
    assert loaded.config.label_inputs is False
    assert torch.equal(model.sample(4, labels=[1] * 4, seed=3), loaded.sample(4, labels=[1] * 4, seed=3))
    fresh = config_from_dict(GANConfig, {"num_classes": 2})  # a new config, not a saved one: today's default
    assert fresh.label_inputs is True
    steps = training_step(tmp_path / "run")
    resumed = genlab.train(loaded, make_blobs(), train_config(tmp_path, epochs=2), resume=True)  # and it resumes
    assert resumed.config.label_inputs is False and training_step(tmp_path / "run") == 2 * steps


def training_step(run) -> int:
    with safe_open(str(run / STATE_FILE), "pt") as handle:
        return int(json.loads(handle.metadata()["genlab"])["step"])


def test_a_point_gan_trains_on_unlabelled_points(tmp_path):
    points = Dataset(torch.randn(64, 2) * 0.1 + torch.tensor([1.0, -1.0]), None, (), "blob2d")
    model = genlab.train(GAN(GANConfig(image_shape=(2,), g_width=16, d_width=16, loss="hinge")), points,
                         train_config(tmp_path, max_steps=4))
    assert model.sample(5, seed=0).shape == (5, 2)


@pytest.mark.parametrize("overrides", [
    dict(),
    dict(num_classes=2, diffaugment="translation"),
    dict(num_classes=2, spectral_norm=True, r1_gamma=1.0, r1_every=3, d_steps=2, diffaugment="translation,cutout,color"),
], ids=["dcgan", "conditional-diffaugment", "conditional-sn-r1-2dsteps"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, overrides):
    # 64 images / 16 = 4 batches per epoch; stop at step 3 (mid-epoch 1), resume to the end of epoch 2.
    data = make_blobs()
    full = genlab.train(tiny(**overrides), data, train_config(tmp_path, "full", ema_decay=0.9))
    genlab.train(tiny(**overrides), data, train_config(tmp_path, "split", ema_decay=0.9, max_steps=3))
    resumed = genlab.train(tiny(seed=99, **overrides), data, train_config(tmp_path, "split", ema_decay=0.9), resume=True)
    for name, tensor in full.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    full_state = load_file(tmp_path / "full" / "training_state.safetensors")
    split_state = load_file(tmp_path / "split" / "training_state.safetensors")
    for name in full_state:
        assert torch.equal(full_state[name], split_state[name]), name


@pytest.mark.parametrize(("d_steps", "forwards_per_step"), [(1, 1), (2, 3)])
def test_g_runs_forward_once_per_step_when_d_steps_is_one(tmp_path, d_steps, forwards_per_step):
    """With one D step, G's phase scores the very fakes D's phase made (as the PyTorch DCGAN example
    does), so G runs forward once per step; with n D steps: n detached fakes + one fresh batch for G."""
    model, calls = tiny(d_steps=d_steps), {"n": 0}
    model.generator.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    genlab.train(model, make_blobs(), train_config(tmp_path, max_steps=3, epochs=100))
    assert calls["n"] == 3 * forwards_per_step


def test_a_conditional_gan_draws_one_class_per_column_in_its_epoch_grids(tmp_path):
    from PIL import Image

    genlab.train(tiny(num_classes=2), make_blobs(), train_config(tmp_path, epochs=1, num_sample_images=7))
    grid = Image.open(tmp_path / "run" / "samples" / "epoch_001.png")
    # 6 samples (7 rounded down to whole rows) in 2 columns and 3 rows of 28 px tiles, 2 px padding, scale 2.
    assert grid.size == (2 * (2 + 2 * 30), 2 * (2 + 3 * 30))
