"""Super-resolution on photographs: the photo split and patches, ESRGAN's RRDB generator and relativistic
losses, network interpolation, the SR papers' Y-channel metrics, tiling of deep nets, alpha channels and
the `genlab upscale RUN IMAGE` command."""
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli.main import main
from genlab.data import photos
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.metrics.image import lr_consistency, luma_bt601, psnr_y, ssim_y
from genlab.models.sr.esrgan import RRDB, DenseBlock, RandomFeatures, RRDBNet, relativistic_d_loss, relativistic_g_loss
from genlab.models.sr.model import SR, SRConfig
from genlab.models.sr.nets import downsample_bicubic, upsample_bicubic
from genlab.tools.upscale import receptive_radius, tile_limits, upscale_file, upscale_image

TINY_RRDB = dict(image_shape=(3, 16, 16), channels=8, blocks=1, growth=4, d_width=4)


def rrdb(seed: int = 0, **overrides) -> SR:
    """A tiny rrdb model whose zero-initialised last conv is randomised, so it is not plain bicubic."""
    torch.manual_seed(seed)
    model = SR(SRConfig(**{**TINY_RRDB, "variant": "rrdb", **overrides}))
    with torch.no_grad():
        model.generator.tail[-1].weight.normal_(0.0, 0.05)
    return model.eval()


def train_config(tmp_path, name, **overrides) -> genlab.TrainConfig:
    values = dict(epochs=1, batch_size=4, out_dir=str(tmp_path / name), log_every=1, progress=False, tensorboard=False,
                  num_sample_images=0, device="cpu", max_steps=2)
    return genlab.TrainConfig(**{**values, **overrides})


def textures(n: int = 8, size: int = 16, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    return Dataset((torch.rand(n, 3, size, size, generator=generator) * 255).to(torch.uint8), None, (), "textures")


# ----- the RRDB generator -----
@pytest.mark.parametrize(("scale", "channels"), [(2, 1), (4, 3)])
def test_rrdb_shapes_and_no_batch_norm(scale, channels):
    net = RRDBNet(channels, channels=8, blocks=2, scale=scale, residual=True, growth=4)
    out = net(torch.rand(2, channels, 5, 7))
    assert out.shape == (2, channels, 5 * scale, 7 * scale)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # Wang et al. §3.1
    assert len(net.blocks) == 2 and all(len(block.dense) == 3 for block in net.blocks)
    fresh = RRDBNet(3, channels=8, blocks=1, scale=4, residual=True, growth=4)  # the last conv starts at zero
    low = torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(fresh(low), upsample_bicubic(low, 4))


def test_dense_block_and_rrdb_scale_their_residual_by_0_2():
    block = DenseBlock(channels=4, growth=3)
    with torch.no_grad():  # the last conv outputs the constant 1: the block adds β·1 = 0.2
        block.convs[4].weight.zero_()
        block.convs[4].bias.fill_(1.0)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(x), x + 0.2)
    rrdb_block = RRDB(channels=4, growth=3)
    for dense in rrdb_block.dense:
        with torch.no_grad():
            dense.convs[4].weight.zero_()
            dense.convs[4].bias.fill_(1.0)
    # three dense blocks: x + 0.6, then the RRDB's own scaling: x + 0.2·(x + 0.6) = 1.2·x + 0.12
    torch.testing.assert_close(rrdb_block(x), 1.2 * x + 0.12)


# ----- the relativistic average GAN -----
def test_relativistic_losses_match_a_hand_computation():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])  # E[C(real)] = 2, E[C(fake)] = −1

    def sigmoid(z):
        return 1 / (1 + math.exp(-z))

    # D_Ra(x_r, x_f) = σ(C(x_r) − E[C(x_f)]) = σ(2), σ(4); D_Ra(x_f, x_r) = σ(0 − 2), σ(−2 − 2) = σ(−2), σ(−4)
    d_loss = -(math.log(sigmoid(2)) + math.log(sigmoid(4))) / 2 - (math.log(1 - sigmoid(-2)) + math.log(1 - sigmoid(-4))) / 2
    g_loss = -(math.log(1 - sigmoid(2)) + math.log(1 - sigmoid(4))) / 2 - (math.log(sigmoid(-2)) + math.log(sigmoid(-4))) / 2
    assert relativistic_d_loss(real, fake).item() == pytest.approx(d_loss, rel=1e-6)
    assert relativistic_g_loss(real, fake).item() == pytest.approx(g_loss, rel=1e-6)
    # stable far out, where σ saturates
    assert torch.isfinite(relativistic_d_loss(torch.tensor([1e4]), torch.tensor([-1e4])))
    # G's loss gets a gradient through the real logits too (the paper's point against SRGAN)
    real_grad = real.clone().requires_grad_(True)
    relativistic_g_loss(real_grad, fake).backward()
    assert real_grad.grad.abs().sum() > 0


