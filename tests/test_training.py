"""The one training loop: learning, checkpoints, resume, atomicity, and the phase contract."""
import csv
import json
import math
import os
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

import genlab.runs as runs
import genlab.training.state as state
from genlab.config import TrainConfig, config_from_dict, config_to_dict
from genlab.errors import CheckpointError, ConfigError
from genlab.io.checkpoints import load_tensors
from genlab.models import VAE, VAEConfig
from genlab.models.base import GenerativeModel, Phase
from genlab.training.ema import EMA
from genlab.training.loop import TrainingDiverged, train
from genlab.training.sampler import BatchSampler
from genlab.training.schedule import LRSchedule

SMALL = dict(image_shape=(1, 16, 16), latent_dim=4, channels=(8, 16), hidden_dim=32)


def small_vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(**SMALL))


def config(tmp_path, name="run", **overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=16, lr=2e-3, out_dir=str(tmp_path / name), log_every=2, progress=False,
                  tensorboard=False, num_sample_images=16)
    values.update(overrides)
    return TrainConfig(**values)


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_loss_falls_and_run_dir_is_complete(tmp_path, blobs):
    model = small_vae()
    cfg = config(tmp_path, epochs=6)
    train(model, blobs, cfg)
    rows = [r for r in read_rows(tmp_path / "run" / "metrics.csv") if r["vae/loss"]]
    first, last = float(rows[0]["vae/loss"]), float(rows[-1]["vae/loss"])
    assert last < 0.8 * first
    assert float(rows[-1]["vae/grad_norm"]) > 0
    run = tmp_path / "run"
    for name in ("config.json", "model.safetensors", "training_state.safetensors", "loss.png", "samples/epoch_001.png",
                 "samples/epoch_006.png"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["kind"] == "vae" and saved["dataset"]["image_shape"] == [1, 16, 16]
    assert saved["train"]["epochs"] == 6 and saved["genlab_version"]


def test_checkpoint_round_trip_needs_no_dataset(tmp_path, blobs):
    model = train(small_vae(), blobs, config(tmp_path, epochs=1))
    loaded = runs.load(tmp_path / "run")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert torch.equal(model.sample(4, seed=3), loaded.sample(4, seed=3))
    assert loaded.config == model.config and not loaded.training


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, blobs, ema_decay):
    # 96 images / 16 = 6 batches per epoch; stop at step 8 (mid-epoch 2), resume to the end.
    full = train(small_vae(), blobs, config(tmp_path, "full", epochs=3, ema_decay=ema_decay))
    train(small_vae(), blobs, config(tmp_path, "split", epochs=3, ema_decay=ema_decay, max_steps=8))
    resumed = train(small_vae(seed=99), blobs, config(tmp_path, "split", epochs=3, ema_decay=ema_decay), resume=True)
    for name, tensor in full.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    full_state = load_file(tmp_path / "full" / "training_state.safetensors")
    split_state = load_file(tmp_path / "split" / "training_state.safetensors")
    assert full_state.keys() == split_state.keys()
    for name in full_state:
        assert torch.equal(full_state[name], split_state[name]), name
    steps = [int(r["step"]) for r in read_rows(tmp_path / "split" / "metrics.csv")]
    assert steps == sorted(set(steps)) == [int(r["step"]) for r in read_rows(tmp_path / "full" / "metrics.csv")]


