"""The style-based (StyleGAN2-like) and BigGAN-style architectures of the GAN: their formulas, W-space operations,
hierarchical latent, regularisers, and training / saving / sampling through the loop and the CLI."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli.main import main
from genlab.config import config_from_dict, config_to_dict
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models.gan.big import BigGenerator
from genlab.models.gan.losses import orthogonal_regularization, regularized_weights
from genlab.models.gan.model import GAN, GANConfig
from genlab.models.gan.style import ModulatedConv2d, StyleLayer, ToRGB

TINY = dict(latent_dim=10, g_width=4, d_width=4)


def tiny(architecture: str, seed: int = 0, image_shape=(3, 16, 16), **overrides) -> GAN:
    torch.manual_seed(seed)
    return GAN(GANConfig(image_shape=image_shape, architecture=architecture, **{**TINY, **overrides}))


def random_images(n: int = 48, shape=(3, 16, 16), classes: int = 2, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *shape), generator=generator, dtype=torch.uint8)
    labels = torch.arange(n) % classes
    return Dataset(images, labels, tuple(f"c{i}" for i in range(classes)), "random")


def train_config(tmp_path, name="run", **overrides) -> genlab.TrainConfig:
    values = dict(epochs=1, batch_size=8, out_dir=str(tmp_path / name), log_every=1, progress=False, tensorboard=False,
                  num_sample_images=0, plots=False, ema_decay=0.9)
    return genlab.TrainConfig(**{**values, **overrides})


# ----- config -----
def test_defaults_follow_each_papers_recipe_and_round_trip_through_json():
    style, big = GANConfig(image_shape=(3, 64, 64), architecture="style"), GANConfig(image_shape=(3, 64, 64), architecture="big")
    assert (style.loss, style.betas, style.lr_g, style.d_norm, style.latent_dim) == ("ns", (0.0, 0.99), 2e-3, "none", 128)
    assert style.r1_gamma == pytest.approx(0.0002 * 64 * 64 / 64) and style.ortho_reg == 0.0
    assert (big.loss, big.betas, big.lr_g, big.lr_d, big.ortho_reg, big.attention, big.r1_gamma) == ("hinge", (0.0, 0.999), 2e-4,
                                                                                                      2e-4, 1e-4, 16, 0.0)
    dcgan = GANConfig()  # unchanged by the new fields
    assert (dcgan.loss, dcgan.betas, dcgan.lr_g, dcgan.lr_d, dcgan.r1_gamma, dcgan.ortho_reg) == ("ns", (0.5, 0.999), 4e-4, 1e-4, 0.0, 0.0)
    for config in (style, big, GANConfig(image_shape=(1, 28, 28), architecture="big", num_classes=10)):
        assert config_from_dict(GANConfig, json.loads(json.dumps(config_to_dict(config)))) == config


@pytest.mark.parametrize(("overrides", "match"), [
    (dict(image_shape=(2,), architecture="style"), "needs images"),
    (dict(image_shape=(3, 48, 48), architecture="big"), "16×16, 28×28, 32×32, 64×64"),
    (dict(image_shape=(3, 64, 64), architecture="style", spectral_norm=True), "spectral_norm"),
    (dict(image_shape=(3, 64, 64), architecture="big", d_norm="batch"), "d_norm 'batch'"),
    (dict(image_shape=(3, 64, 64), architecture="big", attention=4), "attention 4"),
    (dict(image_shape=(3, 64, 64), architecture="style", attention=16), "attention applies"),
    (dict(image_shape=(3, 64, 64), architecture="big", latent_dim=3), "5 chunks"),
    (dict(image_shape=(3, 64, 64), architecture="style", style_mixing=1.5), "style_mixing"),
    (dict(image_shape=(3, 64, 64), architecture="style", mapping_layers=0), "mapping_layers"),
    (dict(architecture="gigantic"), "architecture"),
])
def test_bad_configs_are_one_line_errors(overrides, match):
    with pytest.raises(ConfigError, match=match) as error:
        GANConfig(**overrides)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("architecture", ["style", "big"])
@pytest.mark.parametrize(("shape", "num_classes"), [((3, 16, 16), 0), ((1, 28, 28), 3), ((3, 32, 32), 0), ((3, 64, 64), 2)])
def test_shapes_and_range(architecture, shape, num_classes):
    model = tiny(architecture, image_shape=shape, num_classes=num_classes)
    x = model.sample(4, seed=0)
    assert x.shape == (4, *shape) and x.min() >= 0.0 and x.max() <= 1.0
    assert model.generator(torch.randn(4, 10), model.resolve_labels(4, None)).shape == (4, *shape)  # the export contract
    assert model.discriminator(model.to_model_range(x), model.resolve_labels(4, None)).shape == (4,)


# ----- style: modulation, truncation, mixing -----
def test_demodulation_keeps_unit_variance_for_unit_variance_inputs():
    """StyleGAN2 Eq. 2–3: with i.i.d. zero-mean unit-variance inputs, Var(y_j) = Σ_{i,k} w''_ijk² = 1 exactly, whatever
    the styles. Estimated from 16·38·38 = 23,104 interior outputs per channel (the border pixels see zero padding);
    neighbours share inputs through the 3×3 window, so count ≥ 23,104/9 ≈ 2,600 independent ones: the standard error
    of a variance estimate is then ≤ √(2/2,600) ≈ 0.028, and we allow 0.15 per channel (> 5 s.e.) and 0.06 for the
    mean of the 16 channels. Without demodulation the same styles (≈ 3 ± 1) give a variance near E[s²] ≈ 10."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 16, 3, w_dim=8)
    with torch.no_grad():
        conv.affine.bias.fill_(3.0)  # styles far from the initial 1, different per sample and channel
    x, w = torch.randn(16, 16, 40, 40), torch.randn(16, 8)
    with torch.no_grad():
        for fused in (True, False):  # the grouped convolution and the scaled-activation path compute the same thing
            conv.fused = fused
            y = conv(x, w)[:, :, 1:-1, 1:-1]
            variance = y.var(dim=(0, 2, 3))
            assert (variance - 1.0).abs().max() < 0.15 and abs(variance.mean().item() - 1.0) < 0.06
        conv.fused = True
        grouped = conv(x, w)
        conv.fused = False
        torch.testing.assert_close(conv(x, w), grouped, rtol=1e-4, atol=1e-4)
        conv.demodulate = False
        assert conv(x, w)[:, :, 1:-1, 1:-1].var().item() > 4.0  # the control: the test can fail


