"""The first stage of latent diffusion: a KL-regularised autoencoder with a spatial latent (Rombach, Blattmann,
Lorenz, Esser & Ommer 2022, "High-Resolution Image Synthesis with Latent Diffusion Models", arXiv:2112.10752,
§3 and Appendix G).

An encoder E maps an image x (C×H×W) to the mean and log-variance of q(z|x) = N(μ, diag σ²) over a latent
z of shape c×(H/f)×(W/f), f = 2^len(channels); a decoder D maps z back to an image in [0, 1]. The latent
keeps the image's layout, so a diffusion model trained on it (the second stage, ``genlab train diffusion
--first-stage RUN``) still sees a picture, f² fewer pixels of it. Per image (LDM's LPIPSWithDiscriminator:
each term summed over its elements, then averaged over the batch):

    L = Σ_pixels |x − x̂|  +  λ_p·(C·H·W)·d(x, x̂)  +  λ_KL·KL(q(z|x) ‖ N(0, I))  +  λ_adv·(−mean D(x̂)),

with x̂ = D(z), z = μ + σ·ε (one reparameterised draw, Kingma & Welling 2014, Eq. 10) and the KL in closed
form (their Appendix B): ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²) over all c·h·w latent elements. Summing (not
averaging) is what makes λ_KL = 10⁻⁶, LDM's "KL-reg" first stages, weigh the same here as there: the KL only
keeps the latent's scale in check, it is no generative prior. d is a perceptual distance in the shipped
judge's feature maps, the stand-in for LPIPS (Zhang et al. 2018, Eq. 1, with unit channel weights): LDM
adds the per-image LPIPS to every pixel's L1 before the sum, hence the factor C·H·W. The adversarial term
is the hinge loss (Lim & Ye 2017; LDM's ``hinge_d_loss``) against a PatchGAN (Isola et al. 2017) that
learns in its own phase "D". LDM also weighs that term adaptively (Esser et al. 2021, VQGAN, Eq. 7) and
starts D late; here ``adversarial_weight`` is a fixed weight, so it must stand against a summed L1 of
hundreds per image.

Networks (LDM's ``Encoder``/``Decoder``, without the attention of their middle block): pre-activation
residual blocks (GroupNorm → SiLU → conv3×3, twice, plus the input; He et al. 2016), stride-2 convs down,
nearest ×2 + conv3×3 up. No batch norm: an image's latent never depends on the rest of its batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import (
    MAX_BLOCKS,
    MAX_WIDTH,
    TrainConfig,
    check_image_shape,
    check_positive,
    check_size,
    check_weights,
    check_widths,
    documented,
)
from genlab.errors import ConfigError
from genlab.models.base import GenerativeModel, Labels, Phase, adam, image_batch, inference
from genlab.models.gan.losses import contest_stats, hinge_d_loss, hinge_g_loss
from genlab.models.gan.model import frozen
from genlab.models.judge import SHIPPED_SHAPE, resolve_judge
from genlab.models.sr.nets import judge_feature_map
from genlab.models.translation.common import MAX_D_LAYERS, patch_weights
from genlab.models.translation.nets import PatchDiscriminator
from genlab.models.vae import DiagonalGaussian, kl_to_standard_normal

LOGVAR_RANGE = (-30.0, 20.0)  # LDM's DiagonalGaussianDistribution clamps log σ² to this: σ in [3·10⁻⁷, 2·10⁴]


@dataclass
class AutoencoderConfig:
    """What autoencoder to build. The defaults (f = 4, 4 latent channels, 1×28×28 → 4×7×7) are LDM's
    "KL-f4" first stage narrowed for a CPU (LDM: widths 128–512, 2 blocks per level)."""

    image_shape: tuple[int, int, int] = documented((1, 28, 28), "(C, H, W) of the images; H and W multiples of 2^len(channels)")
    latent_channels: int = documented(4, "channels c of the latent z (c × H/f × W/f)")
    channels: tuple[int, ...] = documented((32, 64), "conv widths, one level each; each level halves the resolution (f = 2^levels)")
    blocks: int = documented(1, "residual blocks per level, in the encoder and in the decoder")
    kl_weight: float = documented(1e-6, "λ_KL on KL(q(z|x) ‖ N(0, I)) summed per image (LDM's KL-reg first stages: 1e-6)")
    perceptual_weight: float = documented(0.0, "λ_p on the judge-feature distance, LPIPS's stand-in (LDM: 1); 1×28×28 "
                                               "images only (the shipped judge)")
    adversarial_weight: float = documented(0.0, "λ_adv on the PatchGAN hinge term −mean D(x̂) (0: no discriminator)")
    d_width: int = documented(32, "adversarial: the PatchGAN's first conv width")
    d_layers: int = documented(2, "adversarial: PatchGAN stride-2 layers (2: 34×34 patches)")
    lr_d: float | None = documented(None, "adversarial: D's Adam learning rate (default: TrainConfig.lr)")

    def __post_init__(self) -> None:
        self.image_shape = check_image_shape("image_shape", self.image_shape)  # type: ignore[assignment]
        self.channels = check_widths("channels", self.channels)
        check_size("latent_channels", self.latent_channels, MAX_WIDTH)
        check_size("blocks", self.blocks, MAX_BLOCKS, minimum=0)
        for option in ("kl_weight", "perceptual_weight", "adversarial_weight"):
            check_positive(option, getattr(self, option), allow_zero=True)
        check_size("d_width", self.d_width, MAX_WIDTH)
        check_size("d_layers", self.d_layers, MAX_D_LAYERS)
        if self.lr_d is not None:
            check_positive("lr_d", self.lr_d)
        f, (_, height, width) = self.factor, self.image_shape
        if height % f or width % f:
            raise ConfigError(f"image_shape {self.image_shape}: height and width must be multiples of {f} (= 2^len(channels), "
                              f"one ×2 downsampling per channels entry); resize the images or use fewer channels entries")
        if self.perceptual_weight > 0 and tuple(self.image_shape) != SHIPPED_SHAPE:
            raise ConfigError(f"perceptual_weight needs the shipped judge, which reads 1×28×28 images, not "
                              f"{'×'.join(map(str, self.image_shape))}; set perceptual_weight=0")
        if self.adversarial_weight > 0 and min(height, width) // 2 ** self.d_layers < 3:
            raise ConfigError(f"d_layers {self.d_layers} leaves no patch to judge on {height}×{width} images "
                              f"(the side must be at least {3 * 2 ** self.d_layers}); use fewer d_layers")
        check_weights("autoencoder config", self._weight_count())

    @property
    def factor(self) -> int:
        """f: how many pixels of each side one latent position stands for."""
        return 2 ** len(self.channels)

    def _weight_count(self) -> int:
        """About how many weights the encoder, the decoder and D have (3×3 convs; biases and norms left out)."""
        widths, c = self.channels, self.latent_channels
        levels = sum(2 * self.blocks * w * w + w * nxt for w, nxt in zip(widths, (*widths[1:], widths[-1]), strict=True))
        one_way = self.image_shape[0] * widths[0] + levels + 2 * widths[-1] ** 2 + 2 * c * widths[-1]
        discriminator = patch_weights(self.image_shape[0], self.d_width, self.d_layers) if self.adversarial_weight else 0
        return 9 * 2 * one_way + discriminator


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with groups of at least 4 channels and at most 32 groups (LDM: 32 groups of its 128+ channels)."""
    groups = next(g for g in range(min(32, max(1, channels // 4)), 0, -1) if channels % g == 0)
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResidualBlock(nn.Module):
    """x + conv(SiLU(norm(conv(SiLU(norm(x)))))), a 1×1 conv on the skip when the width changes (LDM's ResnetBlock)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(group_norm(in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1),
                                  group_norm(out_channels), nn.SiLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Encoder(nn.Module):
    """Image in [0, 1] → 2c maps (μ and log σ², unclamped) at H/f × W/f: a conv stem, then per level
    ``blocks`` residual blocks at width w_i and a stride-2 conv to w_{i+1}, a residual block, norm, SiLU, conv."""

    def __init__(self, image_channels: int, widths: tuple[int, ...], blocks: int, latent_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(image_channels, widths[0], 3, padding=1)]
        for width, following in zip(widths, (*widths[1:], widths[-1]), strict=True):
            layers += [ResidualBlock(width, width) for _ in range(blocks)]
            layers.append(nn.Conv2d(width, following, 3, stride=2, padding=1))
        layers += [ResidualBlock(widths[-1], widths[-1]), group_norm(widths[-1]), nn.SiLU(),
                   nn.Conv2d(widths[-1], 2 * latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2.0 - 1.0)


class Decoder(nn.Module):
    """Latent → image logits (the model applies the sigmoid): the encoder mirrored, nearest ×2 + conv per level."""

    def __init__(self, image_channels: int, widths: tuple[int, ...], blocks: int, latent_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, widths[-1], 3, padding=1), ResidualBlock(widths[-1], widths[-1])]
        for width, previous in zip(reversed(widths), (widths[-1], *reversed(widths[1:])), strict=True):
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(previous, width, 3, padding=1)]
            layers += [ResidualBlock(width, width) for _ in range(blocks)]
        layers += [group_norm(widths[0]), nn.SiLU(), nn.Conv2d(widths[0], image_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)


def judge_distance(judge: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS's distance (Zhang et al. 2018, Eq. 1) in the judge's conv blocks, with unit weights w_l, per image:

        d(a, b) = Σ_l 1/(H_l·W_l) Σ_{h,w} ‖φ̂_l(a)_{hw} − φ̂_l(b)_{hw}‖²,

    φ̂_l: block l's feature map (after its ReLU, before its pool; ``judge_feature_map``) unit-normalised over
    channels at each position, so each block adds at most 2. Gradients flow into ``a`` only; run the judge in
    eval mode (batch-norm running statistics)."""
    total = a.new_zeros(a.shape[0])
    for block in range(len(judge.body)):
        with torch.no_grad():
            target = F.normalize(judge_feature_map(judge, b, block).float(), dim=1, eps=1e-10)
        features = F.normalize(judge_feature_map(judge, a, block).float(), dim=1, eps=1e-10)
        total = total + (features - target).square().sum(1).flatten(1).mean(1)
    return total


class Autoencoder(GenerativeModel):
    """A KL-regularised autoencoder. ``encode``/``decode`` are its use (the latent space of latent diffusion);
    it does not ``sample``. After each epoch the training loop draws ``preview``: original | reconstruction pairs."""

    kind = "autoencoder"
    config_class = AutoencoderConfig
    preview_group = ("original", "reconstruction")

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        config = config or AutoencoderConfig()
        super().__init__(config)
        channels = config.image_shape[0]
        self.encoder = Encoder(channels, config.channels, config.blocks, config.latent_channels)
        self.decoder = Decoder(channels, config.channels, config.blocks, config.latent_channels)
        if config.adversarial_weight > 0:
            self.discriminator = PatchDiscriminator(channels, config.d_width, config.d_layers)
        # The judge is a frozen helper, not part of this model: kept out of the module tree (neither saved
        # nor switched to training mode), loaded when the perceptual term first needs it.
        self.__dict__["_judge"] = None
        self._for_g: tuple[torch.Tensor, ...] | None = None  # D's phase → the autoencoder's phase

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(c, H/f, W/f): the shape of one image's latent."""
        _, height, width = self.config.image_shape
        f = self.config.factor
        return self.config.latent_channels, height // f, width // f

    @property
    def monitor_columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("D/real_prob", "D/fake_prob") if self.config.adversarial_weight > 0 else ()

    @property
    def grid_columns(self) -> int | None:
        return 4 * len(self.preview_group)  # four pairs per row

    # ----- use -----
    def _images(self, images: Any) -> torch.Tensor:
        channels = self.config.image_shape[0]
        batch = image_batch(images, channels, verb="the autoencoder", mismatch=f"this autoencoder reads {channels}-channel images,")
        return batch.to(self.device)

    def _moments(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and log σ² (clamped to LOGVAR_RANGE) of q(z|x), for float images already on the device (no checks)."""
        mean, logvar = self.encoder(images).chunk(2, dim=1)  # the encoder called whole: the precision hooks see it
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(latents))

    @inference
    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z|x), each N×c×H/f×W/f, for images N×C×H×W (or C×H×W) in [0, 1] or uint8."""
        return self._moments(self._images(images))

    @inference
    def encode(self, images: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latents N×c×H/f×W/f on the model's device: the posterior mean μ, or with ``sample`` a draw
        μ + σ·ε, ε ~ N(0, I) from ``generator`` (a CPU generator: the same draw on every device) or the global RNG."""
        mean, logvar = self.posterior(images)
        if not sample:
            return mean
        return DiagonalGaussian(mean, torch.exp(0.5 * logvar)).sample(generator)

    @inference
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (N×C×f·h×f·w) from latents N×c×h×w (any h, w: the decoder is fully convolutional)."""
        c = self.config.latent_channels
        if not torch.is_tensor(latents) or latents.dim() != 4 or latents.shape[1] != c or not latents.is_floating_point():
            shape = tuple(latents.shape) if torch.is_tensor(latents) else type(latents).__name__
            raise ConfigError(f"decode expects float latents N×{c}×h×w, got {shape}")
        return self._decode(latents.to(self.device, torch.float32))

    @inference
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)) with the posterior mean, N×C×H×W in [0, 1]."""
        return self.decode(self.encode(images))

    @torch.no_grad()
    def latent_scale(self, dataset: Any, max_images: int = 2_000, seed: int = 0, batch_size: int = 500) -> float:
        """1 / std of sampled latents z ~ q(z|x) over up to ``max_images`` images of ``dataset`` (a genlab Dataset;
        a random subset chosen by ``seed`` when it holds more), every latent element pooled: LDM's
        ``scale_factor``, by which the second stage multiplies latents so that they have unit variance. LDM takes
        it from one batch; 2,000 images (392,000 latent values at 4×7×7) pin it to well under 1 %, for a third of
        the 18 s that 6,000 took (the default first stage at 28×28, one CPU thread)."""
        check_size("max_images", max_images, 1 << 31)
        check_size("batch_size", batch_size, 1 << 20)
        if len(dataset) == 0:
            raise ConfigError(f"latent_scale needs images; dataset {getattr(dataset, 'name', '')!r} is empty")
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(dataset), generator=generator)[:max_images] if len(dataset) > max_images else torch.arange(len(dataset))
        total = torch.zeros((), dtype=torch.float64)
        squares, count = torch.zeros((), dtype=torch.float64), 0
        for chunk in index.split(batch_size):
            z = self.encode(dataset.float_images(chunk), sample=True, generator=generator).double().cpu()
            total, squares, count = total + z.sum(), squares + z.square().sum(), count + z.numel()
        variance = (squares - total.square() / count) / max(count - 1, 1)  # Bessel-corrected, as torch.std
        std = math.sqrt(max(float(variance), 0.0))
        if not std > 0:
            raise ConfigError("latent_scale: the latents do not vary (std 0); is the autoencoder trained?")
        return 1.0 / std

    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        raise ConfigError("an autoencoder does not sample on its own: it is the first stage of latent diffusion; train one "
                          "on its latents with `genlab train diffusion --first-stage RUN` (or use encode/decode/reconstruct)")

    @torch.no_grad()
    def preview(self, n: int, *, seed: int | None, dataset: Any) -> torch.Tensor:
        """The training loop's per-epoch picture: ``n // 2`` images of ``dataset`` (chosen by ``seed``, the same
        every epoch), each followed by its reconstruction; ``grid_columns`` puts four pairs on a row."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        index = torch.randperm(len(dataset), generator=generator)[:max(1, n // len(self.preview_group))]
        original = dataset.float_images(index).to(self.device)
        return torch.stack([original, self.reconstruct(original)], dim=1).flatten(0, 1)

    # ----- the objective -----
    def judge(self) -> Any | None:
        """The frozen shipped judge for the perceptual term (None when perceptual_weight is 0), on this model's device."""
        if self.config.perceptual_weight == 0:
            return None
        if self.__dict__["_judge"] is None:
            judge = resolve_judge(None, tuple(self.config.image_shape)).eval()
            judge.requires_grad_(False)
            self.__dict__["_judge"] = judge
        self.__dict__["_judge"] = self.__dict__["_judge"].to(self.device)
        return self.__dict__["_judge"]

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """μ, log σ² and the reconstruction x̂ = D(μ + σ·ε) of one reparameterised draw (global RNG)."""
        mean, logvar = self._moments(x)
        return mean, logvar, self._decode(mean + torch.exp(0.5 * logvar) * torch.randn_like(mean))

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The autoencoder's objective per image, averaged over the batch (see the module docstring):
        Σ|x − x̂| + λ_p·(C·H·W)·d(x, x̂) + λ_KL·KL + λ_adv·(−mean D(x̂)). Logged: "l1" and "mse" per pixel,
        "kl" in nats per image, "perceptual" (d per image) and "adversarial" (the hinge term) when on."""
        c = self.config
        handed, self._for_g = self._for_g, None
        mean, logvar, reconstruction = handed[1:] if handed is not None and handed[0] is x else self._forward(x)
        error = reconstruction - x
        l1 = error.abs().flatten(1).sum(1).mean()
        kl = kl_to_standard_normal(mean.flatten(1), torch.exp(0.5 * logvar).flatten(1)).mean()
        loss = l1 + c.kl_weight * kl
        out = {"l1": l1.detach() / math.prod(c.image_shape), "mse": error.detach().square().mean(), "kl": kl}
        judge = self.judge()
        if judge is not None:
            out["perceptual"] = judge_distance(judge, reconstruction, x).mean()
            loss = loss + c.perceptual_weight * math.prod(c.image_shape) * out["perceptual"]
        if c.adversarial_weight > 0:
            with frozen(self.discriminator):
                out["adversarial"] = hinge_g_loss(self.discriminator(reconstruction * 2.0 - 1.0))
            loss = loss + c.adversarial_weight * out["adversarial"]
        return {"loss": loss, **out}

    def discriminator_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """D's hinge loss (Lim & Ye 2017; Miyato et al. 2018, Eq. 16) on the real batch and its reconstruction,
        E[max(0, 1 − D(x))] + E[max(0, 1 + D(x̂))] over every patch logit. The reconstruction, with its graph,
        is handed to the autoencoder's phase, which reuses this batch."""
        if torch.is_grad_enabled():
            forward = self._forward(x)
            self._for_g = (x, *forward)
            reconstruction = forward[2].detach()
        else:
            with torch.no_grad():
                reconstruction = self._forward(x)[2]
        real, fake = self.discriminator(x * 2.0 - 1.0), self.discriminator(reconstruction * 2.0 - 1.0)
        return {"loss": hinge_d_loss(real, fake), **contest_stats(real, fake)}

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        self.judge()  # load it now: a missing judge is an error before the first step, not during it
        parameters = [*self.encoder.parameters(), *self.decoder.parameters()]
        optimizers = {"AE": adam(parameters, lr=train.lr)}
        if self.config.adversarial_weight > 0:
            # LDM trains D with Adam β = (0.5, 0.9).
            optimizers["D"] = adam(self.discriminator.parameters(), lr=self.config.lr_d or train.lr, betas=(0.5, 0.9))
        return optimizers

    def training_phases(self) -> list[Phase]:
        if self.config.adversarial_weight == 0:
            return [Phase("AE", optimizer="AE", loss=self.loss)]
        return [Phase("D", optimizer="D", loss=self.discriminator_loss),
                Phase("AE", optimizer="AE", loss=self.loss, new_batch=False)]


__all__ = ["Autoencoder", "AutoencoderConfig", "judge_distance"]
