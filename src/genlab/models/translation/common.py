"""What pix2pix and CycleGAN share: the ``Translator`` base class (inputs checked, translated in batches,
pictures of input | output | target), the config checks, and the image range conversions."""
from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from genlab.config import MAX_WIDTH, check_image_shape, check_positive, check_size
from genlab.errors import ConfigError
from genlab.models.base import GenerativeModel, Labels, adam, image_batch
from genlab.models.translation.nets import PatchDiscriminator
from genlab.nn.modes import eval_mode

MIN_SIDE = 8  # the smallest image side the nets are checked for (the U-Net pads up to its total stride)
MAX_D_LAYERS = 5  # PatchGAN stride-2 layers: 5 sees 286×286 (Isola et al. Table 3's largest patch)


def check_translation_config(config: Any) -> None:
    """The checks every translation config shares: shapes, channels, widths, rates, Adam's betas."""
    config.image_shape = check_image_shape("image_shape", config.image_shape)
    if min(config.image_shape[1:]) < MIN_SIDE:
        raise ConfigError(f"image_shape {tuple(config.image_shape)}: sides must be at least {MIN_SIDE} pixels")
    if config.source_channels is not None and (isinstance(config.source_channels, bool) or config.source_channels not in (1, 3)):
        raise ConfigError(f"source_channels must be 1 or 3 (or unset: the images' own), got {config.source_channels!r}")
    check_size("g_width", config.g_width, MAX_WIDTH)
    check_size("d_width", config.d_width, MAX_WIDTH)
    check_size("d_layers", config.d_layers, MAX_D_LAYERS)
    # Each stride-2 layer halves the side, the two stride-1 4×4 convs take one pixel each: at least one patch must remain.
    if min(config.image_shape[1:]) // 2 ** config.d_layers < 3:
        raise ConfigError(f"d_layers {config.d_layers} leaves no patch to judge on {config.image_shape[1]}×{config.image_shape[2]} "
                          f"images (the side must be at least {3 * 2 ** config.d_layers}); use fewer d_layers")
    check_positive("lr_g", config.lr_g)
    check_positive("lr_d", config.lr_d)
    if not isinstance(config.betas, tuple | list) or len(config.betas) != 2 or not all(
            isinstance(b, int | float) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in config.betas):
        raise ConfigError(f"betas must be two numbers in [0, 1), got {config.betas!r}")
    config.betas = tuple(config.betas)


def patch_weights(in_channels: int, width: int, layers: int) -> int:
    """About how many weights a PatchDiscriminator has (4×4 convs; biases left out)."""
    widths = [in_channels, width] + [width * min(2 ** n, 8) for n in range(1, layers + 1)] + [1]
    return sum(16 * a * b for a, b in itertools.pairwise(widths))


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """Images [0, 1] → [-1, 1], the range of the generators' tanh."""
    return x * 2.0 - 1.0


def from_model_range(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (in the model's [-1, 1] range, where the papers' weights λ apply)."""
    return F.l1_loss(x, y)


def batch_psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean PSNR (dB) over the batch of images in [-1, 1], measured in [0, 1], for the training log."""
    mse = ((output - target) * 0.5).square().flatten(1).mean(dim=1).clamp_min(1e-10)
    return (-10.0 * torch.log10(mse)).mean()


def as_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Gray images repeated to RGB when ``channels`` is 3 (for pictures that mix the two)."""
    return images.expand(-1, channels, -1, -1) if images.shape[1] < channels else images


class Translator(GenerativeModel):
    """Base class of the translation models: they map an input image to an output image, train on paired
    datasets (``takes_sources``), and have no ``sample``: ``translate`` is their use."""

    takes_sources = True
    directions: ClassVar[tuple[str, ...]] = ("a2b",)
    preview_group: ClassVar[tuple[str, ...]] = ()

    @property
    def source_shape(self) -> tuple[int, int, int]:  # type: ignore[override]
        _, height, width = self.config.image_shape
        return (self.source_channels, height, width)

    @property
    def source_channels(self) -> int:
        return self.config.source_channels or self.config.image_shape[0]

    @property
    def grid_columns(self) -> int | None:
        return len(self.preview_group) * (2 if len(self.preview_group) <= 3 else 1)

    def input_channels(self, direction: str) -> int:
        return self.source_channels if direction == "a2b" else self.config.image_shape[0]

    def generator_for(self, direction: str) -> torch.nn.Module:
        raise NotImplementedError

    def check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            raise ConfigError(f"direction must be {' or '.join(map(repr, self.directions))} for a {self.kind} model, "
                              f"got {direction!r}" + ("; a pix2pix model translates one way only" if self.kind == "pix2pix" else ""))

    def check_inputs(self, images: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """``images`` (N×C×H×W or C×H×W, float in [0, 1] or uint8) as float N×C×H×W, or a ConfigError."""
        self.check_direction(direction)
        channels = self.input_channels(direction)
        return image_batch(images, channels, verb="translate",
                           mismatch=f"this {self.kind} model translates {channels}-channel images ({direction}),")

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str = "a2b", batch_size: int = 256) -> torch.Tensor:
        """Input images (N×C×H×W or C×H×W; sides of at least 8 pixels) → their translations in [0, 1], the
        same size, on the input's device: ``direction`` "a2b" (input → target), or "b2a" (CycleGAN's way back).
        Runs in eval mode (batch-norm running statistics, no dropout), ``batch_size`` images at a time."""
        batch = self.check_inputs(images, direction)
        check_size("batch_size", batch_size, 1 << 20)
        if min(batch.shape[2:]) < MIN_SIDE:
            raise ConfigError(f"translate: images are {batch.shape[2]}×{batch.shape[3]}, sides must be at least {MIN_SIDE}")
        generator = self.generator_for(direction)
        with eval_mode(generator):
            outputs = [from_model_range(generator(to_model_range(chunk.to(self.device)))).to(batch.device)
                       for chunk in batch.split(batch_size)]
        out_channels = self.config.image_shape[0] if direction == "a2b" else self.source_channels
        out = torch.cat(outputs) if outputs else batch.new_empty(0, out_channels, *batch.shape[2:])
        return out[0] if images.dim() == 3 else out

    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        raise ConfigError(f"a {self.kind} model does not sample from noise: it translates images you give it "
                          "(model.translate(images) or `genlab translate RUN IMAGES -o grid.png`)")

    def preview_index(self, n: int, seed: int | None, dataset: Any) -> torch.Tensor:
        groups = max(1, n // len(self.preview_group))
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return torch.randperm(len(dataset), generator=generator)[:groups]

    def adam_pair(self, generator_parameters: Any, discriminator_parameters: Any) -> dict[str, torch.optim.Optimizer]:
        """Adam for G (``lr_g``) and D (``lr_d``), with the config's betas (both papers: 2e-4, (0.5, 0.999))."""
        betas = tuple(self.config.betas)
        optimizers = {"G": adam(generator_parameters, lr=self.config.lr_g, betas=betas)}
        if discriminator_parameters is not None:
            optimizers["D"] = adam(discriminator_parameters, lr=self.config.lr_d, betas=betas)
        return optimizers


def patch_discriminator(config: Any, in_channels: int) -> PatchDiscriminator:
    return PatchDiscriminator(in_channels, config.d_width, config.d_layers, config.norm)
