"""The three ways of training the default genlab VAE that ``vae_throughput`` compares.

Each ``train_with_*`` runs in its own process (see ``harness.run_interleaved_workers``): it loads
the data and builds the network untimed, calls ``turn.begin()``, trains, and calls
``turn.boundary()`` at the start of every epoch after the first, so the contenders take turns
epoch by epoch. Everything between ``turn.begin()`` and ``turn.end()`` is timed: the library's
own setup (data conversion, trainer construction), every step, and its per-epoch work
(checkpoints, best-model copies, logs) — that is what a user waits for.

All three start from the same weights (``torch.manual_seed(seed)`` before ``VAE(VAEConfig())``)
and each saves its trained weights in genlab's ``VAE`` key layout, so one piece of code scores all.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from genlab.config import config_to_dict
from genlab.data import load_dataset
from genlab.models.vae import VAE, VAEConfig
from genlab.training import Callback, TrainingRun


def _train_images(train_subset: int | None) -> torch.Tensor:
    """Fashion-MNIST train images, uint8 N×1×28×28 (genlab's loader reads /usr/share/datasets/fashion-mnist)."""
    images = load_dataset("fashion-mnist", split="train").images
    return images[:train_subset] if train_subset else images


def _initial_vae(seed: int) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig())


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _save_weights(state: dict[str, torch.Tensor], path: str) -> None:
    save_file({k: v.detach().contiguous() for k, v in state.items()}, path)


# ----- genlab: the library's own loop -----
class EpochTurns(Callback):
    """genlab's side of the turn-taking: at every epoch's end but the last (after its sample grid, before its
    checkpoint) count the epoch's images and hand the CPU back. All a benchmark adds to genlab's loop, and
    nothing per step; the dcgan contenders use it too."""

    def __init__(self, turn: Any) -> None:
        self.turn, self.steps = turn, 0

    def on_epoch_end(self, run: TrainingRun) -> None:
        self.turn.add_images(run.sampler.batches_per_epoch * run.sampler.batch_size)
        if run.sampler.epoch < run.config.epochs:
            self.turn.boundary()

    def on_train_end(self, run: TrainingRun) -> None:
        self.steps = run.step


def _stand_in_for_missing_report_module() -> bool:
    """genlab.train ends by plotting loss.png via ``genlab.io.plots.plot_metrics``; in trees where that
    module does not exist yet the import fails after training has finished. Then register a stand-in
    whose plot_metrics raises ValueError, which train() treats as "too few rows to plot" and skips.
    Returns True when the stand-in was needed (the plot's cost is then not measured)."""
    import importlib
    import sys
    import types

    try:
        importlib.import_module("genlab.io.plots")
        return False
    except ModuleNotFoundError as error:
        if error.name != "genlab.io.plots":
            raise

    def plot_metrics(*args: Any, **kwargs: Any) -> None:
        raise ValueError("genlab.report is missing in this tree; loss plot skipped by the benchmark")

    stand_in = types.ModuleType("genlab.io.plots")
    stand_in.plot_metrics = plot_metrics
    sys.modules["genlab.io.plots"] = stand_in
    return True


def train_with_genlab(*, turn: Any, epochs: int, batch_size: int, lr: float, seed: int, train_subset: int | None,
                      out_dir: str, weights_path: str, train_options: dict[str, Any] | None = None) -> dict[str, Any]:
    import genlab

    dataset = load_dataset("fashion-mnist", split="train")  # with its labels, as a user would pass it
    if train_subset:
        dataset = dataset.subset(slice(0, train_subset))
    model = _initial_vae(seed)
    turns = EpochTurns(turn)
    missing_report = _stand_in_for_missing_report_module()
    config = genlab.TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, out_dir=out_dir, device="cpu",
                                progress=False, tensorboard=False, num_sample_images=0, **(train_options or {}))
    turn.begin()
    genlab.train(model, dataset, config, callbacks=[turns])
    turn.end()
    _save_weights(model.state_dict(), weights_path)
    checkpoint_files = sorted(str(p.relative_to(out_dir)) for p in Path(out_dir).rglob("*") if p.is_file())
    turn.finish({"steps": turns.steps, "files_written": checkpoint_files, "weights": weights_path,
                 "genlab_version": _version("genlab"), "train_config": config_to_dict(config),
                 "loss_plot_skipped_genlab_report_missing": missing_report})


# ----- plain PyTorch, as in pytorch/examples vae/main.py -----
def plain_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Negative ELBO averaged over the batch: Bernoulli reconstruction (BCE with logits, summed over
    pixels) + KL(N(μ, σ²) ‖ N(0, I)) in closed form, −½ Σ(1 + log σ² − μ² − σ²) (Kingma & Welling
    2014, Appendix B)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    return (bce + kld) / x.shape[0]


