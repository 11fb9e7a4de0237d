"""Latent editing: directions (labels, folders, GANSpace), edits, their measurement, and the CLI commands."""
import numpy as np
import pytest
import torch

import genlab
from genlab.cli.main import main
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.io.grids import save_image
from genlab.tools.editing import (
    Direction,
    class_index,
    edit,
    edit_codes,
    first_layer_features,
    folder_direction,
    label_direction,
    measure_direction,
    parse_direction,
    parse_strengths,
    principal_directions,
)


def tiny_vae(size: int = 28, seed: int = 0) -> genlab.VAE:
    torch.manual_seed(seed)
    return genlab.VAE(genlab.VAEConfig(image_shape=(1, size, size), latent_dim=4, channels=(8, 8), hidden_dim=16)).eval()


def labelled(n: int = 12, size: int = 28) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, size, size), generator=generator, dtype=torch.uint8)
    return Dataset(images, torch.arange(n) % 3, ("T-shirt", "Sneaker", "Ankle boot"), "three")


def test_strength_zero_is_the_identity_on_codes_and_the_reconstruction_on_images():
    vae = tiny_vae()
    z = torch.randn(5, 4)
    direction = torch.randn(4)
    codes = edit_codes(z, direction, [0.0, 1.0, -2.0])
    assert torch.equal(codes[0], z)
    torch.testing.assert_close(codes[2], z - 2 * direction)
    x = labelled().float_images(slice(0, 3))
    edited = edit(vae, x, direction, [0.0, 0.5], progress=False)
    assert edited.shape == (2, 3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(edited[0], vae.decode(vae.encode(x)))
        torch.testing.assert_close(edited[1], vae.decode(vae.encode(x) + 0.5 * direction))


@pytest.mark.numerics
def test_label_direction_is_the_difference_of_class_mean_codes():
    vae, data = tiny_vae(), labelled()
    direction = label_direction(vae, data, "sneaker", "Ankle boot", progress=False)
    with torch.no_grad():
        codes = vae.encode(data.float_images())
    expected = codes[data.labels == 2].mean(0) - codes[data.labels == 1].mean(0)
    torch.testing.assert_close(direction.vector, expected)
    assert (direction.name, direction.source_class, direction.target_class) == ("Sneaker->Ankle boot", 1, 2)
    limited = label_direction(vae, data, 1, 2, max_per_class=2, progress=False)
    sneakers, boots = (data.labels == 1).nonzero().flatten()[:2], (data.labels == 2).nonzero().flatten()[:2]
    torch.testing.assert_close(limited.vector, codes[boots].mean(0) - codes[sneakers].mean(0))


def test_folder_direction_is_the_difference_of_the_folders_mean_codes(tmp_path):
    vae, data = tiny_vae(), labelled(n=6)
    images = data.float_images()
    for i in range(6):
        save_image(images[i], tmp_path / ("from" if i < 2 else "to") / f"{i}.png")
    direction = folder_direction(vae, tmp_path / "from", tmp_path / "to", progress=False)
    with torch.no_grad():
        codes = vae.encode(torch.round(images * 255) / 255)  # PNG holds 8 bits
    torch.testing.assert_close(direction.vector, codes[2:].mean(0) - codes[:2].mean(0))
    save_image(torch.rand(3, 16, 16), tmp_path / "rgb" / "x.png")
    with pytest.raises(genlab.DataError, match="3×16×16"):
        folder_direction(vae, tmp_path / "from", tmp_path / "rgb", progress=False)


@pytest.mark.numerics
def test_principal_directions_are_orthonormal_and_follow_the_ganspace_regression():
    torch.manual_seed(0)
    gan = genlab.GAN(genlab.GANConfig(image_shape=(1, 28, 28), latent_dim=6, g_width=4, d_width=4)).eval()
    directions, explained = principal_directions(gan, 3, num_samples=400, seed=1)
    torch.testing.assert_close(directions @ directions.T, torch.eye(3), atol=1e-5, rtol=0)  # float64 QR in float32: ~1e-7
    assert (explained[:-1] >= explained[1:]).all() and explained.sum() <= 1
    # Independently, with NumPy: exact PCA of the first-layer features, then least squares z ≈ x·U.
    z = torch.randn(400, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = first_layer_features(gan, z).double().numpy()
    centred = features - features.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    coefficients = centred @ vt[:3].T
    u, *_ = np.linalg.lstsq(coefficients, z.double().numpy(), rcond=None)  # 3 × 6
    first = u[0] / np.linalg.norm(u[0])
    assert abs(float(np.dot(first, directions[0].double().numpy()))) > 0.999  # column 0 keeps its direction
    # a randomized SVD (q = k + 10, 6 power iterations) of float32 features: its error follows the spectrum's decay
    np.testing.assert_allclose(explained.numpy(), (s[:3] ** 2 / (s ** 2).sum()), rtol=1e-3)
    # Later directions span the same space as the regression's first columns (QR keeps the nested spans).
    basis = np.linalg.qr(u[:2].T)[0]
    second = directions[1].double().numpy()
    np.testing.assert_allclose(basis @ (basis.T @ second), second, atol=1e-4)  # float32 features and directions: ~1e-6
    vae_directions, _ = principal_directions(tiny_vae(), 4, num_samples=200)
    torch.testing.assert_close(vae_directions @ vae_directions.T, torch.eye(4), atol=1e-5, rtol=0)


@pytest.mark.numerics
def test_measure_direction_counts_flips_and_feature_distances_as_documented():
    vae, judge = tiny_vae(), genlab.load_judge()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    direction = Direction(torch.tensor([3.0, 0.0, -3.0, 1.0]), "test", 0, 2)
    rows = measure_direction(vae, z, direction, [0.5, 1.0], judge=judge)
    assert [r["strength"] for r in rows] == [0.0, 0.5, 1.0]  # strength 0 is added as the reference
    assert rows[0]["feature_distance"] == 0.0
    with torch.no_grad():
        images = [vae.decode(z + s * direction.vector) for s in (0.0, 1.0)]
    flipped = judge.predict(images[1]) == 2
    distance = (judge.features(images[1]) - judge.features(images[0])).norm(dim=1)
    assert rows[2]["flip_rate"] == pytest.approx(flipped.float().mean().item())
    # float32 judge features, decoded and judged in batches of another size: ~1e-6 relative
    assert rows[2]["feature_distance"] == pytest.approx(distance.mean().item(), rel=1e-5)
    unlabelled = measure_direction(vae, z, direction.vector, [1.0], judge=judge)  # flips = class changes
    changed = judge.predict(images[1]) != judge.predict(images[0])
    assert unlabelled[1]["flip_rate"] == pytest.approx(changed.float().mean().item())


def test_parsing_directions_strengths_and_classes():
    classes = ("T-shirt/top", "Sneaker", "Ankle boot")
    assert parse_direction(" sneaker -> ANKLE BOOT ", classes) == ("labels", 1, 2)
    assert parse_direction("pc3", classes) == ("pc", 3)
    assert parse_direction("0->2", classes) == ("labels", 0, 2)
    assert class_index("t-shirt/top", classes) == 0
    with pytest.raises(ConfigError, match="unknown class 'sandal'; the data's classes are: T-shirt/top, Sneaker"):
        parse_direction("sandal->Sneaker", classes)
    for bad in ("Sneaker", "->Sneaker", "Sneaker->Sneaker", "pcX"):
        with pytest.raises(ConfigError):
            parse_direction(bad, classes)
    assert parse_strengths("0,0.5,-1,1e0") == [0.0, 0.5, -1.0, 1.0]
    for bad in ("0,,1", "a,b", "", "1,nan"):
        with pytest.raises(ConfigError, match="--strength"):
            parse_strengths(bad)


# ------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny VAE, GAN and GAN encoder on the bundled fashion-mnist-mini, two training steps each."""
    root = tmp_path_factory.mktemp("runs")
    common = ["--data", "fashion-mnist-mini", "--dry-run", "--no-progress"]
    assert main(["train", "vae", *common, "--out", str(root / "vae"), "--latent-dim", "4", "--channels", "8,8",
                 "--hidden-dim", "16"]) == 0
    assert main(["train", "gan", *common, "--out", str(root / "gan"), "--latent-dim", "8", "--g-width", "8",
                 "--d-width", "8"]) == 0
    assert main(["train", "encoder", "--gan", str(root / "gan"), *common, "--out", str(root / "encoder"),
                 "--channels", "8,8", "--hidden-dim", "16"]) == 0
    test = genlab.load_dataset("fashion-mnist-mini", split="test")
    save_image(test.float_images([0])[0], root / "a.png")
    save_image(test.float_images([1])[0], root / "b.png")
    save_image(torch.rand(1, 32, 32), root / "big.png")
    save_image(torch.rand(3, 28, 28), root / "rgb.png")
    return root


def test_cli_train_encoder_makes_a_loadable_run(runs):
    encoder = genlab.load(runs / "encoder")
    assert encoder.kind == "gan_encoder" and encoder.config.gan_run == str(runs / "gan")
    gan = genlab.load(runs / "gan")
    for key, value in gan.state_dict().items():
        assert torch.equal(encoder.gan.state_dict()[key], value), key


def test_cli_edit_with_a_class_direction_writes_a_grid_and_measures_it(runs, tmp_path, capsys):
    out = tmp_path / "edits.png"
    assert main(["edit", str(runs / "vae"), "--direction", "Sneaker->Ankle boot", "--strength", "0,1,2",
                 "--max-per-class", "5", "-n", "2", "--measure", "4", "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "Sneaker->Ankle boot" in printed and "| 2 |" in printed and "flip rate" in printed
    image = genlab.io.images.read_image(out)
    assert image.shape[2] > 3 * 3 * 28  # three columns, one per strength


def test_cli_edit_gan_principal_component_and_folders(runs, tmp_path, capsys):
    out = tmp_path / "pc.png"
    assert main(["edit", str(runs / "gan"), "--direction", "pc0", "--image", str(runs / "a.png"), "--strength", "0,3",
                 "--projection-steps", "2", "--measure", "3", "-o", str(out), "--no-progress"]) == 0
    assert out.is_file() and "direction pc0" in capsys.readouterr().out
    for name, path in (("from", runs / "a.png"), ("to", runs / "b.png")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(path.read_bytes())
    assert main(["edit", str(runs / "encoder"), "--from-dir", str(tmp_path / "from"), "--to-dir", str(tmp_path / "to"),
                 "--image", str(runs / "b.png"), "--projection-steps", "1", "--measure", "0", "-o", str(out),
                 "--no-progress"]) == 0


@pytest.mark.parametrize(("arguments", "message"), [
    (["--direction", "Sneaker->Sandwich"], "unknown class 'Sandwich'; the data's classes are: T-shirt/top"),
    (["--direction", "Sneaker->Ankle boot", "--strength", "0,x"], "--strength '0,x': expected comma-separated numbers"),
    (["--direction", "pc0", "--image", "{runs}/big.png"], "big.png: is 32×32 (H×W) but the model takes 28×28 images; resize it first"),
    (["--direction", "pc0", "--image", "{runs}/rgb.png"],
     "rgb.png: is a colour (3 channels) image but the model takes grayscale (1 channel) images"),
    (["--direction", "pc99"], "pc99: components run from pc0 to pc3"),
    (["--direction", "pc0", "--from-dir", "x", "--to-dir", "y"], "not both"),
    ([], "give --direction"),
])
def test_cli_edit_bad_input_is_a_one_line_error_with_exit_code_2(runs, tmp_path, capsys, arguments, message):
    arguments = [a.replace("{runs}", str(runs)) for a in arguments]
    code = main(["edit", str(runs / "vae"), *arguments, "--max-per-class", "2", "--measure", "0", "-o",
                 str(tmp_path / "e.png"), "--no-progress"])
    error = capsys.readouterr().err
    assert code == 2 and message in error and error.count("\n") == 1, error


def test_cli_interpolate_between_image_files_for_gan_and_vae(runs, tmp_path, capsys):
    strip, gif = tmp_path / "m.png", tmp_path / "m.gif"
    for run, extra in ((runs / "gan", ["--projection-steps", "3", "--encoder", str(runs / "encoder")]),
                       (runs / "gan", ["--projection-steps", "2"]), (runs / "vae", [])):
        assert main(["interpolate", str(run), "--from", str(runs / "a.png"), "--to", str(runs / "b.png"), "--steps", "4",
                     "-o", str(strip), "--gif", str(gif), *extra]) == 0
        picture = genlab.io.images.read_image(strip)
        assert picture.shape[2] >= 4 * 28 and gif.is_file()
    assert main(["interpolate", str(runs / "gan"), "--steps", "3", "--projection-steps", "1", "-o", str(strip)]) == 0  # indices
    capsys.readouterr()
    for extra, message in ((["--from", str(runs / "big.png"), "--to", str(runs / "a.png")],
                            "--from " + str(runs / "big.png") + ": is 32×32 (H×W) but the model takes 28×28"),
                           (["--from", str(runs / "a.png")], "give both --from and --to"),
                           (["--from", str(runs / "a.png"), "--to", str(runs / "b.png"), "--from-index", "1"], "not both"),
                           (["--from", str(runs / "missing.png"), "--to", str(runs / "b.png")], "image file not found")):
        assert main(["interpolate", str(runs / "gan"), *extra, "-o", str(strip)]) == 2
        assert message in capsys.readouterr().err


# ----- projecting many images: one bar with an estimate, and the fast path said up front (issue 14) -----
def test_a_shared_bar_counts_every_projected_image(runs):
    from genlab.tools.inversion import invert, projection_bar

    gan, vae = genlab.load(runs / "gan"), genlab.load(runs / "vae")
    images = genlab.load_dataset("fashion-mnist-mini", split="test").float_images(slice(0, 7))
    bar = projection_bar(7 + 7 + 7)  # (a disabled bar counts nothing)
    invert(gan, images, steps=3, batch_size=4, progress=bar)  # two batches of a GAN's projector
    assert bar.n == pytest.approx(7)
    invert(vae, images, progress=bar)  # a VAE: its encoder, no steps
    assert bar.n == pytest.approx(14)
    edit(gan, images, torch.zeros(8), [0.0, 1.0], steps=2, progress=bar)  # what editing passes on
    assert bar.n == pytest.approx(21)
    bar.close()


def test_cli_edit_of_a_gan_without_encoder_names_the_fast_path_and_shows_one_bar(runs, tmp_path, capsys):
    out = tmp_path / "edits.png"
    assert main(["edit", str(runs / "gan"), "--direction", "Sneaker->Ankle boot", "--max-per-class", "3", "-n", "2",
                 "--measure", "2", "--projection-steps", "2", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: projecting 10 images onto the GAN by optimisation (2 steps each: minutes on a CPU); --encoder RUN, "
                     f"a GAN encoder from `genlab train encoder --gan {runs / 'gan'}`, is the fast path"]
    assert "10/10 images" in err and "projecting 3 image(s)" not in err  # one bar over all 3 + 3 + 2 + 2, no bar per batch
    # with an encoder (or a GAN-encoder run), or a VAE: no note
    for run, extra in ((runs / "gan", ["--encoder", str(runs / "encoder")]), (runs / "encoder", []), (runs / "vae", [])):
        assert main(["edit", str(run), "--direction", "pc0", "-n", "2", "--measure", "0", "--projection-steps", "1",
                     "-o", str(out), "--no-progress", *extra]) == 0
        assert "note:" not in capsys.readouterr().err
