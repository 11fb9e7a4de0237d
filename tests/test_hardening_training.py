"""Issue 14, the training side: one writer per run folder, --resume that never changes a run's meaning,
the divergence guard's accumulating factor, SIGTERM as Ctrl-C, and no temporary files left after a kill."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import genlab.runs as runs
from genlab.cli.main import main
from genlab.config import TrainConfig
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError
from genlab.models import VAE, VAEConfig
from genlab.training.loop import TrainingInterrupted, train
from genlab.training.sampler import BatchSampler

REAL_LOSS = VAE.loss
SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = ["--latent-dim", "4", "--channels", "8,16", "--hidden-dim", "32", "--batch-size", "32", "--no-progress",
        "--num-sample-images", "0", "--no-plots", "--no-tensorboard"]


def small_vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(8, 16), hidden_dim=32))


def config(tmp_path, name="run", **overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=16, lr=2e-3, out_dir=str(tmp_path / name), log_every=2, progress=False,
                  tensorboard=False, num_sample_images=16, plots=False)
    return TrainConfig(**{**values, **overrides})


def environment() -> dict[str, str]:
    python_path = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": python_path}


def state_meta(run: Path) -> dict:
    with safe_open(str(run / "training_state.safetensors"), "pt") as handle:
        return json.loads(handle.metadata()["genlab"])


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    """256 Fashion-MNIST-mini images as an .npz (the CLI's data by path)."""
    from genlab.data import load_dataset

    mini = load_dataset("fashion-mnist-mini", split="test")
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, images=mini.images[:256, 0].numpy(), labels=mini.labels[:256].numpy(), classes=np.array(mini.classes))
    return path


