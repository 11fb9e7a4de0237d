"""ESRGAN's parts (Wang et al. 2018, "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
ECCV Workshops, arXiv:1809.00219): the RRDB generator (§3.1, Fig. 3-4), the relativistic average
discriminator's losses (§3.2, Eq. 1-2, after Jolicoeur-Martineau 2018), the perceptual loss on features
before the activation (§3.3) and network interpolation (§3.4). ``model.py`` wires them into ``genlab.SR``
as the variants ``rrdb`` (PSNR-oriented, L1) and ``esrgan`` (RaGAN + perceptual + L1).

The perceptual loss's feature network. The paper uses a pretrained VGG19 (conv5_4, before the ReLU);
those weights cannot be downloaded here, and genlab's own judge is a 28×28 Fashion-MNIST classifier
(grayscale garments, 28 px: it cannot take a 96×96 colour photo patch). genlab therefore uses a VGG-style
stack with fixed random weights (He initialisation, a fixed seed, never trained), its features taken
before the activations (§3.3). Random-weight conv features are a known perceptual/texture measure:
He, Wang & Hopcroft 2016 ("A Powerful Generative Model Using Random Weights for the Deep Image
Representation") synthesise textures and invert images with them, and Amir & Weiss 2021 ("Understanding
and Simplifying Perceptual Distances", CVPR) report random-weight networks close to trained ones as
perceptual distances. They need no download, no training and no checkpoint (rebuilt from the seed when
training starts), and take any size and 1 or 3 channels. The discriminator's own features were the other
candidate; they move while D trains, so the loss would not measure one fixed thing.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.sr.nets import ResidualSR

RESIDUAL_SCALE = 0.2  # β of Wang et al. §3.1 ("residual scaling"), in every dense block and every RRDB
FEATURE_SEED = 20180901  # the random feature network's weights: the same for every run
FEATURE_WIDTHS = (32, 64)  # the random VGG-style stack: two conv pairs, a max-pool between them


class DenseBlock(nn.Module):
    """Five 3×3 convs, each seeing the block input and every earlier conv's output (dense connections,
    Wang et al. Fig. 4 right), LeakyReLU(0.2) after all but the last; output = x + β·conv5(...)."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(channels + i * growth, growth if i < 4 else channels, 3, padding=1)
                                   for i in range(5))
        for conv in self.convs:  # §3.1 "smaller initialization": He init scaled by 0.1 (the authors' code)
            nn.init.kaiming_normal_(conv.weight, a=0.0, mode="fan_in")
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs[:4]:
            features.append(F.leaky_relu(conv(torch.cat(features, dim=1)), 0.2))
        return x + RESIDUAL_SCALE * self.convs[4](torch.cat(features, dim=1))  # residual scaling, §3.1


class RRDB(nn.Module):
    """Residual-in-residual dense block (Wang et al. Fig. 4 left): three dense blocks in a row, their
    output scaled by β and added to the block input."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.dense = nn.Sequential(*[DenseBlock(channels, growth) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.dense(x)


class RRDBNet(ResidualSR):
    """ESRGAN's generator: low-res image in [0, 1] → high-res image (≈ [0, 1], not clamped).

        conv3×3 ─┬─ B RRDBs → conv3×3 ─(+)─ [nearest ×2 → conv3×3 → LReLU] × log2(scale) → conv3×3 → LReLU → conv3×3
                 └──────── global skip ──┘

    No batch norm anywhere (§3.1: BN makes artifacts when training and test statistics differ). Upsampling
    is nearest-neighbour interpolation then a conv, as in the authors' code. ``residual`` (genlab's choice,
    as for SRResNet): the output is added to the bicubic upsampling of the input and the last conv starts
    at zero, so an untrained net equals bicubic; the paper's net has no such skip (``residual=False``).
    Fully convolutional: any input size (tiling relies on it).
    """

    def __init__(self, image_channels: int, channels: int, blocks: int, scale: int, residual: bool, growth: int) -> None:
        super().__init__()
        self.scale, self.residual = scale, residual
        self.head = nn.Conv2d(image_channels, channels, 3, padding=1)
        self.blocks = nn.Sequential(*[RRDB(channels, growth) for _ in range(blocks)])
        self.after_blocks = nn.Conv2d(channels, channels, 3, padding=1)
        stages: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            stages += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, channels, 3, padding=1),
                       nn.LeakyReLU(0.2)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(channels, image_channels, 3, padding=1))
        self._finish(self.tail[-1])

    def context(self) -> int:
        """The receptive-field radius in low-res pixels, rounded up (the tiler computes it exactly)."""
        radius_low = 1 + 15 * len(self.blocks) + 1  # head, 15 convs per RRDB, the conv after them
        radius_high = sum(1 / 2 ** (i + 1) for i in range(int(math.log2(self.scale)))) + 2 / self.scale
        return math.ceil(max(radius_low + radius_high, 2 if self.residual else 0))


# ----------------------------------------------------------------------------------- relativistic losses


def relativistic_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss for the relativistic average GAN (Wang et al. Eq. 1; Jolicoeur-Martineau 2018, Eq. 12-13):

        D_Ra(x_r, x_f) = σ(C(x_r) − E_xf[C(x_f)])
        L_D = −E_xr[log D_Ra(x_r, x_f)] − E_xf[log(1 − D_Ra(x_f, x_r))]

    with C the raw logits and the expectations over the batch. log σ(z) = −softplus(−z) and
    log(1 − σ(z)) = −softplus(z), computed stably."""
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    return F.softplus(-real_vs_fake).mean() + F.softplus(fake_vs_real).mean()


