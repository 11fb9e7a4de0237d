"""Denoising diffusion (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", arXiv:2006.11239), in pixel
space or in the latent space of a trained autoencoder (latent diffusion: Rombach et al. 2022, "High-Resolution
Image Synthesis with Latent Diffusion Models", arXiv:2112.10752).

Training is one phase: Ho's L_simple (Eq. 14), ‖ε − ε̂(√ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, t)‖² with t uniform over the T
steps. Sampling runs DDIM (Song et al. 2021) or DDPM's ancestral sampler (``sampling.py``). With ``num_classes``
K > 0 the U-Net also takes a class, replaced by the null label ∅ with probability ``label_dropout`` while
training, so one network learns ε(x, c) and ε(x, ∅) and samples with classifier-free guidance
(Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", §3.1 and Eq. 6).

Pixel space: images in [0, 1] are mapped to [−1, 1] (Ho §4), and x̂_0 is clamped to [−1, 1] while sampling.
Latent space (``first_stage`` set): x_0 = scale_factor·z, z ~ q(z|x) of the autoencoder (``encode(x,
sample=True)``), and images are ``decode(x_0 / scale_factor)``; scale_factor = 1/std of the latents gives them
unit variance (Rombach et al. 2022, §4.3.2 and Appendix G), as the unit-variance data the schedules assume.
The autoencoder's config is stored in this model's config and its weights beside the U-Net's (submodule
``first_stage``), so a run samples with ``genlab.load`` alone; it is frozen and always in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F

from genlab.config import (
    MAX_BLOCKS,
    MAX_CLASSES,
    TrainConfig,
    check_choice,
    check_finite,
    check_image_shape,
    check_positive,
    check_size,
    check_weights,
    check_widths,
    config_from_dict,
    config_to_dict,
    documented,
)
from genlab.errors import ConfigError
from genlab.models.autoencoder import Autoencoder, AutoencoderConfig
from genlab.models.base import GenerativeModel, Labels, Phase, adam, class_indices, inference, truncated_normal
from genlab.models.diffusion.sampling import ddim_sample, ddpm_sample, guided
from genlab.models.diffusion.schedule import NoiseSchedule, ScheduleKind
from genlab.models.diffusion.unet import UNet, unet_weight_count
from genlab.nn.modes import eval_mode

Sampler = Literal["ddim", "ddpm"]
MAX_TIMESTEPS = 100_000
PREVIEW_STEPS = 25  # DDIM steps of the picture the training loop draws after each epoch (at most sample_steps)


@dataclass
class DiffusionConfig:
    """What diffusion model to build and how to sample it. ``guidance`` w = 1: between Ho & Salimans' settings
    for the best FID (small w, about 0.1–0.3) and for the best Inception score (w of several), leaning towards
    class fidelity, which a small conditional model trained for minutes needs most; 0 samples the plain
    conditional model. Unconditional models ignore it."""

    image_shape: tuple[int, int, int] = documented((1, 28, 28), "(C, H, W) of the images")
    num_classes: int = documented(0, "> 0: class-conditional (a learned class embedding, classifier-free guidance)")
    first_stage: dict[str, Any] | None = documented(None, "the autoencoder's AutoencoderConfig as a dict: diffusion in its "
                                                          "latent space (none: in pixel space)")
    first_stage_run: str = documented("", "where the autoencoder came from (provenance only; its weights are stored in this run)")
    scale_factor: float = documented(1.0, "latents are multiplied by this before diffusion (1/std of the latents: "
                                          "Rombach et al. 2022 §4.3.2)")
    schedule: ScheduleKind = documented("linear", "β schedule: linear (Ho et al. 2020) or cosine (Nichol & Dhariwal 2021)")
    timesteps: int = documented(1000, "T, the steps of the forward (noising) process")
    channels: tuple[int, ...] = documented((64, 128), "U-Net widths, one per resolution level (each further level halves it)")
    blocks: int = documented(2, "residual blocks per U-Net level")
    attention: bool = documented(True, "self-attention at the U-Net's lowest resolution")
    dropout: float = documented(0.0, "dropout in the U-Net's residual blocks (Ho et al.: 0.1 on CIFAR-10)")
    label_dropout: float = documented(0.1, "conditional: probability of training on the null label instead of the "
                                           "class (Ho & Salimans 2022 §3.1; they found 0.1–0.2 best)")
    sampler: Sampler = documented("ddim", "ddim (Song et al. 2021, sample_steps steps) or ddpm (Ho et al. 2020, all T steps)")
    sample_steps: int = documented(50, "DDIM steps when sampling")
    guidance: float = documented(1.0, "classifier-free guidance strength w (Ho & Salimans 2022, Eq. 6); 0: the plain "
                                      "conditional model")
    eta: float = documented(0.0, "DDIM's η (Song et al. 2021, Eq. 16): 0 deterministic given the noise, 1 DDPM-like")

    def __post_init__(self) -> None:
        self.image_shape = check_image_shape("image_shape", self.image_shape)  # type: ignore[assignment]
        check_size("num_classes", self.num_classes, MAX_CLASSES, minimum=0)
        first_stage = self.autoencoder_config()
        if first_stage is not None and tuple(first_stage.image_shape) != tuple(self.image_shape):
            raise ConfigError(f"image_shape {tuple(self.image_shape)} differs from the first stage's image_shape "
                              f"{tuple(first_stage.image_shape)}; they must be the same images")
        check_positive("scale_factor", self.scale_factor)
        check_choice("schedule", self.schedule, ScheduleKind)
        check_size("timesteps", self.timesteps, MAX_TIMESTEPS, minimum=2)
        self.channels = check_widths("channels", self.channels)
        check_size("blocks", self.blocks, MAX_BLOCKS)
        check_fraction("dropout", self.dropout)
        check_fraction("label_dropout", self.label_dropout)
        check_choice("sampler", self.sampler, Sampler)
        check_steps("sample_steps", self.sample_steps, self.timesteps)
        check_positive("guidance", self.guidance, allow_zero=True)
        check_eta(self.eta)
        if self.num_classes and self.guidance > 0 and self.label_dropout == 0:
            raise ConfigError("guidance > 0 needs label_dropout > 0: the unconditional prediction it uses is learnt from "
                              "dropped labels; set label_dropout (e.g. 0.1) or guidance 0")
        channels = self.diffusion_shape[0]
        first_stage_weights = first_stage._weight_count() if first_stage is not None else 0
        check_weights("diffusion config", unet_weight_count(channels, self.channels, self.blocks, self.num_classes, self.attention)
                      + first_stage_weights)

    def autoencoder_config(self) -> AutoencoderConfig | None:
        """The first stage's config (checked; ``first_stage`` normalised to its full dict), or None in pixel space."""
        if self.first_stage is None:
            return None
        if isinstance(self.first_stage, AutoencoderConfig):
            self.first_stage = config_to_dict(self.first_stage)
        config = config_from_dict(AutoencoderConfig, self.first_stage, where="diffusion config 'first_stage'", saved=True)
        self.first_stage = config_to_dict(config)
        return config

    @property
    def diffusion_shape(self) -> tuple[int, int, int]:
        """The shape of x_0: the images' (pixel space) or their latents' (c, H/f, W/f)."""
        if self.first_stage is None:
            return tuple(self.image_shape)  # type: ignore[return-value]
        f = 2 ** len(self.first_stage["channels"])
        _, height, width = self.image_shape
        return int(self.first_stage["latent_channels"]), height // f, width // f


