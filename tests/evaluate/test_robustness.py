"""evaluate.robustness: code shift is scale-free, the Jacobian and its spectrum are exact on a linear encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hourglass.errors import DataError
from hourglass.evaluate.robustness import code_shift, code_spread, encoder_jacobian, jacobian_spectrum, step_sensitivity


class Linear(torch.nn.Module):
    """encode(x) = x W^T: its Jacobian is W at every x."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def encode(self, x):
        return x.reshape(len(x), -1) @ self.w.T


def test_code_shift_is_scale_free_and_zero_without_noise():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(200, 10)).astype(np.float32)
    w = rng.standard_normal((10, 3))
    shift = code_shift(lambda v: v @ w, x, 0.1, seed=3)
    assert shift > 0
    assert code_shift(lambda v: 100 * (v @ w), x, 0.1, seed=3) == pytest.approx(shift, rel=1e-6)
    assert code_shift(lambda v: v @ w, x, 0.0) == 0.0
    assert code_shift(lambda v: v @ w, x, 0.3, seed=3) > shift  # more noise, further
    with pytest.raises(DataError, match="-0.1"):
        code_shift(lambda v: v @ w, x, -0.1)


def test_code_spread_is_the_root_mean_squared_distance_to_the_mean_code():
    z = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    assert code_spread(z) == pytest.approx(np.sqrt((1 + 1 + 9 + 9) / 4))


def test_the_jacobian_of_a_linear_encoder_is_its_matrix_and_the_spectrum_its_singular_values():
    torch.manual_seed(0)
    w = torch.randn(3, 8)
    model = Linear(w)
    x = torch.rand(5, 2, 4)  # flattened to 8 values
    jac = encoder_jacobian(model, x)
    assert jac.shape == (5, 3, 8)
    assert torch.allclose(jac, w.expand(5, 3, 8), atol=1e-6)
    expected = torch.linalg.svdvals(w).numpy()
    assert np.allclose(jacobian_spectrum(jac), expected, rtol=1e-4)
    u = torch.zeros(5, 8)
    u[:, 0] = 1.0  # the first input direction: the code moves by W's first column
    assert step_sensitivity(jac, u) == pytest.approx(float(w[:, 0].norm()), rel=1e-5)
    with pytest.raises(DataError, match="expected \\(5, 8\\)"):
        step_sensitivity(jac, u[:, :4])
