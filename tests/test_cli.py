"""The `genlab` command end to end, on tiny data and tiny models."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from genlab import load
from genlab.cli.main import main

TINY = ["--latent-dim", "4", "--channels", "8,16", "--hidden-dim", "32", "--batch-size", "32", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """384 Fashion-MNIST-mini images as an .npz: a path dataset, as users bring their own."""
    from genlab.data import load_dataset

    mini = load_dataset("fashion-mnist-mini", split="test")
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, images=mini.images[:384, 0].numpy(), labels=mini.labels[:384].numpy(), classes=np.array(mini.classes))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_npz):
    run = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", "--data", str(tiny_npz), "--epochs", "2", "--out", str(run), *TINY]) == 0
    return run


def test_train_writes_a_loadable_run(tiny_run):
    for name in ("config.json", "model.safetensors", "metrics.csv", "samples/epoch_002.png"):
        assert (tiny_run / name).is_file(), name
    model = load(tiny_run)
    assert model.config.latent_dim == 4 and model.config.channels == (8, 16)


def test_resume_extends_a_run(tiny_run, tiny_npz, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    assert main(["train", "vae", "--data", str(tiny_npz), "--epochs", "3", "--out", str(run), "--resume", *TINY]) == 0
    assert (run / "samples" / "epoch_003.png").is_file()
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3  # an allowed change, recorded
    assert "epochs: 2 → 3" in (run / "events.log").read_text()


def test_sample_reconstruct_interpolate(tiny_run, tiny_npz, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["sample", str(tiny_run), "-n", "9", "--seed", "1", "-o", str(grid)]) == 0
    assert Image.open(grid).size[0] > 28 * 3
    recon = tmp_path / "recon.png"
    assert main(["reconstruct", str(tiny_run), "--data", str(tiny_npz), "-n", "8", "-o", str(recon)]) == 0
    assert recon.is_file()
    strip, gif = tmp_path / "morph.png", tmp_path / "morph.gif"
    assert main(["interpolate", str(tiny_run), "--data", str(tiny_npz), "--steps", "6", "-o", str(strip), "--gif", str(gif)]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 2 * 6 - 2  # boomerang
    with Image.open(strip) as image:
        assert image.size[0] > 5 * image.size[1]  # one row of 6 frames


def test_same_seed_same_samples(tiny_run, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    main(["sample", str(tiny_run), "-n", "4", "--seed", "3", "-o", str(a)])
    main(["sample", str(tiny_run), "-n", "4", "--seed", "3", "-o", str(b)])
    main(["sample", str(tiny_run), "-n", "4", "--seed", "4", "-o", str(c)])
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "vae", "--data", "no-such-set", "--out", "x"], "unknown dataset"),
        (["sample", "no/such/run"], "run directory not found"),
        (["data", "info", "imagenet"], "unknown dataset"),
        (["train", "vae", "--data", "fashion-mnist-mini", "--out", "x", "--epochs", "0"], "epochs"),
        (["train", "vae", "--data", "fashion-mnist-mini", "--out", "x", "--device", "cuda:0"], "cuda"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_interpolate_index_out_of_range(tiny_run, tiny_npz, capsys):
    assert main(["interpolate", str(tiny_run), "--data", str(tiny_npz), "--from-index", "100000"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_data_list_and_info(capsys):
    assert main(["data", "list"]) == 0
    assert "fashion-mnist-mini" in capsys.readouterr().out
    assert main(["data", "info", "fashion-mnist-mini"]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == {"train": 6000, "test": 1000}


def test_help_reads_well():
    result = subprocess.run([sys.executable, "-m", "genlab", "train", "vae", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--latent-dim" in result.stdout and "(default: 16)" in result.stdout


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tiny_npz, tmp_path):
    run = tmp_path / "interrupted"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "genlab", "train", "vae", "--data", str(tiny_npz), "--epochs", "1000", "--out", str(run),
         "--log-every", "1", *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    deadline = time.time() + 60
    while not (run / "metrics.csv").exists() or len((run / "metrics.csv").read_text().splitlines()) < 3:
        assert time.time() < deadline and process.poll() is None, process.stderr.read() if process.poll() is not None else "timeout"
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    model = load(run)
    state = json.loads((run / "config.json").read_text())
    assert state["model"]["kind"] == "vae" and model is not None
    assert main(["train", "vae", "--data", str(tiny_npz), "--epochs", "1", "--out", str(run), "--resume", *TINY]) == 0


GAN_TINY = ["--g-width", "8", "--d-width", "8", "--latent-dim", "8", "--batch-size", "32", "--log-every", "3", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_cgan(tmp_path_factory, tiny_npz):
    """A class-conditional GAN trained one epoch on the tiny Fashion-MNIST .npz (its classes stored in the run),
    and what `genlab train` printed."""
    import contextlib
    import io

    run = tmp_path_factory.mktemp("runs") / "cgan"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", "gan", "--data", str(tiny_npz), "--conditional", "--loss", "hinge", "--epochs", "1",
                     "--out", str(run), *GAN_TINY]) == 0
    return run, printed.getvalue()


def test_conditional_gan_trains_and_samples_chosen_classes(tiny_cgan, tmp_path):
    run, _ = tiny_cgan
    for name in ("model.safetensors", "monitor.png", "samples/epoch_001.png"):
        assert (run / name).is_file(), name
    model = load(run)
    assert model.kind == "gan" and model.config.num_classes == 10 and model.config.loss == "hinge"
    out = tmp_path / "s.png"
    assert main(["sample", str(run), "-n", "6", "--labels", "0,1,2", "--truncation", "0.7", "-o", str(out)]) == 0
    expected = model.sample(6, labels=[0, 1, 2, 0, 1, 2], seed=0, truncation=0.7)
    from genlab.io.grids import make_grid
    from genlab.io.images import read_image, to_uint8

    assert torch.equal(read_image(out), to_uint8(make_grid(expected).repeat_interleave(2, 1).repeat_interleave(2, 2)))


def test_sampling_options_a_model_does_not_have_are_an_error(tiny_run, capsys, tmp_path):
    assert main(["sample", str(tiny_run), "--labels", "1", "-o", str(tmp_path / "x.png")]) == 2
    assert "does not take labels" in capsys.readouterr().err


def test_demo_end_to_end_on_a_short_schedule(tmp_path, capsys, monkeypatch):
    import genlab.cli.demo

    real_load = genlab.cli.demo.load_dataset

    def small_slice(name, split="train"):  # the demo's own code path, on 640 / 200 images
        data = real_load(name, split=split)
        return data.subset(torch.arange(0, len(data), len(data) // (640 if split == "train" else 200)))

    monkeypatch.setattr(genlab.cli.demo, "load_dataset", small_slice)
    monkeypatch.setattr(genlab.cli.demo, "REPORT_SAMPLES", 300)  # the report's code path, on fewer samples
    from genlab.models import judge

    if not (judge.WEIGHTS_DIR / f"{judge.SHIPPED_JUDGES['fashion-mnist']}.safetensors").is_file():
        # Until the shipped judge's weights are installed: a small untrained judge, enough to run the report.
        monkeypatch.setattr(judge, "load_judge", lambda spec=None: judge.Judge(judge.JudgeConfig(channels=(8, 16))).eval())
    assert main(["demo", "--out", str(tmp_path / "demo"), "--epochs", "1", "--gan-epochs", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("samples.png", "reconstructions.png", "morph.png", "morph.gif", "translation.png", "vae_loss.png", "gan_monitor.png",
                 "summary.json",
                 "report/report.html", "report/report.md", "report/results.json"):
        assert (tmp_path / "demo" / name).is_file(), name
        assert name in out
    assert "lowest FID" in out  # the report's verdict, printed
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["test_iwae_k100_nats"] >= summary["test_elbo_nats"] - 1.0


# ----- evaluate, compare, judge train -----


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory, tiny_npz):
    """`genlab judge train` for one epoch on the 384 tiny images (an .npz: no test split, so it
    reports the training accuracy). Returns (judge dir, what it printed)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("judges") / "judge"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["judge", "train", "--data", str(tiny_npz), "-o", str(out), "--epochs", "1", "--batch-size", "64",
                     "--no-progress"]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def tiny_gan_run(tmp_path_factory, tiny_npz):
    run = tmp_path_factory.mktemp("runs") / "gan"
    assert main(["train", "gan", "--data", str(tiny_npz), "--epochs", "1", "--out", str(run), *GAN_TINY]) == 0
    return run


