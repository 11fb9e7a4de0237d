"""Model families. Each file is one family: network(s) + objective, speaking the contract in base.py."""
from __future__ import annotations

from typing import Any

from genlab.config import config_from_dict
from genlab.errors import CheckpointError
from genlab.models.autoencoder import Autoencoder, AutoencoderConfig
from genlab.models.base import GenerativeModel, Phase
from genlab.models.diffusion import Diffusion, DiffusionConfig
from genlab.models.gan.encoder import GANEncoder
from genlab.models.gan.model import GAN, GANConfig
from genlab.models.judge import Judge, JudgeConfig
from genlab.models.sr.model import SR, SRConfig
from genlab.models.translation import CycleGAN, CycleGANConfig, Pix2Pix, Pix2PixConfig
from genlab.models.vae import VAE, VAEConfig

MODEL_KINDS: dict[str, type[GenerativeModel]] = {VAE.kind: VAE, GAN.kind: GAN, Judge.kind: Judge, SR.kind: SR,
                                                 GANEncoder.kind: GANEncoder, Pix2Pix.kind: Pix2Pix, CycleGAN.kind: CycleGAN,
                                                 Autoencoder.kind: Autoencoder, Diffusion.kind: Diffusion}


def build_model(kind: str, config: dict[str, Any], *, where: str = "config") -> GenerativeModel:
    """A fresh model of ``kind`` from its config dict (as stored in a run's config.json)."""
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"{where}: unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    cls = MODEL_KINDS[kind]
    return cls(config_from_dict(cls.config_class, config, where=where, saved=True))


__all__ = ["GAN", "MODEL_KINDS", "SR", "VAE", "Autoencoder", "AutoencoderConfig", "CycleGAN", "CycleGANConfig", "Diffusion",
           "DiffusionConfig", "GANConfig", "GenerativeModel", "Judge", "JudgeConfig", "Phase", "Pix2Pix", "Pix2PixConfig", "SRConfig",
           "VAEConfig", "build_model"]