@pytest.mark.parametrize("lr_schedule", ["constant", "cosine"])
def test_a_crash_mid_run_loses_at_most_one_checkpoint_interval(tmp_path, blobs, monkeypatch, lr_schedule):
    """A run that dies inside step 10 resumes from its step-8 checkpoint to the same end
    (with an annealed rate too: the schedule is a function of progress, not of the process)."""
    full = train(small_vae(), blobs, config(tmp_path, "full", epochs=2, lr_schedule=lr_schedule))

    class Crash(Exception):
        pass

    real_loss, calls = VAE.loss, {"n": 0}

    def loss_that_crashes_on_the_tenth_call(self, x, labels=None):
        calls["n"] += 1
        if calls["n"] == 10:
            raise Crash()
        return real_loss(self, x, labels)

    monkeypatch.setattr(VAE, "loss", loss_that_crashes_on_the_tenth_call)
    with pytest.raises(Crash):
        train(small_vae(), blobs, config(tmp_path, "crashed", epochs=2, checkpoint_every=4, lr_schedule=lr_schedule))
    monkeypatch.undo()
    # Checkpoints at steps 0, 4, 6 (the epoch's end) and 8: the crash inside step 10 lost two steps, less than
    # one interval, and the weights to sample with are those of the same checkpoint, not of a half-written one.
    _, saved = load_tensors(tmp_path / "crashed" / "training_state.safetensors")
    _, weights = load_tensors(tmp_path / "crashed" / "model.safetensors")
    assert saved["step"] == weights["step"] == 8
    resumed = train(small_vae(), blobs, config(tmp_path, "crashed", epochs=2, lr_schedule=lr_schedule), resume=True)
    for name, tensor in full.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    steps = [int(r["step"]) for r in read_rows(tmp_path / "crashed" / "metrics.csv")]
    assert steps == sorted(set(steps))


def test_lr_schedules_anneal_to_zero_from_the_decay_start():
    sampler = BatchSampler(100, 10, seed=0, device=torch.device("cpu"))  # 10 batches per epoch
    for kind, start, expected in [("linear", 0.0, [1.0, 0.75, 0.5, 0.25, 0.0]),
                                  ("linear", 0.5, [1.0, 1.0, 1.0, 0.5, 0.0]),
                                  ("cosine", 0.0, [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]),
                                  ("constant", 0.0, [1.0] * 5)]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
        schedule = LRSchedule(TrainConfig(epochs=2, lr_schedule=kind, lr_decay_start=start), {"o": optimizer}, sampler)
        for batches, factor in zip([0, 5, 10, 15, 20], expected, strict=True):
            sampler.epoch, sampler.position = divmod(batches, 10)
            schedule.apply(step=batches)
            assert optimizer.param_groups[0]["lr"] == pytest.approx(0.4 * factor), (kind, start, batches)
    # max_steps ends the run first: progress is step / max_steps; the divergence guard lowers the base.
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    schedule = LRSchedule(TrainConfig(epochs=100, max_steps=8, lr_schedule="linear"), {"o": optimizer}, sampler)
    sampler.epoch, sampler.position = 0, 0
    schedule.scale(0.5)
    schedule.apply(step=6)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.4 * 0.5 * 0.25)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, blobs, monkeypatch):
    cfg = config(tmp_path, epochs=1)
    train(small_vae(), blobs, cfg)
    run = tmp_path / "run"
    before = {name: (run / name).read_bytes() for name in ("model.safetensors", "training_state.safetensors")}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        train(small_vae(), blobs, config(tmp_path, epochs=2), resume=True)
    monkeypatch.undo()
    for name, data in before.items():
        assert (run / name).read_bytes() == data
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    runs.load(run)  # still loadable


def test_existing_run_is_not_overwritten_and_resume_needs_a_run(tmp_path, blobs):
    train(small_vae(), blobs, config(tmp_path, epochs=1))
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(small_vae(), blobs, config(tmp_path, epochs=1))
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(small_vae(), blobs, config(tmp_path, "empty", epochs=1), resume=True)
    torch.manual_seed(0)
    other = VAE(VAEConfig(**{**SMALL, "latent_dim": 5}))
    with pytest.raises(CheckpointError, match="different model config"):
        train(other, blobs, config(tmp_path, epochs=2), resume=True)


def test_model_and_data_shapes_must_agree(tmp_path, blobs):
    with pytest.raises(ConfigError, match="shape"):
        train(VAE(VAEConfig(image_shape=(1, 28, 28))), blobs, config(tmp_path))


def test_ema_weights_are_what_gets_saved_and_returned(tmp_path, blobs):
    model = train(small_vae(), blobs, config(tmp_path, epochs=1, ema_decay=0.5))
    saved = load_file(tmp_path / "run" / "model.safetensors")
    state = load_file(tmp_path / "run" / "training_state.safetensors")
    name = "encoder.net.0.weight"
    assert torch.equal(saved[name], state[f"ema/{name}"])
    assert not torch.equal(saved[name], state[f"model/{name}"])
    assert torch.equal(model.state_dict()[name], saved[name])


