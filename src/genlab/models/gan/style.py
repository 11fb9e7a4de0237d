"""A small style-based generator (Karras et al. 2019, "A Style-Based Generator Architecture for GANs", StyleGAN;
Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", StyleGAN2) and a residual discriminator.

G = synthesis ∘ mapping: an MLP maps z to an intermediate latent w; the synthesis network starts from a learned
constant 4×4 (7×7 at 28 px) map and, at every layer, modulates and demodulates its 3×3 convolution by a style
computed from w (StyleGAN2 §2.2, Eq. 1–3), adds per-pixel noise with learned per-channel strength (StyleGAN §2,
"B"), and (``skips``) sums a toRGB of every resolution into the image (StyleGAN2 §4.1, Fig. 7b). Each layer takes
its own w, so W-space operations — truncation towards the tracked mean w̄ and style mixing — act on the stack
``ws`` (N × num_ws × w_dim) before synthesis.

Every weight uses the equalised learning rate (Karras et al. 2018, ProGAN §4.1): stored as N(0, 1) and scaled by
1/√fan_in at run time, so Adam's steps are alike for every layer; the mapping network also multiplies its rate
by ``MAPPING_LR_MULTIPLIER`` = 0.01 (StyleGAN App. C). Simplifications against the papers, for small CPU runs:
bilinear up/downsampling instead of the FIR-filtered (blurred) resampling, and the widths of a DCGAN.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.gan.nets import ProjectionDiscriminator

MAPPING_LR_MULTIPLIER = 0.01  # StyleGAN App. C: λ' = 0.01·λ for the mapping network
W_AVG_BETA = 0.995  # w̄ ← β·w̄ + (1 − β)·mean(w) per training forward pass (StyleGAN2's training/networks.py, w_avg_beta)
LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' scale through leaky ReLU(0.2) (StyleGAN2's bias_act def_gain)
MBSTD_GROUP = 4  # minibatch standard deviation over groups of 4 (ProGAN §3; StyleGAN2's mbstd_group_size)
# Image side → (side of the constant input / D's last map, number of doublings): as DCGAN_RESOLUTIONS, plus 16 px.
STYLE_RESOLUTIONS = {16: (4, 2), 28: (7, 2), 32: (4, 3), 64: (4, 4)}


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / √(mean(x²) + ε) over features (ProGAN §4.2; StyleGAN normalises z this way before mapping)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def channel_widths(size: int, width: int) -> dict[int, int]:
    """Channels at each resolution: ``width`` at full size, doubling per halving, at most 8·width (as DCGAN)."""
    start, doublings = STYLE_RESOLUTIONS[size]
    return {start * 2 ** i: min(width * 2 ** (doublings - i), 8 * width) for i in range(doublings + 1)}


class EqualLinear(nn.Module):
    """y = x·(lr_mul/√fan_in)·Wᵀ + lr_mul·b with W ~ N(0, 1/lr_mul²) stored: the equalised learning rate
    (ProGAN §4.1) with StyleGAN's rate multiplier (App. C) — Adam's step on W is scaled by lr_mul."""

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain, self.lr_mul, self.activation = lr_mul / math.sqrt(in_features), lr_mul, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return lrelu(y) if self.activation else y


class EqualConv2d(nn.Module):
    """A k×k convolution (same padding) with the equalised learning rate (ProGAN §4.1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, bias: bool = True, activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain, self.activation = 1.0 / math.sqrt(in_channels * kernel * kernel), activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)
        return lrelu(y) if self.activation else y