def test_truncation_psi_zero_is_the_mean_w_image_and_psi_one_changes_nothing():
    model = tiny("style").eval()
    with torch.no_grad():
        model.generator.mapping.w_avg.normal_()  # a tracked w̄ that is not the zero vector
    centre = model.sample(6, seed=1, truncation=0.0)
    assert torch.allclose(centre, centre[:1].expand_as(centre), atol=1e-6)  # every z: one image
    w_avg = model.generator.mapping.w_avg[None, None].expand(1, model.generator.num_ws, -1)
    with torch.no_grad():
        mean_image = model.from_model_range(model.generator.synthesis(w_avg, "const"))
    torch.testing.assert_close(centre[:1], mean_image)
    assert torch.equal(model.sample(6, seed=1, truncation=1.0), model.sample(6, seed=1))
    half = model.sample(6, seed=1, truncation=0.5)
    assert not torch.allclose(half, centre) and not torch.allclose(half, model.sample(6, seed=1))
    with pytest.raises(ConfigError, match="ψ"):
        model.sample(2, truncation=-0.5)


def test_w_avg_tracks_the_mapped_w_in_training_only():
    model = tiny("style")
    before = model.generator.mapping.w_avg.clone()
    with torch.no_grad():
        model.generator.eval()(torch.randn(8, 10))
        assert torch.equal(model.generator.mapping.w_avg, before)
        model.generator.train()
        w = model.generator.mapping(torch.randn(8, 10))
    torch.testing.assert_close(model.generator.mapping.w_avg, torch.lerp(before, w.mean(0), 1 - 0.995))