def test_diverging_loss_stops_with_a_clear_error(tmp_path, blobs):
    with pytest.raises(TrainingDiverged, match="not finite"):
        train(small_vae(), blobs, config(tmp_path, lr=1e6, epochs=3))


def test_corrupt_weights_are_a_clear_error(tmp_path, blobs):
    train(small_vae(), blobs, config(tmp_path, epochs=1))
    (tmp_path / "run" / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        runs.load(tmp_path / "run")
    with pytest.raises(CheckpointError, match="not found"):
        runs.load(tmp_path / "nowhere")


def test_optimizer_state_round_trips_without_pickle():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tensors, meta = state.optimizer_to_tensors("g", optimizer)
    meta = json.loads(json.dumps(meta))  # as stored in the safetensors header
    fresh = torch.optim.Adam(model.parameters(), lr=0.1)
    fresh.load_state_dict(state.optimizer_from_tensors("g", tensors, meta))
    assert fresh.param_groups[0]["betas"] == [0.8, 0.9] or tuple(fresh.param_groups[0]["betas"]) == (0.8, 0.9)
    for a, b in zip(optimizer.state.values(), fresh.state.values(), strict=True):
        for key in a:
            assert torch.equal(a[key], b[key])


def test_max_seconds_stops_a_run_and_it_can_be_resumed_for_longer(tmp_path, blobs):
    cfg = config(tmp_path, epochs=1000, max_seconds=0.5, num_sample_images=0)
    train(small_vae(), blobs, cfg)
    meta = json.loads(__import__("safetensors").safe_open(str(tmp_path / "run" / "training_state.safetensors"), "pt").metadata()["genlab"])
    # The loop stops at the first step that starts past the budget; the saved time is that of the last
    # checkpoint, which may be an epoch-end one up to a step (milliseconds here) earlier.
    assert 0.5 - 0.1 <= meta["elapsed"] < 30 and 0 < meta["step"] < 1000 * 6
    train(small_vae(), blobs, config(tmp_path, epochs=1000, max_seconds=1.0, num_sample_images=0), resume=True)
    later = json.loads(__import__("safetensors").safe_open(str(tmp_path / "run" / "training_state.safetensors"), "pt").metadata()["genlab"])
    assert later["elapsed"] >= 1.0 - 0.1 and later["step"] > meta["step"]
    with pytest.raises(ConfigError, match="max_seconds"):
        TrainConfig(max_seconds=0)


def test_train_config_round_trips_and_validates():
    cfg = TrainConfig(epochs=3, ema_decay=0.99)
    assert config_from_dict(TrainConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    with pytest.raises(ConfigError, match="unknown option"):
        config_from_dict(TrainConfig, {"epoch": 3})
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ConfigError, match="lr_decay_start"):
        TrainConfig(lr_schedule="linear", lr_decay_start=1.0)
    vae = VAEConfig(channels=(8, 16))
    assert config_from_dict(VAEConfig, json.loads(json.dumps(config_to_dict(vae)))) == vae


@dataclass
class TwoPlayerConfig:
    image_shape: tuple = (1, 16, 16)


class TwoPlayer(GenerativeModel):
    """A GAN-shaped schedule: D three times per step on fresh batches, G on D's last batch,
    and a regulariser every second step. Records what the loop did."""

    kind = "two-player"
    config_class = TwoPlayerConfig

    def __init__(self):
        super().__init__(TwoPlayerConfig())
        self.d = torch.nn.Linear(256, 1)
        self.g = torch.nn.Linear(4, 256)
        self.calls = []

    def make_optimizers(self, train):
        return {"D": torch.optim.SGD(self.d.parameters(), lr=0.01), "G": torch.optim.SGD(self.g.parameters(), lr=0.01)}

    def training_phases(self):
        def record(name):
            def loss(x, labels):
                self.calls.append((name, x.shape[0], float(x.sum())))
                fake = self.g(torch.randn(x.shape[0], 4))
                return {"loss": self.d(fake).mean() + self.d(x.flatten(1)).mean()}
            return loss
        return [Phase("D", "D", record("D"), repeats=3), Phase("G", "G", record("G"), new_batch=False),
                Phase("D_reg", "D", record("D_reg"), every=2)]

    def sample(self, n, seed=None):
        return torch.sigmoid(self.g(torch.randn(n, 4, generator=self.noise_generator(seed)))).view(n, 1, 16, 16)


def test_phase_contract_carries_several_optimizers_repeats_and_lazy_steps(tmp_path, blobs):
    model = TwoPlayer()
    train(model, blobs, config(tmp_path, epochs=1, batch_size=8, max_steps=4, num_sample_images=0))
    names = [c[0] for c in model.calls]
    assert names == ["D", "D", "D", "G", "D_reg", "D", "D", "D", "G"] * 2
    assert model.calls[2][2] == model.calls[3][2]  # G reuses D's last batch
    assert model.calls[0][2] != model.calls[1][2]  # D draws fresh batches
    rows = read_rows(tmp_path / "run" / "metrics.csv")
    assert {"D/loss", "G/loss", "D_reg/loss"} <= set(rows[0])


def test_datasets_of_points_are_one_dataset_type():
    from genlab.data.dataset import Dataset
    from genlab.errors import DataError

    points = Dataset(torch.randn(10, 2), None, (), "toy")
    assert points.is_points and points.image_shape == (2,)
    copy = points.float_images(slice(0, 3))
    copy += 1  # a copy, never a view into the dataset
    assert not torch.equal(copy, points.images[:3])
    assert torch.equal(Dataset.to_float(points.images), points.images)
    with pytest.raises(DataError, match="float32 points"):
        Dataset(torch.randn(10, 2, 2), None, (), "bad")


def test_divergence_guard_recovers_from_an_injected_nan(tmp_path, blobs, monkeypatch):
    real_loss, calls = VAE.loss, {"n": 0}

    def loss_with_one_nan(self, x, labels=None):
        calls["n"] += 1
        out = real_loss(self, x, labels)
        if calls["n"] == 9:  # step 9, between the step-6 (epoch) checkpoint and the step-10 log
            out = {**out, "loss": out["loss"] * float("nan")}
        return out

    monkeypatch.setattr(VAE, "loss", loss_with_one_nan)
    cfg = config(tmp_path, epochs=3, log_every=5)
    model = train(small_vae(), blobs, cfg)
    events = (tmp_path / "run" / "events.log").read_text()
    assert "restored the checkpoint of step 6" in events and "recovery 1 of 3" in events
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())
    state = load_file(tmp_path / "run" / "training_state.safetensors")
    assert all(torch.isfinite(t).all() for k, t in state.items() if t.is_floating_point())
    rows = read_rows(tmp_path / "run" / "metrics.csv")
    assert all(r["vae/loss"] == "" or math.isfinite(float(r["vae/loss"])) for r in rows)
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 18
    meta = json.loads(__import__("safetensors").safe_open(str(tmp_path / "run" / "training_state.safetensors"), "pt").metadata()["genlab"])
    assert meta["recoveries"] == 1
    assert meta["optimizers"]["vae"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr * cfg.recovery_lr_factor)