def relativistic_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's adversarial loss, symmetrical to D's (Wang et al. Eq. 2):

        L_G = −E_xr[log(1 − D_Ra(x_r, x_f))] − E_xf[log D_Ra(x_f, x_r)]

    G gets gradients from both the real and the generated batch (the paper's point against SRGAN)."""
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    return F.softplus(real_vs_fake).mean() + F.softplus(-fake_vs_real).mean()


# ----------------------------------------------------------------------------------- perceptual features


class RandomFeatures(nn.Module):
    """A VGG-style conv stack with fixed random weights (see the module docstring for why):
    conv3×3 → ReLU → conv3×3 → ReLU → max-pool → conv3×3 → ReLU → conv3×3, widths FEATURE_WIDTHS.
    ``forward`` returns the two pre-activation maps that end each conv pair (the analogues of VGG's
    conv1_2 and conv2_2 before their ReLU, Wang et al. §3.3). Inputs in [0, 1]; frozen; not saved."""

    def __init__(self, image_channels: int, widths: tuple[int, int] = FEATURE_WIDTHS, seed: int = FEATURE_SEED) -> None:
        super().__init__()
        first, second = widths
        self.convs = nn.ModuleList([nn.Conv2d(image_channels, first, 3, padding=1), nn.Conv2d(first, first, 3, padding=1),
                                    nn.Conv2d(first, second, 3, padding=1), nn.Conv2d(second, second, 3, padding=1)])
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for conv in self.convs:  # He et al. 2015 normal init: unit-scale activations through the ReLUs
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in))
                conv.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        h = self.convs[1](F.relu(self.convs[0](images * 2.0 - 1.0)))
        shallow = h  # before the activation (§3.3: denser, and keeps brightness consistent)
        h = F.max_pool2d(F.relu(h), 2)
        deep = self.convs[3](F.relu(self.convs[2](h)))
        return [shallow, deep]


def perceptual_loss(features: nn.Module, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L_percep (Wang et al. Eq. 3 and §3.3): the L1 distance between the feature maps of the output and the
    target, taken before the activation, each map's mean absolute difference summed over the maps (the
    authors' code uses L1 for it). Gradients flow into ``sr`` only."""
    with torch.no_grad():
        targets = features(hr)
    return sum((F.l1_loss(a, b) for a, b in zip(features(sr), targets, strict=True)), sr.new_zeros(()))


# ----------------------------------------------------------------------------------- network interpolation


@torch.no_grad()
def interpolate_state(psnr_state: dict[str, torch.Tensor], gan_state: dict[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """Network interpolation (Wang et al. §3.4, Eq. 5): θ_G^INTERP = (1 − α) θ_G^PSNR + α θ_G^GAN, for every
    floating-point tensor of two generators of the same architecture; α = 0 gives the PSNR-oriented net,
    α = 1 the GAN one, exactly (the endpoints are copied, not computed). Other tensors come from the GAN net."""
    if psnr_state.keys() != gan_state.keys():
        raise ValueError("the two generators have different layers")
    if alpha == 0:
        return {k: v.clone() for k, v in psnr_state.items()}
    if alpha == 1:
        return {k: v.clone() for k, v in gan_state.items()}
    return {k: torch.lerp(psnr_state[k], v, alpha) if v.is_floating_point() else v.clone() for k, v in gan_state.items()}


__all__ = ["RESIDUAL_SCALE", "RRDB", "DenseBlock", "RRDBNet", "RandomFeatures", "interpolate_state", "perceptual_loss",
           "relativistic_d_loss", "relativistic_g_loss"]