def check_fraction(option: str, value: float) -> None:
    check_finite(option, value)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{option} must be in [0, 1), got {value!r}")


def check_steps(option: str, value: int, timesteps: int) -> None:
    check_size(option, value, MAX_TIMESTEPS)
    if value > timesteps:
        raise ConfigError(f"{option} must be at most timesteps ({timesteps}): DDIM visits a sub-sequence of the T steps, got {value}")


def check_eta(value: float) -> None:
    check_finite("eta", value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"eta must be in [0, 1] (Song et al. 2021, Eq. 16), got {value!r}")


class Diffusion(GenerativeModel):
    kind = "diffusion"
    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig | None = None) -> None:
        config = config or DiffusionConfig()
        super().__init__(config)
        first_stage = config.autoencoder_config()
        self.first_stage: Autoencoder | None = None
        if first_stage is not None:
            self.first_stage = Autoencoder(first_stage)
            self.first_stage.requires_grad_(False)
            self.first_stage.eval()
        self.unet = UNet(config.diffusion_shape[0], config.channels, config.blocks, attention=config.attention,
                         num_classes=config.num_classes, dropout=config.dropout)
        self.schedule = NoiseSchedule(config.schedule, config.timesteps)

    @classmethod
    def from_first_stage(cls, autoencoder: Autoencoder, dataset: Any = None, *, first_stage_run: str = "", **fields: Any) -> Diffusion:
        """A fresh latent diffusion model on ``autoencoder``'s latents, holding a copy of its weights.
        ``scale_factor`` defaults to ``autoencoder.latent_scale(dataset)`` (1/std of the latents of ``dataset``);
        ``fields``: any other DiffusionConfig options (num_classes, channels, ...)."""
        if "scale_factor" not in fields:
            if dataset is None:
                raise ConfigError("from_first_stage needs the training dataset to measure the latents' scale (or scale_factor=)")
            fields["scale_factor"] = autoencoder.latent_scale(dataset)
        fields.setdefault("image_shape", tuple(autoencoder.config.image_shape))
        model = cls(DiffusionConfig(first_stage=config_to_dict(autoencoder.config), first_stage_run=first_stage_run, **fields))
        model.first_stage.load_state_dict(autoencoder.state_dict())  # type: ignore[union-attr]
        return model.to(autoencoder.device)

    @property
    def diffusion_shape(self) -> tuple[int, int, int]:
        return self.config.diffusion_shape

    @property
    def grid_columns(self) -> int | None:
        """A conditional model's default labels cycle 0..K−1, so a K-wide grid has one class per column."""
        return self.config.num_classes or None

    @property
    def null_label(self) -> int:
        """∅, the label of the unconditional prediction: index K of the class embedding."""
        return self.config.num_classes

    def train(self, mode: bool = True) -> Diffusion:
        """The U-Net follows ``mode``; the frozen first stage always stays in eval mode."""
        super().train(mode)
        if self.first_stage is not None:
            self.first_stage.eval()
        return self

    # ----- images ↔ the space the diffusion runs in -----
    @inference
    def to_diffusion_space(self, images: torch.Tensor) -> torch.Tensor:
        """x_0 for images in [0, 1]: 2x − 1 (pixels), or scale_factor · z with z ~ q(z|x) (latents; global RNG;
        the frozen encoder gives no gradient unless the images require one)."""
        if self.first_stage is None:
            return images * 2.0 - 1.0
        return self.first_stage.encode(images, sample=True) * self.config.scale_factor

    @inference
    def from_diffusion_space(self, x0: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from x_0: (x + 1)/2 (pixels), or the decoder's image of x_0 / scale_factor (latents)."""
        if self.first_stage is None:
            return ((x0 + 1.0) * 0.5).clamp(0.0, 1.0)
        return self.first_stage.decode(x0 / self.config.scale_factor).clamp(0.0, 1.0)

    # ----- labels -----
    def resolve_labels(self, n: int, labels: Labels | None) -> torch.Tensor | None:
        """Labels as int64 on the model's device; None for a conditional model cycles 0..K−1; an unconditional
        model refuses labels."""
        k = self.config.num_classes
        if not k:
            self.refuse_labels(labels)
            return None
        if labels is None:
            return torch.arange(n, device=self.device) % k
        return class_indices(labels, n, k).to(self.device)

    def drop_labels(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``labels`` with each replaced by ∅ with probability ``label_dropout`` (Ho & Salimans 2022, Algorithm 1).
        ``generator``: a CPU generator for the coin flips (None: the labels' device's global RNG, no host sync)."""
        if generator is None:
            coins = torch.rand(labels.shape, device=labels.device)
        else:
            coins = torch.rand(labels.shape, generator=generator).to(labels.device)
        return torch.where(coins < self.config.label_dropout, torch.full_like(labels, self.null_label), labels)

    # ----- sampling -----
    progress = False  # sample() shows a bar over the denoising steps (the CLI turns it on)

    def set_sampling(self, *, steps: int | None = None, guidance: float | None = None, sampler: Sampler | None = None,
                     eta: float | None = None) -> Diffusion:
        """Change the defaults ``sample`` uses (and every tool that calls it: evaluate, pictures): DDIM ``steps``,
        guidance ``w``, ``sampler``, ``eta``; None keeps the current value. Checked like the config; returns self."""
        changes = {"sample_steps": steps, "guidance": guidance, "sampler": sampler, "eta": eta}
        self.config = replace(self.config, **{name: value for name, value in changes.items() if value is not None})
        return self

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        """``n`` images in [0, 1], N×C×H×W, with the config's sampler, steps, guidance and η (``set_sampling``
        changes them; ``sample_with`` takes them per call)."""
        return self.sample_with(n, seed=seed, labels=labels, truncation=truncation, progress=self.progress)

    @torch.no_grad()
    def sample_with(self, n: int, *, seed: int | None = None, labels: Labels | None = None, truncation: float | None = None,
                    steps: int | None = None, guidance: float | None = None, sampler: Sampler | None = None,
                    eta: float | None = None, progress: bool = False, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images in [0, 1], N×C×H×W, denoised from x_T ~ N(0, I) (truncated to [−τ, τ] with ``truncation`` τ).

        ``noise``: x_T itself (n × ``diffusion_shape``) instead of a draw, e.g. points on a slerp path between two
        draws: with DDIM and η = 0 the images then follow the path (Song et al. 2021, §5.3, interpolation).

        ``labels``: one class per image (conditional models; default 0, 1, …, K−1, 0, …). ``seed``: every draw
        (x_T and, for DDPM or η > 0, each step's noise) comes from a CPU generator seeded with it, so a seed gives
        the same images on every device. ``steps`` (DDIM), ``guidance`` w, ``sampler`` and ``eta`` default to the
        config's; ``progress``: a bar over the denoising steps.
        """
        c = self.config
        steps = c.sample_steps if steps is None else steps
        guidance = c.guidance if guidance is None else guidance
        sampler, eta = sampler or c.sampler, c.eta if eta is None else eta
        check_choice("sampler", sampler, Sampler)
        check_steps("steps", steps, c.timesteps)
        check_positive("guidance", guidance, allow_zero=True)
        check_eta(eta)
        labels = self.resolve_labels(n, labels)
        generator = self.noise_generator(seed)
        if noise is None:
            x = truncated_normal((n, *self.diffusion_shape), truncation, generator).to(self.device)
        elif tuple(noise.shape) != (n, *self.diffusion_shape):
            raise ConfigError(f"noise: expected x_T of shape {(n, *self.diffusion_shape)}, got {tuple(noise.shape)}")
        else:
            x = noise.float().to(self.device)
        predictor = guided(self.unet, labels, self.null_label, guidance)
        clip = 1.0 if self.first_stage is None else None  # pixels live in [−1, 1]; latents have no bound
        with eval_mode(self.unet):
            if sampler == "ddpm":
                x0 = ddpm_sample(predictor, self.schedule, x, generator=generator, clip=clip, progress=progress)
            else:
                x0 = ddim_sample(predictor, self.schedule, x, steps=steps, eta=eta, generator=generator, clip=clip, progress=progress)
            return self.from_diffusion_space(x0)

    @torch.no_grad()
    def preview(self, n: int, *, seed: int | None, dataset: Any) -> torch.Tensor:
        """The training loop's per-epoch picture: DDIM with at most PREVIEW_STEPS steps, so it stays cheap."""
        return self.sample_with(n, seed=seed, sampler="ddim", steps=min(self.config.sample_steps, PREVIEW_STEPS))

    # ----- the objective -----
    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """L_simple (Ho et al. 2020, Eq. 14): E_{t, x_0, ε} ‖ε − ε̂(√ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, t[, y])‖², t ~ U{0..T−1},
        averaged over elements; y dropped to ∅ with probability ``label_dropout`` (Ho & Salimans 2022, Algorithm 1).
        Logged: "x0_std", the std of x_0 (about 1 for latents with the right scale_factor) and, when conditional,
        "dropped", the fraction of labels replaced by ∅."""
        if self.config.num_classes:
            if labels is None:
                raise ConfigError(f"num_classes={self.config.num_classes} needs a labelled dataset; train with labels or set "
                                  "num_classes=0")
            labels = self.drop_labels(labels)
        else:
            labels = None
        x0 = self.to_diffusion_space(x)
        t = torch.randint(0, self.config.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        predicted = self.unet(self.schedule.q_sample(x0, t, noise), t, labels)
        out = {"loss": F.mse_loss(predicted.float(), noise.float()), "x0_std": x0.detach().float().std()}
        if labels is not None:
            out["dropped"] = (labels == self.null_label).float().mean()
        return out

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"unet": adam(self.unet.parameters(), lr=train.lr)}

    def training_phases(self) -> list[Phase]:
        return [Phase("unet", optimizer="unet", loss=self.loss)]
