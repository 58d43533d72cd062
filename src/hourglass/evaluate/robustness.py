"""How far an encoder's codes move when its input moves: finite noise, and the exact Jacobian.

Every number here is relative or directional, so a model cannot look robust by shrinking all its
codes (and growing its decoder to match):

* :func:`code_shift`: the codes' movement under Gaussian input noise, over the codes' own spread;
* :func:`encoder_jacobian`: J(x) = dz/dx per example, exact (torch.func), flattened to ``(N, d, D)``;
* :func:`jacobian_spectrum`: J's singular values, largest first, averaged over the examples (a
  contractive encoder keeps a few large ones, the data manifold's tangents, and shrinks the rest);
* :func:`step_sensitivity`: ||J u|| for one unit step ``u`` per example (a step along the data
  against a random one tells whether a contraction spares the manifold's directions).

Used by the claims on denoising, sparse and contractive autoencoders (:mod:`hourglass.claims`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import DataError

__all__ = ["code_shift", "code_spread", "encoder_jacobian", "jacobian_spectrum", "step_sensitivity"]


def code_spread(z: np.ndarray) -> float:
    """How far apart the codes of different inputs are: sqrt(mean_n ||z_n - mean_m z_m||^2), in the
    codes' own precision (the contractive claim's ratios were measured so)."""
    z = np.asarray(z)
    z = z.reshape(len(z), -1)
    return float(np.sqrt(((z - z.mean(0)) ** 2).sum(1).mean()))


def code_shift(encode: Callable[[np.ndarray], np.ndarray], x: np.ndarray, sigma: float, seed: int = 0,
               clip: bool = True) -> float:
    """How far the codes move when ``x`` gets Gaussian noise of std ``sigma``, relative to how far apart
    the codes of different inputs are:

        sqrt(mean_n ||f(x_n + eps_n) - f(x_n)||^2) / sqrt(mean_n ||f(x_n) - mean_m f(x_m)||^2)

    Scale-free, so a model cannot look robust by shrinking all its codes. ``clip``: the noisy images are
    clipped to [0, 1], as corrupted images are (the DAE's own noise); without it the perturbation is
    purely additive (a finite-difference look at the encoder's Jacobian). The noise is drawn from
    ``numpy.random.default_rng(seed)``: the same ``seed`` perturbs every model alike."""
    if sigma < 0:
        raise DataError(f"code_shift: sigma {sigma!r} is negative")
    x = np.asarray(x, dtype=np.float32)
    noisy = x + sigma * np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    if clip:
        noisy = np.clip(noisy, 0.0, 1.0)
    z, zn = _flat(encode(x)), _flat(encode(noisy))
    spread = np.sqrt(((z - z.mean(0)) ** 2).sum(1).mean())
    return float(np.sqrt(((zn - z) ** 2).sum(1).mean()) / max(spread, 1e-12))


def encoder_jacobian(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """dz/dx of ``model.encode`` at every example of ``x``, as ``(N, d, D)`` (D: the flattened input).

    Exact (torch.func's reverse mode, vectorised over the examples), in eval mode, without a graph:
    a measurement, not a loss (the contractive model's penalty is :func:`~hourglass.models.contractive.
    jacobian_frobenius`). Holds N x d x D numbers: call it on a few hundred examples."""
    model.eval()
    with torch.no_grad():
        jac = torch.func.vmap(torch.func.jacrev(lambda xi: model.encode(xi.unsqueeze(0)).squeeze(0)))(x)
    return jac.reshape(len(x), jac.shape[1], -1)


def jacobian_spectrum(jac: torch.Tensor) -> np.ndarray:
    """The singular values of each J ``(d, D)`` of ``jac`` ``(N, d, D)``, largest first, averaged over N.

    With d << D, as the square roots of the eigenvalues of J J^T ``(d, d)``: the same numbers as an SVD
    at a fraction of its cost."""
    gram = jac @ jac.transpose(1, 2)
    return torch.linalg.eigvalsh(gram).clamp(min=0).sqrt().flip(1).mean(0).numpy()


def step_sensitivity(jac: torch.Tensor, steps: torch.Tensor) -> float:
    """mean_n ||J_n u_n||: how far the code follows the step ``u_n`` (row n of ``steps`` ``(N, D)``)."""
    if steps.shape != (jac.shape[0], jac.shape[2]):
        raise DataError(f"step_sensitivity: steps of shape {tuple(steps.shape)} for Jacobians of shape "
                        f"{tuple(jac.shape)} (expected ({jac.shape[0]}, {jac.shape[2]}))")
    return float((jac @ steps.unsqueeze(2)).squeeze(2).norm(dim=1).mean())


def _flat(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return z.reshape(len(z), -1)
