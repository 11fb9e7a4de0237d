"""Data-parallel training: 2 processes on 127.0.0.1 (gloo), launched by torchrun, as users launch them.

One torchrun launch runs this file as a script (see ``worker``): each rank trains a deterministic
autoencoder, the small VAE (whole, and stopped + resumed) and a tiny DCGAN with batch norm, and
writes its final weights. The tests then compare the ranks with each other, with the checkpoint
loaded in this single process, and with single-process training on the same global batch.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import genlab
from genlab.cli.main import main
from genlab.config import TrainConfig
from genlab.errors import ConfigError
from genlab.models import GAN, VAE, GANConfig, VAEConfig
from genlab.models.base import GenerativeModel, Phase
from genlab.training.loop import BatchSampler, train

GLOBAL_BATCH = 16
EPOCHS = 2  # 64 images / 16 = 4 steps per epoch


def blobs28():
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_blobs

    return make_blobs(n=64, size=28)


@dataclass
class AutoencoderConfig:
    image_shape: tuple[int, int, int] = (1, 28, 28)


class Autoencoder(GenerativeModel):
    """No noise and no batch norm: N processes must give what one process gives, up to rounding."""

    kind = "test-autoencoder"
    config_class = AutoencoderConfig

    def __init__(self) -> None:
        super().__init__(AutoencoderConfig())
        self.encode = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.ReLU(), nn.Conv2d(4, 8, 4, 2, 1))
        self.decode = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 1, 4, 2, 1))

    def loss(self, x, labels=None):
        return {"loss": (self.decode(self.encode(x)) - x).pow(2).flatten(1).sum(1).mean()}

    def make_optimizers(self, config):
        return {"ae": torch.optim.Adam(self.parameters(), lr=config.lr)}

    def training_phases(self):
        return [Phase("ae", "ae", self.loss)]

    def sample(self, n, seed=None):
        return torch.sigmoid(self.decode(torch.randn(n, 8, 7, 7, generator=self.noise_generator(seed))))


def make_model(name: str, seed: int) -> GenerativeModel:
    torch.manual_seed(seed)
    if name == "ae":
        return Autoencoder()
    if name.startswith("vae"):
        return VAE(VAEConfig(image_shape=(1, 28, 28), latent_dim=4, channels=(8, 16), hidden_dim=32))
    return GAN(GANConfig(image_shape=(1, 28, 28), latent_dim=8, g_width=8, d_width=8))  # batch norm in G and D


def train_config(out_dir: Path, **overrides) -> TrainConfig:
    values = dict(epochs=EPOCHS, batch_size=GLOBAL_BATCH, lr=2e-3, seed=0, out_dir=str(out_dir), log_every=2,
                  progress=False, tensorboard=False, num_sample_images=8, device="cpu",
                  precision="fp32")  # fp32 on every CPU: the comparison's tolerance is fp32's
    return TrainConfig(**{**values, **overrides})


def worker(out: Path) -> None:
    """What each torchrun process runs. Initial weights differ per rank on purpose (seed = rank):
    the loop must broadcast rank 0's."""
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    data = blobs28()
    runs = {"ae": {}, "vae": {}, "gan": {}, "vae-split": {"max_steps": 5}}
    for name, overrides in runs.items():
        model = train(make_model(name, seed=rank), data, train_config(out / name, **overrides))
        if name == "vae-split":
            model = train(make_model(name, seed=rank), data, train_config(out / name), resume=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / f"{name}.rank{rank}.safetensors"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    python_path = os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": python_path}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), __file__, str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def ranks(out: Path, name: str) -> list[dict[str, torch.Tensor]]:
    return [load_file(out / f"{name}.rank{r}.safetensors") for r in range(2)]


@pytest.mark.parametrize("name", ["ae", "vae", "gan", "vae-split"])
def test_both_ranks_end_with_identical_weights(two_process_runs, name):
    rank0, rank1 = ranks(two_process_runs, name)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    if name == "gan":  # batch-norm running statistics too (averaged over the ranks)
        assert any("running_mean" in key for key in rank0)


@pytest.mark.parametrize("name", ["vae", "gan"])
def test_the_checkpoint_loads_in_a_single_process(two_process_runs, name):
    model = genlab.load(two_process_runs / name)
    rank0, _ = ranks(two_process_runs, name)
    for key, value in model.state_dict().items():
        assert torch.equal(value, rank0[key]), key
    assert model.sample(4, seed=0).shape == (4, 1, 28, 28)
    assert (two_process_runs / name / "metrics.csv").read_text().count("\n") > 2
    assert len(list((two_process_runs / name / "samples").iterdir())) == EPOCHS


def test_a_resumed_two_process_run_ends_where_the_uninterrupted_one_does(two_process_runs):
    full, split = ranks(two_process_runs, "vae")[0], ranks(two_process_runs, "vae-split")[0]
    for key in full:
        assert torch.equal(full[key], split[key]), key


def test_two_processes_match_one_process_with_the_same_global_batch(two_process_runs, tmp_path):
    torch.set_num_threads(1)
    single = train(make_model("ae", seed=0), blobs28(), train_config(tmp_path / "ae"))
    parallel, _ = ranks(two_process_runs, "ae")
    start = make_model("ae", seed=0).state_dict()
    for key, value in single.state_dict().items():
        moved = (value - start[key]).norm()
        assert moved > 1e-3, key  # training changed the weights ...
        assert torch.allclose(parallel[key], value, atol=1e-5, rtol=1e-4), key  # ... the same way in both


def test_ranks_take_disjoint_shares_of_the_same_global_batches():
    single = BatchSampler(20, 8, seed=3, device=torch.device("cpu"))
    shards = [BatchSampler(20, 8, seed=3, device=torch.device("cpu"), rank=r, world_size=2) for r in range(2)]
    for _ in range(5):  # across the epoch boundary (2 batches per epoch)
        whole = single.next()
        parts = [s.next() for s in shards]
        assert [len(p) for p in parts] == [4, 4]
        assert sorted(torch.cat(parts).tolist()) == sorted(whole.tolist())


def test_the_global_batch_must_split_evenly(monkeypatch, tmp_path):
    from genlab.training import distributed

    monkeypatch.setattr(distributed, "setup", lambda device: (distributed.Distributed(0, 3, 0), device))
    monkeypatch.setattr("genlab.training.loop.setup_distributed", distributed.setup)
    with pytest.raises(ConfigError, match="divisible by the 3 processes"):
        train(make_model("ae", seed=0), blobs28(), train_config(tmp_path / "x"))


def test_the_wait_for_peers_is_an_environment_setting(monkeypatch):
    from genlab.training.distributed import TIMEOUT_ENV, timeout_seconds

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert timeout_seconds() == 300  # not PyTorch's 30 minutes
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert timeout_seconds() == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=f"{TIMEOUT_ENV} must be a number of seconds > 0, got '{bad}'"):
            timeout_seconds()