def test_random_features_are_fixed_and_taken_before_the_activation():
    a, b = RandomFeatures(3), RandomFeatures(3)
    images = torch.rand(2, 3, 16, 16)
    for x, y in zip(a(images), b(images), strict=True):
        torch.testing.assert_close(x, y)  # the same weights for every run: nothing to save or download
    shallow, deep = a(images)
    assert shallow.shape == (2, 32, 16, 16) and deep.shape == (2, 64, 8, 8)
    assert (shallow < 0).any() and (deep < 0).any()  # before the ReLU: negative values survive


# ----- network interpolation -----
def test_network_interpolation_reproduces_both_ends_exactly():
    psnr_model = rrdb(seed=1)
    gan = SR(SRConfig(**{**TINY_RRDB, "variant": "esrgan"}))
    with pytest.raises(ConfigError, match="holds no PSNR-oriented generator"):
        gan.interpolated(0.5)
    gan.copy_generator_from(psnr_model)
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # as if trained on: now a different net
    low = torch.rand(2, 3, 6, 9)
    at_0, at_1, half = gan.interpolated(0.0), gan.interpolated(1.0), gan.interpolated(0.5)
    assert torch.equal(at_0.upscale(low), psnr_model.upscale(low))
    assert torch.equal(at_1.upscale(low), gan.upscale(low))
    for name, value in half.generator.state_dict().items():
        expected = 0.5 * psnr_model.generator.state_dict()[name] + 0.5 * gan.generator.state_dict()[name]
        torch.testing.assert_close(value, expected)  # θ = (1 − α)·θ_PSNR + α·θ_GAN, Wang et al. §3.4
    with pytest.raises(ConfigError, match=r"alpha must be a number in \[0, 1\]"):
        gan.interpolated(1.5)
    with pytest.raises(ConfigError, match="needs an esrgan run"):
        psnr_model.interpolated(0.5)
    with pytest.raises(genlab.CheckpointError, match="cannot start from"):
        gan.copy_generator_from(SR(SRConfig(image_shape=(3, 16, 16), channels=8, blocks=1)))


# ----- the Y-channel metrics of the SR papers -----
def test_y_psnr_and_ssim_with_border_crop_match_scikit_image():
    pytest.importorskip("skimage", reason="scikit-image is the independent implementation compared against")
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 40, 36, generator=generator, dtype=torch.float64)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    ours_psnr, ours_ssim = psnr_y(sr, hr, border=4), ssim_y(sr, hr, border=4)
    for i in range(2):
        y_hr, y_sr = (rgb2ycbcr(x[i].permute(1, 2, 0).numpy())[4:-4, 4:-4, 0] for x in (hr, sr))  # Y in [16, 235]
        assert ours_psnr[i].item() == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-6)
        expected = structural_similarity(y_hr, y_sr, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert ours_ssim[i].item() == pytest.approx(expected, abs=1e-6)
    # the formula itself: white → 235/255, black → 16/255
    torch.testing.assert_close(luma_bt601(torch.ones(1, 3, 2, 2)), torch.full((1, 1, 2, 2), 235 / 255, dtype=torch.float64),
                               atol=1e-3, rtol=0)
    assert psnr_y(hr, hr, border=4).isinf().all()
    with pytest.raises(ConfigError, match="leaves nothing"):
        psnr_y(sr, hr, border=20)


def test_lr_consistency_is_high_for_an_output_that_shrinks_back_to_its_input():
    hr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    low = downsample_bicubic(hr, 4).clamp(0, 1)
    assert lr_consistency(hr, low).min() > 60  # the same operator: equal up to float rounding
    assert lr_consistency(1 - hr, low).max() < lr_consistency(hr, low).min() - 40  # an output that does not agree
    with pytest.raises(ConfigError, match="whole multiple"):
        lr_consistency(hr[:, :, :30], low)


# ----- tiling a deep net -----
@pytest.mark.numerics
def test_tiled_rrdb_equals_a_whole_image_pass():
    model = rrdb(blocks=1)
    radius = receptive_radius(model)
    assert radius == 19 and tile_limits(model) == (38, 76)  # head 1 + 15 convs + 1, then ½ + ¼ + 2·¼ at ×2 and ×4
    image = torch.rand(1, 3, 90, 123, generator=torch.Generator().manual_seed(0))
    whole = model.upscale(image)
    tiled = upscale_image(model, image, tile=76)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)  # exact: float rounding only
    # below the exact limits (the issue's --tile 32 --overlap 16 style): close, within the stated tolerance
    approximate = upscale_image(model, image, tile=32, overlap=16, exact=False)
    assert (approximate - whole).abs().max() < 2 / 255  # measured ~1e-3 on this random net
    with pytest.raises(ConfigError, match="exact=False"):
        upscale_image(model, image, tile=32, overlap=16)