def per_layer_styles(generator) -> dict[int, list[torch.Tensor]]:
    """Hooks on every affine A, recording the w each one receives, keyed by its index in ws."""
    synthesis, seen, handles = generator.synthesis, {}, []
    rgb_index = {id(rgb): after + 1 for after, rgb in zip(synthesis.rgb_after, synthesis.to_rgb, strict=True)}
    for module in synthesis.modules():
        if isinstance(module, StyleLayer | ToRGB):
            index = list(synthesis.layers).index(module) if isinstance(module, StyleLayer) else rgb_index[id(module)]
            handles.append(module.conv.affine.register_forward_hook(
                lambda m, inputs, output, i=index: seen.setdefault(i, []).append(inputs[0].detach().clone())))
    return seen, handles


@pytest.mark.parametrize("layer", [1, 3, 5])
def test_style_mixing_takes_the_second_w_from_the_chosen_layer_on(layer):
    model = tiny("style").eval()
    generator = model.generator
    seen, handles = per_layer_styles(generator)
    mixes = model.mix([7], [8, 9], layer)
    for handle in handles:
        handle.remove()
    assert mixes.shape == (1, 2, 3, 16, 16) and sorted(seen) == list(range(generator.num_ws))
    with torch.no_grad():
        w_row, w_columns = (generator.ws(torch.cat([torch.randn(1, 10, generator=torch.Generator().manual_seed(s))
                                                    for s in seeds]))[:, 0] for seeds in ([7], [8, 9]))
    for index, calls in seen.items():  # layer i and the toRGB after layer i − 1 both take ws[:, i] (StyleGAN2's indexing)
        expected = w_row.expand(2, -1) if index < layer else w_columns
        for styles in calls:
            torch.testing.assert_close(styles, expected)
    sources = torch.cat([model.sample(1, seed=s) for s in (7, 8, 9)])
    assert not torch.allclose(mixes[0, 0], sources[0]) and not torch.allclose(mixes[0, 0], sources[1])
    with pytest.raises(ConfigError, match="mixing layer"):
        model.mix([1], [2], generator.num_ws)


def test_mixing_regularisation_switches_once_per_sample():
    generator = tiny("style").generator
    ws, other = torch.zeros(64, generator.num_ws, 3), torch.ones(64, generator.num_ws, 3)
    mixed = generator.mix_ws(ws, other, 1.0)[:, :, 0]
    cutoffs = (mixed == 0).sum(1)
    assert torch.equal(mixed, (torch.arange(generator.num_ws)[None] >= cutoffs[:, None]).float())  # 0…0 then 1…1
    assert cutoffs.min() >= 1 and cutoffs.max() < generator.num_ws and len(cutoffs.unique()) > 1
    assert torch.equal(generator.mix_ws(ws, other, 0.0), ws)


def test_eval_noise_is_fixed_and_training_noise_is_random():
    model = tiny("style")
    with torch.no_grad():
        for layer in model.generator.synthesis.layers:
            layer.noise_strength.fill_(1.0)
        z = torch.randn(2, 10)
        assert not torch.equal(model.generator.train()(z), model.generator(z))
        assert torch.equal(model.generator.eval()(z), model.generator(z))
    model.generator.train()  # sampling switches to eval itself: the same seed, the same images, noise and all
    assert torch.equal(model.sample(3, seed=0), model.sample(3, seed=0))
    assert torch.equal(model.mix([0], [1, 2]), model.mix([0], [1, 2])) and model.generator.training