# ----- 1. one writer per run folder -----
@pytest.fixture
def held_lock(tmp_path):
    """Another process holding the writer lock of tmp_path/run, as a running `genlab train` does."""
    run = tmp_path / "run"
    code = ("import sys, time; from genlab.runs import writer_lock\n"
            "with writer_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True, env=environment())
    assert holder.stdout.readline().strip() == "locked"
    yield run, holder
    holder.kill()
    holder.wait()


def test_a_second_writer_fails_at_once_naming_the_holder_and_a_killed_holder_leaves_no_lock(held_lock, blobs, capsys):
    run, holder = held_lock
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(run))} is in use by process {holder.pid}\b"):
        train(small_vae(), blobs, config(run.parent, epochs=1))
    assert time.perf_counter() - started < 10  # at once, not after waiting
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # it wrote nothing
    # The CLI: one line, exit code 2.
    assert main(["train", "vae", "--data", "fashion-mnist-mini", "--out", str(run), "--epochs", "1", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert f"in use by process {holder.pid}" in err and "\n" not in err and "Traceback" not in err
    holder.send_signal(signal.SIGKILL)  # kill -9: no chance to clean up
    holder.wait()
    train(small_vae(), blobs, config(run.parent, epochs=1))  # the kernel dropped the lock: no stale lock
    runs.load(run)


def test_readers_never_wait_for_the_writer_lock(tmp_path, blobs):
    train(small_vae(), blobs, config(tmp_path, epochs=1))
    with runs.writer_lock(tmp_path / "run"):
        assert runs.load(tmp_path / "run") is not None  # sampling and evaluating read a locked run
        with pytest.raises(CheckpointError, match=f"in use by process {os.getpid()}"):
            train(small_vae(), blobs, config(tmp_path, epochs=2), resume=True)


# ----- 2. --resume never silently changes meaning -----
def test_resume_refuses_changes_that_change_the_run_listing_each(tmp_path, blobs):
    train(small_vae(), blobs, config(tmp_path, epochs=1))
    run = tmp_path / "run"
    before = {name: (run / name).read_bytes() for name in ("config.json", "training_state.safetensors", "model.safetensors")}
    with pytest.raises(CheckpointError, match=r"config: batch_size: 16 → 32; lr: 0\.002 → 0\.001\. ") as refused:
        train(small_vae(), blobs, config(tmp_path, epochs=2, lr=1e-3, batch_size=32), resume=True)
    assert "\n" not in str(refused.value) and "epochs" not in str(refused.value).split("What may change")[0]
    with pytest.raises(CheckpointError, match="num_images 96, this data"):
        train(small_vae(), Dataset(blobs.images[:64], blobs.labels[:64], blobs.classes, blobs.name), config(tmp_path, epochs=2),
              resume=True)
    assert {name: (run / name).read_bytes() for name in before} == before  # nothing touched


def test_allowed_changes_on_resume_are_applied_and_recorded(tmp_path, blobs):
    train(small_vae(), blobs, config(tmp_path, epochs=1))
    train(small_vae(), blobs, config(tmp_path, epochs=2, log_every=3, checkpoint_every=4), resume=True)
    run = tmp_path / "run"
    events = (run / "events.log").read_text().splitlines()
    assert events == ["resumed at step 6 with epochs: 1 → 2", "resumed at step 6 with log_every: 2 → 3",
                      "resumed at step 6 with checkpoint_every: 0 → 4"]
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["epochs"], saved["log_every"], saved["checkpoint_every"], saved["lr"]) == (2, 3, 4, 2e-3)
    assert state_meta(run)["step"] == 12


def test_cli_resume_keeps_the_runs_data_and_saved_options(tmp_path, tiny_npz, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "vae", "--data", str(tiny_npz), "--epochs", "1", "--lr", "0.002", "--log-every", "3",
                 "--out", run, *TINY]) == 0
    # No --data, --lr, --batch-size, --log-every: the run's own, not the defaults (fashion-mnist, 1e-3, 128, 50).
    model = ["--latent-dim", "4", "--channels", "8,16", "--hidden-dim", "32", "--no-progress"]
    assert main(["train", "vae", "--out", run, "--resume", "--epochs", "2", *model]) == 0
    saved = json.loads((Path(run) / "config.json").read_text())
    assert saved["dataset"]["name"] == str(tiny_npz) and saved["dataset"]["num_images"] == 256
    assert (saved["train"]["epochs"], saved["train"]["lr"], saved["train"]["batch_size"], saved["train"]["log_every"]) == (
        2, 0.002, 32, 3)
    assert (Path(run) / "events.log").read_text() == "resumed at step 8 with epochs: 1 → 2\n"
    capsys.readouterr()
    # Given and different: refused, one line each, nothing changed.
    for extra, message in ((["--lr", "0.001"], "lr: 0.002 → 0.001"), (["--batch-size", "64"], "batch_size: 32 → 64"),
                           (["--data", "fashion-mnist-mini"], "was trained on"), (["--seed", "1"], "seed: 0 → 1"),
                           (["--dry-run"], "--dry-run")):
        assert main(["train", "vae", "--out", run, "--resume", "--epochs", "3", *model, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err, err
    assert json.loads((Path(run) / "config.json").read_text()) == saved
    # The same value typed out, or the same file by another path, is no change.
    same = str(tiny_npz.parent / ".." / tiny_npz.parent.name / tiny_npz.name)
    assert main(["train", "vae", "--out", run, "--resume", "--epochs", "2", "--lr", "0.002", "--data", same, *model]) == 0


def test_resume_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["train", "vae", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Options left out keep the run's saved values" in text and "--max-recoveries" in text and "refused" in text


# ----- 3. the divergence guard's factor accumulates -----
def nan_on_calls(monkeypatch, calls_with_nan):
    calls = {"n": 0}

    def loss(self, x, labels=None):
        calls["n"] += 1
        out = REAL_LOSS(self, x, labels)
        return {**out, "loss": out["loss"] * float("nan")} if calls["n"] in calls_with_nan else out

    monkeypatch.setattr(VAE, "loss", loss)


def test_three_recoveries_without_a_checkpoint_between_give_an_eighth_and_it_survives_a_resume(tmp_path, blobs, monkeypatch):
    # log_every=1: each NaN is seen at its own step, before any checkpoint after step 0 (epoch end: step 6).
    nan_on_calls(monkeypatch, {2, 4, 6})
    cfg = config(tmp_path, epochs=1, log_every=1, num_sample_images=0)
    train(small_vae(), blobs, cfg)
    run = tmp_path / "run"
    events = (run / "events.log").read_text()
    assert events.count("restored the checkpoint of step 0") == 3 and "0.125× the run's (recovery 3 of 3)" in events
    meta = state_meta(run)
    assert meta["recoveries"] == 3 and meta["lr_factor"] == 0.125
    assert meta["optimizers"]["vae"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr * 0.5 ** 3)
    # A resume continues from that factor: the next recovery halves it again.
    nan_on_calls(monkeypatch, {3})
    train(small_vae(), blobs, config(tmp_path, epochs=2, log_every=1, num_sample_images=0, max_recoveries=4), resume=True)
    meta = state_meta(run)
    assert meta["recoveries"] == 4 and meta["lr_factor"] == 0.0625
    assert meta["optimizers"]["vae"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr * 0.5 ** 4)


# ----- 4. SIGTERM does what Ctrl-C does -----
def test_sigterm_saves_a_checkpoint_and_exits_with_a_clear_message(tiny_npz, tmp_path):
    run = tmp_path / "terminated"
    process = subprocess.Popen(
        [sys.executable, "-m", "genlab", "train", "vae", "--data", str(tiny_npz), "--epochs", "1000", "--out", str(run),
         "--log-every", "1", *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
    )
    deadline = time.time() + 60
    while not (run / "metrics.csv").exists() or len((run / "metrics.csv").read_text().splitlines()) < 3:
        assert time.time() < deadline and process.poll() is None, process.stderr.read() if process.poll() is not None else "timeout"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    step = state_meta(run)["step"]
    assert last == f"genlab: training terminated at step {step}; checkpoint saved in {run} (continue with --resume)"
    assert step >= 2
    assert main(["train", "vae", "--epochs", "1", "--out", str(run), "--resume", *TINY]) == 0


class Unhandled(Exception):
    pass


def test_sigterm_in_the_library_raises_training_interrupted(tmp_path, blobs, monkeypatch):
    calls = {"n": 0}

    def loss(self, x, labels=None):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-step 3
        return REAL_LOSS(self, x, labels)

    def outside_the_loop(signum, frame):  # what SIGTERM would meet if the loop did not handle it (not pytest's death)
        raise Unhandled()

    monkeypatch.setattr(VAE, "loss", loss)
    before = signal.signal(signal.SIGTERM, outside_the_loop)
    try:
        with pytest.raises(TrainingInterrupted, match="terminated at step 3") as stopped:
            train(small_vae(), blobs, config(tmp_path, epochs=5))
        assert signal.getsignal(signal.SIGTERM) is outside_the_loop  # the loop put back what it found
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stopped.value.signal_name == "SIGTERM" and stopped.value.step == 3
    assert state_meta(tmp_path / "run")["step"] == 3


# ----- 5. temporary files of a killed run go at the next start -----
def test_a_killed_runs_temporary_files_are_removed_at_the_next_start(tmp_path, blobs):
    train(small_vae(), blobs, config(tmp_path, epochs=1))
    run = tmp_path / "run"
    dead = 2 ** 22 + 12345  # above Linux's largest PID: no such process
    leftovers = [run / f".model.safetensors.{dead}.0badcafe.tmp", run / "samples" / f".epoch_002.png.{dead}.deadbeef.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    train(small_vae(), blobs, config(tmp_path, epochs=2), resume=True)
    assert not any(path.exists() for path in leftovers)
    assert not list(run.rglob("*.tmp"))


def test_a_seed_beyond_every_rng_is_one_line_before_anything_uses_it(tmp_path, capsys):
    code = main(["train", "vae", "--data", "fashion-mnist-mini", "--seed", str(2**70), "--out", str(tmp_path / "run")])
    assert code == 2 and "seed" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_data_position_past_the_epoch_is_a_checkpoint_error():
    sampler = BatchSampler(64, 16, seed=0, device=torch.device("cpu"))
    rng, state = sampler.state()
    with pytest.raises(CheckpointError, match="data position 7 is not a batch of an epoch of 4 batches"):
        sampler.restore(rng, {**state, "position": 7})
