"""Image-to-image translation: the U-Net and its skips, the PatchGAN's receptive field, the cycle loss, the
history pool, a few training steps of pix2pix and CycleGAN through the one loop (saved and loaded like every
run), and the `genlab train pix2pix|cyclegan` and `genlab translate` commands."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import genlab
from genlab.cli.main import main
from genlab.data import Dataset
from genlab.data.domains import unpaired
from genlab.data.pairs import make_pairs
from genlab.errors import ConfigError
from genlab.models.translation import (
    CycleGAN,
    CycleGANConfig,
    ImagePool,
    PatchDiscriminator,
    Pix2Pix,
    Pix2PixConfig,
    UNetGenerator,
    cycle_consistency_loss,
    receptive_field,
)

TINY_P2P = dict(g_width=4, d_width=4)
TINY_CYC = dict(g_width=4, g_blocks=1, d_width=4, pool_size=4)


def blobs(n: int = 32, size: int = 16, channels: int = 1, seed: int = 0) -> Dataset:
    """Bright rectangles on black, labelled by quadrant."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, channels, size, size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    for i in range(n):
        top, left = torch.randint(0, size - 6, (2,), generator=generator).tolist()
        images[i, :, top:top + 6, left:left + 5] = 255
        labels[i] = 2 * (top >= size // 2 - 3) + (left >= size // 2 - 3)
    return Dataset(images, labels, ("tl", "tr", "bl", "br"), f"blobs{size}")


def train_config(tmp_path, name="run", **overrides) -> genlab.TrainConfig:
    values = dict(epochs=1, batch_size=8, out_dir=str(tmp_path / name), log_every=1, progress=False, tensorboard=False,
                  num_sample_images=6, device="cpu", precision="fp32", plots=False)
    return genlab.TrainConfig(**{**values, **overrides})


# ----- the U-Net -----
@pytest.mark.parametrize(("inputs", "outputs", "size", "depth"), [(1, 1, 28, 5), (1, 3, 32, 5), (3, 3, 64, 6), (3, 1, 20, 5)])
def test_unet_keeps_the_size_and_goes_down_to_one_pixel(inputs, outputs, size, depth):
    model = Pix2Pix(Pix2PixConfig(image_shape=(outputs, size, size), source_channels=inputs, task="masked", **TINY_P2P))
    assert model.generator.depth == depth  # 28 is padded to 32 = 2⁵, 20 to 32 too
    y = model.translate(torch.rand(2, inputs, size, size))
    assert y.shape == (2, outputs, size, size) and y.min() >= 0.0 and y.max() <= 1.0


def test_every_unet_skip_carries_information():
    torch.manual_seed(0)
    net = UNetGenerator(1, 1, width=4, depth=4).eval()
    for layer in net.modules():  # PyTorch's default init, whose signal does not fade with depth as N(0, 0.02)'s does
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            layer.reset_parameters()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    full = net(x)
    for k in range(net.depth - 1):
        change = (net(x, zero_skips={k}) - full).abs().mean() / full.abs().mean()
        assert change > 1e-3, f"zeroing skip {k} changes the output by only {change:.2e}"  # a cut skip: exactly 0
    torch.testing.assert_close(net(x, zero_skips=set()), full)


def test_dropout_is_the_generators_noise_in_training_and_off_for_translate():
    torch.manual_seed(0)
    model = Pix2Pix(Pix2PixConfig(image_shape=(1, 16, 16), **TINY_P2P))
    dropouts = [m for m in model.generator.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 3  # the first three decoder layers
    x = torch.rand(2, 1, 16, 16)
    model.generator.train()
    assert not torch.equal(model.generator(x), model.generator(x))
    torch.testing.assert_close(model.translate(x), model.translate(x))  # translate runs in eval mode


# ----- the PatchGAN -----
@pytest.mark.parametrize(("layers", "expected"), [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_is_the_gradient_footprint_of_one_cell(layers, expected):
    torch.manual_seed(0)
    d = PatchDiscriminator(2, width=4, layers=layers).double().eval()
    assert d.receptive_field == receptive_field(d) == expected
    x = torch.randn(1, 2, 128, 128, dtype=torch.double, requires_grad=True)
    logits = d(x)
    assert logits.shape[2:] == d.output_size(128, 128)
    row, column = logits.shape[2] // 2, logits.shape[3] // 2
    logits[0, 0, row, column].backward()
    seen = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, columns = seen.any(dim=1).nonzero().flatten(), seen.any(dim=0).nonzero().flatten()
    assert int(rows[-1] - rows[0] + 1) == expected and int(columns[-1] - columns[0] + 1) == expected
    assert rows[0] > 0 and rows[-1] < 127  # the footprint lies inside the image: padding did not cut it


def test_patchgan_patches_at_our_image_sizes():
    model = Pix2Pix(Pix2PixConfig(image_shape=(1, 28, 28), **TINY_P2P))
    assert model.receptive_field == 34 and model.discriminator.output_size(28, 28) == (5, 5)
    assert model.discriminator.output_size(64, 64) == (14, 14)
    logits = model.discriminator(torch.zeros(2, 2, 28, 28))
    assert logits.shape == (2, 1, 5, 5)  # one logit per 34×34 patch of the (input, output) pair
    assert Pix2Pix(Pix2PixConfig(objective="l1", **TINY_P2P)).receptive_field is None


# ----- the cycle loss -----
def test_cycle_loss_is_zero_for_identity_generators_and_positive_otherwise():
    a, b = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    identity = nn.Identity()
    assert cycle_consistency_loss(identity, identity, a, b) == 0
    brighter, darker = (lambda x: x + 0.1), (lambda x: x - 0.1)
    assert cycle_consistency_loss(brighter, darker, a, b) < 1e-6  # each undoes the other: consistent too
    assert cycle_consistency_loss(brighter, identity, a, b) == pytest.approx(0.2)  # 0.1 off each way
    model = CycleGAN(CycleGANConfig(image_shape=(1, 16, 16), **TINY_CYC))
    model.generator_ab, model.generator_ba = nn.Identity(), nn.Identity()
    a, b = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    assert model.generator_loss(b, None, a)["cycle"] == 0
    assert model.generator_loss(b, None, a)["identity"] == 0


# ----- the history pool -----
def tagged(ids: list[int]) -> torch.Tensor:
    """One 1×2×1 image per id in [-1, 1], exactly representable in the pool's uint8 (two base-256 digits)."""
    digits = torch.tensor([[i // 256, i % 256] for i in ids], dtype=torch.float32)
    return (digits / 127.5 - 1.0).view(len(ids), 1, 2, 1)


def ids_of(images: torch.Tensor) -> list[int]:
    digits = ((images.view(len(images), 2) + 1.0) * 127.5).round().long()
    return (digits[:, 0] * 256 + digits[:, 1]).tolist()


def test_history_pool_fills_then_returns_stored_images_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(50, (1, 2, 1))
    assert ids_of(pool.query(tagged(list(range(30))))) == list(range(30))  # filling: passed on as they are
    assert ids_of(pool.query(tagged(list(range(30, 50))))) == list(range(30, 50))
    assert pool.filled == 50 and int(pool.count) == 50
    given, returned_old, stored_before = 50, 0, set(range(50))
    for _ in range(200):
        ids = list(range(given, given + 10))
        out = ids_of(pool.query(tagged(ids)))
        for new, got in zip(ids, out, strict=True):
            if got != new:
                returned_old += 1
                assert got in stored_before, "a swapped-out image must be one the pool held"
        stored_before = set(ids_of(pool.images.float() / 127.5 - 1.0))
        assert set(ids) - set(out) <= stored_before  # every fake not passed on took a slot
        given += 10
    assert abs(returned_old / 2000 - 0.5) < 0.04  # ½ within 3.6σ of a binomial(2000, ½)


def test_history_pool_is_saved_with_the_model_and_size_zero_is_no_pool():
    torch.manual_seed(0)
    pool = ImagePool(4, (1, 2, 1))
    pool.query(tagged([1, 2, 3]))
    restored = ImagePool(4, (1, 2, 1))
    restored.load_state_dict(pool.state_dict())
    assert restored.filled == 3 and torch.equal(restored.images, pool.images)
    x = tagged([7, 8])
    assert torch.equal(ImagePool(0, (1, 2, 1)).query(x), x)


# ----- configs -----
def test_config_errors_say_what_to_do():
    with pytest.raises(ConfigError, match="direction 'b2a' picks the half of side-by-side"):
        Pix2PixConfig(direction="b2a", task="edges")
    with pytest.raises(ConfigError, match=r"task 'gray' .* needs RGB targets"):
        Pix2PixConfig(task="gray", image_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match="sides must be at least 8"):
        Pix2PixConfig(image_shape=(1, 4, 4))
    with pytest.raises(ConfigError, match="identity_weight 0"):
        CycleGANConfig(image_shape=(3, 16, 16), source_channels=1)
    assert CycleGANConfig(image_shape=(3, 16, 16), source_channels=1, identity_weight=0).source_channels == 1
    assert Pix2PixConfig(task="edges", image_shape=(3, 32, 32)).source_channels == 1  # edge maps are one channel
    with pytest.raises(ConfigError, match="does not sample from noise"):
        Pix2Pix(Pix2PixConfig(**TINY_P2P)).sample(2)


def test_models_refuse_data_of_the_other_kind(tmp_path):
    with pytest.raises(ConfigError, match="holds images alone but a pix2pix model trains on \\(input, target\\) pairs"):
        genlab.train(Pix2Pix(Pix2PixConfig(image_shape=(1, 16, 16), **TINY_P2P)), blobs(), train_config(tmp_path, "a"))
    vae = genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=2, channels=(4,), hidden_dim=8))
    with pytest.raises(ConfigError, match="holds pairs but a vae model trains on images alone"):
        genlab.train(vae, make_pairs(blobs(), "edges"), train_config(tmp_path, "b"))
    with pytest.raises(ConfigError, match="inputs of shape \\(1, 16, 16\\) but the model expects \\(3, 16, 16\\)"):
        genlab.train(Pix2Pix(Pix2PixConfig(image_shape=(1, 16, 16), source_channels=3, task="masked", **TINY_P2P)),
                     make_pairs(blobs(), "masked"), train_config(tmp_path, "c"))


# ----- training through the one loop -----
@pytest.mark.parametrize("objective", ["l1_cgan", "l1", "cgan"])
def test_pix2pix_trains_saves_and_loads(objective, tmp_path):
    torch.manual_seed(0)
    pairs = make_pairs(blobs(16), "edges")
    model = Pix2Pix(Pix2PixConfig(image_shape=(1, 16, 16), objective=objective, **TINY_P2P))
    before = [p.detach().clone() for p in model.generator.parameters()]
    genlab.train(model, pairs, train_config(tmp_path, max_steps=2))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters(), strict=True))
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "G/l1" in header and ("D/real_prob" in header) == (objective != "l1")
    loaded = genlab.load(tmp_path / "run")
    assert isinstance(loaded, Pix2Pix) and loaded.config == model.config
    x = pairs.float_sources(slice(0, 4))
    torch.testing.assert_close(loaded.translate(x), model.translate(x))
    assert (tmp_path / "run" / "samples" / "epoch_001.png").is_file()  # input | output | target groups


def test_one_channel_to_three_in_both_models(tmp_path):
    """Gray → colour (pix2pix's gray task) and a 1-channel domain A with a 3-channel domain B (CycleGAN)."""
    torch.manual_seed(0)
    rgb = blobs(16, channels=3)
    rgb = Dataset(rgb.images * torch.tensor([1, 0, 1], dtype=torch.uint8).view(1, 3, 1, 1), rgb.labels, rgb.classes, "magenta")
    pairs = make_pairs(rgb, "gray")
    model = Pix2Pix(Pix2PixConfig(image_shape=(3, 16, 16), task="gray", **TINY_P2P))
    assert model.source_shape == (1, 16, 16)
    genlab.train(model, pairs, train_config(tmp_path, "p2p", max_steps=2))
    assert genlab.load(tmp_path / "p2p").translate(pairs.float_sources(slice(0, 2))).shape == (2, 3, 16, 16)
    domains = unpaired(Dataset(pairs.sources, name="gray"), Dataset(rgb.images, name="colour"))
    cycle = CycleGAN(CycleGANConfig(image_shape=(3, 16, 16), source_channels=1, identity_weight=0.0, **TINY_CYC))
    genlab.train(cycle, domains, train_config(tmp_path, "cyc", max_steps=2))
    loaded = genlab.load(tmp_path / "cyc")
    assert loaded.translate(torch.rand(2, 1, 16, 16)).shape == (2, 3, 16, 16)
    assert loaded.translate(torch.rand(2, 3, 16, 16), "b2a").shape == (2, 1, 16, 16)
    with pytest.raises(ConfigError, match="translates 1-channel images \\(a2b\\), got 3 channels"):
        loaded.translate(torch.rand(2, 3, 16, 16))


def test_pix2pix_l1_learns_the_masked_task(tmp_path):
    """The L1 loss falls, and on unseen images G fills the grey holes better than leaving them grey: the U-Net
    learns the task through the loop (a real signal, not just finite numbers)."""
    torch.manual_seed(0)
    pairs = make_pairs(blobs(64), "masked")
    model = Pix2Pix(Pix2PixConfig(image_shape=(1, 16, 16), task="masked", objective="l1", g_width=8, dropout=0.0, lr_g=2e-3))
    genlab.train(model, pairs, train_config(tmp_path, epochs=8, batch_size=16, num_sample_images=0))
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("G/l1")
    l1 = [float(row.split(",")[column]) for row in rows[1:] if row.split(",")[column]]
    assert np.mean(l1[-4:]) < 0.5 * np.mean(l1[:2])
    unseen = make_pairs(blobs(64, seed=1), "masked")
    inputs, targets = unseen.float_sources(), unseen.float_images()
    hole = (slice(None), slice(None), slice(4, 12), slice(4, 12))
    filled, left_grey = ((model.translate(inputs) - targets)[hole].abs().mean(), (inputs - targets)[hole].abs().mean())
    assert filled < 0.7 * left_grey  # measured: 0.28 against 0.50


def test_cyclegan_trains_fills_its_pools_and_resumes_exactly(tmp_path):
    data = blobs(32)
    domains = unpaired(Dataset(make_pairs(data, "edges").sources[:16], name="edges"), data.subset(slice(16, 32)))

    def fresh() -> CycleGAN:
        torch.manual_seed(0)
        return CycleGAN(CycleGANConfig(image_shape=(1, 16, 16), **TINY_CYC))

    def config(name: str, steps: int) -> genlab.TrainConfig:
        return train_config(tmp_path, name, epochs=3, max_steps=steps, lr_schedule="linear", lr_decay_start=0.5)

    model = genlab.train(fresh(), domains, config("whole", 4))
    header = (tmp_path / "whole" / "metrics.csv").read_text().splitlines()[0]
    for column in ("G/cycle", "G/identity", "G/adversarial_b", "D/loss_a", "D/loss_b"):
        assert column in header
    loaded = genlab.load(tmp_path / "whole")
    assert isinstance(loaded, CycleGAN) and loaded.pool_a.filled == loaded.pool_b.filled == 4  # 4 steps × 8, pool of 4
    x = domains.float_images(slice(0, 3))
    torch.testing.assert_close(loaded.translate(x, "b2a"), model.translate(x, "b2a"))
    # Stopped after 2 steps and resumed: the same weights as the run without a stop, pools and all.
    genlab.train(fresh(), domains, config("stopped", 2))
    resumed = genlab.train(fresh(), domains, config("stopped", 4), resume=True)
    for (name, mine), theirs in zip(resumed.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs), name


# ----- the commands -----
@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """192 Fashion-MNIST-mini test images (sneakers and ankle boots among them) as an .npz."""
    mini = genlab.load_dataset("fashion-mnist-mini", split="test")
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, images=mini.images[:192, 0].numpy(), labels=mini.labels[:192].numpy(), classes=np.array(mini.classes))
    return path


CLI_TINY = ["--g-width", "4", "--d-width", "4", "--max-steps", "2", "--batch-size", "8", "--no-progress", "--no-plots",
            "--precision", "fp32", "--num-sample-images", "6"]


def test_train_pix2pix_and_translate_write_the_grid(tiny_npz, tmp_path, capsys):
    run = tmp_path / "p2p"
    assert main(["train", "pix2pix", "--data", str(tiny_npz), "--task", "edges", "--out", str(run), *CLI_TINY]) == 0
    assert genlab.load(run).config.task == "edges"
    out = tmp_path / "grid.png"
    assert main(["translate", str(run), "-n", "5", "-o", str(out)]) == 0  # the run's own data: targets known
    assert "5 images, pix2pix a2b: input | output | target" in capsys.readouterr().out
    width, height = Image.open(out).size
    assert height > 5 * 28 * 2 and width > 3 * 28 * 2  # five rows of three 28-px tiles, drawn twice as large
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 30), 60 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["translate", str(run), str(folder), "-o", str(tmp_path / "files.png")]) == 0  # resized to 28×28
    assert "3 images, pix2pix a2b: input | output)" in capsys.readouterr().out


