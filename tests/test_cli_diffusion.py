"""`genlab train autoencoder`, `genlab train diffusion --first-stage RUN | --pixel` and `genlab sample` with the
diffusion sampling options, end to end on tiny models and data."""
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from genlab import load
from genlab.cli.main import main
from genlab.io.checkpoints import STATE_FILE
from genlab.io.grids import make_grid
from genlab.io.images import read_image, to_uint8

AE_TINY = ["--channels", "8,16", "--latent-channels", "2", "--num-sample-images", "4", "--no-plots", "--no-tensorboard",
           "--no-progress"]
DIFFUSION_TINY = ["--channels", "8,16", "--blocks", "1", "--timesteps", "50", "--num-sample-images", "4", "--no-plots",
                  "--no-tensorboard", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    from genlab.data import load_dataset

    mini = load_dataset("fashion-mnist-mini", split="test")
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, images=mini.images[:128, 0].numpy(), labels=mini.labels[:128].numpy(), classes=np.array(mini.classes))
    return path


@pytest.fixture(scope="module")
def autoencoder_run(tmp_path_factory, tiny_npz):
    run = tmp_path_factory.mktemp("runs") / "ae"
    assert main(["train", "autoencoder", "--data", str(tiny_npz), "--max-steps", "3", "--out", str(run), *AE_TINY]) == 0
    return run


@pytest.fixture(scope="module")
def latent_run(tmp_path_factory, tiny_npz, autoencoder_run):
    run = tmp_path_factory.mktemp("runs") / "ldm"
    assert main(["train", "diffusion", "--first-stage", str(autoencoder_run), "--conditional", "--data", str(tiny_npz),
                 "--max-steps", "3", "--out", str(run), *DIFFUSION_TINY]) == 0
    return run


def test_the_autoencoder_run_reconstructs_and_refuses_to_sample(autoencoder_run, tiny_npz, tmp_path, capsys):
    model = load(autoencoder_run)
    assert model.kind == "autoencoder" and model.latent_shape == (2, 7, 7)
    assert main(["reconstruct", str(autoencoder_run), "--data", str(tiny_npz), "-n", "4", "-o", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").is_file()
    assert main(["sample", str(autoencoder_run), "-o", str(tmp_path / "s.png")]) == 2
    assert "genlab train diffusion --first-stage" in capsys.readouterr().err


def test_latent_diffusion_keeps_its_first_stage_and_samples_with_the_options_given(latent_run, autoencoder_run, tmp_path):
    model = load(latent_run)
    first_stage = load(autoencoder_run)
    assert model.kind == "diffusion" and model.config.num_classes == 10
    assert model.config.first_stage_run == str(autoencoder_run) and model.config.first_stage["latent_channels"] == 2
    for name, weight in first_stage.state_dict().items():  # the autoencoder's weights, copied into the run
        assert torch.equal(model.first_stage.state_dict()[name], weight), name
    out = tmp_path / "s.png"
    assert main(["sample", str(latent_run), "-n", "4", "--labels", "Sneaker,Bag", "--steps", "3", "--guidance", "2",
                 "-o", str(out)]) == 0
    expected = model.sample_with(4, labels=[7, 8, 7, 8], seed=0, steps=3, guidance=2.0)
    assert torch.equal(read_image(out), to_uint8(make_grid(expected).repeat_interleave(2, 1).repeat_interleave(2, 2)))


def test_the_scale_factor_is_the_first_stages_latent_scale_of_the_training_data(latent_run, autoencoder_run, tiny_npz):
    from genlab.data import load_dataset

    expected = load(autoencoder_run).latent_scale(load_dataset(str(tiny_npz)))
    assert load(latent_run).config.scale_factor == pytest.approx(expected, rel=1e-6)


def test_pixel_diffusion_trains_and_samples(tiny_npz, tmp_path):
    run = tmp_path / "pixel"
    assert main(["train", "diffusion", "--pixel", "--data", str(tiny_npz), "--max-steps", "2", "--out", str(run),
                 *DIFFUSION_TINY]) == 0
    model = load(run)
    assert model.first_stage is None and model.config.num_classes == 0
    assert main(["sample", str(run), "-n", "2", "--steps", "2", "--eta", "1", "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").is_file()


def test_a_diffusion_run_needs_exactly_one_space(tiny_npz, autoencoder_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # argparse's own usage error
        main(["train", "diffusion", "--data", str(tiny_npz), "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and "one of the arguments --first-stage --pixel is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["train", "diffusion", "--pixel", "--first-stage", str(autoencoder_run), "--data", str(tiny_npz),
              "--out", str(tmp_path / "y")])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_first_stage_must_be_an_autoencoder_run_of_the_datas_shape(tiny_npz, latent_run, autoencoder_run, tmp_path, capsys):
    assert main(["train", "diffusion", "--first-stage", str(latent_run), "--data", str(tiny_npz),
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "holds a diffusion run; latent diffusion needs an autoencoder run" in err and err.count("\n") == 1
    assert main(["train", "diffusion", "--first-stage", str(autoencoder_run), "--data", str(tiny_npz), "--image-size", "32",
                 "--out", str(tmp_path / "y")]) == 2
    assert "encodes 1×28×28 images, the data has 1×32×32" in capsys.readouterr().err


def test_diffusion_sampling_options_on_another_kind_are_an_error(autoencoder_run, tmp_path, capsys):
    assert main(["sample", str(autoencoder_run), "--steps", "5", "-o", str(tmp_path / "x.png")]) == 2
    assert "--steps: options of diffusion runs" in capsys.readouterr().err


def test_a_latent_diffusion_run_resumes_with_its_first_stage(latent_run, autoencoder_run, tmp_path):
    copy = tmp_path / "ldm"
    shutil.copytree(latent_run, copy)
    assert main(["train", "diffusion", "--first-stage", str(autoencoder_run), "--conditional", "--max-steps", "5",
                 "--resume", "--out", str(copy), *DIFFUSION_TINY]) == 0
    with safe_open(str(copy / STATE_FILE), "pt") as handle:
        assert json.loads(handle.metadata()["genlab"])["step"] == 5


def test_the_comparison_report_morphs_a_diffusion_model_along_slerped_noise(latent_run, tiny_npz, tmp_path):
    """`genlab compare`'s pictures of a diffusion run: samples, and 4 DDIM (η = 0) paths of 10 frames whose ends are
    the images of the two noises they join."""
    from genlab.data import load_dataset
    from genlab.reporting.pictures import write_run_pictures

    model = load(latent_run).set_sampling(steps=2)
    written = write_run_pictures("ldm", model, load_dataset(str(tiny_npz)), latent_run, tmp_path, seed=0)
    strip = read_image(written["interpolation"])
    assert strip.shape[-2:] == (2 * (4 * 30 + 2), 2 * (10 * 30 + 2))  # 4 rows × 10 frames of 28 px, padding 2, scale 2
    assert (tmp_path / "ldm_samples.png").is_file()