# ----- the photos -----
def fake_bundled(name: str) -> torch.Tensor:
    """A small synthetic stand-in for a bundled photo: one colour per photo, unique to it."""
    index = list(photos.BY_NAME).index(name)
    return torch.full((3, 40, 50 + index), 10 * index + 5, dtype=torch.uint8)


def test_photo_split_is_fixed_and_test_photos_never_reach_training_patches(monkeypatch):
    train, test = photos.photo_names("train", grayscale=True), photos.photo_names("test")
    assert len(test) >= 4 and not set(train) & set(test)
    assert {"motorcycle_left", "motorcycle_right"} <= set(train)  # a stereo pair stays on one side
    monkeypatch.setattr(photos, "_load_bundled", fake_bundled)
    first = photos.load_photo_patches("train", count=300, size=16, seed=3, grayscale=True)
    again = photos.load_photo_patches("train", count=300, size=16, seed=3, grayscale=True)
    assert first.images.shape == (300, 3, 16, 16) and torch.equal(first.images, again.images)
    assert not torch.equal(first.images, photos.load_photo_patches("train", count=300, size=16, seed=4, grayscale=True).images)
    test_colours = {int(fake_bundled(name)[0, 0, 0]) for name in test}
    train_colours = {int(fake_bundled(name)[0, 0, 0]) for name in train}
    seen = set(first.images.unique().tolist())
    assert seen <= train_colours and not seen & test_colours
    assert len(seen) == len(train)  # every training photo is drawn from
    held_out = photos.load_photo_patches("test", count=20, size=16)
    assert set(held_out.images.unique().tolist()) <= test_colours


def test_the_real_photos_load_with_their_recorded_sizes():
    pytest.importorskip("skimage", reason="the bundled photos come from scikit-image")
    pytest.importorskip("sklearn", reason="two bundled photos come from scikit-learn")
    for photo in photos.PHOTOS:
        assert tuple(photos.load_photo(photo.name).shape) == (3, *photo.size), photo.name
    table = photos.photo_table_markdown()
    assert table.count("\n") == len(photos.PHOTOS) + 1 and "CC BY 2.0" in table


def test_missing_scikit_image_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_skimage(name, *args, **kwargs):
        if name.startswith("skimage"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    photos._load_bundled.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_skimage)
    with pytest.raises(DataError, match="need scikit-image, which is not installed: pip install scikit-image"):
        photos.load_photo("astronaut")
    photos._load_bundled.cache_clear()


