"""A small BigGAN-style generator and discriminator (Brock et al. 2019, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis").

G: a shared class embedding; a hierarchical latent — z is split into one chunk for the first linear layer and
one per residual up-block, and each block's conditional batch norm takes [its chunk, shared(y)] through linear
maps to its gains and biases (§3, "Hierarchical latent spaces"; App. B, Fig. 15); self-attention at one
resolution (Zhang et al. 2019, SAGAN); spectral norm on every layer of G and D (SAGAN §4, BigGAN §3);
orthogonal initialisation (BigGAN §3). D: residual down-blocks, the same attention, global sum pooling and a
projection head D(x, y) = ψ(φ(x)) + embed(y)·φ(x) (Miyato & Koyama 2018, Eq. 3). The orthogonal regularisation
of G's weights is in losses.py; truncation is ``truncated_normal`` on z (BigGAN §3.1).
Channels follow DCGAN's widths (w at full size, doubling per halving, at most 8w), not BigGAN's 16·ch.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.models.gan.nets import ProjectionDiscriminator
from genlab.models.gan.style import channel_widths

SHARED_DIM = 32  # size of the shared class embedding (BigGAN: 128); concatenated to each block's z chunk


def sn_conv(in_channels: int, out_channels: int, kernel: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)


class SelfAttention(nn.Module):
    """SAGAN's self-attention (Zhang et al. 2019 §3): with f(x) = W_f x, g(x) = W_g x, h(x) = W_h x (1×1 convs),
    β_{j,i} = softmax_i(f(x_i)ᵀ g(x_j)) (Eq. 1), o_j = v(Σ_i β_{j,i} h(x_i)) (Eq. 2), and y = γ·o + x with the
    learned γ started at 0 (Eq. 3), so the block begins as the identity. f and g have C/8 channels, h has C/2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        key = max(1, channels // 8)
        self.f, self.g = sn_conv(channels, key, 1, bias=False), sn_conv(channels, key, 1, bias=False)
        self.h, self.v = sn_conv(channels, max(1, channels // 2), 1, bias=False), sn_conv(max(1, channels // 2), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        f, g, h = self.f(x).flatten(2), self.g(x).flatten(2), self.h(x).flatten(2)  # N × C' × HW
        beta = torch.softmax(torch.bmm(g.transpose(1, 2), f), dim=-1)  # β[j, i], Eq. 1 (rows: query j)
        o = torch.bmm(h, beta.transpose(1, 2)).reshape(n, -1, height, width)  # Σ_i β_{j,i} h(x_i), Eq. 2
        return x + self.gamma * self.v(o)  # Eq. 3


class HierarchicalBatchNorm(nn.Module):
    """BN(h | c) = (1 + γ(c)) · (h − μ)/σ + β(c) with γ, β linear in the block's condition c = [z chunk, shared(y)]
    (BigGAN §3 and Fig. 15: "linear projections ... to produce per-sample gains and biases")."""

    def __init__(self, features: int, condition_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(features, affine=False)
        self.gain, self.bias = nn.Linear(condition_dim, features, bias=False), nn.Linear(condition_dim, features, bias=False)

    def forward(self, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.norm(h) * (1.0 + self.gain(condition)[:, :, None, None]) + self.bias(condition)[:, :, None, None]


class UpBlock(nn.Module):
    """BigGAN's G block (Fig. 15b): CBN → ReLU → upsample ×2 → conv3 → CBN → ReLU → conv3, plus upsample → conv1."""

    def __init__(self, in_channels: int, out_channels: int, condition_dim: int) -> None:
        super().__init__()
        self.bn0, self.bn1 = HierarchicalBatchNorm(in_channels, condition_dim), HierarchicalBatchNorm(out_channels, condition_dim)
        self.conv0, self.conv1 = sn_conv(in_channels, out_channels, 3), sn_conv(out_channels, out_channels, 3)
        self.skip = sn_conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn0(x, condition)), scale_factor=2, mode="nearest")
        h = self.conv1(F.relu(self.bn1(self.conv0(h), condition)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class BigGenerator(nn.Module):
    """z (split into 1 + blocks chunks) and y → linear → 8w × s × s → up-blocks (attention after the block that
    reaches ``attention``) → BN → ReLU → conv3 → tanh. Unconditional: each block's condition is its chunk alone."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: int, num_classes: int, attention: int) -> None:
        super().__init__()
        channels, size, _ = image_shape
        widths = channel_widths(size, width)
        resolutions = list(widths)
        self.start = resolutions[0]
        self.num_chunks = len(resolutions)  # one for the linear layer, one per up-block
        self.chunk_sizes = [t.numel() for t in torch.arange(latent_dim).tensor_split(self.num_chunks)]
        self.shared = nn.Embedding(num_classes, SHARED_DIM) if num_classes else None
        shared = SHARED_DIM if num_classes else 0
        self.linear = nn.Linear(self.chunk_sizes[0], widths[self.start] * self.start * self.start)
        self.blocks = nn.ModuleList(UpBlock(widths[low], widths[high], chunk + shared)
                                    for low, high, chunk in zip(resolutions[:-1], resolutions[1:], self.chunk_sizes[1:], strict=True))
        self.attention_after = resolutions[1:].index(attention) if attention else None
        self.attention = SelfAttention(widths[attention]) if attention else None
        self.output_norm = nn.BatchNorm2d(widths[size])
        self.output = sn_conv(widths[size], channels, 3)
        init_and_normalise(self, skip=(self.shared,))

    def chunks(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return z.split(self.chunk_sizes, dim=1)

    def first_block(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The first linear layer's map (the layer GANSpace takes PCA in for BigGAN, Härkönen et al. 2020 §2)."""
        return self.linear(self.chunks(z)[0]).view(z.shape[0], -1, self.start, self.start)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        chunks = self.chunks(z)
        h = self.first_block(z, labels)
        shared = self.shared(labels) if self.shared is not None else None
        for i, (block, chunk) in enumerate(zip(self.blocks, chunks[1:], strict=True)):
            h = block(h, chunk if shared is None else torch.cat([chunk, shared], dim=1))  # BigGAN Fig. 15a: concat(z_i, y)
            if i == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.output(F.relu(self.output_norm(h))))


class DownBlock(nn.Module):
    """BigGAN's D block (Fig. 15c): [ReLU] → conv3 → ReLU → conv3 → avgpool ↓2, plus conv1 → avgpool; the first
    block takes the pixels without a ReLU before it."""

    def __init__(self, in_channels: int, out_channels: int, first: bool) -> None:
        super().__init__()
        self.conv0, self.conv1 = sn_conv(in_channels, out_channels, 3), sn_conv(out_channels, out_channels, 3)
        self.skip = sn_conv(in_channels, out_channels, 1)
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv0(x if self.first else F.relu(x))
        h = F.avg_pool2d(self.conv1(F.relu(h)), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class GlobalSum(nn.Module):
    """ReLU, then the sum over pixels (BigGAN's D: "global sum pooling")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).sum(dim=(2, 3))


def big_discriminator(image_shape: tuple[int, int, int], width: int, num_classes: int, attention: int,
                      label_inputs: bool = False) -> ProjectionDiscriminator:
    """Residual down-blocks from the full size to 4×4 (7×7 at 28 px), attention where the map is ``attention``
    pixels, global sum pooling, ψ linear and the projection ⟨embed(y), φ(x)⟩; spectral norm on every layer."""
    channels, size, _ = image_shape
    widths = channel_widths(size, width)
    resolutions = sorted(widths, reverse=True)
    label_classes = num_classes if label_inputs else 0
    layers: list[nn.Module] = []
    previous = channels + label_classes
    for high, low in itertools.pairwise(resolutions):
        if high == attention and layers:
            layers.append(SelfAttention(previous))
        layers.append(DownBlock(previous, widths[low], first=not layers))
        previous = widths[low]
    layers.append(GlobalSum())
    discriminator = ProjectionDiscriminator(nn.Sequential(*layers), nn.Linear(previous, 1), previous, num_classes, label_classes)
    return init_and_normalise(discriminator)


def init_and_normalise(module: nn.Module, skip: tuple[nn.Module | None, ...] = ()) -> nn.Module:
    """Orthogonal initialisation (Saxe et al. 2014; BigGAN §3 and App. B) of every conv, linear layer and
    embedding, then spectral norm W / σ(W) on each (Miyato et al. 2018, Eq. 8), but for the modules in ``skip``
    (G's shared embedding: BigGAN leaves it out too)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) and not any(m is s for s in skip):
            nn.init.orthogonal_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
            spectral_norm(m)
    return module

