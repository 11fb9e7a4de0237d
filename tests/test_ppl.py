"""Perceptual path length (Karras et al. 2019, Eq. 2–3) against closed forms: a linear generator along lerp paths,
and the identity along slerp arcs of orthogonal codes (speed Ω·r, so (Ω·r)² whatever t)."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.tools.latent import perceptual_path_length


@pytest.mark.numerics
def test_lerp_through_a_linear_generator_is_the_squared_image_of_the_step():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 6, generator=generator, dtype=torch.float64), torch.randn(64, 6, generator=generator, dtype=torch.float64)
    matrix = torch.randn(6, 9, generator=generator, dtype=torch.float64)
    result = perceptual_path_length(lambda z: z @ matrix, lambda x: x, a, b, method="lerp", trim=None)
    # G(a + (t+ε)(b−a)) − G(a + t(b−a)) = ε(b−a)A exactly, so each value is ‖(b − a)A‖² for every t.
    expected = ((b - a) @ matrix).pow(2).sum(1)
    assert result["ppl"] == pytest.approx(float(expected.mean()), rel=1e-6)
    assert result["ppl_median"] == pytest.approx(float(expected.median()), rel=1e-6) and result["count"] == 64


@pytest.mark.numerics
def test_slerp_along_a_quarter_circle_has_constant_speed():
    generator = torch.Generator().manual_seed(1)
    basis, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator, dtype=torch.float64))
    radius = 3.0
    a = radius * basis[:, 0].repeat(32, 1)
    b = radius * basis[:, 1].repeat(32, 1)
    result = perceptual_path_length(lambda z: z, lambda x: x, a, b, method="slerp", trim=None, eps=1e-4)
    # p(t) = r(cos(tπ/2)·u + sin(tπ/2)·v): |p'| = r·π/2; the chord over ε is shorter by a factor
    # sin(Ωε/2)/(Ωε/2) ≈ 1 − (Ωε)²/24, ~1e-9 here.
    assert result["ppl"] == pytest.approx((radius * math.pi / 2) ** 2, rel=1e-6)


def test_trimming_drops_the_outliers_and_bad_input_is_one_line():
    a = torch.zeros(100, 2, dtype=torch.float64)
    b = torch.ones(100, 2, dtype=torch.float64)
    b[0] = 1000.0  # one wild pair
    trimmed = perceptual_path_length(lambda z: z, lambda x: x, a, b, method="lerp")
    whole = perceptual_path_length(lambda z: z, lambda x: x, a, b, method="lerp", trim=None)
    assert trimmed["ppl"] == pytest.approx(2.0, rel=1e-6) and whole["ppl"] > 1000
    with pytest.raises(ConfigError, match="N×D alike"):
        perceptual_path_length(lambda z: z, lambda x: x, a, b[:3])
    with pytest.raises(ConfigError, match="eps must be in"):
        perceptual_path_length(lambda z: z, lambda x: x, a, b, eps=0.0)
