"""The forward (noising) process of a denoising diffusion model and its closed forms.

Ho et al. 2020, "Denoising Diffusion Probabilistic Models" (DDPM, arXiv:2006.11239): a fixed Markov chain
q(x_t | x_{t−1}) = N(√(1 − β_t)·x_{t−1}, β_t·I) adds Gaussian noise over T steps, so that x_T is about N(0, I).

Indices: the paper counts t = 1..T; here t = 0..T−1 is the paper's t + 1 (tensors are indexed from 0), so
``betas[0]`` is the paper's β_1 and the step t = 0 maps x_0 (the data) to x_1. ᾱ of "t = −1" is 1 (no noise).

Every constant is computed in float64 and stored as a float32 buffer (not saved with the weights: it follows
from the config). Each method casts the constants it uses to the dtype of its input.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

ScheduleKind = Literal["linear", "cosine"]
MAX_BETA = 0.999  # Nichol & Dhariwal 2021 §3.2: β_t clipped to at most 0.999, to avoid singularities near t = T
COSINE_OFFSET = 0.008  # s of Nichol & Dhariwal 2021, Eq. 17: so that β_1 is not vanishingly small


def linear_betas(timesteps: int) -> torch.Tensor:
    """β_1..β_T rising linearly from 10⁻⁴ to 0.02 for T = 1000 (Ho et al. 2020 §4), float64.

    For other T both ends are scaled by 1000/T (as in Nichol & Dhariwal's code), so that the total noise
    Σβ_t, and hence ᾱ_T, stays about the same: a short chain takes bigger steps. Clipped at 0.999.
    """
    scale = 1000.0 / timesteps
    betas = torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    return betas.clamp(max=MAX_BETA)


def cosine_alphas_cumprod(timesteps: int, s: float = COSINE_OFFSET) -> torch.Tensor:
    """ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s))·π/2) for t = 0..T (Nichol & Dhariwal 2021, Eq. 17), float64."""
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]


def cosine_betas(timesteps: int) -> torch.Tensor:
    """β_t = 1 − ᾱ_t/ᾱ_{t−1} from the cosine ᾱ (Nichol & Dhariwal 2021, §3.2), clipped at 0.999, float64."""
    alphas_cumprod = cosine_alphas_cumprod(timesteps)
    return (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(max=MAX_BETA)


def at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` shaped to broadcast over ``like`` (N → N×1×1×1), in ``like``'s dtype and device."""
    picked = values.to(like.device)[t.to(like.device)].to(like.dtype)
    return picked.view(-1, *([1] * (like.dim() - 1)))


class NoiseSchedule(nn.Module):
    """β_t, ᾱ_t and the closed forms of the forward process built from them (Ho et al. 2020 §2–3)."""

    def __init__(self, kind: ScheduleKind = "linear", timesteps: int = 1000) -> None:
        super().__init__()
        if kind not in ("linear", "cosine"):
            raise ValueError(f"unknown noise schedule {kind!r}; expected 'linear' or 'cosine'")
        self.kind, self.timesteps = kind, timesteps
        betas = linear_betas(timesteps) if kind == "linear" else cosine_betas(timesteps)
        alphas = 1 - betas  # α_t = 1 − β_t (Ho §2, before Eq. 4)
        alphas_cumprod = torch.cumprod(alphas, 0)  # ᾱ_t = Π_{s≤t} α_s (Ho §2, before Eq. 4)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])  # ᾱ_{t−1}, ᾱ_0 = 1
        constants = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            # q(x_t | x_0) = N(√ᾱ_t·x_0, (1 − ᾱ_t)·I) (Ho Eq. 4)
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
            # β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t (Ho Eq. 7); 0 at the first step, where x_0 is known exactly
            "posterior_variance": (1 - alphas_cumprod_prev) / (1 - alphas_cumprod) * betas,
            # μ̃_t = √ᾱ_{t−1}·β_t/(1 − ᾱ_t)·x_0 + √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t (Ho Eq. 7)
            "posterior_mean_coef1": alphas_cumprod_prev.sqrt() * betas / (1 - alphas_cumprod),
            "posterior_mean_coef2": alphas.sqrt() * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod),
        }
        for name, value in constants.items():
            self.register_buffer(name, value.float(), persistent=False)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, timesteps={self.timesteps}"

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, a draw of q(x_t | x_0) for the given ε (Ho Eq. 4, reparameterised as in Eq. 12)."""
        return at(self.sqrt_alphas_cumprod, t, x0) * x0 + at(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t: Ho Eq. 4 solved for x_0 (their Eq. 15 for a predicted ε).

        Written with the very constants of ``q_sample`` (not 1/√ᾱ_t and √(1/ᾱ_t − 1) rounded on their own), so
        ``predict_x0(q_sample(x_0, t, ε), t, ε)`` gives back x_0 up to the rounding of the arithmetic alone."""
        return (xt - at(self.sqrt_one_minus_alphas_cumprod, t, xt) * eps) / at(self.sqrt_alphas_cumprod, t, xt)

    def predict_eps(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """ε = (x_t − √ᾱ_t·x_0)/√(1 − ᾱ_t): Ho Eq. 4 solved for ε (the noise that makes x_t from x_0)."""
        return (xt - at(self.sqrt_alphas_cumprod, t, xt) * x0) / at(self.sqrt_one_minus_alphas_cumprod, t, xt)

    def posterior_mean_variance(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ̃_t(x_t, x_0), β̃_t) of q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t·I) (Ho Eqs. 6–7); β̃_t shaped N×1×1×1."""
        mean = at(self.posterior_mean_coef1, t, xt) * x0 + at(self.posterior_mean_coef2, t, xt) * xt
        return mean, at(self.posterior_variance, t, xt)
