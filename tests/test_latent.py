import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.tools.latent import interpolation_path, lerp, slerp

pytestmark = pytest.mark.numerics  # `make test` runs these again under other CPU kernels


def test_lerp_is_linear_and_hits_endpoints():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = lerp(a, b, torch.tensor([0.0, 0.25, 1.0]))
    torch.testing.assert_close(path, torch.tensor([[0.0, 2.0], [1.0, 1.0], [4.0, -2.0]]))


def test_slerp_endpoints_and_norms_between_equal_norm_codes():
    torch.manual_seed(0)
    a, b = torch.randn(16), torch.randn(16)
    b = b / b.norm() * a.norm()
    path = slerp(a, b, torch.linspace(0, 1, 9))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path.norm(dim=-1), torch.full((9,), a.norm().item()))
    # lerp cuts through the middle: its midpoint is shorter.
    assert lerp(a, b, 0.5)[0].norm() < a.norm() - 1e-3


def test_slerp_matches_the_closed_form_on_orthogonal_unit_vectors():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 0.5)[0]
    torch.testing.assert_close(mid, torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]))


def test_slerp_is_batched_over_leading_dims():
    torch.manual_seed(1)
    a, b = torch.randn(3, 5), torch.randn(3, 5)
    path = slerp(a, b, torch.tensor([0.3, 0.6]))
    assert path.shape == (2, 3, 5)
    for i in range(3):
        torch.testing.assert_close(path[:, i], slerp(a[i], b[i], torch.tensor([0.3, 0.6])))


@pytest.mark.parametrize("scale", [2.0, -1.0])
def test_slerp_of_parallel_or_opposite_codes_falls_back_to_lerp(scale):
    a = torch.tensor([1.0, 2.0, 3.0])
    path = slerp(a, scale * a, torch.linspace(0, 1, 5))
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path, lerp(a, scale * a, torch.linspace(0, 1, 5)))


def test_slerp_from_a_zero_code_is_lerp():
    a, b = torch.zeros(3), torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(slerp(a, b, torch.linspace(0, 1, 4)), lerp(a, b, torch.linspace(0, 1, 4)))


def test_interpolation_path_validates():
    a, b = torch.zeros(4), torch.ones(4)
    assert interpolation_path(a, b, 7, "lerp").shape == (7, 4)
    with pytest.raises(ConfigError, match="steps"):
        interpolation_path(a, b, 1)
    with pytest.raises(ConfigError, match="method"):
        interpolation_path(a, b, 3, "cubic")