# ----- big: hierarchical latent, attention, spectral norm, orthogonal regularisation -----
def condition_inputs(generator: BigGenerator, z: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """The condition each block's CBN receives (its first CBN; the second gets the same)."""
    seen = []
    handles = [block.bn0.register_forward_pre_hook(lambda m, args: seen.append(args[1])) for block in generator.blocks]
    generator(z, labels)
    for handle in handles:
        handle.remove()
    return seen


def test_each_z_chunk_reaches_its_own_block_and_no_other():
    model = tiny("big", num_classes=3, latent_dim=12, image_shape=(3, 32, 32))  # 4 chunks of 3: linear + 3 blocks
    generator, labels = model.generator, torch.tensor([0, 2])
    assert generator.chunk_sizes == [3, 3, 3, 3] and len(generator.blocks) == 3
    z = torch.randn(2, 12, requires_grad=True)
    conditions = condition_inputs(generator, z, labels)
    for b, condition in enumerate(conditions, start=1):
        (grad,) = torch.autograd.grad(condition.sum(), z, retain_graph=True)
        chunk = slice(3 * b, 3 * b + 3)
        assert (grad[:, chunk] != 0).all() and grad.clone().index_fill_(1, torch.arange(3 * b, 3 * b + 3), 0).eq(0).all()
        assert condition.shape == (2, 3 + 32)  # [z chunk, shared class embedding]
    generator.eval()  # no power iteration of spectral norm between the calls compared below
    conditions = condition_inputs(generator, z.detach(), labels)
    with torch.no_grad():
        for k in range(4):
            moved = z.detach().clone()
            moved[:, 3 * k:3 * k + 3] += 1.0
            after = condition_inputs(generator, moved, labels)
            changed = [not torch.equal(a, b) for a, b in zip(conditions, after, strict=True)]
            assert changed == [b == k for b in range(1, 4)]
            assert torch.equal(generator.first_block(moved), generator.first_block(z.detach())) == (k != 0)


def test_attention_starts_as_the_identity_and_sits_where_asked():
    model = tiny("big", image_shape=(3, 32, 32), attention=8)
    attention = model.generator.attention
    x = torch.randn(2, attention.v.out_channels, 8, 8)
    assert attention.gamma.item() == 0.0 and torch.equal(attention(x), x)  # SAGAN Eq. 3 with γ = 0
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    assert not torch.allclose(attention(x), x)
    seen = []
    attention.register_forward_hook(lambda m, inputs, output: seen.append(inputs[0].shape[-1]))
    model.generator(torch.randn(2, 10))
    assert seen == [8]
    assert GANConfig(image_shape=(3, 32, 32), architecture="big", attention=0).attention == 0
    assert tiny("big", attention=0).generator.attention is None


def test_spectral_norm_bounds_every_layer_of_big_g_and_d():
    torch.manual_seed(0)
    model = tiny("big", num_classes=3, image_shape=(3, 16, 16), g_width=8, d_width=8)
    z, x, labels = torch.randn(16, 10), torch.randn(16, 3, 16, 16), torch.arange(16) % 3
    for _ in range(100):  # one power iteration per training-mode forward pass
        model.generator(z, labels)
        model.discriminator(x, labels)
    layers = [m for net in (model.generator, model.discriminator) for m in net.modules() if hasattr(m, "parametrizations")]
    assert len(layers) > 20 and model.generator.shared not in layers  # BigGAN leaves the shared embedding unnormalised
    for layer in layers:
        weight = layer.weight.detach()
        sigma = torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2).item()
        # σ̂ from the power iteration approaches σ₁ from below, so W/σ̂ has σ₁ slightly ≥ 1 (see test_gan.py)
        assert 1.0 - 1e-4 <= sigma <= 1.0 + 1e-2