def launch_rank(rank: int, port: int, out: Path, data: Path, timeout_s: float) -> subprocess.Popen:
    """One rank of a two-process run started by hand (no torchrun): what torchrun would set, set ourselves."""
    python_path = os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1", "WORLD_SIZE": "2",
           "RANK": str(rank), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "GENLAB_DIST_TIMEOUT": str(timeout_s)}
    command = [sys.executable, "-m", "genlab", "train", "vae", "--data", str(data), "--out", str(out), "--device", "cpu",
               "--epochs", "1000", "--batch-size", "16", "--log-every", "1", "--latent-dim", "4", "--channels", "8,16",
               "--hidden-dim", "32", "--no-progress", "--num-sample-images", "0", "--no-plots", "--no-tensorboard"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def blobs_npz(tmp_path) -> Path:
    data = blobs28()
    path = tmp_path / "blobs.npz"
    np.savez(path, images=data.images.numpy(), labels=data.labels.numpy())
    return path


def test_a_peer_that_never_arrives_ends_the_wait_with_one_line(tmp_path, blobs_npz):
    started = time.time()
    rank0 = launch_rank(0, free_port(), tmp_path / "run", blobs_npz, timeout_s=3)
    _, err = rank0.communicate(timeout=120)
    assert rank0.returncode == 2, err
    assert time.time() - started < 90  # seconds, not PyTorch's 30 minutes
    line = err.strip().splitlines()[-1]
    assert line.startswith("genlab: error: rank 0 of 2: the 2 processes did not all join at 127.0.0.1:") and "within 3 s" in line
    assert "Traceback" not in err


def test_a_rank_killed_mid_run_ends_the_other_with_one_line_and_the_run_resumes(tmp_path, blobs_npz):
    port, run = free_port(), tmp_path / "run"
    ranks = [launch_rank(rank, port, run, blobs_npz, timeout_s=30) for rank in (0, 1)]
    deadline = time.time() + 120
    while not (run / "metrics.csv").exists() or len((run / "metrics.csv").read_text().splitlines()) < 4:
        if time.time() > deadline or any(p.poll() is not None for p in ranks):
            for p in ranks:
                p.kill()
            pytest.fail("the two ranks did not start training: " + "".join(p.communicate()[1][-2000:] for p in ranks))
        time.sleep(0.1)
    ranks[1].send_signal(signal.SIGKILL)  # no torchrun to tell the other rank
    ranks[1].wait()
    _, err = ranks[0].communicate(timeout=120)
    assert ranks[0].returncode == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("genlab: error: rank 0 of 2: lost contact with the other processes"), err
    assert "Traceback" not in err
    genlab.load(run)  # the last checkpoint is whole
    assert main(["train", "vae", "--out", str(run), "--resume", "--epochs", "1", "--latent-dim", "4", "--channels", "8,16",
                 "--hidden-dim", "32"]) == 0  # in one process: the saved data and options


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
