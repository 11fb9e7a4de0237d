"""Super-resolution: SRResNet/SRGAN networks and config, downsampling, the judge content loss, tiling,
training through the one loop, checkpoints, and the `genlab train sr` / `genlab upscale` commands."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import genlab
from genlab.cli.main import main
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models.sr.model import SR, SRConfig
from genlab.models.sr.nets import downsample, judge_feature_map, upsample_bicubic
from genlab.tools import upscale
from genlab.tools.upscale import feather, receptive_radius, tile_limits, tile_starts, upscale_image

TINY = dict(channels=8, blocks=1, d_width=4)


def tiny(seed: int = 0, randomize: bool = True, **overrides) -> SR:
    """A small SR model in eval mode; ``randomize`` gives the zero-initialised output conv random
    weights too, so the net's output differs from plain bicubic upsampling."""
    torch.manual_seed(seed)
    model = SR(SRConfig(**{**TINY, **overrides}))
    if randomize:
        with torch.no_grad():
            model.generator.tail.weight.normal_(0.0, 0.05)
    return model.eval()


def blobs(n: int = 32, size: int = 16, channels: int = 1, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, channels, size, size, dtype=torch.uint8)
    for i in range(n):
        top, left = torch.randint(0, size - 6, (2,), generator=generator).tolist()
        images[i, :, top:top + 6, left:left + 5] = 255
    return Dataset(images, None, (), f"blobs{size}")


def train_config(tmp_path, name="run", **overrides) -> genlab.TrainConfig:
    values = dict(epochs=1, batch_size=8, out_dir=str(tmp_path / name), log_every=1, progress=False,
                  tensorboard=False, num_sample_images=8, device="cpu")
    return genlab.TrainConfig(**{**values, **overrides})


# ----- shapes, ranges, config -----
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_upscale_shape_and_range(scale, channels):
    model = tiny(image_shape=(channels, 16, 16), scale=scale)
    low = torch.rand(3, channels, 5, 7)  # any size: the net is fully convolutional
    high = model.upscale(low)
    assert high.shape == (3, channels, 5 * scale, 7 * scale)
    assert high.min() >= 0.0 and high.max() <= 1.0 and high.std() > 0.01
    single = model.upscale(low[0])  # C×H×W in, C×H×W out
    assert single.shape == (channels, 5 * scale, 7 * scale)
    torch.testing.assert_close(single, high[0])
    as_uint8 = model.upscale((low * 255).round().to(torch.uint8))
    assert as_uint8.shape == high.shape and as_uint8.dtype == torch.float32


@pytest.mark.numerics
def test_untrained_residual_model_is_bicubic():
    """The output conv starts at zero, so an untrained net adds nothing to bicubic upsampling."""
    model = tiny(randomize=False)
    low = torch.rand(2, 1, 4, 4)
    expected = F.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(model.upscale(low), expected)
    assert not torch.allclose(tiny(residual=False, randomize=False).upscale(low), expected, atol=1e-2)


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(scale=3), "scale must be 2 or 4"),
    (dict(scale=8), "scale must be 2 or 4"),
    (dict(image_shape=(1, 30, 30), scale=4), "multiples of scale 4"),
    (dict(image_shape=(1, 28, 27), scale=2), "multiples of scale 2"),
    (dict(image_shape=(2, 28, 28)), "1 or 3 channels"),
    (dict(variant="edsr"), "variant"),
    (dict(adversarial_weight=-1.0), "adversarial_weight"),
])
def test_bad_config_is_a_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        SRConfig(**overrides)


def test_wrong_channels_are_a_clear_error():
    model = tiny(image_shape=(1, 16, 16))
    with pytest.raises(ConfigError, match="upscales 1-channel images, got 3 channels"):
        model.upscale(torch.rand(1, 3, 4, 4))
    with pytest.raises(ConfigError, match="upscales 1-channel images, got 3 channels"):
        upscale_image(model, torch.rand(3, 40, 40), tile=16)
    with pytest.raises(ConfigError, match="N×C×H×W"):
        model.upscale(torch.rand(4, 4))