def test_orthogonal_regularisation():
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    assert orthogonal_regularization([q[:4]], 1.0).item() == pytest.approx(0.0, abs=1e-20)  # 4 orthonormal filters
    assert orthogonal_regularization([3.0 * q[:4]], 1.0).item() == pytest.approx(0.0, abs=1e-20)  # norms are free (Eq. 3)
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # filters (1, 2) and (3, 4): Gram [[5, 11], [11, 25]]
    assert orthogonal_regularization([weight], 1e-4).item() == pytest.approx(1e-4 * 2 * 11 ** 2)
    conv = weight.reshape(2, 1, 1, 2)  # a conv's filters are flattened the same way
    assert orthogonal_regularization([conv, weight], 0.5).item() == pytest.approx(0.5 * 2 * 242)
    model = tiny("big", num_classes=2)
    weights = regularized_weights(model.generator)
    assert all(w.dim() >= 2 for w in weights) and not any(w is model.generator.shared.weight for w in weights)
    assert all(w.requires_grad and w.is_leaf for w in weights)  # the raw weights under spectral norm


def test_big_g_loss_carries_the_orthogonal_term():
    model = tiny("big", num_classes=2)
    x, labels = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 0, 1])
    model.discriminator_loss(x, labels)
    out = model.generator_loss(x, labels)
    assert out["ortho"].item() > 0
    expected = orthogonal_regularization(regularized_weights(model.generator), 1e-4)
    assert out["ortho"].item() == pytest.approx(expected.item(), rel=1e-5)


# ----- through the loop, saving, loading, the CLI -----
@pytest.mark.parametrize(("architecture", "overrides"), [
    ("style", dict(r1_every=2, diffaugment="translation,cutout,color")),
    ("style", dict(num_classes=2, rgb_skips=False, style_mixing=0.0)),
    ("big", dict(num_classes=2, diffaugment="translation")),
    ("big", dict(loss="ns", r1_gamma=1.0, r1_every=2)),
    ("dcgan", dict()),
])
def test_a_few_steps_train_save_load_and_sample(tmp_path, architecture, overrides):
    shape = (3, 16, 16) if architecture != "dcgan" else (3, 32, 32)
    model = tiny(architecture, image_shape=shape, **overrides)
    genlab.train(model, random_images(shape=shape), train_config(tmp_path, max_steps=4))
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    losses = [float(row[i]) for row in rows for i, name in enumerate(header) if name.endswith("/loss") and row[i]]
    assert len(rows) >= 3 and losses and all(math.isfinite(v) for v in losses)
    if overrides.get("r1_every") == 2:
        assert "D_reg/r1" in header
    loaded = genlab.load(tmp_path / "run")
    labels = [1, 0, 1] if overrides.get("num_classes") else None
    samples = loaded.sample(3, seed=4, labels=labels)
    assert samples.shape == (3, *shape) and samples.min() >= 0 and samples.max() <= 1
    assert torch.equal(samples, genlab.load(tmp_path / "run").sample(3, seed=4, labels=labels))


def test_cli_trains_with_arch_and_samples_a_mixing_grid(tmp_path):
    data = tmp_path / "tiny.npz"
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    np.savez(data, images=images)
    run = tmp_path / "style"
    tiny_options = ["--latent-dim", "8", "--g-width", "4", "--d-width", "4", "--batch-size", "8", "--no-progress", "--epochs", "1"]
    assert main(["train", "gan", "--arch", "style", "--data", str(data), "--out", str(run), *tiny_options]) == 0
    model = genlab.load(run)
    assert model.config.architecture == "style" and model.config.image_shape == (3, 16, 16)
    grid = tmp_path / "mix.png"
    assert main(["sample", str(run), "--mix", "--mix-layer", "3", "-o", str(grid), "--seed", "2"]) == 0
    picture = Image.open(grid)
    cell = 16 + 2  # padding 2, then everything scaled by 2
    assert picture.size == (2 * (7 * cell + 2), 2 * (5 * cell + 2))  # 6 columns + the row sources, 4 rows + the column sources
    assert main(["sample", str(run), "--truncation", "0", "-n", "4", "-o", str(tmp_path / "mean.png")]) == 0
    big = tmp_path / "big"
    assert main(["train", "gan", "--arch", "big", "--data", str(data), "--out", str(big), *tiny_options]) == 0
    assert genlab.load(big).config.architecture == "big"
    assert main(["sample", str(big), "--mix", "-o", str(tmp_path / "no.png")]) == 2  # a one-line error
