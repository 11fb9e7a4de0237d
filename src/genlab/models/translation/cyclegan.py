"""CycleGAN: unpaired image-to-image translation (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks", arXiv:1703.10593; equation numbers of the ICCV version).

Two generators, G: A → B and F: B → A (ResNet-block nets), and two PatchGAN discriminators, D_B (real B vs
G(a)) and D_A (real A vs F(b)). With no pairs to copy from, what ties an output to its input is the cycle:
F(G(a)) should give a back, and G(F(b)) b. The full objective (Eq. 3), with the least-squares adversarial
loss of §4 (Mao et al. 2017) in place of Eq. 1's log loss:

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + λ·L_cyc(G, F) + λ_id·λ·L_identity(G, F)

- L_GAN: G minimises E[(D_B(G(a)) − 1)²]; D_B minimises ½(E[(D_B(b) − 1)²] + E[D_B(G(a))²]) (§4: D's
  objective halved), and likewise for F and D_A;
- L_cyc = E‖F(G(a)) − a‖₁ + E‖G(F(b)) − b‖₁ (Eq. 2), λ = 10;
- L_identity = E‖G(b) − b‖₁ + E‖F(a) − a‖₁ (§5.2, after Taigman et al. 2017), weighted 0.5·λ: it keeps a
  generator from changing what already belongs to its target domain (needs A and B of one channel count).

D trains on fakes drawn through a history pool of 50 (``pool.ImagePool``). The paper's learning rate
schedule, constant for the first half and then linear to 0, is the loop's: ``TrainConfig(lr_schedule=
"linear", lr_decay_start=0.5)`` (what `genlab train cyclegan` uses by default).

Training data: ``genlab.data.domains.unpaired(a, b)`` (domain B as the images, A as the sources).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from genlab.config import MAX_BLOCKS, TrainConfig, check_choice, check_positive, check_size, check_weights, documented
from genlab.errors import ConfigError
from genlab.models.base import Phase
from genlab.models.gan.losses import lsgan_d_loss
from genlab.models.gan.model import frozen
from genlab.models.translation.common import (
    Translator,
    as_channels,
    check_translation_config,
    l1,
    patch_discriminator,
    patch_weights,
    to_model_range,
)
from genlab.models.translation.nets import ResNetGenerator
from genlab.models.translation.pool import ImagePool

Norm = Literal["batch", "instance"]
MAX_POOL = 10_000


@dataclass
class CycleGANConfig:
    """What CycleGAN to build; ``image_shape`` is domain B's (C, H, W), ``source_channels`` domain A's channels.

    Narrower than the paper's (widths 32, not 64; 6 residual blocks, the paper's for 128 px) for 28–64 px
    images on a CPU; the PatchGAN's patch is 34×34 (2 stride-2 layers; the paper's 70×70 suits 256 px).
    ``domain_a``/``domain_b`` only record what the domains were (e.g. ``fashion-mnist:Sneaker``): labels, and
    the default images of `genlab translate`.
    """

    image_shape: tuple[int, int, int] = documented((1, 28, 28), "(C, H, W) of domain B's images; sides of at least 8 pixels")
    source_channels: int | None = documented(None, "channels of domain A's images (default: domain B's)")
    domain_a: str = documented("", "domain A: a dataset class (fashion-mnist:sneaker, by name or index), a dataset, "
                                    "an image folder or a .npz")
    domain_b: str = documented("", "domain B, in the same forms as domain A")
    g_width: int = documented(32, "width of G's and F's first conv (×4 in the residual blocks; the paper: 64)")
    g_blocks: int = documented(6, "residual blocks per generator (the paper: 6 at 128 px, 9 at 256)")
    d_width: int = documented(32, "D's first conv width (the paper: 64)")
    d_layers: int = documented(2, "PatchGAN stride-2 layers: 1, 2, 3 → 16, 34, 70 px patches (the paper's 70 for 256 px)")
    norm: Norm = documented("instance", "normalisation in the generators and Ds (the paper: instance)")
    cycle_weight: float = documented(10.0, "λ of the cycle-consistency loss (Zhu et al. Eq. 3: 10)")
    identity_weight: float = documented(0.5, "identity loss weight as a fraction of λ (Zhu et al. §5.2: 0.5; 0: off)")
    pool_size: int = documented(50, "fakes kept in each history pool for D (Zhu et al. §4: 50; 0: none)")
    lr_g: float = documented(2e-4, "Adam learning rate of G and F (Zhu et al. §4: 0.0002)")
    lr_d: float = documented(2e-4, "Adam learning rate of D_A and D_B")
    betas: tuple[float, float] = documented((0.5, 0.999), "Adam's β1,β2 (Zhu et al. §7.1)")

    def __post_init__(self) -> None:
        check_translation_config(self)
        check_choice("norm", self.norm, Norm)
        check_size("g_blocks", self.g_blocks, MAX_BLOCKS, minimum=0)
        check_size("pool_size", self.pool_size, MAX_POOL, minimum=0)
        check_positive("cycle_weight", self.cycle_weight, allow_zero=True)
        check_positive("identity_weight", self.identity_weight, allow_zero=True)
        for option in ("domain_a", "domain_b"):
            if not isinstance(getattr(self, option), str):
                raise ConfigError(f"{option} must be text naming the domain, got {getattr(self, option)!r}")
        a_channels, b_channels = self.source_channels or self.image_shape[0], self.image_shape[0]
        if self.identity_weight > 0 and a_channels != b_channels:
            raise ConfigError(f"the identity loss compares G(b) with b, so domains A ({a_channels} channel(s)) and B "
                              f"({b_channels}) must have one channel count; set identity_weight 0 (--identity-weight 0)")
        check_weights("CycleGAN config", self._weight_count())

    def _weight_count(self) -> int:
        """About how many weights the two generators and two Ds have (biases left out)."""
        a, b, w = self.source_channels or self.image_shape[0], self.image_shape[0], self.g_width
        body = 9 * (2 * w * w + 8 * w * w) * 2 + self.g_blocks * 2 * 9 * 16 * w * w
        generators = 2 * body + 49 * w * (a + b) * 2
        return generators + patch_weights(a, self.d_width, self.d_layers) + patch_weights(b, self.d_width, self.d_layers)


def cycle_consistency_loss(g: Callable[[torch.Tensor], torch.Tensor], f: Callable[[torch.Tensor], torch.Tensor],
                           a: torch.Tensor, b: torch.Tensor, fake_b: torch.Tensor | None = None,
                           fake_a: torch.Tensor | None = None) -> torch.Tensor:
    """L_cyc(G, F) = E‖F(G(a)) − a‖₁ + E‖G(F(b)) − b‖₁ (Zhu et al. Eq. 2): 0 exactly when each generator
    undoes the other on these images (e.g. both the identity). ``fake_b`` = G(a) and ``fake_a`` = F(b) when
    already computed."""
    fake_b = g(a) if fake_b is None else fake_b
    fake_a = f(b) if fake_a is None else fake_a
    return l1(f(fake_b), a) + l1(g(fake_a), b)


def lsgan_generator_loss(logits: torch.Tensor) -> torch.Tensor:
    """E[(D(G(x)) − 1)²] (Zhu et al. §4, "Training details"; Mao et al. 2017 with c = 1), not halved."""
    return (logits - 1.0).square().mean()


class CycleGAN(Translator):
    """A CycleGAN. ``translate(images, "a2b")`` runs G, ``translate(images, "b2a")`` F. After each epoch the
    training loop draws ``preview``: a | G(a) | F(G(a)) | b | F(b) | G(F(b)) for training images of each domain."""

    kind = "cyclegan"
    config_class = CycleGANConfig
    directions = ("a2b", "b2a")
    preview_group = ("a", "G(a)", "F(G(a))", "b", "F(b)", "G(F(b))")
    monitor_columns = ("D/real_score_b", "D/fake_score_b")

    def __init__(self, config: CycleGANConfig | None = None) -> None:
        config = config or CycleGANConfig()
        super().__init__(config)
        a, b = self.source_channels, config.image_shape[0]
        self.generator_ab = ResNetGenerator(a, b, config.g_width, config.g_blocks, config.norm)  # G
        self.generator_ba = ResNetGenerator(b, a, config.g_width, config.g_blocks, config.norm)  # F
        self.discriminator_a = patch_discriminator(config, a)
        self.discriminator_b = patch_discriminator(config, b)
        self.pool_a = ImagePool(config.pool_size, self.source_shape)
        self.pool_b = ImagePool(config.pool_size, tuple(config.image_shape))
        self._fakes_for_d: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # G's phase → D's phase

    def generator_for(self, direction: str) -> nn.Module:
        return self.generator_ab if direction == "a2b" else self.generator_ba

    @property
    def receptive_field(self) -> int:
        return self.discriminator_b.receptive_field

    @torch.no_grad()
    def preview(self, n: int, *, seed: int | None, dataset: Any) -> torch.Tensor:
        index = self.preview_index(n, seed, dataset)
        a, b = dataset.float_sources(index).to(self.device), dataset.float_images(index).to(self.device)
        fake_b, fake_a = self.translate(a, "a2b"), self.translate(b, "b2a")
        row = [a, fake_b, self.translate(fake_b, "b2a"), b, fake_a, self.translate(fake_a, "a2b")]
        channels = max(a.shape[1], b.shape[1])
        return torch.stack([as_channels(t, channels) for t in row], dim=1).flatten(0, 1).cpu()

    # ----- the objective -----
    def generator_loss(self, b: torch.Tensor, labels: torch.Tensor | None = None,
                       a: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """G's and F's loss (Eq. 3 with the LSGAN terms of §4 and the identity loss of §5.2); the fakes go on
        to D's phase, which reuses this batch."""
        if a is None:
            raise ConfigError("CycleGAN trains on two domains: give it genlab.data.domains.unpaired(a, b)")
        real_a, real_b = to_model_range(a), to_model_range(b)
        fake_b, fake_a = self.generator_ab(real_a), self.generator_ba(real_b)
        cycle = cycle_consistency_loss(self.generator_ab, self.generator_ba, real_a, real_b, fake_b, fake_a)
        with frozen(self.discriminator_a), frozen(self.discriminator_b):
            adversarial_b = lsgan_generator_loss(self.discriminator_b(fake_b))
            adversarial_a = lsgan_generator_loss(self.discriminator_a(fake_a))
        c = self.config
        loss = adversarial_b + adversarial_a + c.cycle_weight * cycle
        out = {"adversarial_b": adversarial_b, "adversarial_a": adversarial_a, "cycle": cycle}
        if c.identity_weight > 0:
            identity = l1(self.generator_ab(real_b), real_b) + l1(self.generator_ba(real_a), real_a)
            loss = loss + c.identity_weight * c.cycle_weight * identity
            out["identity"] = identity
        if torch.is_grad_enabled():
            self._fakes_for_d = (fake_a.detach(), fake_b.detach(), b)
        return {"loss": loss, **out}

    def discriminator_loss(self, b: torch.Tensor, labels: torch.Tensor | None = None,
                           a: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """D_A's and D_B's least-squares losses (§4, each halved) on real images and pooled fakes."""
        if a is None:
            raise ConfigError("CycleGAN trains on two domains: give it genlab.data.domains.unpaired(a, b)")
        real_a, real_b = to_model_range(a), to_model_range(b)
        fakes, self._fakes_for_d = self._fakes_for_d, None
        if fakes is not None and fakes[2] is b:
            fake_a, fake_b = fakes[0], fakes[1]
        else:
            with torch.no_grad():
                fake_a, fake_b = self.generator_ba(real_b), self.generator_ab(real_a)
        fake_a, fake_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        real_score_a, fake_score_a = self.discriminator_a(real_a), self.discriminator_a(fake_a)
        real_score_b, fake_score_b = self.discriminator_b(real_b), self.discriminator_b(fake_b)
        loss_a, loss_b = lsgan_d_loss(real_score_a, fake_score_a), lsgan_d_loss(real_score_b, fake_score_b)
        return {"loss": loss_a + loss_b, "loss_a": loss_a, "loss_b": loss_b,
                "real_score_b": real_score_b.mean(), "fake_score_b": fake_score_b.mean()}

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """One Adam for both generators and one for both Ds (``lr_g``/``lr_d``; ``train.lr`` is not used).
        The paper's schedule is the loop's: TrainConfig(lr_schedule="linear", lr_decay_start=0.5)."""
        generators = [*self.generator_ab.parameters(), *self.generator_ba.parameters()]
        discriminators = [*self.discriminator_a.parameters(), *self.discriminator_b.parameters()]
        return self.adam_pair(generators, discriminators)

    def training_phases(self) -> list[Phase]:
        # G first, then D on G's fresh fakes (through the pool), as in the paper's code.
        return [Phase("G", optimizer="G", loss=self.generator_loss),
                Phase("D", optimizer="D", loss=self.discriminator_loss, new_batch=False)]


__all__ = ["CycleGAN", "CycleGANConfig", "cycle_consistency_loss", "lsgan_generator_loss"]