def test_sample_says_what_to_do_instead():
    with pytest.raises(ConfigError, match="upscale"):
        tiny().sample(4, seed=0)


# ----- operators and losses against independent computations -----
@pytest.mark.numerics
@pytest.mark.parametrize("scale", [2, 4])
def test_downsampling_is_the_mean_of_each_block(scale):
    x = torch.rand(2, 3, 8, 12)
    blocks = x.reshape(2, 3, 8 // scale, scale, 12 // scale, scale)
    torch.testing.assert_close(downsample(x, scale), blocks.mean(dim=(3, 5)))
    assert downsample(x, scale).shape == (2, 3, 8 // scale, 12 // scale)


@pytest.mark.numerics
@pytest.mark.parametrize(("block", "shape"), [(-1, (48, 14, 14)), (1, (48, 14, 14)), (0, (24, 28, 28))])
def test_judge_feature_map_is_the_input_of_a_max_pool(block, shape):
    """Captured independently: a hook on the judge's max-pool records what the full forward pass feeds it."""
    judge = genlab.load_judge()
    pools = [m for m in judge.body.modules() if isinstance(m, torch.nn.MaxPool2d)]
    seen = []
    handle = pools[block].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    x = torch.rand(3, 1, 28, 28)
    try:
        judge(x)
    finally:
        handle.remove()
    ours = judge_feature_map(judge, x, block)
    assert ours.shape == (3, *shape)
    torch.testing.assert_close(ours, seen[0])
    with pytest.raises(ConfigError, match="content_block 2 does not exist"):
        SR(SRConfig(variant="srgan", content_block=2, **TINY)).load_content_judge()


@pytest.mark.numerics
def test_content_loss_is_zero_for_identical_images_and_grows_with_blur():
    model = SR(SRConfig(variant="srgan", **TINY))
    model.load_content_judge()
    x = genlab.load_dataset("fashion-mnist-mini", split="test").float_images(slice(0, 8))
    assert model.content_loss(x, x).item() == 0.0  # exact: the same forward pass twice in one process
    blurred = upsample_bicubic(downsample(x, 4), 4).clamp(0, 1)
    slightly = upsample_bicubic(downsample(x, 2), 2).clamp(0, 1)
    assert model.content_loss(blurred, x) > model.content_loss(slightly, x) > 0.0
    # independent: the same MSE on the hooked feature maps
    judge, block = model.__dict__["_judge"], model.config.content_block
    expected = (judge_feature_map(judge, blurred, block) - judge_feature_map(judge, x, block)).square().mean()
    torch.testing.assert_close(model.content_loss(blurred, x), expected)


def test_content_loss_needs_a_judge_that_fits(tmp_path):
    model = SR(SRConfig(variant="srgan", image_shape=(1, 16, 16), **TINY))
    with pytest.warns(UserWarning, match="no judge for 1×16×16 images.*content loss"):
        model.load_content_judge()  # "auto" and no judge for 16×16: pixel-only, with a warning
    x = torch.rand(2, 1, 16, 16)
    assert model.content_loss(x.flip(3), x).item() == 0.0
    with pytest.raises(ConfigError, match="takes 1×28×28 images but the data are 1×16×16"):
        SR(SRConfig(variant="srgan", image_shape=(1, 16, 16), judge="fashion-mnist", **TINY)).load_content_judge()
    with pytest.raises(genlab.CheckpointError, match="unknown judge"):
        SR(SRConfig(variant="srgan", image_shape=(1, 16, 16), judge=str(tmp_path / "none"), **TINY)).load_content_judge()


# ----- tiling -----
@pytest.mark.numerics
def test_tile_starts_cover_the_side_and_feathers_sum_to_one():
    for size, tile, overlap in [(40, 16, 4), (16, 16, 4), (10, 16, 4), (37, 8, 3)]:
        starts = tile_starts(size, tile, overlap)
        covered = torch.zeros(size, dtype=torch.bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all() and starts[0] == 0 and starts[-1] == max(0, size - tile)
    # two tiles overlapping by exactly `overlap`: complementary ramps, after `margin` pixels of weight 0 at each edge
    for overlap, margin in ((3, 0), (5, 2), (4, 2)):
        left, right = feather(8, 0, 16 - overlap, overlap, 2, torch.zeros(1), margin), feather(8, 8 - overlap, 16 - overlap, overlap, 2,
                                                                                             torch.zeros(1), margin)
        total = torch.zeros(2 * (16 - overlap))
        total[:16] += left
        total[-16:] += right
        torch.testing.assert_close(total, torch.ones_like(total))
        assert (left[16 - 2 * margin:] == 0).all() and (right[:2 * margin] == 0).all()


def _random_batch_norm(model):
    with torch.no_grad():  # random batch-norm statistics too, so every layer matters
        for module in model.generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.numerics
@pytest.mark.parametrize(("overrides", "radius"), [
    (dict(channels=8, blocks=2), 12), (dict(channels=8, blocks=1, scale=2), 10), (dict(channels=8, blocks=0, residual=False), 8),
    (dict(channels=32, blocks=8), 24),  # the default ×4 net
])
def test_the_receptive_radius_is_exact(overrides, radius):
    """A gradient probe, in float64 so that no influence is too small to show: the low-res pixels whose change moves
    the output pixels of one low-res pixel reach exactly `radius` pixels to each side, in both directions."""
    model = _random_batch_norm(tiny(**overrides))
    assert receptive_radius(model) == radius
    generator, scale = model.generator.double(), model.scale
    size, centre = 2 * radius + 9, radius + 4
    image = torch.rand(1, 1, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    generator(image)[..., centre * scale:(centre + 1) * scale, centre * scale:(centre + 1) * scale].sum().backward()
    influence = image.grad[0, 0].abs()
    for axis in (0, 1):
        reach = influence.sum(axis).nonzero().flatten()
        assert (reach.min().item(), reach.max().item()) == (centre - radius, centre + radius)


@pytest.mark.numerics
def test_tiled_upscaling_equals_a_whole_image_pass(monkeypatch):
    model = _random_batch_norm(tiny(channels=8, blocks=2))  # receptive radius 12: overlap >= 24, tiles >= 48
    assert tile_limits(model) == (24, 48)
    image = torch.rand(2, 1, 100, 131, generator=torch.Generator().manual_seed(0))  # not a multiple of any tile
    whole = model.upscale(image)
    for tile, overlap in ((48, None), (48, 24), (57, 30), (64, None), (100, 47)):
        tiled = upscale_image(model, image, tile=tile, overlap=overlap)
        assert tiled.shape == whole.shape == (2, 1, 400, 524)
        torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)  # float rounding only (measured ~1e-7)
    torch.testing.assert_close(upscale_image(model, image, tile=131), whole)  # one tile as large as the image
    torch.testing.assert_close(upscale_image(model, image[0], tile=None), whole[0])  # one pass
    monkeypatch.setattr(upscale, "AUTO_TILE_PIXELS", 50 * 50)  # "auto" tiles images larger than that
    monkeypatch.setattr(upscale, "AUTO_TILE", 60)
    calls = []
    original = model.upscale
    monkeypatch.setattr(model, "upscale", lambda low, **kw: calls.append(tuple(low.shape[2:])) or original(low, **kw))
    torch.testing.assert_close(upscale_image(model, image), whole, atol=1e-5, rtol=0)
    assert set(calls) == {(60, 60)}
    calls.clear()
    upscale_image(model, image[:, :, :40, :40])  # small: one pass
    assert calls == [(40, 40)]


def test_tiles_too_small_for_the_receptive_field_are_refused():
    model = tiny(channels=8, blocks=2)
    image = torch.rand(1, 1, 100, 100)
    for tile in (8, 16, 47):
        with pytest.raises(ConfigError, match=f"tile {tile} is too small for this network: its receptive field reaches 12 "
                                              "low-res pixels, so neighbouring tiles must share 24 and a tile needs at least 48"):
            upscale_image(model, image, tile=tile)
    with pytest.raises(ConfigError, match=r"overlap 23 is too small for this network: .* at least 24"):
        upscale_image(model, image, tile=64, overlap=23)
    with pytest.raises(ConfigError, match="overlap"):
        upscale_image(model, image, tile=64, overlap=64)
    with pytest.raises(ConfigError, match="tile"):
        upscale_image(model, image, tile=0)
    assert upscale_image(model, image[:, :, :20, :20], tile=32).shape == (1, 1, 80, 80)  # covers the image: one pass


# ----- training through the one loop, checkpoints -----
def test_srresnet_trains_through_the_loop_and_reloads(tmp_path):
    data = blobs()
    model = tiny(randomize=False, image_shape=(1, 16, 16))
    before = torch.stack([p.detach().clone().flatten()[0] for p in model.generator.parameters()])
    config = train_config(tmp_path, "srresnet")
    genlab.train(model, data, config)
    after = torch.stack([p.detach().flatten()[0] for p in model.generator.parameters()])
    assert not torch.equal(before, after)
    run = tmp_path / "srresnet"
    assert (run / "samples" / "epoch_001.png").is_file()  # the per-epoch preview grid
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "G/psnr" in header and "G/loss" in header
    loaded = genlab.load(run)
    assert isinstance(loaded, SR) and loaded.config == model.config
    low = downsample(data.float_images(slice(0, 4)), 4)
    torch.testing.assert_close(loaded.upscale(low), model.upscale(low))


def test_srgan_trains_with_the_judge_content_loss(tmp_path):
    mini = genlab.load_dataset("fashion-mnist-mini", split="test").subset(slice(0, 24))
    model = SR(SRConfig(variant="srgan", **TINY))
    genlab.train(model, mini, train_config(tmp_path, "srgan", max_steps=2))
    run = tmp_path / "srgan"
    header = (run / "metrics.csv").read_text().splitlines()[0]
    for column in ("D/real_prob", "D/fake_prob", "G/content", "G/adversarial", "G/mse"):
        assert column in header, column
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    content = [float(r.split(",")[header.split(",").index("G/content")]) for r in rows]
    assert all(c > 0 for c in content)  # the judge was loaded and compared features
    loaded = genlab.load(run)
    assert loaded.config.variant == "srgan" and hasattr(loaded, "discriminator")
    # SRGAN's G can start from a trained SRResNet of the same shape
    resnet = SR(SRConfig(**TINY))
    genlab.train(resnet, mini, train_config(tmp_path, "resnet", max_steps=1, num_sample_images=0))
    model.copy_generator_from(genlab.load(tmp_path / "resnet"))
    for a, b in zip(model.generator.state_dict().values(), resnet.generator.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(genlab.CheckpointError, match="blocks"):
        SR(SRConfig(channels=8, blocks=2)).copy_generator_from(genlab.load(tmp_path / "resnet"))


def test_preview_shows_low_res_bicubic_output_and_original():
    data = blobs(size=16)
    model = tiny(image_shape=(1, 16, 16))
    tiles = model.preview(16, seed=3, dataset=data)
    assert tiles.shape == (16, 1, 16, 16)
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(3))[:4]
    original = data.float_images(index)
    low = downsample(original, 4)
    torch.testing.assert_close(tiles[3::4], original)
    torch.testing.assert_close(tiles[0::4], F.interpolate(low, scale_factor=4, mode="nearest"))
    torch.testing.assert_close(tiles[2::4], model.upscale(low))
    torch.testing.assert_close(model.preview(16, seed=3, dataset=data), tiles)  # the same every epoch


# ----- the command line -----
@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    mini = genlab.load_dataset("fashion-mnist-mini", split="test")
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, images=mini.images[:64, 0].numpy())
    return path


def test_cli_train_sr_and_upscale_end_to_end(tiny_npz, tmp_path, capsys):
    run = tmp_path / "sr"
    argv = ["train", "sr", "--data", str(tiny_npz), "--scale", "4", "--channels", "8", "--blocks", "1",
            "--batch-size", "16", "--out", str(run), "--dry-run", "--no-progress"]
    assert main(argv) == 0
    assert genlab.load(run).config.scale == 4
    small = tmp_path / "small.png"
    Image.fromarray((np.random.default_rng(0).random((20, 30)) * 255).astype(np.uint8), mode="L").save(small)
    big = tmp_path / "big.png"
    assert main(["upscale", str(run), "--image", str(small), "-o", str(big), "--tile", "off"]) == 0
    assert "20×30 → 80×120" in capsys.readouterr().out
    with Image.open(big) as image:
        assert image.size == (120, 80) and image.mode == "L"
    # tiles: the same picture as one pass; too small for the net's receptive field (radius 10 here): refused, with the number
    large = tmp_path / "large.png"
    Image.fromarray((np.random.default_rng(1).random((50, 90)) * 255).astype(np.uint8), mode="L").save(large)
    assert main(["upscale", str(run), "--image", str(large), "-o", str(tmp_path / "whole.png"), "--tile", "off"]) == 0
    assert main(["upscale", str(run), "--image", str(large), "-o", str(tmp_path / "tiled.png"), "--tile", "40",
                 "--no-progress"]) == 0
    whole, tiled = (np.asarray(Image.open(tmp_path / name), dtype=int) for name in ("whole.png", "tiled.png"))
    assert np.abs(whole - tiled).max() <= 1  # rounding to grey levels only
    capsys.readouterr()
    assert main(["upscale", str(run), "--image", str(large), "-o", str(tmp_path / "t.png"), "--tile", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "tile 8 is too small for this network" in err and "at least 40" in err and "\n" not in err
    assert not (tmp_path / "t.png").exists()
    # an RGB file for a grayscale model is converted, with a note
    Image.new("RGB", (10, 12), (200, 30, 30)).save(tmp_path / "colour.png")
    assert main(["upscale", str(run), "--image", str(tmp_path / "colour.png"), "-o", str(tmp_path / "c.png")]) == 0
    assert "converted to grayscale" in capsys.readouterr().err
    # srgan through the CLI: the adversarial phases run
    gan_run = tmp_path / "srgan"
    assert main([*argv[:-4], "--out", str(gan_run), "--variant", "srgan", "--init-from", str(run), "--dry-run",
                 "--no-progress"]) == 0
    assert "D/real_prob" in (gan_run / "metrics.csv").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "sr", "--data", "fashion-mnist-mini", "--scale", "3", "--out", "x"], "scale must be 2 or 4, got 3"),
    (["train", "sr", "--data", "fashion-mnist-mini", "--scale", "8", "--out", "x"], "scale must be 2 or 4, got 8"),
    (["upscale", "no/such/run", "--image", "a.png", "-o", "b.png"], "run directory not found"),
])
def test_cli_bad_input_is_one_line_and_exit_code_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cli_upscale_refuses_a_model_that_is_not_sr(tmp_path, capsys):
    mini = genlab.load_dataset("fashion-mnist-mini", split="test").subset(slice(0, 16))
    vae = genlab.VAE(genlab.VAEConfig(latent_dim=2, channels=(4, 8), hidden_dim=8))
    genlab.train(vae, mini, train_config(tmp_path, "vae", max_steps=1, num_sample_images=0))
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    assert main(["upscale", str(tmp_path / "vae"), "--image", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png")]) == 2
    assert "cannot upscale" in capsys.readouterr().err
