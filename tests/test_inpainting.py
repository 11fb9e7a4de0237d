"""Inpainting and outpainting: masks, baselines, the model-based methods, hole metrics, the CLI."""
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from genlab.cli.main import main
from genlab.errors import ConfigError
from genlab.metrics import ssim
from genlab.tools.inpainting import METHODS, composite, fill_mean, fill_nearest, hole_psnr, hole_ssim, inpaint, nearest_known, vae_iterative
from genlab.tools.masks import MASK_KINDS, load_mask, make_mask, parse_mask

SHAPE = (5, 1, 28, 28)


# ------------------------------------------------------------------------------------------ masks


FIXED_KNOWN_FRACTIONS = {"center": 1 - 14 * 14 / 784, "left": 0.5, "right": 0.5, "top": 0.5, "bottom": 0.5,
                         "border": 14 * 14 / 784}


def test_every_mask_kind_is_tested():
    assert set(MASK_KINDS) == set(FIXED_KNOWN_FRACTIONS) | {"random"}


@pytest.mark.parametrize(("kind", "known"), FIXED_KNOWN_FRACTIONS.items())
def test_fixed_masks_have_the_right_shape_place_and_known_fraction(kind, known):
    mask = make_mask(kind, SHAPE)
    assert mask.shape == (5, 1, 28, 28) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask.mean(dim=(1, 2, 3)).tolist() == pytest.approx([known] * 5)
    hole = mask[0, 0] == 0
    where = {"center": hole[7:21, 7:21].all() and hole.sum() == 196, "left": hole[:, :14].all(), "right": hole[:, 14:].all(),
             "top": hole[:14].all(), "bottom": hole[14:].all(), "border": (~hole[7:21, 7:21]).all() and hole[0].all()}
    assert where[kind]


def test_mask_size_option_scales_the_hole():
    assert make_mask("center", SHAPE, size=0.25).mean() == pytest.approx(1 - 7 * 7 / 784)
    assert make_mask("left", SHAPE, size=0.25).mean() == pytest.approx(1 - 7 / 28)
    assert parse_mask("border:0.75", SHAPE).mean() == pytest.approx(21 * 21 / 784)
    with pytest.raises(ConfigError, match="size"):
        make_mask("center", SHAPE, size=1.5)


def test_random_masks_are_seeded_differ_per_image_and_hide_about_a_quarter():
    mask = make_mask("random", (50, 1, 28, 28), seed=3)
    hidden = 1 - mask.mean(dim=(1, 2, 3))
    assert (hidden >= 0.25).all() and (hidden <= 0.25 + 0.4 ** 2 + 0.01).all()  # target, plus at most one more box
    assert torch.equal(mask, make_mask("random", (50, 1, 28, 28), seed=3))
    assert not torch.equal(mask, make_mask("random", (50, 1, 28, 28), seed=4))
    assert len({tuple(m.flatten().tolist()) for m in mask}) == 50


def test_mask_picture_white_is_hole(tmp_path):
    picture = np.zeros((28, 28), dtype=np.uint8)
    picture[3:9, 10:20] = 255
    Image.fromarray(picture).save(tmp_path / "m.png")
    mask = parse_mask(str(tmp_path / "m.png"), SHAPE)
    assert mask.shape == SHAPE
    assert torch.equal(mask[2, 0] == 0, torch.from_numpy(picture == 255))


