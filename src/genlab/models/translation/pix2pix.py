"""Pix2pix: paired image-to-image translation with a conditional GAN (Isola, Zhu, Zhou & Efros 2017,
"Image-to-Image Translation with Conditional Adversarial Networks", arXiv:1611.07004; equation numbers of
the CVPR version).

G, a U-Net (``nets.UNetGenerator``), maps an input x to an output; D, a PatchGAN, sees the input and an
output side by side (channels concatenated) and scores each patch as real (the true target y) or fake
(G(x)). The objective (Eq. 4) is

    G* = arg min_G max_D  L_cGAN(G, D) + λ·L_L1(G),  λ = 100,

with L_cGAN(G, D) = E[log D(x, y)] + E[log(1 − D(x, G(x)))] (Eq. 1) and L_L1(G) = E‖y − G(x)‖₁ (Eq. 3).
The L1 term gets the low frequencies right; alone it averages the plausible outputs into a blur, and the
adversarial term, judging patches, asks for sharp, realistic texture. As in the paper (§3.3) G maximises
log D(x, G(x)) (the non-saturating form) and D's objective is halved. ``objective`` picks the paper's
ablation (Table 1): "l1_cgan" (the full loss), "l1" (no D at all) or "cgan" (λ = 0).

Training pairs come from ``genlab.data.pairs`` (a Dataset whose ``sources`` are the inputs); the loop hands
each batch's inputs to the loss functions as their third argument.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

import torch

from genlab.config import MAX_LAYERS, TrainConfig, check_choice, check_positive, check_size, check_weights, documented
from genlab.errors import ConfigError
from genlab.models.base import Phase
from genlab.models.gan.losses import contest_stats, minimax_d_loss, ns_g_loss
from genlab.models.gan.model import frozen
from genlab.models.translation.common import (
    Translator,
    as_channels,
    batch_psnr,
    check_translation_config,
    l1,
    patch_discriminator,
    patch_weights,
    to_model_range,
)
from genlab.models.translation.nets import MAX_UNET_DEPTH, UNetGenerator, unet_depth

Task = Literal["edges", "masked", "gray", "side-by-side", "folders"]
Objective = Literal["l1_cgan", "l1", "cgan"]
Direction = Literal["a2b", "b2a"]
Norm = Literal["batch", "instance"]
ONE_CHANNEL_TASKS = ("edges", "gray")  # their inputs are one-channel whatever the images are


@dataclass
class Pix2PixConfig:
    """What pix2pix model to build; ``image_shape`` is the shape of the targets (G's outputs).

    Narrower than the paper's (widths 32, not 64) so that 28–64 px images train on a CPU; the U-Net goes
    down to a 1×1 bottleneck as the paper's does (5 levels at 28 and 32 px, 6 at 64), and the PatchGAN's
    patch is 34×34 (2 stride-2 layers; the paper's 70×70 suits 256 px images: see ``nets.receptive_field``).
    """

    image_shape: tuple[int, int, int] = documented((1, 28, 28), "(C, H, W) of the targets; sides of at least 8 pixels")
    source_channels: int | None = documented(None, "channels of the inputs (default: 1 for the edges and gray tasks, "
                                                   "else the targets')")
    task: Task = documented("edges", "how the inputs are made: from each image (edges: Sobel + threshold; masked: a "
                                     "centred hole; gray: luma of RGB), or pairs you bring (side-by-side A|B images, or "
                                     "two folders matched by file name)")
    direction: Direction = documented("a2b", "side-by-side pairs: a2b learns the left half → the right half, b2a the reverse")
    objective: Objective = documented("l1_cgan", "G's loss: l1_cgan (Isola Eq. 4), l1 only (no D) or cgan only (λ = 0)")
    l1_weight: float = documented(100.0, "λ of the L1 term (Isola et al. Eq. 4: 100)")
    g_width: int = documented(32, "G's first conv width; doubles per level up to 8× (the paper: 64)")
    g_depth: int | None = documented(None, "U-Net levels (default: down to a 1×1 bottleneck: 5 at 28–32 px, 6 at 64)")
    dropout: float = documented(0.5, "dropout in the first three decoder layers, the paper's only noise (0: none)")
    d_width: int = documented(32, "D's first conv width (the paper: 64)")
    d_layers: int = documented(2, "PatchGAN stride-2 layers: 1, 2, 3 → 16, 34, 70 px patches (the paper's 70 for 256 px)")
    norm: Norm = documented("batch", "normalisation in G and D")
    lr_g: float = documented(2e-4, "G's Adam learning rate (Isola et al. §3.3: 0.0002)")
    lr_d: float = documented(2e-4, "D's Adam learning rate")
    betas: tuple[float, float] = documented((0.5, 0.999), "Adam's β1,β2 (Isola et al. §3.3)")

    def __post_init__(self) -> None:
        check_translation_config(self)
        check_choice("task", self.task, Task)
        check_choice("direction", self.direction, Direction)
        check_choice("objective", self.objective, Objective)
        check_choice("norm", self.norm, Norm)
        if self.direction == "b2a" and self.task != "side-by-side":
            raise ConfigError(f"direction 'b2a' picks the half of side-by-side A|B images to learn from; task {self.task!r} "
                              "has one direction: leave direction at 'a2b'")
        check_positive("l1_weight", self.l1_weight, allow_zero=True)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.g_depth is not None:
            check_size("g_depth", self.g_depth, MAX_UNET_DEPTH)
        if self.source_channels is None and self.task in ONE_CHANNEL_TASKS:
            self.source_channels = 1
        if self.task == "gray" and self.image_shape[0] != 3:
            raise ConfigError("task 'gray' (grayscale → colour) needs RGB targets: image_shape must have 3 channels")
        check_weights("pix2pix config", self._weight_count())

    @property
    def depth(self) -> int:
        return self.g_depth or unet_depth(*self.image_shape[1:])

    def _weight_count(self) -> int:
        """About how many weights G and D have (4×4 convs; biases left out)."""
        channels, inputs, w = self.image_shape[0], self.source_channels or self.image_shape[0], self.g_width
        widths = [w * min(2 ** i, 8) for i in range(min(self.depth, MAX_LAYERS))]
        down = inputs * widths[0] + sum(a * b for a, b in itertools.pairwise(widths))
        up = widths[-1] * widths[-2] if len(widths) > 1 else 0
        up += sum(2 * widths[j] * widths[j - 1] for j in range(1, len(widths) - 1)) + 2 * widths[0] * channels
        discriminator = patch_weights(inputs + channels, self.d_width, self.d_layers) if self.objective != "l1" else 0
        return 16 * (down + up) + discriminator


class Pix2Pix(Translator):
    """A pix2pix model. ``translate(inputs)`` is its use. After each epoch the training loop draws
    ``preview``: groups of input | output | target from the training pairs."""

    kind = "pix2pix"
    config_class = Pix2PixConfig
    preview_group = ("input", "output", "target")

    def __init__(self, config: Pix2PixConfig | None = None) -> None:
        config = config or Pix2PixConfig()
        super().__init__(config)
        channels = config.image_shape[0]
        self.generator = UNetGenerator(self.source_channels, channels, config.g_width, config.depth, config.norm, config.dropout)
        if config.objective != "l1":
            # D judges (input, output) pairs: the conditional GAN of Eq. 1 (an unconditional D scored worse, §4.3).
            self.discriminator = patch_discriminator(config, self.source_channels + channels)
        self._fakes_for_g: tuple[torch.Tensor, torch.Tensor] | None = None  # D's phase → G's phase

    @property
    def monitor_columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("D/real_prob", "D/fake_prob") if self.config.objective != "l1" else ()

    def generator_for(self, direction: str) -> torch.nn.Module:
        return self.generator

    @property
    def receptive_field(self) -> int | None:
        """The side of the square of the (input, output) pair each of D's logits judges; None without D."""
        return self.discriminator.receptive_field if self.config.objective != "l1" else None

    @torch.no_grad()
    def preview(self, n: int, *, seed: int | None, dataset: Any) -> torch.Tensor:
        """``n // 3`` training pairs (chosen by ``seed``, the same every epoch) as input | output | target tiles."""
        index = self.preview_index(n, seed, dataset)
        inputs, targets = dataset.float_sources(index), dataset.float_images(index)
        outputs = self.translate(inputs.to(self.device)).to(targets.device)
        channels = max(inputs.shape[1], targets.shape[1])
        tiles = torch.stack([as_channels(t, channels) for t in (inputs, outputs, targets)], dim=1)
        return tiles.flatten(0, 1)

    # ----- the objective -----
    def discriminator_loss(self, y: torch.Tensor, labels: torch.Tensor | None = None,
                           x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """D's half of Eq. 1 on the real pairs (x, y) and the fakes (x, G(x)), halved (Isola §3.3)."""
        source, target = to_model_range(_inputs(x)), to_model_range(y)
        if torch.is_grad_enabled():
            fake_with_graph = self.generator(source)  # handed to G's phase, which reuses this batch
            self._fakes_for_g = (fake_with_graph, y)
            fake = fake_with_graph.detach()
        else:
            with torch.no_grad():
                fake = self.generator(source)
        real_logits = self.discriminator(torch.cat([source, target], dim=1))
        fake_logits = self.discriminator(torch.cat([source, fake], dim=1))
        return {"loss": 0.5 * minimax_d_loss(real_logits, fake_logits), **contest_stats(real_logits, fake_logits)}

    def generator_loss(self, y: torch.Tensor, labels: torch.Tensor | None = None,
                       x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """G's loss (Eq. 4): −log D(x, G(x)) (non-saturating, §3.3) + λ·‖y − G(x)‖₁ (Eq. 3); the first term
        is left out for objective "l1", the second for "cgan". The L1 logged is in [0, 1] units (half the
        trained one, which is on G's [-1, 1] range as in the paper's code)."""
        source, target = to_model_range(_inputs(x)), to_model_range(y)
        fakes, self._fakes_for_g = self._fakes_for_g, None
        fake = fakes[0] if fakes is not None and fakes[1] is y else self.generator(source)
        reconstruction = l1(fake, target)
        out = {"l1": 0.5 * reconstruction.detach(), "psnr": batch_psnr(fake.detach(), target)}
        c = self.config
        loss = c.l1_weight * reconstruction if c.objective != "cgan" else fake.new_zeros(())
        if c.objective != "l1":
            with frozen(self.discriminator):
                fake_logits = self.discriminator(torch.cat([source, fake], dim=1))
            adversarial = ns_g_loss(fake_logits)
            loss = loss + adversarial
            out.update(adversarial=adversarial, fake_prob=torch.sigmoid(fake_logits).mean())
        return {"loss": loss, **out}

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """Adam for G and D with ``lr_g``/``lr_d`` (``train.lr`` is not used, as for a GAN)."""
        d = self.discriminator.parameters() if self.config.objective != "l1" else None
        return self.adam_pair(self.generator.parameters(), d)

    def training_phases(self) -> list[Phase]:
        if self.config.objective == "l1":
            return [Phase("G", optimizer="G", loss=self.generator_loss)]
        return [Phase("D", optimizer="D", loss=self.discriminator_loss),
                Phase("G", optimizer="G", loss=self.generator_loss, new_batch=False)]


def _inputs(x: torch.Tensor | None) -> torch.Tensor:
    if x is None:
        raise ConfigError("pix2pix trains on (input, target) pairs: train it on a dataset with sources "
                          "(genlab.data.pairs.make_pairs, load_side_by_side or load_folder_pairs)")
    return x


__all__ = ["Pix2Pix", "Pix2PixConfig"]
