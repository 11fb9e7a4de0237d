"""Convolutional stacks shared by models: a DCGAN-style encoder (stride-2 convs) and its mirror decoder."""
from __future__ import annotations

import torch
from torch import nn


def downsampled_sizes(size: int, num_layers: int) -> list[int]:
    """Spatial sizes through stride-2 convs with kernel 4, padding 1 (each halves, rounding down)."""
    sizes = [size]
    for _ in range(num_layers):
        sizes.append(sizes[-1] // 2)
    return sizes


class ConvEncoder(nn.Module):
    """Image → feature map: stride-2 4×4 convs (DCGAN-style downsampling, no pooling)."""

    def __init__(self, in_channels: int, height: int, width: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for width_out in channels:
            layers += [nn.Conv2d(previous, width_out, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            previous = width_out
        self.net = nn.Sequential(*layers)
        self.feature_shape = (channels[-1], downsampled_sizes(height, len(channels))[-1],
                              downsampled_sizes(width, len(channels))[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Feature map → image logits: the mirror of ConvEncoder with 4×4 stride-2 transposed convs.

    ``output_padding`` restores the odd sizes the encoder rounded down (e.g. 7 → 14 → 28 but
    3 → 7), so any image size the encoder accepts comes back exactly.
    """

    def __init__(self, out_channels: int, height: int, width: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        heights = downsampled_sizes(height, len(channels))[::-1]
        widths = downsampled_sizes(width, len(channels))[::-1]
        widths_out = [*channels[::-1][1:], out_channels]
        layers: list[nn.Module] = []
        previous = channels[-1]
        for i, width_out in enumerate(widths_out):
            padding = (heights[i + 1] - 2 * heights[i], widths[i + 1] - 2 * widths[i])
            layers.append(nn.ConvTranspose2d(previous, width_out, 4, stride=2, padding=1, output_padding=padding))
            if i < len(widths_out) - 1:
                layers.append(nn.ReLU(inplace=True))
            previous = width_out
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)
