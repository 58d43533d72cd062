"""The contractive autoencoder (Rifai, Vincent, Muller, Glorot & Bengio 2011, "Contractive
Auto-Encoders: Explicit Invariance During Feature Extraction").

The code is asked to be insensitive to small moves of the input: the loss adds the squared
Frobenius norm of the encoder's Jacobian J(x) = dz/dx,

    L = E_x[ -log p(x | g(f(x))) ] + lambda * ||J_f(x)||_F^2,   ||J||_F^2 = sum_ji (dz_j / dx_i)^2

so the code contracts every direction except those the reconstruction needs: the directions
along the data manifold. How ||J||_F^2 is computed (``jacobian``):

* closed form, for one sigmoid layer z = sigmoid(W x + b) (``hidden=()``, ``code_activation=
  "sigmoid"``, MLP): dz_j/dx_i = h_j (1 - h_j) W_ji, so

      ||J||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ji^2        (Rifai et al. 2011, eq. 4)

* exact, for any encoder: the full per-example Jacobian from ``torch.func`` (``vmap(jacrev(f))``),
  latent_dim vector-Jacobian products per batch, differentiable for training;
* estimate: the unbiased random-projection (Hutchinson) estimator
  ||J||_F^2 = E_u[ ||u^T J||^2 ] for u with E[u u^T] = I (Rademacher, lower variance than Gaussian),
  averaged over ``projections`` draws of u; each is one backward pass of z through the input.

``"auto"`` uses the closed form where it applies and the exact Jacobian elsewhere; ``"exact"``
always uses torch.func (a reference); ``"estimate"`` trades variance for cost on wide codes.

``contraction="stochastic"`` replaces the Jacobian by a finite difference under Gaussian input noise
eps ~ N(0, sigma^2 I) (the stochastic contraction penalty; cf. Rifai et al. 2011b, CAE+H):

    Omega = (lambda / sigma^2) * ||f(x + eps) - f(x)||^2,   E[...] -> lambda ||J||_F^2 as sigma -> 0

(divided by sigma^2 so that ``contraction_weight`` means the same in both variants).
:func:`jacobian_frobenius` measures ||J||_F per example on any model with an ``encode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.func import jacrev, vmap

from ..config import ConfigError, option
from ..registry import register_model
from .ae import AE, AEConfig


@dataclass
class ContractiveConfig(AEConfig):
    contraction_weight: float = option(0.1, "weight lambda of the contraction penalty")
    contraction: Literal["analytic", "stochastic"] = option(
        "analytic", "analytic: lambda ||dz/dx||_F^2; stochastic: (lambda/sigma^2) ||f(x+eps) - f(x)||^2"
    )
    jacobian: Literal["auto", "exact", "estimate"] = option(
        "auto", "auto: closed form for one sigmoid layer, else exact; exact: torch.func; estimate: Hutchinson"
    )
    projections: int = option(1, "jacobian='estimate': random projections per example (variance ~ 1/n)")
    noise_std: float = option(0.1, "contraction='stochastic': std sigma of the Gaussian input perturbation")

    def validate(self) -> None:
        super().validate()
        if not self.contraction_weight >= 0:
            raise ConfigError(f"config key 'contraction_weight': must be >= 0, got {self.contraction_weight}")
        if self.projections < 1:
            raise ConfigError(f"config key 'projections': must be >= 1, got {self.projections}")
        if not self.noise_std > 0:
            raise ConfigError(f"config key 'noise_std': must be > 0, got {self.noise_std}")


def sigmoid_layer_jacobian_sq(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-example ||J||_F^2 of h = sigmoid(W x + b): sum_j (h_j (1 - h_j))^2 sum_i W_ji^2.

    ``h``: codes ``(N, d)``; ``weight``: W, ``(d, D)``.
    """
    return ((h * (1 - h)) ** 2 * weight.pow(2).sum(1)).sum(1)