def test_train_cyclegan_and_translate_both_ways(tiny_npz, tmp_path, capsys):
    run = tmp_path / "cyc"
    argv = ["train", "cyclegan", "--domain-a", f"{tiny_npz}:sneaker", "--domain-b", f"{tiny_npz}:ankle-boot", "--out", str(run),
            "--g-blocks", "1", *CLI_TINY]
    assert main(argv) == 0
    saved = genlab.load(run)
    assert saved.config.domain_a == f"{tiny_npz}:sneaker" and saved.config.pool_size == 50
    config = (run / "config.json").read_text()
    assert '"lr_schedule": "linear"' in config and '"lr_decay_start": 0.5' in config  # the paper's schedule by default
    for direction in ("a2b", "b2a"):
        assert main(["translate", str(run), "--direction", direction, "-n", "3", "-o", str(tmp_path / f"{direction}.png")]) == 0
        assert f"3 images, cyclegan {direction}: input | output" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "pix2pix", "--task", "folders", "--out", "{tmp}/x"], "--task folders needs --inputs DIR"),
    (["train", "pix2pix", "--task", "edges", "--inputs", "{tmp}", "--out", "{tmp}/x"], "--inputs gives the input folder"),
    (["train", "cyclegan", "--domain-a", "{npz}:sneaker", "--domain-b", "{npz}:boots", "--out", "{tmp}/x"],
     "unknown class 'boots'"),
    (["translate", "{tmp}/nothing", "-o", "{tmp}/x.png"], "nothing: run directory not found"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, tiny_npz, tmp_path, capsys):
    argv = [part.format(tmp=tmp_path, npz=tiny_npz) for part in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_translate_refuses_other_runs_and_directions(tiny_npz, tmp_path, capsys):
    vae = tmp_path / "vae"
    assert main(["train", "vae", "--data", str(tiny_npz), "--out", str(vae), "--latent-dim", "2", "--channels", "4",
                 "--hidden-dim", "8", "--max-steps", "1", "--no-progress", "--no-plots", "--num-sample-images", "0"]) == 0
    capsys.readouterr()
    assert main(["translate", str(vae), "-o", str(tmp_path / "x.png")]) == 2
    assert "holds a vae run; translate needs a pix2pix or cyclegan run" in capsys.readouterr().err


def test_every_translation_config_field_has_help_and_is_an_option_of_genlab_train():
    from genlab.cli.main import build_parser
    from genlab.cli.train import NOT_OPTIONS

    parse = build_parser().parse_args
    for kind, config_class in (("pix2pix", Pix2PixConfig), ("cyclegan", CycleGANConfig)):
        extra = ["--domain-a", "a", "--domain-b", "b"] if kind == "cyclegan" else []
        args = vars(parse(["train", kind, "-o", "r", *extra]))
        for field in dataclasses.fields(config_class):
            assert field.metadata.get("help"), f"{config_class.__name__}.{field.name} has no help"
            assert field.name in NOT_OPTIONS or field.name in args, f"{field.name} is no option of `genlab train {kind}`"
    assert vars(parse(["train", "cyclegan", "-o", "r", "--domain-a", "a", "--domain-b", "b"]))["batch_size"] == 16


def test_benchmark_scores_the_truth_as_perfect_and_reads_the_quick_options():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root holds `benchmarks`
    from benchmarks import translation

    judge = genlab.load_judge()
    test = genlab.load_dataset("fashion-mnist-mini", split="test").subset(slice(0, 200))
    images = test.float_images()
    scores = translation.score(images, images, test.labels, judge, judge.features(images))
    assert scores["l1"] == 0 and scores["ssim"] == pytest.approx(1.0) and scores["sharpness"] == pytest.approx(1.0)
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["judge_accuracy"] == pytest.approx(float((judge.predict(images) == test.labels).float().mean()))
    args = translation.parse_args(["--quick"])
    assert (args.data, args.name, args.steps_pix2pix) == ("fashion-mnist-mini", "translation_quick", 3)
    assert translation.pick({"l1": {"psnr": 20.0}, "cgan": {"psnr": 18.0}}, "psnr", high=True) == "l1"
