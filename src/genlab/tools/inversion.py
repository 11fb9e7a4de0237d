"""GAN (and VAE) inversion: find the code z whose image G(z) matches a given image.

Three ways, as in Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image Manifold"
(arXiv:1609.03552, §3.2 "Projecting an image onto the manifold"):

- optimisation (:func:`project`): z* = argmin_z L(G(z), x), by Adam on z, from a chosen start;
- learning (:func:`train_encoder`): a feed-forward encoder E with G(E(x)) ≈ x, trained once;
- hybrid (``project(..., init="encoder")``): E(x) as the start of the optimisation.

The loss L (per image, averaged over the images of a batch in ``ProjectionResult.losses``) is

    pixel_weight   · Σ m ⊙ (G(z) − x)² / Σ m                  pixels, known ones only
  + feature_weight · ‖φ̂(m ⊙ G(z)) − φ̂(m ⊙ x)‖²                 unit-length judge features, a perceptual loss
  + prior_weight   · ‖z‖² / d                                   (2/d)·(−log N(z; 0, I)) up to a constant
  + d_weight       · −log σ(D(G(z)))                            realness under the GAN's D

with m the mask (1 = known pixel). The first two are the reconstruction loss of Image2StyleGAN
(Abdal et al. 2019, "Image2StyleGAN": pixel MSE plus a perceptual loss on VGG-16 features) and of Zhu et al.
2016 (pixels plus feature distance); with a mask they become the contextual loss of Yeh et al. 2017,
"Semantic Image Inpainting with Deep Generative Models" (their contextual loss L_c), and the D term is Yeh et al.'s
prior loss L_p = λ·log(1 − D(G(z))) in its non-saturating form −log D(G(z)) (the same swap the GAN
generator loss makes, Goodfellow et al. 2014, §3), whose gradient does not vanish where D is sure.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from genlab.config import TrainConfig
from genlab.errors import ConfigError, DataError
from genlab.io.images import read_image
from genlab.models.gan.encoder import encoder_for, judge_features
from genlab.models.gan.model import frozen
from genlab.models.judge import resolve_judge
from genlab.runs import load
from genlab.training.loop import train

Init = Literal["mean", "encoder", "random"]
JUDGE_SHAPE = (1, 28, 28)  # the shipped judge's images (Fashion-MNIST)
# progress=: True/False (a bar per projected batch, or none), or one shared bar from projection_bar that every
# projection advances (a command that projects several sets shows one bar with one estimate).
Progress = Any


def projection_bar(images: int, *, desc: str = "projecting", enabled: bool = True) -> Any:
    """One progress bar over all the projections of a task: ``images`` in all, each counted in parts as its
    optimiser steps are taken, with the time elapsed and an estimate of the time left. Pass it as
    ``progress=`` to :func:`project`, :func:`invert` and what calls them (editing, morphs); close it after."""
    return tqdm(total=images, desc=desc, unit="image", disable=not enabled, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} images [{elapsed}<{remaining}]")


def _shared_bar(progress: Progress) -> Any:
    """The shared bar ``progress`` is, or None where it is True/False."""
    return None if isinstance(progress, bool) or progress is None else progress


@dataclass
class ProjectionResult:
    """What :func:`project` found: codes, their images and the loss curve."""

    z: torch.Tensor  # N×latent_dim, detached, on the model's device
    images: torch.Tensor  # N×C×H×W in [0, 1]: the decoded codes
    losses: list[float]  # the total loss at each step, mean over the N images
    final_losses: torch.Tensor = field(default_factory=lambda: torch.empty(0))  # N: each image's loss at z (empty if steps=0)


# ------------------------------------------------------------------------------------ models


def _unwrap(model: Any, encoder: Any) -> tuple[Any, Any]:
    """A GAN-encoder run stands for its GAN (and its encoder, unless another one is given)."""
    if getattr(model, "kind", None) == "gan_encoder":
        return model.gan, encoder if encoder is not None else model
    return model, encoder


def latent_dim(model: Any) -> int:
    """The size of ``model``'s code z."""
    model, _ = _unwrap(model, None)
    dim = getattr(getattr(model, "config", None), "latent_dim", None)
    if not isinstance(dim, int):
        raise ConfigError(f"a {getattr(model, 'kind', type(model).__name__)} model has no latent code to project onto")
    return dim