def test_a_folder_of_photos_splits_deterministically(tmp_path):
    for i in range(10):
        size = (30 + i, 40) if i % 2 else (40, 33)
        Image.fromarray(np.full((*size, 3), 20 * i + 1, dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    Image.fromarray(np.full((20, 20), 7, dtype=np.uint8)).save(tmp_path / "gray.png")  # grayscale: repeated to RGB
    loaded = photos.folder_photos(tmp_path)
    assert len(loaded) == 11 and all(p.shape[0] == 3 for p in loaded.values())
    split = photos.split_folder(list(loaded))
    assert split == photos.split_folder(list(reversed(list(loaded))))  # reading order does not matter
    assert len(split["test"]) == 2 and not set(split["train"]) & set(split["test"])
    patches = photos.load_folder_patches(tmp_path, "train", count=50, size=24, seed=0)
    test_values = {int(loaded[name][0, 0, 0]) for name in split["test"]}
    assert not set(patches.images.unique().tolist()) & test_values
    with pytest.raises(DataError, match="no photo is at least 64×64"):
        photos.load_folder_patches(tmp_path, count=5, size=64)
    (tmp_path / "test").mkdir()
    Image.fromarray(np.zeros((30, 30, 3), dtype=np.uint8)).save(tmp_path / "test" / "held.png")
    assert photos.split_folder(list(photos.folder_photos(tmp_path)))["test"] == ["test/held.png"]


# ----- training -----
def test_rrdb_then_esrgan_train_with_finite_losses_and_reload(tmp_path):
    data = textures()
    psnr_model = SR(SRConfig(**{**TINY_RRDB, "variant": "rrdb", "downsampling": "bicubic"}))
    genlab.train(psnr_model, data, train_config(tmp_path, "rrdb"))
    gan = SR(SRConfig(**{**TINY_RRDB, "variant": "esrgan", "downsampling": "bicubic"}))
    gan.copy_generator_from(genlab.load(tmp_path / "rrdb"))
    genlab.train(gan, data, train_config(tmp_path, "esrgan", lr=1e-4))
    for name, columns in (("rrdb", ("G/loss", "G/psnr")),
                          ("esrgan", ("D/loss", "G/loss", "G/perceptual", "G/adversarial", "G/l1"))):
        rows = list(csv.DictReader((tmp_path / name / "metrics.csv").open()))
        assert rows, name
        for column in columns:
            values = [float(row[column]) for row in rows if row.get(column)]
            assert values and all(math.isfinite(v) for v in values), (name, column)
    perceptual = [float(r["G/perceptual"]) for r in csv.DictReader((tmp_path / "esrgan" / "metrics.csv").open())]
    assert all(p > 0 for p in perceptual)  # the feature network was built and compared
    loaded = genlab.load(tmp_path / "esrgan")  # the PSNR-oriented net travels with the run
    low = torch.rand(1, 3, 5, 6)
    torch.testing.assert_close(loaded.interpolated(0.0).upscale(low), genlab.load(tmp_path / "rrdb").upscale(low))
    torch.testing.assert_close(loaded.interpolated(1.0).upscale(low), loaded.upscale(low))


# ----- files: alpha, errors, the command line -----
def test_alpha_is_upscaled_bicubically_or_dropped_with_a_note(tmp_path):
    model = rrdb()
    rgba = np.random.default_rng(0).integers(0, 256, (10, 14, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 14, dtype=np.uint8)[None, :]  # a transparency ramp
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    path, before, after, note = upscale_file(model, tmp_path / "a.png", tmp_path / "big.png")
    assert (before, after, note) == ((10, 14), (40, 56), "")
    with Image.open(path) as big:
        assert big.mode == "RGBA" and big.size == (56, 40)
        alpha = np.asarray(big)[..., 3].astype(float)
    expected = upsample_bicubic(torch.from_numpy(rgba[..., 3]).float()[None, None] / 255, 4).clamp(0, 1)[0, 0] * 255
    assert np.abs(alpha - expected.numpy()).max() <= 0.5 + 1e-6
    colour = upscale_image(model, torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1))  # colour not multiplied by alpha
    with Image.open(path) as big:
        assert np.abs(np.asarray(big)[..., :3] / 255.0 - colour.permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
    _, _, _, note = upscale_file(model, tmp_path / "a.png", tmp_path / "big.jpg")
    assert "alpha channel was dropped" in note
    with Image.open(tmp_path / "big.jpg") as big:
        assert big.mode == "RGB"


def test_cli_upscale_positional_image_alpha_and_clear_errors(tmp_path, capsys):
    model = SR(SRConfig(**{**TINY_RRDB, "variant": "esrgan"}))
    model.copy_generator_from(rrdb())
    genlab.train(model, textures(), train_config(tmp_path, "esrgan", max_steps=1))
    run = str(tmp_path / "esrgan")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(tmp_path / "photo.jpg")
    assert main(["upscale", run, str(tmp_path / "photo.jpg"), "--scale", "4", "--alpha", "0.8", "-o",
                 str(tmp_path / "big.png"), "--no-progress"]) == 0
    assert "12×20 → 48×80" in capsys.readouterr().out
    assert main(["upscale", run, "--image", str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "b.png")]) == 0
    capsys.readouterr()
    (tmp_path / "notes.txt").write_text("not an image")
    for argv, message in (
        ([str(tmp_path / "notes.txt")], "not an image file"),
        ([str(tmp_path / "photo.jpg"), "--scale", "2"], "enlarges ×4, not ×2"),
        ([], "no image given"),
        ([str(tmp_path / "photo.jpg"), "--tile", "8", "--overlap", "2"], "--approximate"),
    ):
        assert main(["upscale", run, *argv, "-o", str(tmp_path / "x.png")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, (argv, err)
    assert main(["upscale", run, str(tmp_path / "photo.jpg"), "--tile", "8", "--overlap", "2", "--approximate",
                 "-o", str(tmp_path / "x.png"), "--no-progress"]) == 0


def test_an_output_too_large_is_refused(tmp_path, monkeypatch):
    from genlab.tools import upscale as upscale_module

    Image.fromarray(np.zeros((30, 30, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    monkeypatch.setattr(upscale_module, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ConfigError, match="would be 120×120 = 14,400 pixels, more than genlab's bound"):
        upscale_file(rrdb(), tmp_path / "p.png", tmp_path / "big.png")


def test_the_front_page_lists_every_photo_with_its_source_and_licence():
    """The README (generated from docs/index.md) carries the photo table as photo_table_markdown() prints it, so a
    photo added to or changed in PHOTOS cannot leave the front page's licences stale."""
    front = Path(__file__).resolve().parents[1] / "docs" / "index.md"
    assert photos.photo_table_markdown() in front.read_text(encoding="utf-8")