def jacobian_sq(encode, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example exact ||dz/dx||_F^2 of ``encode`` via torch.func; keeps the graph (trainable)."""
    if y is None:
        jac = vmap(jacrev(lambda xi: encode(xi.unsqueeze(0)).squeeze(0)))(x)
    else:
        jac = vmap(jacrev(lambda xi, yi: encode(xi.unsqueeze(0), yi.unsqueeze(0)).squeeze(0)))(x, y)
    return jac.reshape(x.shape[0], -1).pow(2).sum(1)


def hutchinson_jacobian_sq(x: torch.Tensor, z: torch.Tensor, projections: int = 1) -> torch.Tensor:
    """Unbiased per-example estimate of ||dz/dx||_F^2 = E_u ||u^T J||^2, u Rademacher in code space.

    ``z`` must have been computed from ``x`` (which requires grad) example by example.
    """
    total = torch.zeros(x.shape[0], dtype=z.dtype, device=z.device)
    for _ in range(projections):
        u = torch.randint(0, 2, z.shape, device=z.device).to(z.dtype) * 2 - 1
        (g,) = torch.autograd.grad(z, x, grad_outputs=u, create_graph=True, retain_graph=True)
        total = total + g.reshape(x.shape[0], -1).pow(2).sum(1)
    return total / projections


def jacobian_frobenius(
    model, x: torch.Tensor, y: torch.Tensor | None = None, *, squared: bool = False, batch_size: int = 256
) -> torch.Tensor:
    """Per-example Frobenius norm ||dz/dx||_F (``squared``: its square) of ``model.encode`` at ``x``.

    Exact (torch.func), for any model with ``encode(x, y=None)``; detached, batched by ``batch_size``.
    """
    was_training = model.training
    model.eval()
    try:
        out = []
        for s in range(0, x.shape[0], batch_size):
            yb = y[s : s + batch_size] if y is not None else None
            out.append(jacobian_sq(model.encode, x[s : s + batch_size], yb).detach())
    finally:
        model.train(was_training)
    sq = torch.cat(out)
    return sq if squared else sq.sqrt()


@register_model("contractive")
class ContractiveAE(AE):
    """Contractive autoencoder: reconstruction + lambda * ||dz/dx||_F^2 (or its stochastic version)."""

    config_cls = ContractiveConfig
    summary = "contractive autoencoder: reconstruction + lambda ||dz/dx||_F^2 (closed form, exact, estimate)"

    @property
    def closed_form(self) -> bool:
        """True when the encoder is one sigmoid layer, where ||J||_F^2 has the closed form."""
        c = self.config
        return c.architecture == "mlp" and not c.hidden and c.code_activation == "sigmoid"

    @property
    def method(self) -> str:
        """How the analytic penalty is computed: "closed_form", "exact" or "estimate"."""
        if self.config.jacobian == "auto":
            return "closed_form" if self.closed_form else "exact"
        return self.config.jacobian

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        # Not a corruption: the estimator differentiates z with respect to the input the encoder saw.
        if self.config.contraction == "analytic" and self.method == "estimate":
            return x.detach().requires_grad_(True)
        return x

    def contraction_sq(self, x_in: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Per-example ||J||_F^2 (or its stochastic stand-in) at the training input ``x_in``."""
        c = self.config
        if c.contraction == "stochastic":
            # ||f(x + eps) - f(x)||^2 / sigma^2, eps ~ N(0, sigma^2 I)
            z_eps = self.encode(x_in + c.noise_std * torch.randn_like(x_in))
            return (z_eps - z).pow(2).sum(1) / c.noise_std**2
        if self.method == "closed_form":
            # sum_j (h_j (1 - h_j))^2 sum_i W_ji^2, W the encoder's only linear layer
            return sigmoid_layer_jacobian_sq(z, self.encoder.head[0].weight)
        if self.method == "estimate":
            return hutchinson_jacobian_sq(x_in, z, c.projections)
        return jacobian_sq(self.encode, x_in)

    def penalty(self, x_in: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        # Omega = lambda * mean_n ||J_f(x_n)||_F^2
        return {"contraction": self.config.contraction_weight * self.contraction_sq(x_in, z).mean()}

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Adds ``jacobian_frobenius``: the exact ||dz/dx||_F per example."""
        out = super().metrics_batch(x, y)
        out["jacobian_frobenius"] = jacobian_frobenius(self, x)
        return out