class MappingNetwork(nn.Module):
    """z → w: pixel norm on z (and on a class embedding, concatenated; StyleGAN2-ADA's conditioning), then
    ``layers`` × [EqualLinear → leaky ReLU] at 0.01 × the learning rate (StyleGAN §2 and App. C).

    In training mode every call moves the buffer ``w_avg`` (w̄, the centre truncation pulls towards) by
    (1 − W_AVG_BETA) towards the batch's mean w."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int, num_classes: int) -> None:
        super().__init__()
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None
        sizes = [latent_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        self.layers = nn.Sequential(*(EqualLinear(a, b, lr_mul=MAPPING_LR_MULTIPLIER, activation=True)
                                      for a, b in itertools.pairwise(sizes)))
        self.num_classes = num_classes
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = pixel_norm(z)
        if self.embed is not None:
            y = self.embed(F.one_hot(labels, self.num_classes).to(z.dtype))
            x = torch.cat([x, pixel_norm(y)], dim=1)
        w = self.layers(x)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0).to(self.w_avg.dtype), 1.0 - W_AVG_BETA)
        return w


class ModulatedConv2d(nn.Module):
    """A k×k convolution whose weights are scaled per sample by a style s = A(w) (StyleGAN2 §2.2):

    Eq. 1, modulation:   w'_ijk = s_i · w_ijk          (i input channel, j output channel, k kernel tap)
    Eq. 3, demodulation: w''_ijk = w'_ijk / √(Σ_{i,k} w'_ijk² + ε)
    so that unit-variance inputs give unit-variance outputs (Eq. 2: σ_j = √(Σ_{i,k} w'_ijk²)). With ``fused`` the
    per-sample weights run as one grouped convolution with N groups (StyleGAN2 §2.2, App. B); otherwise the same
    product is taken as x·s → conv with the shared w → ·1/σ_j (scaling the activations instead of the weights,
    StyleGAN2-ADA's path in training): 4–5× faster on a CPU, where N grouped convs of per-sample weights are slow,
    and exportable with a dynamic batch (a grouped conv's group count N would be fixed in an ONNX graph). Off by
    default; tests/test_gan_architectures.py checks that both paths agree.
    The affine A starts with bias 1 (every style 1 at first), as in StyleGAN2.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, w_dim: int, *, demodulate: bool = True) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)  # equalised learning rate
        self.demodulate = demodulate
        self.fused = False

    def modulated_weights(self, w: torch.Tensor) -> torch.Tensor:
        """The per-sample weights w'' (or w' without demodulation), N × out × in × k × k."""
        styles = self.affine(w)  # s, N × in
        weight = self.weight[None] * self.weight_gain * styles[:, None, :, None, None]  # Eq. 1
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)  # Eq. 3
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            styles = self.affine(w)  # s, N × in
            weight = self.weight * self.weight_gain
            x = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)  # Σ_{i,k} w_ijk s_i x_i (Eq. 1)
            if self.demodulate:  # 1/σ_j = 1/√(Σ_{i,k} (s_i w_ijk)²) = 1/√((Σ_k w_ijk²) · s²) (Eq. 2–3)
                x = x * torch.rsqrt(styles.pow(2) @ weight.pow(2).sum(dim=(2, 3)).T + 1e-8)[:, :, None, None]
            return x
        n, channels, height, width = x.shape
        weight = self.modulated_weights(w)
        out = F.conv2d(x.reshape(1, n * channels, height, width), weight.reshape(-1, *weight.shape[2:]),
                       padding=weight.shape[-1] // 2, groups=n)
        return out.reshape(n, -1, height, width)


class StyleLayer(nn.Module):
    """[upsample ×2] → modulated 3×3 conv → + noise · per-channel strength → + bias → leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim)
        # Learned per-feature scaling of the noise (StyleGAN §2, Fig. 1 "B"), started at 0 (StyleGAN2 does too).
        self.noise_strength = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))  # "const" noise for eval
        self.up = up

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        if noise_mode == "random":  # one per-pixel N(0, 1) image per sample, broadcast over channels
            x = x + torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        return lrelu(x + self.bias)


class ToRGB(nn.Module):
    """A modulated 1×1 conv without demodulation (StyleGAN2 Fig. 7) + bias: features → C channels."""

    def __init__(self, in_channels: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias


class SynthesisNetwork(nn.Module):
    """ws (N × num_ws × w_dim) → image: constant → layer → [layer(up) → layer] per doubling, with a toRGB per
    resolution summed into an upsampled image (``skips``) or only at the end. Layer i takes ws[:, i]; the toRGB
    after layer i takes ws[:, i + 1] (StyleGAN2's indexing), so num_ws = layers + 1."""

    def __init__(self, image_shape: tuple[int, int, int], w_dim: int, width: int, skips: bool) -> None:
        super().__init__()
        channels, size, _ = image_shape
        widths = channel_widths(size, width)
        resolutions = list(widths)
        self.const = nn.Parameter(torch.randn(1, widths[resolutions[0]], resolutions[0], resolutions[0]))
        layers, to_rgb = [StyleLayer(widths[resolutions[0]], widths[resolutions[0]], w_dim, resolutions[0], up=False)], []
        self.rgb_after = [0]  # the index of the layer each toRGB follows
        for low, high in itertools.pairwise(resolutions):
            if skips:
                to_rgb.append(ToRGB(widths[low], channels, w_dim))
            layers += [StyleLayer(widths[low], widths[high], w_dim, high, up=True),
                       StyleLayer(widths[high], widths[high], w_dim, high, up=False)]
            self.rgb_after.append(len(layers) - 1)
        to_rgb.append(ToRGB(widths[resolutions[-1]], channels, w_dim))
        if not skips:
            self.rgb_after = self.rgb_after[-1:]
        self.layers, self.to_rgb = nn.ModuleList(layers), nn.ModuleList(to_rgb)
        self.num_ws = len(layers) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        """``noise_mode``: random, const (the fixed ``noise_const`` maps) or none; None: random in training, else const."""
        noise_mode = noise_mode or ("random" if self.training else "const")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        image, rgb = None, iter(zip(self.rgb_after, self.to_rgb, strict=True))
        after, to_rgb = next(rgb)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode)
            if i == after:
                y = to_rgb(x, ws[:, i + 1])
                if image is not None:  # the skip generator: the image so far, upsampled, plus this resolution's RGB
                    image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
                image = y if image is None else image + y
                after, to_rgb = next(rgb, (None, None))
        return image


class StyleGenerator(nn.Module):
    """G(z, labels) = synthesis(mapping(z, labels) repeated for every layer), with no truncation and no mixing;
    noise is random in training mode and the fixed ``noise_const`` in eval mode (deterministic G, as
    StyleGAN2's generate.py). ``ws``, ``truncate``, ``mix_ws`` and ``synthesis`` are the W-space steps."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: int, num_classes: int, mapping_layers: int,
                 skips: bool) -> None:
        super().__init__()
        self.latent_dim, self.w_dim = latent_dim, latent_dim  # w as wide as z, as in StyleGAN (512 and 512)
        self.mapping = MappingNetwork(latent_dim, self.w_dim, mapping_layers, num_classes)
        self.synthesis = SynthesisNetwork(image_shape, self.w_dim, width, skips)
        self.num_ws = self.synthesis.num_ws
        # The layers at the first two resolutions (4² and 8² from 64 px down to 16 px; 7² and 14² at 28 px): StyleGAN's
        # "coarse styles" (§3.1, Fig. 3); ``GAN.mix`` takes the fine styles from here on by default.
        self.coarse_layers = 3

    def ws(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float | None = None) -> torch.Tensor:
        """The per-layer latents, N × num_ws × w_dim: mapping(z) repeated, truncated towards w̄ when ψ is given."""
        w = self.mapping(z, labels)
        if truncation is not None:
            w = self.truncate(w, truncation)
        return w[:, None].expand(-1, self.num_ws, -1)

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """The truncation trick in W: w' = w̄ + ψ(w − w̄) (StyleGAN §3.1, Eq. after Fig. 8's caption; App. B)."""
        return torch.lerp(self.mapping.w_avg.to(w.dtype), w, psi)

    def mix_ws(self, ws: torch.Tensor, other: torch.Tensor, probability: float) -> torch.Tensor:
        """Style mixing regularisation (StyleGAN §3.1): with ``probability``, a sample takes ``other``'s latents from
        a random layer c ∈ [1, num_ws) on; the layers before c keep ``ws``."""
        n = ws.shape[0]
        cutoff = torch.randint(1, self.num_ws, (n,), device=ws.device)
        cutoff = torch.where(torch.rand(n, device=ws.device) < probability, cutoff, torch.full_like(cutoff, self.num_ws))
        second = torch.arange(self.num_ws, device=ws.device)[None, :] >= cutoff[:, None]
        return torch.where(second[:, :, None], other, ws)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, noise_mode: str | None = None) -> torch.Tensor:
        return self.synthesis(self.ws(z, labels), noise_mode)

    def first_block(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """w = mapping(z): the space GANSpace takes principal directions in for StyleGAN (Härkönen et al. 2020 §2)."""
        return self.mapping(z, labels)


def minibatch_stddev(x: torch.Tensor, group: int = MBSTD_GROUP) -> torch.Tensor:
    """x with one more feature map: the standard deviation over groups of samples, averaged over features and
    pixels (ProGAN §3), so D can see a batch that lacks variety. The group is the largest divisor of N ≤ ``group``."""
    n, channels, height, width = x.shape
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    y = x.reshape(g, n // g, channels, height, width)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one number per group member position
    y = y.reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, height, width).reshape(n, 1, height, width)
    return torch.cat([x, y], dim=1)


class ResidualDown(nn.Module):
    """StyleGAN2's residual D block (Fig. 7c): conv3 → avgpool ↓2 → conv3, plus a skip of avgpool → 1×1 conv,
    the sum scaled by 1/√2. (Pooling before the second conv instead of a strided, blurred one: cheaper on a CPU.)"""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        return (self.conv1(F.avg_pool2d(self.conv0(x), 2)) + skip) / math.sqrt(2.0)


class MinibatchStddev(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x)


def style_discriminator(image_shape: tuple[int, int, int], width: int, num_classes: int,
                        label_inputs: bool = False) -> ProjectionDiscriminator:
    """fromRGB (1×1) → residual blocks down to 4×4 (7×7 at 28 px) → minibatch stddev → conv3 → fully connected
    → one logit, plus the projection term ⟨embed(y), φ(x)⟩ when conditional (Miyato & Koyama 2018, Eq. 3)."""
    channels, size, _ = image_shape
    widths = channel_widths(size, width)
    resolutions = sorted(widths, reverse=True)
    end = resolutions[-1]
    label_classes = num_classes if label_inputs else 0
    layers: list[nn.Module] = [EqualConv2d(channels + label_classes, widths[size], 1, activation=True)]
    layers += [ResidualDown(widths[high], widths[low]) for high, low in itertools.pairwise(resolutions)]
    features = widths[end]
    layers += [MinibatchStddev(), EqualConv2d(features + 1, features, 3, activation=True), nn.Flatten(),
               EqualLinear(features * end * end, features, activation=True)]
    discriminator = ProjectionDiscriminator(nn.Sequential(*layers), EqualLinear(features, 1), features, num_classes, label_classes)
    if discriminator.embed is not None:
        nn.init.normal_(discriminator.embed.weight, 0.0, 1.0 / math.sqrt(features))
    return discriminator
