"""Networks for image-to-image translation: the U-Net generator (pix2pix), the ResNet generator (CycleGAN),
the PatchGAN discriminator (both), and the receptive-field arithmetic that says how large a PatchGAN's patch is.

Every net takes and returns images in [-1, 1] (the range of the generators' tanh); the models convert.
Generators are fully convolutional: an image whose sides are not a multiple of the net's total stride is
padded (edges replicated) to the next multiple and the output cropped back, so 28×28 Fashion-MNIST runs
through a U-Net built for 32×32.

Weights start from N(0, 0.02), norm scales from N(1, 0.02) (Isola et al. 2017 §6.2; Zhu et al. 2017 §7.1).
"""
from __future__ import annotations

import math
from collections.abc import Collection
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "instance"]
MAX_UNET_DEPTH = 8  # pix2pix's 256×256 U-Net: eight stride-2 convs down to 1×1
WIDTH_CAP = 8  # widths double per level up to 8× the first (pix2pix: 64 → 512)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Batch norm (pix2pix) or instance norm without affine parameters (CycleGAN, after Ulyanov et al. 2016)."""
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.InstanceNorm2d(channels)


def init_weights(module: nn.Module) -> None:
    """Convolutions from N(0, 0.02) with zero biases; batch-norm scales from N(1, 0.02) (the papers' init)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """``x`` padded (edges replicated, split evenly) so H and W are multiples of ``multiple``, and the crop
    (top, left, height, width) that gives the original area back."""
    height, width = x.shape[2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    top, left = pad_h // 2, pad_w // 2
    if pad_h or pad_w:
        x = F.pad(x, (left, pad_w - left, top, pad_h - top), mode="replicate")
    return x, (top, left, height, width)


def crop(x: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    top, left, height, width = box
    return x[:, :, top:top + height, left:left + width]


def unet_depth(height: int, width: int) -> int:
    """Stride-2 levels of the default U-Net: down to a 1×1 bottleneck of the padded image, as pix2pix's
    256×256 net (8 levels): ⌈log₂ of the shorter side⌉, so 28 and 32 → 5 levels, 64 → 6."""
    return min(MAX_UNET_DEPTH, max(1, math.ceil(math.log2(min(height, width)))))


class UNetGenerator(nn.Module):
    """The pix2pix generator (Isola et al. 2017 §3.2.1, Fig. 3, and §6.1.1): an encoder-decoder whose layer i
    of the decoder also sees layer n − i of the encoder, concatenated (U-Net, Ronneberger et al. 2015).

        encoder: C(w) – C(2w) – C(4w) – C(8w) – ... (4×4 convs, stride 2, LeakyReLU 0.2; no norm first and last)
        decoder: CD(8w) – CD(8w) – CD(8w) – C(8w) – ... – C(w) → 4×4 conv-transpose → tanh (ReLU, norm)

    The skips carry the input's fine structure (edges, positions) straight to the output, past the
    bottleneck. Dropout (p = 0.5) in the first three decoder layers is the only noise pix2pix has (§3.2).
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int, norm: str = "batch",
                 dropout: float = 0.5, dropout_layers: int = 3) -> None:
        super().__init__()
        self.depth = depth
        widths = [width * min(2 ** i, WIDTH_CAP) for i in range(depth)]  # encoder outputs e_0 … e_{depth−1}
        self.down = nn.ModuleList()
        for i in range(depth):
            if i == 0:
                layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1)]
            else:
                layers = [nn.LeakyReLU(0.2), nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1)]
                if i < depth - 1:  # the innermost has no norm: on a 1×1 map instance norm would zero it
                    layers.append(norm_layer(norm, widths[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()  # up[j] undoes down[j]: up[depth−1] runs first
        for j in range(depth):
            inner = widths[j] if j == depth - 1 else 2 * widths[j]  # its input, with the skip from e_j concatenated
            if j == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(inner, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(), nn.ConvTranspose2d(inner, widths[j - 1], 4, 2, 1), norm_layer(norm, widths[j - 1])]
                if depth - 1 - j < dropout_layers and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, x: torch.Tensor, *, zero_skips: Collection[int] = ()) -> torch.Tensor:
        """``x`` in [-1, 1] → the translation in [-1, 1], the same size. ``zero_skips``: indices k of skips
        (encoder output e_k, k < depth − 1) to replace by zeros, to see what they carry."""
        x, box = pad_to_multiple(x, 2 ** self.depth)
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for j in range(self.depth - 2, -1, -1):
            skip = torch.zeros_like(skips[j]) if j in zero_skips else skips[j]
            x = self.up[j](torch.cat([x, skip], dim=1))
        return crop(x, box)


class ResidualBlock(nn.Module):
    """Two 3×3 convs with reflection padding, norm and ReLU between, plus the input (Zhu et al. §7.2, "R256";
    He et al. 2016)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """The CycleGAN generator (Zhu et al. 2017 §4 and §7.2, after Johnson et al. 2016):
    c7s1-w, d2w, d4w, R4w × blocks, u2w, uw, c7s1-C → tanh; instance norm and ReLU after every conv but the
    last. Two stride-2 convs down, the residual blocks at 1/4 of the size, two stride-2 transposed convs up."""

    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int, norm: str = "instance") -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, w, 7), norm_layer(norm, w), nn.ReLU()]
        for multiple in (1, 2):
            layers += [nn.Conv2d(w * multiple, 2 * w * multiple, 3, 2, 1), norm_layer(norm, 2 * w * multiple), nn.ReLU()]
        layers += [ResidualBlock(4 * w, norm) for _ in range(blocks)]
        for multiple in (4, 2):
            layers += [nn.ConvTranspose2d(w * multiple, w * multiple // 2, 3, 2, 1, output_padding=1),
                       norm_layer(norm, w * multiple // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, box = pad_to_multiple(x, 4)
        return crop(self.net(x), box)


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017 §3.2.2 and §6.1.2): a fully convolutional D that scores every overlapping
    patch of its input as real or fake, one logit per patch, N×1×H'×W'. It only sees structure at the scale
    of a patch, and leaves low frequencies to the L1 term (pix2pix) or cycle loss (CycleGAN).

        C(w) – C(2w) – … (``layers`` 4×4 convs of stride 2) – C(·) stride 1 – 4×4 conv to 1 channel, stride 1

    (LeakyReLU 0.2; norm on all but the first). ``layers=3`` is the paper's 70×70 PatchGAN; for the 28–64 px
    images here the default is 2, a 34×34 patch (``receptive_field``).
    """

    def __init__(self, in_channels: int, width: int, layers: int, norm: str = "batch") -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        previous = width
        for n in range(1, layers + 1):
            out = width * min(2 ** n, WIDTH_CAP)
            stride = 2 if n < layers else 1  # the last of the C layers keeps the resolution
            modules += [nn.Conv2d(previous, out, 4, stride, 1), norm_layer(norm, out), nn.LeakyReLU(0.2)]
            previous = out
        modules.append(nn.Conv2d(previous, 1, 4, 1, 1))
        self.net = nn.Sequential(*modules)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The grid of patch logits for an H×W input."""
        return conv_output_size(self, height), conv_output_size(self, width)


def receptive_field(module: nn.Module) -> int:
    """The side of the input square that one output cell of ``module``'s chain of convolutions sees.

    Araujo, Norris & Sim 2019 ("Computing Receptive Fields of Convolutional Neural Networks", Distill), Eq. 2:
    r = 1 + Σ_l (k_l − 1)·∏_{i<l} s_i over the layers l from the input up (k: kernel, s: stride; the product is
    the distance in input pixels between neighbouring cells of layer l's input), summed layer by layer.
    For the PatchGAN with L stride-2 layers: 16 (L = 1), 34 (L = 2), 70 (L = 3, the paper's).
    """
    field, jump = 1, 1
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            kernel, stride = layer.kernel_size[0], layer.stride[0]
            field += (kernel - 1) * jump
            jump *= stride
    return field


def conv_output_size(module: nn.Module, size: int) -> int:
    """The length of ``module``'s output along a side of ``size`` input pixels (its Conv2d layers in order)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            kernel, stride, padding = layer.kernel_size[0], layer.stride[0], layer.padding[0]
            size = (size + 2 * padding - kernel) // stride + 1
    return size