def test_divergence_guard_gives_up_after_max_recoveries(tmp_path, blobs):
    with pytest.raises(TrainingDiverged, match="after 2 recoveries"):
        train(small_vae(), blobs, config(tmp_path, lr=1e9, epochs=3, max_recoveries=2))
    runs.load(tmp_path / "run")  # what was saved is still good
    assert (tmp_path / "run" / "events.log").read_text().count("restored") == 2


def test_mode_collapse_alarm_and_monitor_plot(tmp_path, blobs, capsys):
    class Collapsed(TwoPlayer):
        monitor_columns = ("D/loss",)

        def sample(self, n, seed=None):
            return torch.full((n, 1, 16, 16), 0.5)  # one output, whatever the noise

    train(Collapsed(), blobs, config(tmp_path, epochs=2, batch_size=8))
    assert "possible mode collapse" in capsys.readouterr().err
    rows = [r for r in read_rows(tmp_path / "run" / "metrics.csv") if r.get("monitor/diversity")]
    assert rows and float(rows[-1]["monitor/diversity"]) == 0.0
    assert (tmp_path / "run" / "monitor.png").is_file()
    # Behind a young EMA (fewer than 3 / (1 − decay) steps) the samples are mostly the initial weights': the
    # ratio is still logged, the warning waits. An epoch here is 4 steps (TwoPlayer's D draws 3 batches of 8 a step).
    train(Collapsed(), blobs, config(tmp_path, "young", epochs=2, batch_size=8, ema_decay=0.9))  # 30 steps to warm
    assert "possible mode collapse" not in capsys.readouterr().err
    assert [r for r in read_rows(tmp_path / "young" / "metrics.csv") if r.get("monitor/diversity")]
    train(Collapsed(), blobs, config(tmp_path, "warm", epochs=2, batch_size=8, ema_decay=0.5))  # 6 steps to warm
    assert capsys.readouterr().err.count("possible mode collapse") == 1  # epoch 2 (step 8), not epoch 1 (step 4)


