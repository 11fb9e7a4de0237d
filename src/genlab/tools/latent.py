"""Latent-space paths: straight and spherical interpolation between codes, and morphs between two images."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch

from genlab.errors import ConfigError
from genlab.models.base import GenerativeModel
from genlab.nn.modes import eval_mode
from genlab.tools.inversion import decode, invert


def _steps(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` as a 1-D tensor of steps, shaped to broadcast over ``like`` on a new leading dim."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device).reshape(-1)
    return t.view(-1, *([1] * like.dim()))


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """(1 − t)·a + t·b for each step in ``t``, stacked on a new dim 0."""
    t = _steps(t, a)
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985) along the last dimension, for each step in ``t``.

    sin((1 − t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b, with Ω the angle between a and b. In a Gaussian
    latent space it keeps intermediate codes at the typical radius of the prior instead of cutting
    through the low-density centre (White 2016, "Sampling Generative Networks", §2.2).
    Where a and b are (anti)parallel (Ω is 0 or π) or one is zero, the arc is undefined: lerp is used.
    """
    dtype = a.dtype
    a, b = a.double(), b.double()  # the angle of nearly (anti)parallel codes needs the precision
    t = _steps(t, a)
    a_norm, b_norm = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    a_unit, b_unit = a / a_norm.clamp_min(eps), b / b_norm.clamp_min(eps)
    omega = torch.arccos((a_unit * b_unit).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    # (Anti)parallel codes, or a zero code (no direction at all): the arc is undefined.
    degenerate = (sin.abs() < 1e-6) | (a_norm < eps) | (b_norm < eps)
    safe_sin = torch.where(degenerate, torch.ones_like(sin), sin)
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe_sin
    return torch.where(degenerate, (1 - t) * a + t * b, spherical).to(dtype)


def interpolation_path(z_from: torch.Tensor, z_to: torch.Tensor, steps: int,
                       method: Literal["lerp", "slerp"] = "slerp") -> torch.Tensor:
    """``steps`` codes from ``z_from`` to ``z_to`` (both endpoints included), steps × D."""
    if steps < 2:
        raise ConfigError(f"steps must be >= 2, got {steps}")
    if method not in ("lerp", "slerp"):
        raise ConfigError(f"method must be 'lerp' or 'slerp', got {method!r}")
    t = torch.linspace(0.0, 1.0, steps, dtype=z_from.dtype, device=z_from.device)
    return (slerp if method == "slerp" else lerp)(z_from, z_to, t)


@torch.no_grad()
def morph(model: GenerativeModel, image_from: torch.Tensor, image_to: torch.Tensor, steps: int = 10,
          method: Literal["lerp", "slerp"] = "slerp", *, encoder: GenerativeModel | None = None,
          projection_steps: int | None = None, labels: Sequence[int] | torch.Tensor | None = None,
          progress: bool = False) -> torch.Tensor:
    """Decode a path between the codes of two images: ``steps`` frames, endpoints included.

    A VAE encodes both images (posterior means); a GAN finds their codes by inversion
    (``genlab.tools.inversion.invert``: the projector, started from ``encoder``'s guess when given; a GAN-encoder
    run brings its own), ``projection_steps`` optimisation steps (default: invert's).
    ``labels``: the two images' classes, for a class-conditional GAN (required there); the frames take the
    first image's class up to the middle of the path and the second's after it (the class is not a code).
    """
    if steps < 2:
        raise ConfigError(f"steps must be >= 2, got {steps}")
    if not hasattr(model, "encode") and getattr(model, "kind", None) != "gan":
        raise ConfigError(f"a {model.kind} model has no encoder and cannot be inverted; morphing between images needs one")
    frame_labels = None
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        if labels.numel() != 2:
            raise ConfigError(f"labels must hold the classes of the two images, got {labels.numel()}")
        frame_labels = torch.where(torch.arange(steps) < steps / 2, labels[0], labels[1])
    with torch.enable_grad():  # the projector optimises codes
        codes = invert(model, torch.stack([image_from, image_to]), encoder=encoder, steps=projection_steps,
                       progress=progress, **({} if labels is None else {"labels": labels}))
    with eval_mode(model):
        return decode(model, interpolation_path(codes[0], codes[1], steps, method=method), frame_labels)


def perceptual_path_length(generate: Callable[[torch.Tensor], torch.Tensor], embed: Callable[[torch.Tensor], torch.Tensor],
                           starts: torch.Tensor, ends: torch.Tensor, *, method: Literal["lerp", "slerp"] = "slerp",
                           eps: float = 1e-4, seed: int = 0, batch_size: int = 250,
                           trim: tuple[float, float] | None = (1.0, 99.0)) -> dict[str, float]:
    """Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for GANs", §3.2, Eq. 2–3):

        l = E_t [ (1/ε²) · d(G(path(t)), G(path(t + ε))) ],  t ~ U(0, 1)

    for each pair (``starts[i]``, ``ends[i]``): ``path`` is ``method`` ("slerp" in Z, Eq. 2; "lerp" in W, Eq. 3)
    and d the squared Euclidean distance between ``embed``-dings of the two images (the paper uses LPIPS, itself
    a squared distance in VGG features; genlab has no VGG, so a judge's features stand in: values are comparable
    between generators measured with the same embedding, not with the paper's). ``trim`` (percentiles): the mean
    is taken over the values between them, as StyleGAN's code does to drop outliers (None: all values).
    ``generate`` maps a batch of codes to images; ``embed`` maps images to N×F features. Returns the mean, the
    median and the count of values averaged.
    """
    if starts.shape != ends.shape or starts.dim() != 2:
        raise ConfigError(f"perceptual_path_length: starts and ends must be N×D alike, got {tuple(starts.shape)} and "
                          f"{tuple(ends.shape)}")
    if not 0 < eps < 0.5:
        raise ConfigError(f"perceptual_path_length: eps must be in (0, 0.5), got {eps}")
    generator = torch.Generator().manual_seed(seed)
    t = torch.rand(len(starts), generator=generator, dtype=torch.float64) * (1 - eps)
    interpolate = slerp if method == "slerp" else lerp
    values = []
    for i in range(0, len(starts), batch_size):
        a, b, ti = starts[i:i + batch_size], ends[i:i + batch_size], t[i:i + batch_size].to(starts.dtype)[:, None]
        at = _pointwise(interpolate, a, b, ti)
        after = _pointwise(interpolate, a, b, ti + eps)
        with torch.no_grad():
            first, second = embed(generate(at)), embed(generate(after))
        values.append(((first - second).double().pow(2).sum(1) / eps**2).cpu())
    lengths = torch.cat(values)
    kept = lengths
    if trim is not None:
        low, high = torch.quantile(lengths, trim[0] / 100), torch.quantile(lengths, trim[1] / 100)
        kept = lengths[(lengths >= low) & (lengths <= high)]
    return {"ppl": float(kept.mean()), "ppl_median": float(lengths.median()), "count": len(kept)}


def _pointwise(interpolate: Callable[..., torch.Tensor], a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """interpolate(a[i], b[i], t[i]) for each row i (lerp and slerp take one t per call, stacked on dim 0)."""
    return torch.cat([interpolate(a[i:i + 1], b[i:i + 1], t[i])[0] for i in range(len(a))])
