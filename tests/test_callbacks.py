"""The callback protocol of the training loop: which events, in what order, with which step; a
callback records what loss wrapping used to; plots are optional; resuming stays exact."""
import csv
import math

import pytest
import torch

import genlab
from genlab.config import TrainConfig
from genlab.io.checkpoints import load_tensors
from genlab.models import VAE, VAEConfig
from genlab.training import Callback, train
from genlab.training.callbacks import CallbackList

SMALL = dict(image_shape=(1, 16, 16), latent_dim=4, channels=(8, 16), hidden_dim=32)
BATCHES_PER_EPOCH = 6  # the 96 blobs in batches of 16


def small_vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(**SMALL))


def config(tmp_path, name="run", **overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=16, lr=2e-3, out_dir=str(tmp_path / name), log_every=4, progress=False,
                  tensorboard=False, num_sample_images=0, plots=False)
    values.update(overrides)
    return TrainConfig(**values)


class Recorder(Callback):
    """Every event as (event, run.step), what each shows of the run, and the loss of every step."""

    def __init__(self):
        self.events, self.rows, self.losses, self.recoveries = [], [], [], []

    def on_train_start(self, run):
        self.events.append(("on_train_start", run.step))

    def on_step_end(self, run):
        self.events.append(("on_step_end", run.step))
        self.losses.append(run.running.latest["vae"]["loss"])  # on the device: no host sync per step

    def on_epoch_end(self, run):
        assert run.sampler.epoch * BATCHES_PER_EPOCH == run.step
        self.events.append(("on_epoch_end", run.step))

    def on_log(self, run, row):
        assert row["step"] == run.step and math.isfinite(row["vae/loss"])
        with open(run.run_dir / "metrics.csv", newline="") as handle:  # the loop's own callbacks ran first
            assert int(list(csv.DictReader(handle))[-1]["step"]) == run.step
        self.rows.append(row)
        self.events.append(("on_log", run.step))

    def on_checkpoint(self, run):
        _, saved = load_tensors(run.run_dir / "training_state.safetensors")
        assert saved["step"] == run.step  # already written
        self.events.append(("on_checkpoint", run.step))

    def on_recover(self, run, message):
        self.recoveries.append((run.step, message))
        self.events.append(("on_recover", run.step))

    def on_train_end(self, run):
        self.events.append(("on_train_end", run.step))


def expected_events(first: int, last: int, log_every: int = 4) -> list[tuple[str, int]]:
    """The events of steps ``first``..``last`` of an uninterrupted stretch (checkpoints at epoch ends)."""
    events = []
    for step in range(first, last + 1):
        events.append(("on_step_end", step))
        if step % BATCHES_PER_EPOCH == 0:
            events.append(("on_epoch_end", step))
        if step % log_every == 0:
            events.append(("on_log", step))
        if step % BATCHES_PER_EPOCH == 0:
            events.append(("on_checkpoint", step))
    return events


def test_a_callback_sees_every_event_in_order_with_its_step(tmp_path, blobs):
    recorder = Recorder()
    train(small_vae(), blobs, config(tmp_path), callbacks=[recorder])
    assert recorder.events == [("on_train_start", 0), ("on_checkpoint", 0), *expected_events(1, 12), ("on_train_end", 12)]
    assert [row["step"] for row in recorder.rows] == [4, 8, 12]
    assert {"step", "epoch", "vae/loss", "vae/grad_norm", "time"} <= set(recorder.rows[0])
    assert recorder.rows[-1]["epoch"] == 2.0


def test_the_last_steps_are_logged_and_saved_at_the_end(tmp_path, blobs):
    recorder = Recorder()
    train(small_vae(), blobs, config(tmp_path, log_every=5, max_steps=8), callbacks=[recorder])
    assert recorder.events[-4:] == [("on_step_end", 8), ("on_log", 8), ("on_checkpoint", 8), ("on_train_end", 8)]
    assert [row["step"] for row in recorder.rows] == [5, 8]


def test_a_callback_that_records_losses_replaces_loss_wrapping(tmp_path, blobs):
    recorder = Recorder()
    train(small_vae(), blobs, config(tmp_path), callbacks=[recorder])
    losses = torch.stack(recorder.losses).tolist()  # one host sync, after training
    assert len(losses) == 12
    for row in recorder.rows:  # the logged means are the means of the recorded losses
        step = row["step"]
        assert row["vae/loss"] == pytest.approx(sum(losses[step - 4:step]) / 4, rel=1e-6)


def test_a_resumed_run_reproduces_the_uninterrupted_one_with_callbacks_attached(tmp_path, blobs):
    full = Recorder()
    whole = train(small_vae(), blobs, config(tmp_path, "full", epochs=3), callbacks=[full])
    first, second = Recorder(), Recorder()
    train(small_vae(), blobs, config(tmp_path, "split", epochs=3, max_steps=8), callbacks=[first])
    resumed = train(small_vae(seed=5), blobs, config(tmp_path, "split", epochs=3), resume=True, callbacks=[second])
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    # The losses of every step too: the stopped run saved at step 8 and the resumed one began there.
    assert torch.equal(torch.stack(first.losses + second.losses), torch.stack(full.losses))
    # 18 is no multiple of log_every: the means of steps 17 and 18 are logged when the run ends.
    assert second.events == [("on_train_start", 8), *expected_events(9, 18), ("on_log", 18), ("on_train_end", 18)]


def test_a_recovery_is_an_event_and_the_steps_after_it_count_from_the_checkpoint(tmp_path, blobs, monkeypatch):
    real_loss, calls = VAE.loss, {"n": 0}

    def loss_with_one_nan(self, x, labels=None):  # fault injection, not observation
        calls["n"] += 1
        out = real_loss(self, x, labels)
        return {**out, "loss": out["loss"] * float("nan")} if calls["n"] == 9 else out

    monkeypatch.setattr(VAE, "loss", loss_with_one_nan)
    recorder = Recorder()
    train(small_vae(), blobs, config(tmp_path, log_every=5), callbacks=[recorder])
    (step, message), = recorder.recoveries
    assert step == 6 and "restored the checkpoint of step 6" in message
    at = recorder.events.index(("on_recover", 6))
    assert recorder.events[at - 1] == ("on_step_end", 10)  # found at the step-10 log, in place of it
    assert recorder.events[at + 1] == ("on_step_end", 7)


def test_plots_are_optional(tmp_path, blobs):
    train(small_vae(), blobs, config(tmp_path, "off"))
    assert not list((tmp_path / "off").rglob("*.png"))
    train(small_vae(), blobs, config(tmp_path, "on", plots=True))
    assert [p.name for p in (tmp_path / "on").rglob("*.png")] == ["loss.png"]


def test_only_callbacks_that_watch_steps_are_called_every_step():
    class EveryLog(Callback):
        def on_log(self, run, row):
            pass

    class EveryStep(Callback):
        def on_step_end(self, run):
            pass

    every_log, every_step = EveryLog(), EveryStep()
    callbacks = CallbackList([every_log, every_step])
    assert callbacks.step_hooks == [every_step.on_step_end]
    assert callbacks.hooks["on_log"] == [every_log.on_log]
    with pytest.raises(TypeError, match="Callback"):
        CallbackList([lambda run: None])
    assert genlab.Callback is Callback