def test_ema_decay_warms_up_so_a_short_run_averages_trained_weights(tmp_path, blobs):
    """decay_t = min(decay, (1 + t)/(10 + t)) (TensorFlow's num_updates rule), checked against a hand-run average;
    and a 0.999 EMA over a one-epoch run ends nearer the trained weights than the initial ones."""
    layer = torch.nn.Linear(2, 1, bias=False)
    ema, expected = EMA(layer, 0.9), layer.weight.detach().clone()
    for step in range(1, 40):
        with torch.no_grad():
            layer.weight.add_(1.0)
        ema.update(layer, step)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * layer.weight.detach()
        assert torch.allclose(ema.shadow["weight"], expected, atol=1e-5, rtol=1e-6), step
    assert ema.decay_at(1) == pytest.approx(2 / 11) and ema.decay_at(10**6) == 0.9 and ema.decay_at(None) == 0.9
    initial = small_vae().state_dict()
    plain = train(small_vae(), blobs, config(tmp_path, "plain", epochs=1))
    averaged = train(small_vae(), blobs, config(tmp_path, "ema", epochs=1, ema_decay=0.999))
    name = "encoder.net.0.weight"
    assert (averaged.state_dict()[name] - plain.state_dict()[name]).norm() < (averaged.state_dict()[name] - initial[name]).norm()


def test_channels_last_trains_to_the_same_weights_and_hands_back_ordinary_tensors(tmp_path, blobs):
    plain = train(small_vae(), blobs, config(tmp_path, "plain", epochs=1))
    nhwc = train(small_vae(), blobs, config(tmp_path, "nhwc", epochs=1, channels_last=True))
    for name, tensor in plain.state_dict().items():
        # Same computation in another memory layout: only the order of floating-point sums differs.
        assert torch.allclose(tensor, nhwc.state_dict()[name], atol=1e-4, rtol=1e-3), name
        assert nhwc.state_dict()[name].is_contiguous(), name
    assert nhwc.sample(2, seed=0).is_contiguous()


def test_channels_last_resume_equals_uninterrupted(tmp_path, blobs):
    full = train(small_vae(), blobs, config(tmp_path, "full", epochs=2, channels_last=True))
    train(small_vae(), blobs, config(tmp_path, "split", epochs=2, channels_last=True, max_steps=5))
    resumed = train(small_vae(seed=7), blobs, config(tmp_path, "split", epochs=2, channels_last=True), resume=True)
    for name, tensor in full.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_precision_choices(tmp_path, blobs):
    with pytest.raises(ConfigError, match=r"fp16.*CUDA"):
        train(small_vae(), blobs, config(tmp_path, "fp16", precision="fp16", device="cpu"))
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")
    model = train(small_vae(), blobs, config(tmp_path, "bf16", epochs=1, precision="bf16", device="cpu"))
    rows = read_rows(tmp_path / "bf16" / "metrics.csv")
    assert all(math.isfinite(float(r["vae/loss"])) for r in rows)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: weights stay fp32
