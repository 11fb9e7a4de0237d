"""GAN objectives as pure functions on the discriminator's raw outputs (logits), and gradient penalties.

Every loss is a mean over the batch. ``D(x)`` below is the probability σ(logit); the code works
on logits, where log σ(l) = −softplus(−l) and log(1 − σ(l)) = −softplus(l) are exact and stable.

``GAN_LOSSES[name] = (d_loss, g_loss)`` with ``d_loss(real_logits, fake_logits)`` and
``g_loss(fake_logits)``; the WGAN-GP gradient penalty is added by the model (it needs D itself).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]  # x → one logit per item


def contest_stats(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the monitor shows of the contest (any logit shapes, e.g. PatchGAN maps): the mean σ(D(x)) on real
    and on fake items, and D's accuracy with 0 as its threshold. At equilibrium both probabilities are 0.5."""
    real, fake = real_logits.flatten(), fake_logits.flatten()
    return {"real_prob": torch.sigmoid(real).mean(), "fake_prob": torch.sigmoid(fake).mean(),
            "accuracy": torch.cat([real > 0, fake < 0]).float().mean()}


# ----- minimax: Goodfellow et al. 2014, "Generative Adversarial Nets", Eq. 1 -----
def minimax_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises E[log D(x)] + E[log(1 − D(G(z)))]; we minimise the negative (Eq. 1)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G minimises E[log(1 − D(G(z)))] (Eq. 1). Kept to show why nobody trains with it: where D
    rejects the fakes (D(G(z)) ≈ 0) the gradient −σ(l) ≈ 0 and G stops learning (§3)."""
    return -F.softplus(fake_logits).mean()


# ----- non-saturating: the same paper, §3 -----
def ns_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G maximises E[log D(G(z))] instead (§3): same fixed point, strong gradients early on."""
    return F.softplus(-fake_logits).mean()


# ----- hinge: Lim & Ye 2017, "Geometric GAN"; in the form of Miyato et al. 2018 (SNGAN), Eqs. 16–17 -----
def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """−E[D(G(z))]."""
    return -fake_logits.mean()


# ----- WGAN-GP: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Eq. 3 -----
def wgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The critic's part of Eq. 3, E[D(x̃)] − E[D(x)] (the penalty term is :func:`gradient_penalty`)."""
    return fake_logits.mean() - real_logits.mean()


def wgan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """−E[D(G(z))] (Algorithm 1, the generator update)."""
    return -fake_logits.mean()


# ----- least squares: Mao et al. 2017, "Least Squares GANs", Eq. 2 with a = 0, b = 1, c = 1 -----
def lsgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """½E[(D(x) − b)²] + ½E[(D(G(z)) − a)²], b = 1 (real), a = 0 (fake); D's output is linear."""
    return 0.5 * (real_logits - 1.0).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()


def lsgan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """½E[(D(G(z)) − c)²], c = 1: G wants its fakes taken for real."""
    return 0.5 * (fake_logits - 1.0).pow(2).mean()


GAN_LOSSES: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "minimax": (minimax_d_loss, minimax_g_loss),
    "ns": (minimax_d_loss, ns_g_loss),  # D's loss is the same; only G's changes
    "hinge": (hinge_d_loss, hinge_g_loss),
    "wgan-gp": (wgan_d_loss, wgan_g_loss),
    "lsgan": (lsgan_d_loss, lsgan_g_loss),
}


# ----- gradient penalties -----
def random_interpolates(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x̂ = α·x + (1 − α)·x̃ with one α ~ U[0, 1] per sample (Gulrajani et al. 2017, Algorithm 1,
    lines 4–6): each x̂ lies on the straight line between its real and its fake, not per pixel."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)  # N×1×1×1 for images, N×1 for points
    if generator is None:
        alpha = torch.rand(shape, device=real.device, dtype=real.dtype)
    else:
        alpha = torch.rand(shape, generator=generator).to(real)
    return alpha * real.detach() + (1.0 - alpha) * fake.detach()


def input_gradients(critic: Critic, x: torch.Tensor) -> torch.Tensor:
    """∇ₓ D(x) per item, N×(everything else), kept in the graph so a penalty on it can be trained."""
    x = x.detach().requires_grad_(True)
    logits = critic(x)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] at random interpolates x̂ (Gulrajani et al. 2017, Eq. 3; weighted by λ outside)."""
    grad = input_gradients(critic, random_interpolates(real, fake, generator))
    return (torch.linalg.vector_norm(grad, dim=1) - 1.0).pow(2).mean()


def r1_penalty(critic: Critic, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 = γ/2 · E[‖∇D(x)‖²] on real data (Mescheder et al. 2018, "Which Training Methods for GANs
    do actually Converge?", Eq. 9): penalises D's slope on the data manifold."""
    grad = input_gradients(critic, real)
    return 0.5 * gamma * grad.pow(2).sum(1).mean()


# ----- orthogonal regularisation: Brock et al. 2019 (BigGAN), §3.1, Eq. 3 -----
def orthogonal_regularization(weights: list[torch.Tensor], beta: float) -> torch.Tensor:
    """R_β(W) = β‖WᵀW ⊙ (1 − I)‖²_F summed over ``weights`` (BigGAN Eq. 3), each taken as a matrix whose columns
    are its filters (out × in·k·k, transposed): it pushes the filters towards orthogonality without constraining
    their norms (the diagonal is left out, unlike Eq. 2's ‖WᵀW − I‖²_F)."""
    total = weights[0].new_zeros(()) if weights else torch.zeros(())
    for weight in weights:
        filters = weight.reshape(weight.shape[0], -1)  # row j = filter j, so filters·filtersᵀ is Eq. 3's WᵀW
        gram = filters @ filters.T
        total = total + (gram * (1.0 - torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype))).pow(2).sum()
    return beta * total


def regularized_weights(module: torch.nn.Module, skip: tuple[torch.nn.Module | None, ...] = ()) -> list[torch.Tensor]:
    """The weights orthogonal regularisation applies to: every conv and linear layer's (the raw weight under a
    spectral-norm parametrisation, as BigGAN's code does), not embeddings nor the modules in ``skip``."""
    weights = []
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and not any(m is s for s in skip):
            parametrized = getattr(m, "parametrizations", None)
            weights.append(parametrized.weight.original if parametrized is not None and "weight" in parametrized else m.weight)
    return weights