def decode(model: Any, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images in [0, 1] for codes ``z``, differentiable in z: G(z) for a GAN, the decoder mean for a VAE.

    The model must be in eval mode (batch-norm running statistics); :func:`project` sees to that.
    """
    model, _ = _unwrap(model, None)
    if getattr(model, "kind", None) == "gan":
        return model.generate(z, labels)
    if hasattr(model, "decode"):
        if labels is not None:
            raise ConfigError(f"labels were given but a {model.kind} model is unconditional; leave them out")
        return model.decode(z.to(model.device))
    raise ConfigError(f"a {getattr(model, 'kind', type(model).__name__)} model cannot decode codes into images")


def check_images(model: Any, images: torch.Tensor, what: str = "images") -> torch.Tensor:
    """``images`` as float N×C×H×W in [0, 1] of the model's image shape (uint8 is scaled), or a ConfigError."""
    model, _ = _unwrap(model, None)
    shape = tuple(model.image_shape)
    if not torch.is_tensor(images) or images.dim() != 4:
        got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ConfigError(f"{what} must be a tensor N×{'×'.join(map(str, shape))}, got {got}")
    if tuple(images.shape[1:]) != shape:
        raise ConfigError(f"{what} are {'×'.join(map(str, images.shape[1:]))} but the model makes "
                          f"{'×'.join(map(str, shape))} images (channels×height×width)")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    images = images.float()
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ConfigError(f"{what} must be floats in [0, 1], got values in [{images.min():.3g}, {images.max():.3g}]")
    return images


def read_image_for(model: Any, path: Any, what: str = "image") -> torch.Tensor:
    """An image file as float C×H×W in [0, 1], checked against the model's image shape (no check when
    ``model`` is None). A mismatch is a DataError naming ``what``, the file and what differs (channels or
    size): convert or resize it first; genlab does not guess how."""
    image = read_image(path)  # 1 channel for grayscale files, 3 for colour
    if model is not None:
        channels, height, width = tuple(_unwrap(model, None)[0].image_shape)
        if image.shape[0] != channels:
            kind = {1: "grayscale (1 channel)", 3: "colour (3 channels)"}
            raise DataError(f"{what} {path}: is a {kind[image.shape[0]]} image but the model takes {kind[channels]} "
                            "images; convert it first")
        if tuple(image.shape[1:]) != (height, width):
            raise DataError(f"{what} {path}: is {image.shape[1]}×{image.shape[2]} (H×W) but the model takes "
                            f"{height}×{width} images; resize it first")
    return image.float() / 255.0


class _Inference:
    """Eval mode and frozen weights for the duration of a projection; both restored afterwards."""

    def __init__(self, *modules: Any) -> None:
        self.modules = [m for m in modules if isinstance(m, torch.nn.Module)]

    def __enter__(self) -> None:
        self.modes = [m.training for m in self.modules]
        self.frozen = [frozen(m) for m in self.modules]
        for m, f in zip(self.modules, self.frozen, strict=True):
            m.eval()
            f.__enter__()

    def __exit__(self, *exc: object) -> None:
        for m, f, mode in zip(self.modules, self.frozen, self.modes, strict=True):
            f.__exit__(*exc)
            m.train(mode)


# ----------------------------------------------------------------------------------- the loss


def masked_mse(generated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ m·(g − x)² / Σ m per image (N): the mean squared error over known pixels only.

    Yeh et al. 2017's contextual loss L_c (with uniform weights and squared instead of absolute error);
    an image with no known pixel gets 0 (it constrains nothing).
    """
    squared = (mask * (generated - target).square()).flatten(1).sum(1)
    return squared / mask.flatten(1).sum(1).clamp_min(1e-8)


def prior_energy(z: torch.Tensor) -> torch.Tensor:
    """‖z‖² / d per code: −log N(z; 0, I) = ½‖z‖² + const, scaled per dimension (so ≈ 1 for prior draws)."""
    return z.square().mean(dim=1)


def realness_loss(gan: Any, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """−log σ(D(x)) = softplus(−D(x)) per image: the non-saturating form of Yeh et al.'s prior loss L_p."""
    logits = gan.discriminator(gan.to_model_range(images), gan.resolve_labels(images.shape[0], labels))
    return F.softplus(-logits)


def _lr_factor(t: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """The StyleGAN2 projector's schedule (Karras et al. 2020, projector.py): a linear warm-up over the first
    5% of the steps, then the full rate, then a cosine ramp-down to 0 over the last 25%."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return ramp * min(1.0, t / rampup) if rampup > 0 else ramp


# ------------------------------------------------------------------------------------ projection


def initial_codes(model: Any, images: torch.Tensor, init: Init | torch.Tensor, encoder: Any = None,
                  seed: int = 0) -> torch.Tensor:
    """Where the optimisation starts: N×d codes on the model's device.

    "mean": the prior's mean, z = 0 (Image2StyleGAN starts from the mean latent; note that for an untrained
    DCGAN, whose first layer has no bias, z = 0 is a stationary point; trained batch-norm statistics move it
    off one); "random": z ~ N(0, I)
    with ``seed``; "encoder": the VAE's posterior mean μ(x), or for a GAN ``encoder.encode(x)`` (a run from
    :func:`train_encoder`; hybrid inversion, Zhu et al. 2016 §3.2); a tensor (N×d, or d for all): itself.
    The encoder sees the images as given, unknown pixels included: fill them beforehand as you see fit.
    """
    model, encoder = _unwrap(model, encoder)
    n, d, device = images.shape[0], latent_dim(model), model.device
    if torch.is_tensor(init):
        z = init.detach().to(device, torch.float32)
        if z.dim() == 1:
            z = z.expand(n, -1)
        if tuple(z.shape) != (n, d):
            raise ConfigError(f"init codes must be {n}×{d} (or {d}), got {tuple(init.shape)}")
        return z.clone()
    if init == "mean":
        return torch.zeros(n, d, device=device)
    if init == "random":
        return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)).to(device)
    if init == "encoder":
        source = model if getattr(model, "kind", None) == "vae" else encoder
        if source is None:
            raise ConfigError("init='encoder' needs an encoder for a GAN: pass encoder=genlab.load(RUN) of a run made "
                              "by genlab.tools.inversion.train_encoder (or `genlab train encoder`)")
        if not hasattr(source, "encode"):
            raise ConfigError(f"encoder must have an encode(images) method, got a {type(source).__name__}")
        with torch.no_grad(), _Inference(source):
            z = source.encode(images.to(source.device)).to(device)
        if tuple(z.shape) != (n, d):
            raise ConfigError(f"the encoder makes codes of shape {tuple(z.shape[1:])}, the model takes {d}")
        return z.float()
    raise ConfigError(f"init must be 'mean', 'encoder', 'random' or a tensor of codes, got {init!r}")


def project(model: Any, images: torch.Tensor, *, mask: torch.Tensor | None = None, steps: int = 200, lr: float = 0.05,
            pixel_weight: float = 1.0, feature_weight: float = 0.1, prior_weight: float = 1e-3, d_weight: float = 0.0,
            init: Init | torch.Tensor = "mean", encoder: Any = None, labels: Sequence[int] | torch.Tensor | None = None,
            seed: int = 0, progress: Progress = True, judge: Any = None) -> ProjectionResult:
    """Find codes z with G(z) ≈ ``images`` (on the known pixels of ``mask``) by Adam on z; see the module doc.

    ``model``: a GAN (G = ``model.generate``), a VAE (G = its decoder) or a GAN-encoder run (its GAN and
    encoder). ``images``: N×C×H×W in [0, 1], optimised together but independently (each image's loss is
    its own; the gradient of the sum gives each z its own gradient). ``mask``: None (all known) or a
    tensor broadcastable to ``images``, 1 = known, 0 = unknown; unknown pixels do not enter the loss.
    ``labels``: the classes, for a conditional GAN (required there). ``steps=0`` returns the start.
    ``judge``: whose features the perceptual term uses (see :func:`genlab.models.judge.resolve_judge`; False turns the term
    off). The learning rate follows the StyleGAN2 projector's warm-up and cosine ramp-down. Weights stay untouched and in
    their mode. ``progress``: a bar of the steps (True), none (False), or a shared bar (:func:`projection_bar`) that
    the N images advance by N/steps a step.
    """
    model, encoder = _unwrap(model, encoder)
    images = check_images(model, images)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"steps must be an integer >= 0, got {steps!r}")
    for name, value in (("lr", lr), ("pixel_weight", pixel_weight), ("feature_weight", feature_weight),
                        ("prior_weight", prior_weight), ("d_weight", d_weight)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    is_gan = getattr(model, "kind", None) == "gan"
    if d_weight and not is_gan:
        raise ConfigError(f"d_weight > 0 needs a GAN's discriminator; a {model.kind} model has none")
    if is_gan and model.config.num_classes and labels is None:
        raise ConfigError("this GAN is class-conditional: pass labels= (one class per image) to project onto it")
    device = model.device
    images = images.to(device)
    labels = model.resolve_labels(images.shape[0], labels) if is_gan else labels
    if mask is None:
        mask = torch.ones_like(images)
    else:
        mask = torch.as_tensor(mask, dtype=torch.float32, device=device)
        try:
            mask = torch.broadcast_to(mask, images.shape).float()
        except RuntimeError:
            raise ConfigError(f"mask of shape {tuple(mask.shape)} does not broadcast to the images' {tuple(images.shape)}") from None
        if mask.numel() and (mask.min() < 0 or mask.max() > 1):
            raise ConfigError("mask values must be in [0, 1] (1 = known pixel, 0 = unknown)")
    judge = resolve_judge(judge, model.image_shape, purpose="the projector's feature term") if steps and feature_weight else None

    z = initial_codes(model, images, init, encoder, seed).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr, betas=(0.9, 0.999))
    losses: list[float] = []
    per_image = torch.empty(0, device=device)
    with _Inference(model, judge):
        target_features = judge_features(judge, mask * images).detach() if judge is not None else None
        shared = _shared_bar(progress)
        own = progress is True and shared is None
        bar = tqdm(range(steps), desc=f"projecting {images.shape[0]} image(s)", unit="step", disable=not own or not steps,
                   dynamic_ncols=True, leave=False)
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = lr * _lr_factor((step + 0.5) / steps)  # mid-step time: no step has rate 0
            generated = decode(model, z, labels)
            per_image = _projection_loss(model, judge, z, generated, images, mask, target_features, labels,
                                         pixel_weight, feature_weight, prior_weight, d_weight)
            optimizer.zero_grad(set_to_none=True)
            per_image.sum().backward()  # the sum: every code gets the gradient of its own image's loss
            optimizer.step()
            losses.append(float(per_image.detach().mean()))
            if own and step % 10 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
            if shared is not None:
                shared.update(images.shape[0] / steps)
        bar.close()
        if shared is not None and not steps:
            shared.update(images.shape[0])
        with torch.no_grad():
            final = decode(model, z, labels)
            if steps:  # each image's loss at the codes returned
                per_image = _projection_loss(model, judge, z, final, images, mask, target_features, labels,
                                             pixel_weight, feature_weight, prior_weight, d_weight)
    return ProjectionResult(z=z.detach(), images=final.detach(), losses=losses, final_losses=per_image.detach())


def _projection_loss(model: Any, judge: Any, z: torch.Tensor, generated: torch.Tensor, images: torch.Tensor,
                     mask: torch.Tensor, target_features: torch.Tensor | None, labels: torch.Tensor | None,
                     pixel_weight: float, feature_weight: float, prior_weight: float, d_weight: float) -> torch.Tensor:
    """The projection loss of each image (N), the weighted sum described in the module docstring."""
    # Pixels: Image2StyleGAN's MSE term / Zhu et al.'s pixel distance; with a mask, Yeh et al.'s contextual loss.
    loss = pixel_weight * masked_mse(generated, images, mask)
    if target_features is not None and feature_weight:
        # Perceptual term: distance of network features (Image2StyleGAN uses VGG-16 layers, Zhu et al. 2016
        # AlexNet conv4; here the judge's penultimate layer), of masked images so unknown pixels cannot count.
        loss = loss + feature_weight * (judge_features(judge, mask * generated) - target_features).square().sum(1)
    if prior_weight:
        # Gaussian prior: keeps z where G was trained (Yeh et al. 2017 and Bora et al. 2017 regularise ‖z‖ alike).
        loss = loss + prior_weight * prior_energy(z)
    if d_weight:
        # Realness: Yeh et al. 2017's prior loss L_p, non-saturating (−log D(G(z)) instead of log(1 − D(G(z)))).
        loss = loss + d_weight * realness_loss(model, generated, labels)
    return loss


def default_projection_steps(model: Any, encoder: Any = None) -> int:
    """The projector steps :func:`invert` takes by default: 0 for a VAE (its encoder's code), 100 for a GAN with an
    encoder (``encoder=`` or a GAN-encoder run), 200 for a GAN alone."""
    model, encoder = _unwrap(model, encoder)
    return 0 if getattr(model, "kind", None) == "vae" else 100 if encoder is not None else 200


def invert(model: Any, images: torch.Tensor, *, encoder: Any = None, steps: int | None = None, progress: Progress = True,
           batch_size: int = 256, **project_options: Any) -> torch.Tensor:
    """Codes (N×d) for ``images``, the best way the model allows, ``batch_size`` images at a time.

    A VAE: its posterior mean μ(x) (``steps`` default 0; more refines it with the projector). A GAN with an
    encoder (``encoder=`` or a GAN-encoder run as ``model``): hybrid inversion, E(x) refined by ``steps``
    (default 100) projector steps. A GAN alone: the projector from the prior mean (default 200 steps).
    ``progress``: a bar per batch (True), none (False), or one shared bar (:func:`projection_bar`).
    ``project_options`` go to :func:`project`.
    """
    model, encoder = _unwrap(model, encoder)
    images = check_images(model, images)
    has_encoder = getattr(model, "kind", None) == "vae" or encoder is not None
    if steps is None:
        steps = default_projection_steps(model, encoder)
    project_options.setdefault("init", "encoder" if has_encoder else "mean")
    labels = project_options.pop("labels", None)
    codes = []
    for start in range(0, images.shape[0], batch_size):
        chunk_labels = None if labels is None else torch.as_tensor(labels)[start:start + batch_size]
        codes.append(project(model, images[start:start + batch_size], encoder=encoder, steps=steps, progress=progress,
                             labels=chunk_labels, **project_options).z)
    return torch.cat(codes) if codes else torch.empty(0, latent_dim(model), device=model.device)


# ---------------------------------------------------------------------------- learned encoder


def train_encoder(gan: Any, dataset: Any, config: Any = None, *, resume: bool = False, **options: Any) -> Any:
    """Train an encoder E (image → z) for the frozen generator of ``gan`` with genlab.train; returns it (eval mode).

    ``gan``: a GAN model or the path of a GAN run (recorded in the encoder run's config). ``dataset``: real
    images of the GAN's shape (labels needed for a conditional GAN). ``config``: a TrainConfig (its ``lr``
    is E's Adam rate). ``options``: GANEncoderConfig fields (channels, hidden_dim, latent_weight,
    image_weight, feature_weight). The run directory holds E and a copy of the GAN: ``genlab.load(out_dir)``
    gives a GANEncoder, usable as ``project(run, x, init="encoder")`` or ``encoder=`` for the GAN.
    """
    gan_run = ""
    if not isinstance(gan, torch.nn.Module):
        gan_run = str(gan)
        gan = load(gan_run)
    if getattr(gan, "kind", None) != "gan":
        raise ConfigError(f"train_encoder inverts a GAN; got a {getattr(gan, 'kind', type(gan).__name__)} model")
    config = config or TrainConfig()
    if resume:
        model = load(config.out_dir)
        if getattr(model, "kind", None) != "gan_encoder":
            raise ConfigError(f"{config.out_dir} does not hold a GAN-encoder run to resume")
    else:
        torch.manual_seed(config.seed)  # E's initial weights follow the seed
        model = encoder_for(gan.cpu(), gan_run=gan_run, **options)
    return train(model, dataset, config, resume=resume)
