"""A run folder: ``config.json`` + ``model.safetensors`` (see ``genlab.io.checkpoints`` for the format).

``load`` builds the model its config names and loads the weights to sample with; it needs no
dataset. ``run_config`` is what the training loop writes beside every checkpoint. Nothing here
knows about training internals (those live in ``genlab.training.state``).

One writer at a time: training holds :func:`writer_lock` on the run folder from start to end, so a
second ``genlab train --out`` the same folder fails at once instead of interleaving its files with
the first one's. Readers (``load``, sample, evaluate) never take it: every file is replaced
atomically, so they see a whole checkpoint, old or new.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from genlab.config import config_to_dict
from genlab.errors import CheckpointError
from genlab.io.checkpoints import CONFIG_FILE, WEIGHTS_FILE, load_model_weights, read_run_config, write_run_config
from genlab.io.files import output_error
from genlab.models import GenerativeModel, build_model
from genlab.version import __version__

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected against a second writer
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


def run_config(model: GenerativeModel, train_config: Any, dataset_info: dict[str, Any]) -> dict[str, Any]:
    """The config.json of a run: genlab version, model kind + config, train config, dataset info."""
    return {
        "genlab_version": __version__,
        "model": {"kind": model.kind, "config": config_to_dict(model.config)},
        "train": config_to_dict(train_config),
        "dataset": dataset_info,
    }


def write_config(run_dir: str | os.PathLike, model: GenerativeModel, train_config: Any, dataset_info: dict[str, Any]) -> None:
    write_run_config(run_dir, run_config(model, train_config, dataset_info))


def load(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> Any:
    """A trained model from its run directory, ready to sample; needs no dataset."""
    config = read_run_config(run_dir)
    model = build_model(config["model"]["kind"], config["model"].get("config", {}), where=str(Path(run_dir) / CONFIG_FILE))
    load_model_weights(model, Path(run_dir) / WEIGHTS_FILE)
    return model.to(device).eval()


@contextlib.contextmanager
def writer_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the run folder's exclusive writer lock (``RUN/.lock``, with the holder's PID inside) for the block.

    The lock is an ``flock`` on the open file, so the kernel drops it when the holder exits in any way
    (kill -9 included): there is never a stale lock to clean up. The folder is created if missing. A
    second writer raises CheckpointError at once, naming the holder's process.
    """
    run_dir = Path(run_dir)
    path = run_dir / LOCK_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise output_error(path, error) from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
                raise CheckpointError(f"{run_dir} is in use by process {holder} (another genlab train writes there); "
                                      "wait for it to end or stop it, or choose another output folder") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(descriptor)  # closing the only descriptor releases the flock


__all__ = ["LOCK_FILE", "load", "run_config", "write_config", "writer_lock"]
