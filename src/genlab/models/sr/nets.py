"""Super-resolution networks and operators: SRResNet (the generator), SRGAN's discriminator, the
box downsampling that makes training pairs, bicubic upsampling, and judge feature maps.

After Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network" (arXiv:1609.04802), §2.2 and Fig. 4.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SCALES = (2, 4)


def downsample(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Low-resolution images: the mean of each ``scale``×``scale`` block (a box, or "area", filter).

    It is what ``F.interpolate(mode="area")`` and PIL's BOX filter compute for a whole factor: every
    low-res pixel is the average brightness of the high-res pixels it covers, so nothing aliases and
    the operator is exactly linear (Fashion-MNIST ×4: 28×28 → 7×7). Ledig et al. (§3.2) downsample
    with a bicubic kernel instead; box is the simpler physical model of a coarser sensor.
    H and W must be multiples of ``scale`` (checked by the caller's config).
    """
    return F.avg_pool2d(images, kernel_size=scale, stride=scale)


def downsample_bicubic(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Low-resolution images by antialiased bicubic resampling (Keys a = −0.5, the kernel stretched by
    ``scale``): what MATLAB's ``imresize(x, 1/scale)`` and PIL's BICUBIC compute, the degradation of the SR
    papers' benchmarks (Set5/Set14: "bicubic ×4"; Ledig et al. §3.2, Wang et al. §4.1). Not clamped."""
    return F.interpolate(images, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)


def upsample_bicubic(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic interpolation by ``scale`` (Keys 1981, a = −0.75 as in PyTorch and OpenCV), not clamped.

    Edge pixels are replicated beyond the border (``align_corners=False``). This is the classic
    baseline every SR paper reports and, when ``residual`` is on, what the network corrects.
    """
    return F.interpolate(images, scale_factor=scale, mode="bicubic", align_corners=False)


class ResidualBlock(nn.Module):
    """conv3×3 → BN → PReLU → conv3×3 → BN, plus the input (Ledig et al. Fig. 4, "B residual blocks";
    He et al. 2016's block without the ReLU after the sum, as in Gross & Wilber's variant they cite)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualSR(nn.Module):
    """What SRResNet and ESRGAN's RRDBNet share: head → blocks → after_blocks (+ the global skip) → upsample →
    tail, on channels-last maps, plus the bicubic base when ``residual``. Subclasses build the five parts, then
    call ``_finish(last_conv)``."""

    scale: int
    residual: bool

    def _finish(self, last: nn.Conv2d) -> None:
        if self.residual:  # the last conv starts at zero: an untrained net equals bicubic
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        # channels_last: measured on this project's CPU, a training step of the default ×4 SRResNet takes
        # less than half the time (the 9×9 output conv alone is 5× faster); weights save as usual.
        self.to(memory_format=torch.channels_last)

    def forward(self, low_res: torch.Tensor) -> torch.Tensor:
        features = self.head((low_res * 2.0 - 1.0).contiguous(memory_format=torch.channels_last))
        features = features + self.after_blocks(self.blocks(features))  # the global skip
        detail = self.tail(self.upsample(features))
        base = upsample_bicubic(low_res, self.scale) if self.residual else 0.5
        return base + detail


class SRResNet(ResidualSR):
    """Low-res image in [0, 1] → high-res image (≈ [0, 1], not clamped), ``scale`` times larger.

        conv9×9 → PReLU ─┬─ B residual blocks → conv3×3 → BN ─(+)─ [conv3×3 → PixelShuffle×2 → PReLU] × log2(scale) → conv9×9
                         └───────────────── global skip ────────┘

    Sub-pixel convolution (Shi et al. 2016): each upsampling stage makes 4× the channels at low
    resolution and rearranges them into a 2× larger map. With ``residual`` the output is added to
    the bicubic upsampling of the input and the last conv starts at zero, so an untrained net
    already equals bicubic and learns only the missing detail. Fully convolutional: any input
    size works, which is what tiling (``genlab.tools.upscale``) relies on.
    """

    def __init__(self, image_channels: int, channels: int, blocks: int, scale: int, residual: bool) -> None:
        super().__init__()
        self.scale, self.residual = scale, residual
        self.head = nn.Sequential(nn.Conv2d(image_channels, channels, 9, padding=4), nn.PReLU(channels))
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.after_blocks = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        stages: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            stages += [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(channels)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, image_channels, 9, padding=4)
        self._finish(self.tail)

    def context(self) -> int:
        """How many low-res pixels around an output pixel can influence it (the receptive-field
        radius, rounded up): the overlap tiles need to agree exactly with a whole-image pass."""
        radius_low = 4 + 2 * len(self.blocks) + 1  # head 9×9, two 3×3 per block, one 3×3 after them
        radius_high, factor = 0.0, 1
        for layer in self.upsample:
            if isinstance(layer, nn.Conv2d):
                radius_high += 1 / factor  # a 3×3 conv at this stage's resolution, in low-res pixels
            elif isinstance(layer, nn.PixelShuffle):
                factor *= 2
        radius_high += 4 / self.scale  # the 9×9 output conv at full resolution
        bicubic = 2 if self.residual else 0
        return math.ceil(max(radius_low + radius_high, bicubic))


class Discriminator(nn.Module):
    """SRGAN's D (Ledig et al. Fig. 4), narrowed for small images: conv3×3 + LeakyReLU(0.2), then
    pairs of (conv3×3 stride 1, conv3×3 stride 2) with BN + LeakyReLU, widths w, 2w, 4w (the paper:
    8 convs, 64 → 512), then dense 8w → LeakyReLU → dense 1. Returns one logit of P(real) per image.
    Takes images in [0, 1] of the size given at construction."""

    def __init__(self, image_shape: tuple[int, int, int], width: int) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                   nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                                   nn.LeakyReLU(0.2, inplace=True)]
        previous = width
        for multiple in (2, 4):
            out = width * multiple
            layers += [nn.Conv2d(previous, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True),
                       nn.Conv2d(out, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            previous = out
        self.features = nn.Sequential(*layers)
        for _ in range(3):  # three stride-2 convs with kernel 3, padding 1: n → ⌈n / 2⌉
            height, width_px = (height + 1) // 2, (width_px + 1) // 2
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(previous * height * width_px, 8 * width),
                                        nn.LeakyReLU(0.2, inplace=True), nn.Linear(8 * width, 1))
        self.features.to(memory_format=torch.channels_last)  # measured ~20% faster on CPU, as in G

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features((images * 2.0 - 1.0).contiguous(memory_format=torch.channels_last))
        return self.classifier(features).squeeze(1)


def judge_feature_map(judge: nn.Module, images: torch.Tensor, block: int = -1) -> torch.Tensor:
    """A judge conv feature map (after its ReLU, before the max-pool of conv block ``block``), N×C'×H'×W'.

    With the default ``block=-1``, the analogue of Ledig et al.'s φ5,4 ("VGG54": the 4th conv, after
    activation, before the 5th max-pool of VGG19): the deepest features that keep a spatial layout,
    48 channels at 14×14 for the shipped Fashion-MNIST judge. ``block=0`` is the analogue of their
    φ2,2 ("VGG22", lower-level): 24 channels at 28×28, before any pooling. Differentiable in
    ``images``; run the judge in eval mode (batch-norm running statistics).
    """
    blocks = list(judge.body)
    last = range(len(blocks))[block]  # IndexError for a block the judge does not have
    h = images.contiguous(memory_format=torch.channels_last)
    for b in blocks[:last]:
        h = b(h)
    for layer in blocks[last]:
        if isinstance(layer, nn.MaxPool2d):
            break
        h = layer(h)
    return h