def plain_forward(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mu, log_var = model.to_posterior(model.encoder(x)).chunk(2, dim=1)
    std = torch.exp(0.5 * log_var)
    z = mu + std * torch.randn_like(std)  # reparameterize
    return model.decoder(model.from_latent(z)), mu, log_var


def train_with_plain_pytorch(*, turn: Any, epochs: int, batch_size: int, lr: float, seed: int,
                             train_subset: int | None, weights_path: str) -> dict[str, Any]:
    from torch.utils.data import DataLoader, TensorDataset

    images = _train_images(train_subset)
    model = _initial_vae(seed)
    turn.begin()
    loader = DataLoader(TensorDataset(images.float() / 255.0), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    epoch_losses = []
    for epoch in range(1, epochs + 1):
        if epoch > 1:
            turn.boundary()
        model.train()
        train_loss = 0.0
        for (x,) in loader:
            optimizer.zero_grad()
            logits, mu, log_var = plain_forward(model, x)
            loss = plain_loss(logits, x, mu, log_var)
            loss.backward()
            train_loss += loss.item()  # a host sync every step, as in the example
            optimizer.step()
            turn.add_images(x.shape[0])
        epoch_losses.append(train_loss / len(loader))
        print(f"====> Epoch: {epoch} Average loss: {epoch_losses[-1]:.4f}", flush=True)
    turn.end()
    _save_weights(model.state_dict(), weights_path)
    turn.finish({"epoch_losses": epoch_losses, "weights": weights_path})


# ----- pythae: the same networks behind its BaseEncoder / BaseDecoder, trained by its pipeline -----
def _pythae_networks(vae: VAE) -> tuple[Any, Any]:
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class GenlabEncoder(BaseEncoder):
        def __init__(self) -> None:
            BaseEncoder.__init__(self)
            self.encoder, self.to_posterior = vae.encoder, vae.to_posterior  # same names → same state-dict keys

        def forward(self, x: torch.Tensor) -> Any:
            mu, log_var = self.to_posterior(self.encoder(x)).chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class GenlabDecoder(BaseDecoder):
        def __init__(self) -> None:
            BaseDecoder.__init__(self)
            self.from_latent, self.decoder = vae.from_latent, vae.decoder

        def forward(self, z: torch.Tensor) -> Any:
            # pythae's "bce" loss takes probabilities, so the decoder ends in a sigmoid.
            return ModelOutput(reconstruction=torch.sigmoid(self.decoder(self.from_latent(z))))

    return GenlabEncoder(), GenlabDecoder()


def train_with_pythae(*, turn: Any, epochs: int, batch_size: int, lr: float, seed: int, train_subset: int | None,
                      out_dir: str, weights_path: str) -> dict[str, Any]:
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig as PythaeVAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    images = _train_images(train_subset)
    vae = _initial_vae(seed)
    encoder, decoder = _pythae_networks(vae)
    model = PythaeVAE(PythaeVAEConfig(input_dim=(1, 28, 28), latent_dim=vae.config.latent_dim, reconstruction_loss="bce"),
                      encoder=encoder, decoder=decoder)
    # pythae 0.1.2 names the batch size per_device_train_batch_size; no eval set is given (so it keeps
    # the best model on the train loss, a deepcopy per improving epoch); steps_saving=None (its default)
    # writes no per-epoch checkpoint, only final_model/ at the end.
    config = BaseTrainerConfig(output_dir=out_dir, per_device_train_batch_size=batch_size, learning_rate=lr,
                               num_epochs=epochs, seed=seed, no_cuda=True)
    num_images = len(images)

    class EpochBoundary(TrainingCallback):
        def on_epoch_begin(self, training_config: Any, **kwargs: Any) -> None:
            if kwargs.get("epoch", 1) > 1:
                turn.boundary()

        def on_epoch_end(self, training_config: Any, **kwargs: Any) -> None:
            turn.add_images(num_images)  # its DataLoader keeps the last partial batch: every image, every epoch

    turn.begin()
    pipeline = TrainingPipeline(model=model, training_config=config)
    pipeline(train_data=images.float() / 255.0, eval_data=None, callbacks=[EpochBoundary()])
    turn.end()
    trainer = pipeline.trainer
    # pythae key "encoder.encoder.net.0.weight" → genlab key "encoder.net.0.weight", etc.
    final = {k.split(".", 1)[1]: v for k, v in trainer.model.state_dict().items()}
    best = {k.split(".", 1)[1]: v for k, v in trainer._best_model.state_dict().items()}
    _save_weights(final, weights_path)
    files = sorted(str(p.relative_to(out_dir)) for p in Path(out_dir).rglob("*") if p.is_file())
    turn.finish({"weights": weights_path, "pythae_version": _version("pythae"),
                 "best_model_is_last_epoch": all(torch.equal(final[k], best[k]) for k in final),
                 "files_written": files})
