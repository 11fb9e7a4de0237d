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
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 2  # the run's original config


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
    "argv, message",
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


def test_conditional_gan_trains_and_samples_chosen_classes(tiny_npz, tmp_path):
    run = tmp_path / "cgan"
    assert main(["train", "gan", "--data", str(tiny_npz), "--conditional", "--loss", "hinge", "--epochs", "1",
                 "--out", str(run), *GAN_TINY]) == 0
    for name in ("model.safetensors", "monitor.png", "samples/epoch_001.png"):
        assert (run / name).is_file(), name
    model = load(run)
    assert model.kind == "gan" and model.config.num_classes == 10 and model.config.loss == "hinge"
    out = tmp_path / "s.png"
    assert main(["sample", str(run), "-n", "6", "--labels", "0,1,2", "--truncation", "0.7", "-o", str(out)]) == 0
    expected = model.sample(6, labels=[0, 1, 2, 0, 1, 2], seed=0, truncation=0.7)
    from genlab.io.images import make_grid, read_image, to_uint8

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
    for name in ("samples.png", "reconstructions.png", "morph.png", "morph.gif", "vae_loss.png", "gan_monitor.png", "summary.json",
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
                 "--metrics", "fid,kid,likelihood", "-n", "100", "--json", str(results), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fid" in out and "bits_per_dim" in out and "precision" not in out
    stored = json.loads(results.read_text())
    assert stored["data"] == str(tiny_npz) and stored["results"]["num_samples"] == 100
    assert {"fid", "kid_mean", "kid_std", "elbo_nats", "iwae_nats", "bits_per_dim"} <= set(stored["results"])


def test_evaluate_a_folder_of_images(tiny_npz, tiny_judge, tmp_path, capsys):
    images = np.load(tiny_npz)["images"]
    for i in range(20):
        Image.fromarray(images[i]).save(tmp_path / f"{i}.png")
    assert main(["evaluate", "--images", str(tmp_path), "--data", str(tiny_npz), "--judge", str(tiny_judge[0]),
                 "--metrics", "fid,sharpness", "--no-progress"]) == 0
    assert "sharpness" in capsys.readouterr().out


def test_compare_writes_the_report(tiny_run, tiny_gan_run, tiny_npz, tiny_judge, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", str(tiny_run), str(tiny_gan_run), "--data", str(tiny_npz), "--judge", str(tiny_judge[0]),
                 "-o", str(out), "-n", "60", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Report written" in printed and "lowest FID" in printed
    assert {"report.md", "report.html", "results.json"} <= {path.name for path in out.iterdir()}
    assert [run["kind"] for run in json.loads((out / "results.json").read_text())["runs"]] == ["vae", "gan"]


@pytest.mark.parametrize("extra, message", [
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
