"""A small U-Net that predicts the noise ε in x_t (Ho et al. 2020, Appendix B, scaled down).

Its parts follow Ho et al.'s: the step t enters as a sinusoidal embedding (Vaswani et al. 2017, "Attention Is
All You Need", §3.5) through a two-layer MLP, added per channel inside every residual block (Wide-ResNet-style:
GroupNorm, SiLU, 3×3 conv); stride-2 convs go down, nearest-neighbour upsampling + a 3×3 conv goes up, and
self-attention runs at the lowest resolution. Upsampling goes to the exact size of the skip it meets, so odd
sizes round-trip: 7×7 → 4×4 → 7×7 (latents), 28×28 → 14×14 → 7×7 → 4×4 → … (pixels).

Class conditioning (``num_classes`` K > 0): a learned embedding of K + 1 entries, added to the time embedding;
entry K is the "null" label ∅ of classifier-free guidance (Ho & Salimans 2022, §3.1), which the model learns
from training labels dropped at random.

As in Ho et al.'s code, the last conv of each residual block and the attention's output projection start at
zero, so every block starts as the identity.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_PERIOD = 10_000.0  # the 10000 of Vaswani et al. 2017, §3.5


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = MAX_PERIOD) -> torch.Tensor:
    """N×dim sinusoidal features of the (integer or real) steps ``t``: [sin(t·ω_i), cos(t·ω_i)] with
    ω_i = max_period^(−i/(dim/2)) for i < dim/2 (Vaswani et al. 2017, §3.5; sin and cos halves concatenated)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(embedding, (0, dim % 2))  # an odd dim gets one zero feature


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with at most 32 groups of at least 4 channels (Ho et al.: 32 groups of their 128+ channels).

    Never one channel per group: the step's embedding is added per channel just before a GroupNorm, which
    removes each group's mean, so with single-channel groups (instance norm) the network could not see t at all.
    """
    return nn.GroupNorm(next(g for g in range(min(32, max(1, channels // 4)), 0, -1) if channels % g == 0), channels)


def zeroed(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    """x + conv(dropout(SiLU(GN(conv(SiLU(GN(x))) + W·emb)))), with a 1×1 conv on the skip when widths differ."""

    def __init__(self, inputs: int, outputs: int, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(inputs), nn.Conv2d(inputs, outputs, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, outputs)
        self.norm2, self.dropout = group_norm(outputs), nn.Dropout(dropout)
        self.conv2 = zeroed(nn.Conv2d(outputs, outputs, 3, padding=1))
        self.skip = nn.Conv2d(inputs, outputs, 1) if inputs != outputs else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embedding(F.silu(embedding))[:, :, None, None]  # the step (and class), per channel
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Residual multi-head self-attention over the H·W positions (Ho et al.'s attention block)."""

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = zeroed(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(q·kᵀ/√d)·v, N×heads×HW×(C/heads)
        return x + self.out(attended.transpose(-1, -2).reshape(n, c, h, w))


class Downsample(nn.Module):
    """A 3×3 conv with stride 2: H → ⌈H/2⌉ (7 → 4, 28 → 14)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to exactly ``size`` (the skip's H×W), then a 3×3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class UNet(nn.Module):
    """ε̂(x_t, t[, y]): N×C×H×W, N steps (int64) and optionally N labels (K = the null label) → N×C×H×W.

    ``channels``: the width of each resolution level (one fewer downsampling than levels); ``blocks``:
    residual blocks per level on the way down (one more on the way up, which also takes the downsampling's skip).
    """

    def __init__(self, image_channels: int, channels: tuple[int, ...] = (64, 128), blocks: int = 2, *,
                 attention: bool = True, num_classes: int = 0, dropout: float = 0.0, heads: int = 1) -> None:
        super().__init__()
        self.num_classes = num_classes
        base, embedding_dim = channels[0], 4 * channels[0]
        self.time_mlp = nn.Sequential(nn.Linear(base, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim))
        self.class_embedding = nn.Embedding(num_classes + 1, embedding_dim) if num_classes else None
        self.input = nn.Conv2d(image_channels, base, 3, padding=1)
        skips, width = [base], base
        self.down = nn.ModuleList()
        for level, level_width in enumerate(channels):
            for _ in range(blocks):
                self.down.append(ResBlock(width, level_width, embedding_dim, dropout))
                width = level_width
                skips.append(width)
            if level < len(channels) - 1:
                self.down.append(Downsample(width))
                skips.append(width)
        self.middle = nn.ModuleList([ResBlock(width, width, embedding_dim, dropout),
                                     SelfAttention(width, heads) if attention else nn.Identity(),
                                     ResBlock(width, width, embedding_dim, dropout)])
        self.up = nn.ModuleList()
        for level in reversed(range(len(channels))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(width + skips.pop(), channels[level], embedding_dim, dropout))
                width = channels[level]
            if level > 0:
                self.up.append(Upsample(width))
        self.output = nn.Sequential(group_norm(width), nn.SiLU(), nn.Conv2d(width, image_channels, 3, padding=1))

    def embed(self, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The time embedding MLP(sinusoid(t)), plus the class embedding when conditional (None → ∅ for all)."""
        embedding = self.time_mlp(timestep_embedding(t, self.input.out_channels))
        if self.class_embedding is not None:
            if labels is None:
                labels = torch.full((t.shape[0],), self.num_classes, dtype=torch.int64, device=t.device)
            embedding = embedding + self.class_embedding(labels)
        return embedding

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        embedding = self.embed(t, labels)
        h = self.input(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, embedding) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        for layer in self.middle:
            h = layer(h, embedding) if isinstance(layer, ResBlock) else layer(h)
        for layer in self.up:  # a block takes the next skip; an upsampling goes to the size of the one after
            h = layer(torch.cat([h, skips.pop()], dim=1), embedding) if isinstance(layer, ResBlock) else layer(h, skips[-1].shape[-2:])
        return self.output(h)


def unet_weight_count(image_channels: int, channels: tuple[int, ...], blocks: int, num_classes: int, attention: bool) -> int:
    """About how many weights ``UNet`` has (convs, linear layers, embeddings; biases and norms left out)."""
    embedding_dim = 4 * channels[0]
    total = channels[0] * embedding_dim + embedding_dim**2 + (num_classes + 1) * embedding_dim
    total += 9 * image_channels * channels[0] * 2  # the input and output convs

    def block(inputs: int, outputs: int) -> int:
        return 9 * inputs * outputs + 9 * outputs * outputs + embedding_dim * outputs + (inputs * outputs if inputs != outputs else 0)

    skips, width = [channels[0]], channels[0]
    for level, level_width in enumerate(channels):
        for _ in range(blocks):
            total, width = total + block(width, level_width), level_width
            skips.append(width)
        if level < len(channels) - 1:
            total += 9 * width * width
            skips.append(width)
    total += 2 * block(width, width) + (4 * width * width if attention else 0)
    for level in reversed(range(len(channels))):
        for _ in range(blocks + 1):
            total, width = total + block(width + skips.pop(), channels[level]), channels[level]
        if level > 0:
            total += 9 * width * width
    return total
