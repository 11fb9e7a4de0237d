"""Reverse processes: from x_T ~ N(0, I) to x_0 with a trained noise predictor ε̂(x_t, t).

- :func:`ddpm_sample`: ancestral sampling through all T steps (Ho et al. 2020, Algorithm 2).
- :func:`ddim_sample`: DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", arXiv:2010.02502) over a
  sub-sequence of the steps; η = 0 is deterministic given x_T, η = 1 is DDPM-like.
- :func:`guided`: classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance",
  arXiv:2207.12598) wraps a conditional predictor into the ε̂ both samplers take.

Noise: every draw comes from ``generator`` (a CPU ``torch.Generator``; None: the global CPU RNG) and is then
moved to x_T's device, so a seed gives the same images on every device.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from genlab.models.diffusion.schedule import NoiseSchedule, at

# ε̂(x_t, t): the noise predicted in x_t at steps t (N int64). Conditioning and guidance live inside it.
NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# ε̂(x_t, t, y) with y = None or N labels (index K = the null label ∅): the U-Net.
ConditionalPredictor = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def guidance_combine(conditional: torch.Tensor, unconditional: torch.Tensor, w: float) -> torch.Tensor:
    """ε̃ = (1 + w)·ε(x, c) − w·ε(x, ∅) (Ho & Salimans 2022, Eq. 6); w = 0 is the conditional prediction."""
    return (1 + w) * conditional - w * unconditional


def guided(model: ConditionalPredictor, labels: torch.Tensor | None, null_label: int, w: float) -> NoisePredictor:
    """The ε̂ a sampler takes: ``model`` with ``labels`` and guidance strength ``w`` (Ho & Salimans 2022, Eq. 6).

    No labels (an unconditional model) or w = 0: the plain prediction, one forward pass (so w = 0 is exactly the
    conditional prediction). Otherwise the conditional and unconditional predictions come from one forward
    pass over the doubled batch [x; x] with labels [y; ∅]."""
    if labels is None or w == 0:
        return lambda x, t: model(x, t, labels)

    def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, torch.full_like(labels, null_label)]))
        conditional, unconditional = both.chunk(2)
        return guidance_combine(conditional, unconditional, w)

    return predict


def draw(shape: torch.Size, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """N(0, I) noise drawn on the CPU from ``generator``, then moved to ``like``'s device and dtype."""
    return torch.randn(shape, generator=generator).to(device=like.device, dtype=like.dtype)


def steps_bar(steps: list[int] | range, progress: bool, name: str) -> tqdm:
    return tqdm(steps, desc=name, unit="step", disable=not progress, leave=False)


def ddpm_sample(predictor: NoisePredictor, schedule: NoiseSchedule, x: torch.Tensor, *, generator: torch.Generator | None = None,
                clip: float | None = None, progress: bool = False) -> torch.Tensor:
    """Ancestral sampling from x_T = ``x`` through all T steps (Ho et al. 2020, Algorithm 2):

        x_{t−1} = μ̃_t(x_t, x̂_0) + σ_t·z,  x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t,  z ~ N(0, I) (z = 0 at the last step)

    where μ̃_t is the posterior mean (Ho Eq. 7), which with this x̂_0 is exactly Algorithm 2's
    1/√α_t·(x_t − β_t/√(1 − ᾱ_t)·ε̂) (Ho Eq. 11). σ_t² = β̃_t, the posterior variance (Ho Eq. 7): Ho §3.2 found
    β_t and β̃_t alike in quality; β̃_t is the reverse variance for a known x_0, and makes DDIM with η = 1 over
    all T steps this very sampler. ``clip``: clamp x̂_0 to [−clip, clip] (Ho et al.'s code does so for pixels in
    [−1, 1]; None, e.g. for latents, leaves Algorithm 2 unchanged).
    """
    for step in steps_bar(range(schedule.timesteps - 1, -1, -1), progress, "ddpm"):
        t = torch.full((x.shape[0],), step, dtype=torch.int64, device=x.device)
        x0 = schedule.predict_x0(x, t, predictor(x, t))
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        mean, variance = schedule.posterior_mean_variance(x0, x, t)
        x = mean + variance.sqrt() * draw(x.shape, generator, x) if step > 0 else mean
    return x


def ddim_timesteps(steps: int, timesteps: int) -> list[int]:
    """``steps`` indices evenly spaced over [0, T − 1], from T − 1 (the noisiest, where x_T ~ N(0, I) belongs) down
    to 0; each distinct for steps ≤ T. Song et al. 2021 §4.2 ("τ is a sub-sequence of [1, …, T]")."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"DDIM steps must be in 1..{timesteps}, got {steps}")
    return [round(v) for v in torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).tolist()]


def ddim_sigma(alpha: torch.Tensor, alpha_prev: torch.Tensor, eta: float) -> torch.Tensor:
    """σ_τ(η) = η·√((1 − ᾱ_prev)/(1 − ᾱ_τ))·√(1 − ᾱ_τ/ᾱ_prev) (Song et al. 2021, Eq. 16; their α is Ho's ᾱ).
    η = 1 over consecutive steps gives √β̃_t (Ho Eq. 7): DDPM's posterior standard deviation."""
    return eta * ((1 - alpha_prev) / (1 - alpha) * (1 - alpha / alpha_prev)).sqrt()


def ddim_sample(predictor: NoisePredictor, schedule: NoiseSchedule, x: torch.Tensor, *, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, clip: float | None = None, progress: bool = False) -> torch.Tensor:
    """DDIM from x_T = ``x`` over ``steps`` steps τ_S > … > τ_1 (:func:`ddim_timesteps`), Song et al. 2021, Eq. 12:

        x_prev = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z,  x̂_0 = (x_τ − √(1 − ᾱ_τ)·ε̂)/√ᾱ_τ,  z ~ N(0, I)

    with σ = σ_τ(η) of Eq. 16 and ᾱ_prev = 1 after the last step (so x_0 = x̂_0). η = 0: deterministic given x_T
    (draws no noise); η = 1 with steps = T: DDPM with σ_t² = β̃_t, draw for draw (see :func:`ddpm_sample`).
    ``clip``: clamp x̂_0 to [−clip, clip] (and use the ε̂ that fits the clamped x̂_0), as for ``ddpm_sample``.
    """
    sequence = ddim_timesteps(steps, schedule.timesteps)
    for i, step in enumerate(steps_bar(sequence, progress, "ddim")):
        t = torch.full((x.shape[0],), step, dtype=torch.int64, device=x.device)
        eps = predictor(x, t)
        x0 = schedule.predict_x0(x, t, eps)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = schedule.predict_eps(x, t, x0)  # the ε̂ of the clamped x̂_0, so the step stays on Eq. 12's path
        if i == len(sequence) - 1:
            return x0
        prev = t.new_full(t.shape, sequence[i + 1])
        # √ᾱ_prev and √(1 − ᾱ_prev) are the constants of q_sample: with ε̂ the true noise of x_τ (and η = 0), x_prev
        # is q_sample(x_0, prev, ε̂) exactly, which the next step's predict_x0 undoes up to rounding alone.
        sigma = ddim_sigma(at(schedule.alphas_cumprod, t, x), at(schedule.alphas_cumprod, prev, x), eta)
        noise_scale = (at(schedule.sqrt_one_minus_alphas_cumprod, prev, x).square() - sigma.square()).clamp(min=0).sqrt()
        x = at(schedule.sqrt_alphas_cumprod, prev, x) * x0 + noise_scale * eps
        if eta > 0:
            x = x + sigma * draw(x.shape, generator, x)
    return x