def test_judge_train_prints_its_accuracy_and_writes_a_loadable_judge(tiny_judge):
    from genlab.models.judge import load_judge

    out, printed = tiny_judge
    assert "Judge training accuracy" in printed and f"--judge {out}" in printed
    accuracy = float(printed.split("Judge training accuracy")[1].split(":")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    assert load_judge(out).image_shape == (1, 28, 28)


def test_evaluate_prints_a_table_and_writes_json(tiny_run, tiny_npz, tiny_judge, tmp_path, capsys):
    results = tmp_path / "results.json"
    assert main(["evaluate", str(tiny_run), "--data", str(tiny_npz), "--judge", str(tiny_judge[0]),
                 "--metrics", "fid,kid,likelihood", "-n", "150", "--json", str(results), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fid" in out and "bits_per_dim" in out and "precision" not in out
    stored = json.loads(results.read_text())
    assert stored["data"] == str(tiny_npz) and stored["results"]["num_samples"] == 150
    assert {"fid", "kid_mean", "kid_std", "elbo_nats", "iwae_nats", "bits_per_dim"} <= set(stored["results"])


def test_evaluate_a_folder_of_images(tiny_npz, tiny_judge, tmp_path, capsys):
    images = np.load(tiny_npz)["images"]
    for i in range(150):  # fid needs more images than the judge has features (128)
        Image.fromarray(images[i]).save(tmp_path / f"{i}.png")
    assert main(["evaluate", "--images", str(tmp_path), "--data", str(tiny_npz), "--judge", str(tiny_judge[0]),
                 "--metrics", "fid,sharpness", "--no-progress"]) == 0
    assert "sharpness" in capsys.readouterr().out


def test_compare_writes_the_report(tiny_run, tiny_gan_run, tiny_npz, tiny_judge, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", str(tiny_run), str(tiny_gan_run), "--data", str(tiny_npz), "--judge", str(tiny_judge[0]),
                 "-o", str(out), "-n", "150", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Report written" in printed and "lowest FID" in printed
    assert {"report.md", "report.html", "results.json"} <= {path.name for path in out.iterdir()}
    assert [run["kind"] for run in json.loads((out / "results.json").read_text())["runs"]] == ["vae", "gan"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--metrics", "cas"], "'cas' needs a conditional model; this VAE"),
    (["--metrics", "fdi"], "unknown metric(s) 'fdi'"),
    (["--metrics", "fid", "--features", "inception"], "--features inception needs torch-fidelity"),
    (["--images", "."], "either a run directory or --images DIR, not both"),
])
def test_evaluate_bad_input_is_one_line_and_exit_code_2(extra, message, tiny_run, tiny_npz, tiny_judge, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as if not installed, even where it is
    assert main(["evaluate", str(tiny_run), "--data", str(tiny_npz), "--judge", str(tiny_judge[0]), "-n", "50",
                 "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


# ----- classes by name or index, one parser for every command (issue 13) -----


@pytest.mark.parametrize(("by_name", "by_index"), [("trouser,ANKLE-BOOT", "1,9"), ("Sneaker", "7"), ("'Ankle boot',t-shirt/top", "9,0")])
def test_sample_labels_by_name_are_the_same_as_by_index(tiny_cgan, tmp_path, by_name, by_index):
    named, indexed = tmp_path / "named.png", tmp_path / "indexed.png"
    assert main(["sample", str(tiny_cgan[0]), "-n", "4", "--labels", by_name, "-o", str(named)]) == 0
    assert main(["sample", str(tiny_cgan[0]), "-n", "4", "--labels", by_index, "-o", str(indexed)]) == 0
    assert named.read_bytes() == indexed.read_bytes()


@pytest.mark.parametrize("command", [["sample"], ["interpolate", "--steps", "3"], ["edit", "--direction", "pc0", "--measure", "0"],
                                     ["inpaint", "--data", "fashion-mnist-mini", "-n", "2"]])
def test_an_unknown_class_name_is_one_line_listing_the_classes(tiny_cgan, tmp_path, capsys, command):
    argv = [command[0], str(tiny_cgan[0]), *command[1:], "--labels", "Sneaker,Snekaer", "-o", str(tmp_path / "x.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "'Snekaer'" in err and "Sneaker" in err and "Ankle boot" in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_interpolate_and_edit_take_labels_for_a_conditional_gan(tiny_cgan, tiny_npz, tmp_path, capsys):
    run = str(tiny_cgan[0])
    images = np.load(tiny_npz)["images"]
    for i in range(2):
        Image.fromarray(images[i]).save(tmp_path / f"{i}.png")
    a, b, out = str(tmp_path / "0.png"), str(tmp_path / "1.png"), str(tmp_path / "out.png")
    fast = ["--projection-steps", "1"]
    # image files have no class: without --labels a clear error names the option
    assert main(["interpolate", run, "--from", a, "--to", b, "--steps", "3", *fast, "-o", out]) == 2
    assert "--labels" in capsys.readouterr().err
    assert main(["edit", run, "--direction", "pc0", "--image", a, "--measure", "0", *fast, "-o", out]) == 2
    assert "--labels" in capsys.readouterr().err
    # by name (one class for both, or one each) and by index
    for labels in ("sneaker", "Sneaker,ankle boot", "7,9"):
        assert main(["interpolate", run, "--from", a, "--to", b, "--steps", "3", "--labels", labels, *fast, "-o", out]) == 0
    assert main(["interpolate", run, "--from", a, "--to", b, "--labels", "1,2,3", *fast, "-o", out]) == 2
    assert "at most 2 classes" in capsys.readouterr().err
    # images from the data bring their own classes
    assert main(["interpolate", run, "--data", str(tiny_npz), "--steps", "3", *fast, "-o", out]) == 0
    assert main(["edit", run, "--direction", "pc0", "--image", a, "--image", b, "--labels", "Trouser", "--strength", "0,1",
                 "--measure", "0", "--no-progress", *fast, "-o", out]) == 0
    assert main(["edit", run, "--direction", "Sneaker->Ankle boot", "--data", str(tiny_npz), "--max-per-class", "2", "-n", "2",
                 "--strength", "0,1", "--measure", "0", "--no-progress", *fast, "-o", out]) == 0
    assert Image.open(out).size[0] > 2 * 28


def test_labels_for_a_model_without_classes_are_an_error(tiny_run, tiny_npz, tmp_path, capsys):
    assert main(["interpolate", str(tiny_run), "--data", str(tiny_npz), "--labels", "Sneaker", "-o", str(tmp_path / "m.png")]) == 2
    assert "does not take labels" in capsys.readouterr().err


def test_parse_labels_names_indices_and_errors():
    from genlab.cli.options import parse_labels
    from genlab.errors import ConfigError

    classes = ("T-shirt/top", "Trouser", "Ankle boot")
    assert parse_labels("t-shirt/top, ankle_boot,1,ANKLE  BOOT", classes) == [0, 2, 1, 2]
    assert parse_labels("3,0", ()) == [3, 0]  # no names stored: indices pass, the model checks the range
    for text, message in (("Boot", "unknown --labels class 'Boot'; the data's classes are: T-shirt/top, Trouser, Ankle boot"),
                          ("5", "--labels class 5 is out of range"), ("1,,2", "expected comma-separated class names"),
                          ):
        with pytest.raises(ConfigError, match=message):
            parse_labels(text, classes)
    with pytest.raises(ConfigError, match="stores no class names"):
        parse_labels("Sneaker", ())


# ----- what `genlab train` reports, warnings, judge train -----


def test_run_written_to_names_only_files_that_exist(tiny_cgan):
    run, printed = tiny_cgan
    line = next(line for line in printed.splitlines() if line.startswith("Run written to"))
    names = line.split(": ", 1)[1].split(", ")
    assert {"config.json", "model.safetensors", "metrics.csv", "samples/"} <= set(names)
    assert all((run / name).exists() for name in names), names


def test_written_files_lists_what_is_there(tmp_path):
    from genlab.cli.train import written_files

    (tmp_path / "samples").mkdir()
    for name in ("model.safetensors", "config.json", "zz.txt", ".lock"):
        (tmp_path / name).write_text("")
    assert written_files(tmp_path) == ["config.json", "model.safetensors", "samples/", "zz.txt"]


def test_library_warnings_are_one_clean_line(tiny_npz, tmp_path, capsys):
    """The SRGAN content loss has no judge for 1×16×16 images: the library warns; the user sees one line."""
    assert main(["train", "sr", "--data", str(tiny_npz), "--image-size", "16", "--scale", "2", "--variant", "srgan",
                 "--channels", "4", "--blocks", "1", "--d-width", "4", "--batch-size", "8", "--dry-run", "--no-progress",
                 "--out", str(tmp_path / "sr")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warn" in line.lower()]
    assert any(line.startswith("warning: no judge for 1×16×16 images") for line in lines), err
    assert all(line.startswith("warning: ") for line in lines) and "UserWarning" not in err and ".py:" not in err, err


def test_a_warning_spanning_lines_prints_as_one(monkeypatch, capsys):
    import warnings

    import genlab.cli.data

    def warn_and_list():
        warnings.warn("first part\n   and second part", UserWarning, stacklevel=1)
        warnings.warn("a deprecation", FutureWarning, stacklevel=1)
        return []

    monkeypatch.setattr(genlab.cli.data, "list_datasets", warn_and_list)
    assert main(["data", "list"]) == 0
    assert capsys.readouterr().err == "warning: first part and second part\nwarning: FutureWarning: a deprecation\n"
    original = warnings.showwarning
    assert main(["data", "list"]) == 0 and warnings.showwarning is original  # installed for the command only


def test_judge_train_help_shows_the_real_defaults(capsys):
    from genlab.models.judge import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS

    with pytest.raises(SystemExit):
        main(["judge", "train", "--help"])
    out = capsys.readouterr().out
    assert f"(default: {DEFAULT_EPOCHS})" in out and f"(default: {DEFAULT_BATCH_SIZE})" in out and "train_judge's" not in out


@pytest.mark.parametrize("progress", [[], ["--no-progress"]])
def test_judge_train_prints_its_test_accuracy_once(progress, tmp_path, capsys, monkeypatch):
    import genlab.cli.judge

    real_load = genlab.cli.judge.load_dataset

    def small(name, split="train"):  # fashion-mnist-mini has a test split: the accuracy printed is the test one
        data = real_load(name, split=split)
        return data.subset(torch.arange(0, 256 if split == "train" else 64))

    monkeypatch.setattr(genlab.cli.judge, "load_dataset", small)
    assert main(["judge", "train", "--data", "fashion-mnist-mini", "-o", str(tmp_path / "judge"), "--epochs", "1",
                 "--batch-size", "64", *progress]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).lower().count("test accuracy") == 1, captured
    assert f"--judge {tmp_path / 'judge'}" in captured.out


# ----- options built from the config dataclasses -----


def _train_parsers() -> dict:
    import argparse

    from genlab.cli.main import build_parser

    def choices(parser):
        return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices

    return dict(choices(choices(build_parser())["train"]))


def test_every_config_field_has_help_and_is_an_option_of_genlab_train():
    """A new field of a config dataclass cannot be forgotten: it needs help text and becomes an option."""
    import dataclasses

    from genlab.cli.train import NOT_OPTIONS
    from genlab.config import TrainConfig
    from genlab.models.gan.encoder import GANEncoderConfig
    from genlab.models.gan.model import GANConfig
    from genlab.models.sr.model import SRConfig
    from genlab.models.vae import VAEConfig

    parsers = _train_parsers()
    for kind, config_class in (("vae", VAEConfig), ("gan", GANConfig), ("sr", SRConfig), ("encoder", GANEncoderConfig),
                               (None, TrainConfig)):
        options = {action.dest: action for name, parser in parsers.items() if kind in (None, name) for action in parser._actions}
        for field in dataclasses.fields(config_class):
            where = f"{config_class.__name__}.{field.name}"
            assert field.metadata.get("help"), f"{where} has no help text: use genlab.config.documented(default, help)"
            if field.name in NOT_OPTIONS:
                continue
            assert field.name in options, f"{where} is no option of `genlab train {kind or '...'}`"
            assert options[field.name].help.replace("%%", "%") == field.metadata["help"] or field.name == "lr"


def test_generated_options_keep_the_old_names_types_and_defaults(capsys):
    from genlab.cli.main import build_parser

    parse = build_parser().parse_args
    vae = parse(["train", "vae", "-o", "r", "--channels", "32,64,128", "--ema", "0.999", "--no-progress", "--no-channels-last",
                 "--likelihood", "gaussian", "--learn-sigma"])
    assert (vae.channels, vae.ema_decay, vae.progress, vae.channels_last, vae.likelihood, vae.learn_sigma, vae.out_dir) == (
        (32, 64, 128), 0.999, False, False, "gaussian", True, "r")
    assert (vae.batch_size, vae.lr, vae.epochs, vae.latent_dim, vae.max_steps) == (128, 1e-3, 10, 16, None)
    gan = parse(["train", "gan", "--out", "r", "--betas", "0.0,0.99", "--loss", "wgan-gp", "--spectral-norm"])
    assert (gan.betas, gan.loss, gan.spectral_norm, gan.batch_size, gan.latent_dim, gan.lr_g) == (
        (0.0, 0.99), "wgan-gp", True, 64, None, None)  # lr_g: chosen by the architecture
    assert not hasattr(gan, "lr")  # GANs train with --lr-g and --lr-d
    sr = parse(["train", "sr", "--out", "r", "--no-residual", "--variant", "srgan"])
    assert (sr.residual, sr.lr, sr.scale, sr.batch_size) == (False, None, 4, 64)  # lr: chosen by the variant
    encoder = parse(["train", "encoder", "--gan", "g", "--out", "r", "--channels", "8,8"])
    assert (encoder.gan, encoder.channels, encoder.hidden_dim) == ("g", (8, 8), 512)
    for argv, message in ((["train", "vae", "-o", "r", "--channels", "32,x"], "expected comma-separated integers like 32,64"),
                          (["train", "gan", "-o", "r", "--betas", "0.5"], "expected 2 comma-separated numbers like 0.5,0.999"),
                          (["train", "vae", "-o", "r", "--likelihood", "poisson"], "invalid choice"),
                          (["train", "vae"], "the following arguments are required: -o/--out")):
        with pytest.raises(SystemExit):
            parse(argv)
        assert message in capsys.readouterr().err


def test_a_gan_keeps_an_ema_by_default_and_ema_none_turns_it_off(tmp_path):
    for name, extra, expected in (("default", [], 0.99), ("off", ["--ema", "none"], None), ("set", ["--ema", "0.9"], 0.9)):
        out = tmp_path / name
        assert main(["train", "gan", "--data", "fashion-mnist-mini", "--dry-run", "--no-progress", "-o", str(out), *extra]) == 0
        assert json.loads((out / "config.json").read_text())["train"]["ema_decay"] == expected
