"""The contract between a model and THE training loop.

A model is a network plus its objective. It tells the loop *what* to optimise as a list of
phases; the loop decides *how* (device, precision, EMA, logging, checkpoints, resume).

Each training step runs the phases in order. A phase names an optimizer, a loss function, and
how often it runs. That one shape carries a VAE (one phase) and a GAN (a discriminator phase
repeated n times per step, a generator phase, and lazy regularisation phases that run every
k steps, as in StyleGAN2's G/D phases) with no special cases in the loop.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from genlab.config import TrainConfig
from genlab.errors import ConfigError

# A loss function takes a batch (images as float in [0, 1] on the model's device, and labels or
# None) and returns named scalars. The loop backpropagates "loss"; every entry is logged as
# "<phase>/<name>". A model that ``takes_sources`` (image-to-image translation) trains on a paired
# dataset and gets each batch's inputs (``Dataset.sources``, float in [0, 1]) as a third argument.
LossFunction = Callable[[torch.Tensor, "torch.Tensor | None"], dict[str, torch.Tensor]]


def adam(parameters, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam, fused (one pass over all parameters) where this torch build and device support it.

    Measured on this project's CPU machine for the default VAE: the fused step takes 0.74 ms
    against 3.7 ms for PyTorch's default per-parameter loop, about 6% of a training step.
    CPU support for ``fused=True`` arrived in torch 2.4; older versions fall back to the default.
    """
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(parameters, lr=lr, betas=betas)


Labels = Sequence[int] | torch.Tensor  # one class index per sample
Method = TypeVar("Method", bound=Callable[..., Any])


def inference(method: Method) -> Method:
    """Run a public inference method (encode, decode, posterior, reconstruct, generate) without
    autograd unless the caller asks for gradients: by training the model (``model.train()``) or by
    passing a tensor that requires grad (e.g. a code being optimised). So ``model.decode(z).numpy()``
    works after ``genlab.load``, and inversion still gets gradients through ``decode``."""

    @functools.wraps(method)
    def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        wants_grad = self.training or any(torch.is_tensor(a) and a.requires_grad for a in (*args, *kwargs.values()))
        with torch.set_grad_enabled(torch.is_grad_enabled() and wants_grad):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def class_indices(labels: Labels, n: int, num_classes: int, *, per: str = "image") -> torch.Tensor:
    """``labels`` given for ``n`` images of a model with ``num_classes`` classes as an int64 CPU tensor (N,), or a
    one-line ConfigError: a single number, the wrong count, or a class outside 0..K−1. What a model does when it
    gets no labels at all (cycle the classes, refuse) is its own policy, decided before this is called."""
    if isinstance(labels, int) or (torch.is_tensor(labels) and labels.dim() == 0):
        raise ConfigError(f"labels must be a list or tensor of {n} class indices, got the single value {labels!r}")
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    if labels.numel() != n:
        raise ConfigError(f"labels must hold one class per {per} ({n}), got {labels.numel()}")
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise ConfigError(f"labels must be in 0..{num_classes - 1} (num_classes={num_classes}), "
                          f"got {labels.min().item()}..{labels.max().item()}")
    return labels


def image_batch(images: Any, channels: int, *, verb: str, mismatch: str, kind: str = "images") -> torch.Tensor:
    """A user's images for an image-to-image model (N×C×H×W or C×H×W, float in [0, 1] or uint8) as float
    N×C×H×W, or a one-line ConfigError naming ``verb`` ("upscale expects low-res images N×C×H×W ...") and,
    for the wrong number of channels, starting with ``mismatch`` ("this SR model upscales 1-channel images,")."""
    if not torch.is_tensor(images) or images.dim() not in (3, 4):
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ConfigError(f"{verb} expects {kind} N×C×H×W or C×H×W, got {shape}")
    batch = images.unsqueeze(0) if images.dim() == 3 else images
    if batch.shape[1] != channels:
        raise ConfigError(f"{mismatch} got {batch.shape[1]} channels (shape {tuple(images.shape)}); convert the "
                          f"images to {'grayscale' if channels == 1 else 'RGB'}")
    if batch.dtype == torch.uint8:
        return batch.float() / 255.0
    if not batch.is_floating_point():
        raise ConfigError(f"{verb} expects float images in [0, 1] or uint8, got {batch.dtype}")
    return batch.float()


def truncated_normal(shape: tuple[int, ...], threshold: float | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) on the CPU; with a threshold τ, entries with |z| > τ are redrawn until none are.

    The truncation trick (Brock et al. 2019, BigGAN §3.1): trades variety for fidelity. Redrawing
    (not clamping) keeps the density of a normal truncated to [−τ, τ], with no mass piled up at ±τ.
    """
    if threshold is not None and not threshold > 0:
        raise ConfigError(f"truncation must be > 0, got {threshold!r}")
    z = torch.randn(shape, generator=generator)
    if threshold is None:
        return z
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > threshold
    return z


@dataclass(frozen=True)
class Phase:
    name: str  # used in logs: "<name>/<key>"
    optimizer: str  # a key of the dict returned by make_optimizers
    loss: LossFunction
    every: int = 1  # run on steps where step % every == 0 (lazy regularisation)
    repeats: int = 1  # run this many times per step (e.g. n D updates per G update)
    new_batch: bool = True  # draw a fresh batch, or reuse the one the previous phase drew

    def __post_init__(self) -> None:
        if self.every < 1 or self.repeats < 1:
            raise ValueError(f"phase {self.name!r}: every and repeats must be >= 1")


class GenerativeModel(nn.Module):
    """Base class: subclasses set ``kind`` and ``config_class`` and implement the methods below."""

    kind: ClassVar[str]
    config_class: ClassVar[type]
    # Logged columns (e.g. "D/real_prob") the loop plots in monitor.png beside the 0.5 equilibrium line.
    monitor_columns: ClassVar[tuple[str, ...]] = ()
    # True for a model that maps input images to target images: it trains on (source, image) pairs and its
    # loss functions take the sources as a third argument; ``source_shape`` is then the inputs' (C, H, W).
    takes_sources: ClassVar[bool] = False
    source_shape: tuple[int, ...] | None = None

    @property
    def grid_columns(self) -> int | None:
        """Columns of a sample grid when they mean something (one per class for a conditional model)."""
        return None

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.image_shape)  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def training_phases(self) -> list[Phase]:
        raise NotImplementedError

    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        """``n`` images as float in [0, 1], N×C×H×W; the same seed gives the same images.

        Every model takes the same arguments: ``labels`` (one class per sample; conditional models
        only), ``truncation`` τ (latent drawn from N(0, I) truncated to [−τ, τ]; see truncated_normal).
        """
        raise NotImplementedError

    def refuse_labels(self, labels: Labels | None) -> None:
        """The error an unconditional model gives when asked for classes."""
        if labels is not None:
            raise ConfigError(f"a {self.kind} model is unconditional: it does not take labels")

    def preview(self, n: int, *, seed: int | None, dataset: Any) -> torch.Tensor:
        """The ``n`` images the training loop draws after each epoch (same seed every epoch) and watches
        for mode collapse: by default ``sample(n, seed=seed)``. A model that needs an input image rather
        than noise (super-resolution) overrides this to take its inputs from the training ``dataset``."""
        return self.sample(n, seed=seed)

    def noise_generator(self, seed: int | None) -> torch.Generator | None:
        """A CPU generator for sampling noise, so seeded samples match across devices and never
        touch the global RNG (which training resumes depend on)."""
        return None if seed is None else torch.Generator().manual_seed(seed)
