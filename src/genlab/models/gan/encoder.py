"""A learned inverse of a trained GAN: an encoder E (image → z) for a frozen generator G.

Trained by THE training loop (one phase, only E's weights move) on two losses:

- latent regression on G's own samples, ‖E(G(z)) − z‖² / d with z ~ N(0, I): the encoder of
  IcGAN (Perarnau et al. 2016, "Invertible Conditional GANs for image editing": their encoder loss for E_z), where the
  true code of every training image is known;
- reconstruction of real images through G, ‖G(E(x)) − x‖² per pixel (+ a judge-feature distance):
  the learned projection of Zhu et al. 2016 ("Generative Visual Manipulation on the Natural Image
  Manifold", §3.2, θ_P* = argmin Σ_n L(G(P(x_n; θ_P)), x_n)), which also covers real images G cannot
  draw exactly, where codes are unknown.

Saving: a run of kind "gan_encoder" holds the GAN's config in its own config (``gan``) and the GAN's
weights (G and D) beside E's in its model.safetensors, so it loads with ``genlab.load`` alone, never
depends on the GAN run still being where it was, and can be used wherever the GAN can (``.gan``),
with ``encode``/``decode``/``reconstruct`` like a VAE. ``gan_run`` records where the GAN came from,
for the reader only. The GAN is frozen and stays in eval mode (batch-norm running statistics), also
while E trains.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import (
    MAX_WIDTH,
    TrainConfig,
    check_positive,
    check_size,
    check_weights,
    check_widths,
    config_from_dict,
    config_to_dict,
    documented,
)
from genlab.errors import ConfigError
from genlab.models.base import GenerativeModel, Labels, Phase, adam, inference
from genlab.models.gan.model import GAN, GANConfig
from genlab.models.judge import resolve_judge
from genlab.nn import ConvEncoder


def judge_features(judge: Any, images: torch.Tensor) -> torch.Tensor:
    """The judge's penultimate features (N×F) scaled to unit length, differentiable (``Judge.features`` is
    no-grad, for metrics). Unit length as LPIPS normalises each layer's activations (Zhang et al. 2018, Eq. 1),
    so ‖φ̂(a) − φ̂(b)‖² lies in [0, 4] whatever the judge's scale: a feature weight means the same for any judge.
    Shared with the projector (genlab.tools.inversion)."""
    return F.normalize(judge._features(images), dim=1, eps=1e-6)


@dataclass
class GANEncoderConfig:
    gan: dict[str, Any] = field(default_factory=lambda: config_to_dict(GANConfig()),
                                metadata={"help": "the frozen GAN's GANConfig, as a dict"})
    gan_run: str = documented("", "where the GAN was loaded from (provenance only; its weights are stored in this run)")
    channels: tuple[int, ...] = documented((32, 64, 128), "widths of the stride-2 4×4 convs, each halving the resolution")
    hidden_dim: int = documented(512, "fully connected layer between the conv features and z")
    latent_weight: float = documented(1.0, "weight of ‖E(G(z)) − z‖²/d on G's samples (IcGAN's L_ez)")
    image_weight: float = documented(1.0, "weight of ‖G(E(x)) − x‖² per pixel on real images (Zhu et al. 2016, learned projection)")
    feature_weight: float = documented(0.1, "weight of ‖φ̂(G(E(x))) − φ̂(x)‖² in the shipped judge's features "
                                            "(1×28×28 images only; else ignored)")

    def __post_init__(self) -> None:
        if isinstance(self.gan, GANConfig):
            self.gan = config_to_dict(self.gan)
        gan = config_from_dict(GANConfig, self.gan, where="gan_encoder config 'gan'", saved=True)
        self.gan = config_to_dict(gan)
        self.channels = check_widths("channels", self.channels)
        if len(gan.image_shape) != 3:
            raise ConfigError("a GAN encoder inverts image GANs; this GAN makes points")
        if min(gan.image_shape[1:]) < 2 ** len(self.channels):
            raise ConfigError(f"{len(self.channels)} downsampling layers are too many for {self.gan['image_shape']} images")
        check_size("hidden_dim", self.hidden_dim, MAX_WIDTH)
        image_channels, height, width = gan.image_shape
        widths = (image_channels, *self.channels)
        features = self.channels[-1] * (height >> len(self.channels)) * (width >> len(self.channels))
        check_weights("gan_encoder config", gan._weight_count() + sum(16 * a * b for a, b in itertools.pairwise(widths))
                      + (features + (gan.latent_dim or 0)) * self.hidden_dim)
        for option in ("latent_weight", "image_weight", "feature_weight"):
            check_positive(option, getattr(self, option), allow_zero=True)
        if self.latent_weight == 0 and self.image_weight == 0:
            raise ConfigError("latent_weight and image_weight cannot both be 0: the encoder would learn nothing")


class GANEncoder(GenerativeModel):
    kind = "gan_encoder"
    config_class = GANEncoderConfig

    def __init__(self, config: GANEncoderConfig | None = None) -> None:
        config = config or GANEncoderConfig()
        super().__init__(config)
        self.gan = GAN(config_from_dict(GANConfig, config.gan))
        self.gan.requires_grad_(False)
        channels, height, width = self.gan.image_shape
        conv = ConvEncoder(channels, height, width, config.channels)
        self.encoder = nn.Sequential(
            conv, nn.Flatten(), nn.Linear(math.prod(conv.feature_shape), config.hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(config.hidden_dim, self.latent_dim),
        )
        self._judge: list[Any] = []  # loaded on first use; a list so it is not a submodule (not saved)
        self.gan.eval()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.gan.image_shape)  # type: ignore[return-value]

    @property
    def latent_dim(self) -> int:
        return int(self.gan.config.latent_dim)

    def train(self, mode: bool = True) -> GANEncoder:
        """E follows ``mode``; the frozen GAN always stays in eval mode (its batch-norm statistics are G's)."""
        super().train(mode)
        self.gan.eval()
        return self

    # ----- inversion -----
    @inference
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): a code for each image in [0, 1] (N×C×H×W → N×latent_dim)."""
        return self.encoder(x.to(self.device))

    @inference
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) in [0, 1] (eval mode; differentiable in z when z requires grad)."""
        return self.gan.generate(z, labels)

    @inference
    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x), labels)

    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        """Samples of the frozen GAN (E draws nothing of its own)."""
        return self.gan.sample(n, seed=seed, labels=labels, truncation=truncation)

    # ----- the objective -----
    def judge(self) -> Any | None:
        """The shipped judge for the feature term, or None (off, or no judge reads these images);
        resolved once (``resolve_judge``, which warns when it has none)."""
        if self.config.feature_weight == 0:
            return None
        if not self._judge:
            judge = resolve_judge(None, self.image_shape, purpose="the encoder's feature term (feature_weight)")
            if judge is not None:
                judge.requires_grad_(False)
            self._judge.append(judge)
        return None if self._judge[0] is None else self._judge[0].to(self.device)

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """latent_weight·‖E(G(z)) − z‖²/d + image_weight·‖G(E(x)) − x‖²/D + feature_weight·‖φ̂(G(E(x))) − φ̂(x)‖²."""
        conditional = bool(self.gan.config.num_classes)
        if conditional and labels is None:
            raise ConfigError("the GAN is class-conditional: train its encoder on a labelled dataset")
        n, out = x.shape[0], {}
        loss = x.new_zeros(())
        if self.config.latent_weight:
            # IcGAN: on G's samples the code is known, so regress it directly.
            z = torch.randn(n, self.latent_dim, device=x.device)
            fake_labels = torch.randint(0, self.gan.config.num_classes, (n,), device=x.device) if conditional else None
            with torch.no_grad():
                fake = self.gan.generate(z, fake_labels)
            out["latent"] = (self.encode(fake) - z).square().mean(1).mean()
            loss = loss + self.config.latent_weight * out["latent"]
        if self.config.image_weight or self.config.feature_weight:
            # Zhu et al. 2016 §3.2, learned projection: reconstruct real images through the frozen G.
            reconstruction = self.gan.generate(self.encode(x), labels if conditional else None)
            out["image_mse"] = (reconstruction - x).square().mean()
            loss = loss + self.config.image_weight * out["image_mse"]
            judge = self.judge()
            if judge is not None:
                out["feature"] = (judge_features(judge, reconstruction) - judge_features(judge, x)).square().sum(1).mean()
                loss = loss + self.config.feature_weight * out["feature"]
        return {"loss": loss, **out}

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"E": adam(self.encoder.parameters(), lr=train.lr)}

    def training_phases(self) -> list[Phase]:
        return [Phase("E", optimizer="E", loss=self.loss)]


def encoder_for(gan: GAN, gan_run: str = "", **options: Any) -> GANEncoder:
    """A fresh (untrained) encoder for ``gan``, holding a copy of its weights."""
    model = GANEncoder(GANEncoderConfig(gan=config_to_dict(gan.config), gan_run=gan_run, **options))
    model.gan.load_state_dict(gan.state_dict())
    return model.to(gan.device)


__all__ = ["GANEncoder", "GANEncoderConfig", "encoder_for", "judge_features"]
