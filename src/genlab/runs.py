"""A run folder: ``config.json`` + ``model.safetensors`` (see ``genlab.io.checkpoints`` for the format).

``load`` builds the model its config names and loads the weights to sample with; it needs no
dataset. ``run_config`` is what the training loop writes beside every checkpoint. Nothing here
knows about training internals (those live in ``genlab.training.state``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from genlab.config import config_to_dict
from genlab.io.checkpoints import CONFIG_FILE, WEIGHTS_FILE, load_model_weights, read_run_config, write_run_config
from genlab.models import GenerativeModel, build_model
from genlab.version import __version__


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


__all__ = ["load", "run_config", "write_config"]
