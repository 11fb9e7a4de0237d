"""GAN losses and penalties on hand-computed numbers."""
import math
from typing import get_args

import pytest
import torch

from genlab.models.gan.losses import GAN_LOSSES, contest_stats, gradient_penalty, r1_penalty, random_interpolates
from genlab.models.gan.model import Loss

pytestmark = pytest.mark.numerics  # `make test` runs these again under other CPU kernels

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, 1.5])


def softplus(v: float) -> float:  # log(1 + e^v)
    return math.log(1.0 + math.exp(v))


# With real logits [2, −1] and fake logits [0.5, 1.5]:
#   −log σ(l) = softplus(−l), −log(1 − σ(l)) = softplus(l)
BINARY_D = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(1.5)) / 2
EXPECTED = {
    # name: (D loss, G loss)
    "minimax": (BINARY_D, -(softplus(0.5) + softplus(1.5)) / 2),  # G: mean log(1 − σ(f))
    "ns": (BINARY_D, (softplus(-0.5) + softplus(-1.5)) / 2),  # G: mean −log σ(f)
    "hinge": ((0.0 + 2.0) / 2 + (1.5 + 2.5) / 2, -1.0),  # D: mean relu(1 − r) + mean relu(1 + f)
    "wgan-gp": (1.0 - 0.5, -1.0),  # D: mean f − mean r (the penalty is separate)
    "lsgan": (0.5 * (1.0 + 4.0) / 2 + 0.5 * (0.25 + 2.25) / 2, 0.5 * (0.25 + 0.25) / 2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_loss_on_hand_computed_logits(name):
    d_loss, g_loss = GAN_LOSSES[name]
    expected_d, expected_g = EXPECTED[name]
    # float32 softplus (≤ 2 ulp each) and means of values ≤ 3 (ulp 2.4e-7): ≲ 6e-7
    assert d_loss(REAL, FAKE).item() == pytest.approx(expected_d, abs=1e-6)
    assert g_loss(FAKE).item() == pytest.approx(expected_g, abs=1e-6)


def test_every_configurable_loss_is_registered():
    assert set(GAN_LOSSES) == set(get_args(Loss)) - {"auto"}  # auto: chosen by the architecture


def test_minimax_generator_saturates_where_non_saturating_does_not():
    # D confidently rejects the fakes: D(G(z)) = σ(−10) ≈ 4.5e-5.
    grads = {}
    for name in ("minimax", "ns"):
        logits = torch.full((4,), -10.0, requires_grad=True)
        GAN_LOSSES[name][1](logits).backward()
        grads[name] = logits.grad.abs().sum().item()
    assert grads["minimax"] < 1e-4  # d/dl of mean log(1 − σ(l)) = −σ(l)/N each; summed ≈ 4.5e-5
    assert grads["ns"] > 0.99  # d/dl of mean −log σ(l) = −(1 − σ(l))/N each; summed ≈ 1


@pytest.mark.parametrize("shape", [(6, 3, 8, 8), (6, 2)])
def test_interpolation_coefficient_is_one_per_sample(shape):
    generator = torch.Generator().manual_seed(1)
    real, fake = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    x_hat = random_interpolates(real, fake, torch.Generator().manual_seed(0))
    r, f, x = real.flatten(1).double(), fake.flatten(1).double(), x_hat.flatten(1).double()
    # Not α = (x̂ − f)/(r − f) entry by entry: where r ≈ f that divides x̂'s rounding by ~0 (off by 0.3 for some
    # seeds). Least squares over each row is well conditioned:
    alpha = ((x - f) * (r - f)).sum(1, keepdim=True) / (r - f).square().sum(1, keepdim=True)
    # One α per row: x̂ = αr + (1 − α)f up to x̂'s float32 rounding, ≲ 2ε(|r| + |f|) per entry and as much again
    # through the fitted α (a per-entry α would miss by O(1)).
    assert ((x - (alpha * r + (1 - alpha) * f)).abs() <= 8 * torch.finfo(torch.float32).eps * (r.abs() + f.abs())).all()
    assert ((alpha >= 0) & (alpha <= 1)).all()
    assert alpha.std() > 0.05  # different samples, different α


def linear_critic(w: torch.Tensor):
    return lambda x: x.flatten(1) @ w


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_positive_otherwise():
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    w = torch.randn(16, dtype=torch.float64)
    unit = (w / w.norm()).float()
    # (‖ŵ‖ − 1)² with the float32 ŵ's norm a few ulp (1.2e-7) from 1: ≲ 1e-13
    assert gradient_penalty(linear_critic(unit), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    # ‖∇D‖ = 3 everywhere: (3 − 1)² = 4
    assert gradient_penalty(linear_critic(3 * unit), real, fake).item() == pytest.approx(4.0, rel=1e-5)


def test_gradient_penalty_trains_the_critic():
    critic = torch.nn.Linear(5, 1)
    with torch.no_grad():
        critic.weight.mul_(10.0)  # ‖w‖ far from 1
    gradient_penalty(lambda x: critic(x).view(-1), torch.randn(4, 5), torch.randn(4, 5)).backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_r1_is_half_gamma_times_squared_gradient_norm_for_a_linear_critic():
    w = torch.tensor([3.0, 0.0, 4.0, 0.0])  # ‖w‖² = 25
    real = torch.randn(5, 1, 2, 2)
    assert r1_penalty(linear_critic(w), real, gamma=2.0).item() == pytest.approx(25.0, rel=1e-6)
    assert r1_penalty(linear_critic(w), real, gamma=0.1).item() == pytest.approx(1.25, rel=1e-6)


def test_contest_stats_on_logits_and_patch_maps():
    real = torch.tensor([[2.0, -1.0], [0.5, 3.0]])  # a 2×2 PatchGAN map counts as four verdicts
    fake = torch.tensor([-2.0, 1.0, -0.5, -3.0])
    stats = contest_stats(real, fake)
    assert stats["accuracy"].item() == 6 / 8  # real > 0: 3 of 4; fake < 0: 3 of 4
    assert stats["real_prob"].item() == pytest.approx(sum(1 / (1 + math.exp(-v)) for v in (2.0, -1.0, 0.5, 3.0)) / 4)
    assert stats["fake_prob"].item() == pytest.approx(sum(1 / (1 + math.exp(-v)) for v in (-2.0, 1.0, -0.5, -3.0)) / 4)