def test_mask_errors_name_the_problem(tmp_path):
    Image.fromarray(np.zeros((20, 24), dtype=np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(ConfigError, match=r"small.png.*20×24.*28×28"):
        load_mask(tmp_path / "small.png", SHAPE)
    with pytest.raises(ConfigError, match=r"unknown mask 'circle'.*center"):
        parse_mask("circle", SHAPE)
    with pytest.raises(ConfigError, match="not found"):
        parse_mask(str(tmp_path / "missing.png"), SHAPE)
    with pytest.raises(ConfigError, match="number"):
        parse_mask("center:big", SHAPE)


# ------------------------------------------------------------------------------------------ baselines


@pytest.mark.numerics
def test_nearest_fill_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 9, 11, generator=generator)
    mask = (torch.rand(3, 1, 9, 11, generator=generator) > 0.7).float()
    mask[:, :, 0, 0] = 1.0  # at least one known pixel
    filled = fill_nearest(images, mask)
    distance, _ = nearest_known(mask)
    for n in range(3):
        known = [(r, c) for r in range(9) for c in range(11) if mask[n, 0, r, c] == 1]
        for r in range(9):
            for c in range(11):
                d2 = [(r - kr) ** 2 + (c - kc) ** 2 for kr, kc in known]
                best = min(d2)
                # float32 rounding of a float64 distance ≤ 13 (ulp 9.5e-7): ≤ 4.8e-7
                assert distance[n, 0, r, c].item() == pytest.approx(math.sqrt(best), abs=1e-6)
                candidates = [images[n, :, kr, kc] for (kr, kc), d in zip(known, d2, strict=True) if d == best]
                assert any(torch.equal(filled[n, :, r, c], value) for value in candidates), (n, r, c)


@pytest.mark.numerics
def test_mean_fill_is_the_mean_of_each_images_known_pixels():
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    mask = make_mask("center", images.shape)
    filled = fill_mean(images, mask)
    for n in range(2):
        for c in range(3):
            expected = images[n, c][mask[n, 0] == 1].mean()
            # float32 sums of ≤ 64 pixels in [0, 1] in two orders: the means agree to ~1e-7
            assert filled[n, c][mask[n, 0] == 0] == pytest.approx(expected.expand(16), abs=1e-6)
    assert torch.equal(filled[mask.expand_as(images) == 1], images[mask.expand_as(images) == 1])


@pytest.mark.numerics
def test_composite_keeps_known_pixels_and_feathers_only_a_band_of_the_hole():
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    generated = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    mask = make_mask("center", images.shape)
    out = composite(images, generated, mask, blend=2)
    known = mask.bool().expand_as(images)
    assert torch.equal(out[known], images[known])
    distance, _ = nearest_known(mask)
    deep = distance > 2  # beyond the band: the generated pixels as they are
    assert torch.equal(out[deep], generated[deep])
    band = (distance > 0) & (distance <= 2)
    nearest = fill_nearest(images, mask)
    weight = 1 - distance / 3
    assert torch.allclose(out[band], (weight * nearest + (1 - weight) * generated)[band], atol=1e-6)
    pasted = composite(images, generated, mask, blend=0)
    assert torch.equal(pasted[~known], generated[~known])


# ------------------------------------------------------------------------------------------ hole metrics


def _numpy_ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Wang et al. 2004 Eq. 13 with SciPy's Gaussian filter (σ = 1.5, truncated at 3.5σ: an 11×11 window;
    'reflect' borders are the symmetric ones), population statistics, data range 1."""
    def blur(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, 1.5, mode="reflect", truncate=3.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


@pytest.mark.numerics
def test_hole_psnr_and_ssim_match_independent_computations():
    generator = torch.Generator().manual_seed(4)
    a = torch.rand(3, 1, 28, 28, generator=generator, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(3, 1, 28, 28, generator=generator, dtype=torch.float64)).clamp(0, 1)
    mask = make_mask("random", a.shape, seed=5)
    psnr, ssim = hole_psnr(a, b, mask), hole_ssim(a, b, mask)
    for n in range(3):
        hole = mask[n, 0].numpy() == 0
        x, y = a[n, 0].numpy(), b[n, 0].numpy()
        # float64: a mean of ~220 squares (no cancellation), ~1e-14 relative
        assert psnr[n].item() == pytest.approx(10 * np.log10(1 / np.mean((x[hole] - y[hole]) ** 2)), rel=1e-10)
        # float64 11×11 Gaussian windows with variances E[x²] − μ² cancelling by ≲ 30, then divided by σ² + C2:
        # ≲ 1e-12 relative
        assert ssim[n].item() == pytest.approx(_numpy_ssim_map(x, y)[hole].mean(), rel=1e-10)
    # The hole matters, not the rest: changing known pixels changes nothing.
    c = torch.where(mask.bool(), torch.zeros_like(b), b)
    assert torch.equal(hole_psnr(a, c, mask), psnr)
    assert hole_ssim(a, a, mask).tolist() == pytest.approx([1.0] * 3)


def test_hole_ssim_is_the_metrics_ssim_restricted_to_the_hole():
    generator = torch.Generator().manual_seed(6)
    a = torch.rand(2, 3, 16, 16, generator=generator, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(2, 3, 16, 16, generator=generator, dtype=torch.float64)).clamp(0, 1)
    mask = make_mask("center", a.shape)
    assert torch.equal(hole_ssim(a, b, mask), ssim(a, b, where=mask < 0.5))
    # One implementation: over the pixels whose 11×11 windows fit inside, the masked mean is the plain SSIM.
    inside = torch.zeros(16, 16)
    inside[5:11, 5:11] = 1
    torch.testing.assert_close(ssim(a, b, where=inside), ssim(a, b), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------ methods


class LinearAutoencoder:
    """A perfect 'VAE' for data on an affine subspace: encode = coordinates in an orthonormal basis U,
    decode = mean + U z. Its imputation chain is alternating projection between that subspace and the
    images that agree with the known pixels, which converges to the true image when it is unique."""

    image_shape = (1, 8, 8)

    def __init__(self, k: int = 4, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.basis, _ = torch.linalg.qr(torch.randn(64, k, generator=generator))
        self.mean = torch.full((64,), 0.5)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) @ self.basis

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.basis.T + self.mean).view(-1, *self.image_shape)

    def data(self, n: int) -> torch.Tensor:
        z = 0.3 * torch.rand(n, self.basis.shape[1], generator=torch.Generator().manual_seed(9)) - 0.15
        return self.decode(z).clamp(0, 1)


@pytest.mark.numerics
def test_vae_iterative_chain_recovers_the_hole_of_data_the_model_describes():
    model = LinearAutoencoder()
    images = model.data(6)
    # on the subspace, up to float32 rounding: a float32 QR basis and sums of 64 and 4 terms ≤ 0.3 around pixels ≈ 0.5
    # (ulp 6e-8): a few ulp
    assert torch.allclose(model.decode(model.encode(images)), images, atol=1e-6)
    mask = make_mask("center", images.shape)
    hole = mask == 0
    start = fill_nearest(images, mask)
    errors = [((vae_iterative(model, images, mask, steps) - images)[hole.expand_as(images)]).square().mean().item()
              for steps in (0, 1, 5, 50)]
    assert errors[0] == pytest.approx(((start - images)[hole.expand_as(images)]).square().mean().item())
    # POCS never moves away; the chain ends at float32's floor (pixel errors of a few ulp: MSE ≲ 1e-14)
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(errors))
    assert errors[-1] < 0.01 * errors[0]
    assert hole_psnr(inpaint(model, images, mask, "vae-iterative", steps=50, blend=0, progress=False), images, mask).min() > \
        hole_psnr(inpaint(None, images, mask, "nearest"), images, mask).max()


@pytest.fixture(scope="module")
def tiny_models():
    import genlab

    torch.manual_seed(0)
    vae = genlab.VAE(genlab.VAEConfig(latent_dim=4, channels=(8, 16), hidden_dim=32)).eval()
    gan = genlab.GAN(genlab.GANConfig(latent_dim=8, g_width=8, d_width=8)).eval()
    return {"vae": vae, "gan": gan}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["center", "random", "border"])
def test_every_method_keeps_known_pixels_exactly(tiny_models, method, kind):
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    mask = make_mask(kind, images.shape, seed=1)
    model = tiny_models["gan" if method == "gan" else "vae"]
    options = {} if method in ("mean", "nearest", "vae-iterative") else {"feature_weight": 0.0}
    out = inpaint(model, images, mask, method, steps=3, blend=2, progress=False, **options)
    known = mask.bool().expand_as(images)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out[known], images[known])
    assert not torch.equal(out[~known], images[~known])  # the hole was actually written


@pytest.mark.numerics
def test_gan_restarts_keep_the_start_that_fits_the_known_pixels_best(tiny_models):
    from genlab.tools.inpainting import gan_inpaint

    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    mask = make_mask("left", images.shape)
    options = {"steps": 5, "d_weight": 0.0, "prior_weight": 0.0, "feature_weight": 0.0, "seed": 3}  # loss = known-pixel MSE

    def known_mse(generated: torch.Tensor) -> torch.Tensor:
        return ((generated - images).square() * mask).flatten(1).sum(1) / mask.flatten(1).sum(1)

    one = known_mse(gan_inpaint(tiny_models["gan"], images, mask, restarts=1, **options))
    three = known_mse(gan_inpaint(tiny_models["gan"], images, mask, restarts=3, **options))
    # the first of the three starts is the single run's start; G runs at batch 3 instead of 1, so its float32 MSE
    # (≈ 0.08, ulp 7.5e-9) may move by ~1e-7
    assert (three <= one + 1e-6).all()
    assert (three < one - 1e-6).any()


def test_conditional_gan_inpaints_with_labels_repeated_over_restarts():
    import genlab

    torch.manual_seed(0)
    gan = genlab.GAN(genlab.GANConfig(latent_dim=8, g_width=8, d_width=8, num_classes=3)).eval()
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(8))
    mask = make_mask("top", images.shape)
    out = inpaint(gan, images, mask, "gan", steps=2, restarts=3, labels=torch.tensor([0, 1, 2, 0]), progress=False)
    assert torch.equal(out[mask.bool().expand_as(images)], images[mask.bool().expand_as(images)])
    with pytest.raises(ConfigError, match="labels"):
        inpaint(gan, images, mask, "gan", steps=2, progress=False)


def test_inpaint_input_errors(tiny_models):
    images = torch.rand(2, 1, 28, 28)
    mask = make_mask("center", images.shape)
    with pytest.raises(ConfigError, match="unknown method"):
        inpaint(None, images, mask, "magic")
    with pytest.raises(ConfigError, match="needs a trained model"):
        inpaint(None, images, mask, "gan")
    with pytest.raises(ConfigError, match="needs a VAE"):
        inpaint(tiny_models["gan"], images, mask, "vae-iterative")
    with pytest.raises(ConfigError, match="3×28×28"):
        inpaint(tiny_models["vae"], torch.rand(2, 3, 28, 28), mask, "vae-iterative")
    with pytest.raises(ConfigError, match="mask must be"):
        inpaint(None, images, torch.ones(2, 1, 20, 20), "mean")
    with pytest.raises(ConfigError, match="hides the whole image"):
        inpaint(None, images, torch.zeros(2, 1, 28, 28), "mean")


# ------------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", "--data", "fashion-mnist-mini", "--dry-run", "--out", str(run), "--latent-dim", "4",
                 "--channels", "8,16", "--hidden-dim", "32", "--batch-size", "32", "--no-progress"]) == 0
    return run


def test_cli_inpaints_an_image_and_a_batch(tiny_run, tmp_path, capsys):
    from genlab.data import load_dataset

    image = load_dataset("fashion-mnist-mini", split="test").images[0, 0].numpy()
    Image.fromarray(image).save(tmp_path / "x.png")
    out = tmp_path / "out.png"
    assert main(["inpaint", str(tiny_run), "--image", str(tmp_path / "x.png"), "--mask", "center", "-o", str(out),
                 "--method", "vae-iterative", "--steps", "2", "--no-progress"]) == 0
    with Image.open(out) as picture:
        width, height = picture.size
    assert width > 3 * 28 * 4 and height > 28 * 4  # three panels at 4× scale
    assert "25% hidden" in capsys.readouterr().out
    batch = tmp_path / "batch.png"
    assert main(["inpaint", str(tiny_run), "--data", "fashion-mnist-mini", "-n", "8", "--mask", "random",
                 "--steps", "2", "-o", str(batch), "--no-progress"]) == 0
    assert batch.is_file() and "method vae-optimize" in capsys.readouterr().out
    mask_png = tmp_path / "mask.png"
    Image.fromarray(np.where(np.arange(28)[None, :] < 10, 255, 0).repeat(28, 0).astype(np.uint8)).save(mask_png)
    assert main(["inpaint", "--image", str(tmp_path / "x.png"), "--mask", str(mask_png), "--method", "nearest",
                 "-o", str(tmp_path / "n.png")]) == 0


def test_cli_bad_input_is_one_line_and_exit_code_2(tiny_run, tmp_path, capsys):
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((28, 28, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(tmp_path / "mask20.png")
    cases = [  # (arguments, a regular expression the one-line error must match)
        (["--image", str(tmp_path / "gray.png"), "--mask", str(tmp_path / "mask20.png")], r"mask20\.png: is 20×20 .* 28×28"),
        (["--image", str(tmp_path / "rgb.png")], r"--image .*rgb\.png: is a colour \(3 channels\) image but the model takes grayscale"),
        (["--image", str(tmp_path / "big.png")], r"--image .*big\.png: is 32×32 \(H×W\) but the model takes 28×28"),
        (["--image", str(tmp_path / "gray.png"), "--mask", "circle"], r"unknown mask 'circle'"),
        (["--data", "fashion-mnist-mini", "--image", str(tmp_path / "gray.png")], r"not both"),
    ]
    import re

    for argv, pattern in cases:
        assert main(["inpaint", str(tiny_run), *argv, "-o", str(tmp_path / "o.png")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert re.search(pattern, err), err
        assert "\n" not in err and "Traceback" not in err
