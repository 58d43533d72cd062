"""Sparse autoencoders: a reconstruction loss plus a sparsity penalty Omega(z) on the code.

    L = E_x[ -log p(x | g(z)) ] + Omega(z),   z = f(x)

Three ways to make codes sparse (``sparsity``):

* ``l1`` -- an L1 penalty on the code activations (the "activity regulariser" of the Keras sparse
  autoencoder; Goodfellow, Bengio & Courville 2016, section 14.2.1), averaged over the batch:

      Omega = lambda * mean_n sum_j |z_nj|

  With a linear code the penalty can be met partly by shrinking every code while the decoder
  grows; a ReLU code (``code_activation="relu"``, the Keras example) gives exact zeros.

* ``kl`` -- the code units are sigmoids and each unit's mean activation over the batch,
  rho_hat_j = mean_n z_nj, is pulled towards a small target rho (Ng 2011, "Sparse autoencoder",
  CS294A lecture notes):

      Omega = lambda * sum_j KL(rho || rho_hat_j)
            = lambda * sum_j [ rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j)) ]

  It needs codes in (0, 1): ``code_activation`` defaults to ``sigmoid`` for ``kl`` and any other
  choice is refused.

* ``ksparse`` -- no penalty: ``encode`` keeps the k largest activations of each code and zeroes the
  rest (Makhzani & Frey 2013, "k-Sparse Autoencoders"), so every code has exactly k non-zeros
  (with a linear code; a ReLU code may have fewer). Gradients flow only through the k kept units.

``lambda`` is ``sparsity_weight``; it is relative to the reconstruction loss, which with the default
``reduction="sum"`` is in nats per example (tens for 8x8 digits, ~100 for MNIST): use a much
smaller weight with ``reduction="mean"``. :func:`code_stats` measures how sparse codes are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..config import ConfigError, option
from ..registry import register_model
from .ae import AE, AEConfig

EPS = 1e-6  # keeps log(rho_hat) and log(1 - rho_hat) finite


@dataclass
class SparseConfig(AEConfig):
    sparsity: Literal["l1", "kl", "ksparse"] = option(
        "l1",
        "l1: L1 penalty on codes; kl: KL(rho || mean activation) per unit (sigmoid codes); ksparse: top k",
    )
    sparsity_weight: float = option(0.1, "weight lambda of the l1 or kl penalty (ksparse has none)")
    rho: float = option(0.05, "kl: target mean activation of each code unit, in (0, 1)")
    k: int = option(5, "ksparse: code units kept per example (1 <= k <= latent_dim)")

    def derive(self, explicit: set[str]) -> None:
        super().derive(explicit)
        # The KL penalty compares mean activations with rho in (0, 1): sigmoid codes unless told otherwise.
        if self.sparsity == "kl" and "code_activation" not in explicit:
            self.code_activation = "sigmoid"

    def validate(self) -> None:
        super().validate()
        if not self.sparsity_weight >= 0:
            raise ConfigError(f"config key 'sparsity_weight': must be >= 0, got {self.sparsity_weight}")
        if self.sparsity == "kl":
            if self.code_activation != "sigmoid":
                raise ConfigError(
                    f"config key 'code_activation': sparsity='kl' needs sigmoid codes (mean activations in "
                    f"(0, 1) are compared with rho), got {self.code_activation!r}"
                )
            if not 0 < self.rho < 1:
                raise ConfigError(f"config key 'rho': target activation must be in (0, 1), got {self.rho}")
        if self.sparsity == "ksparse" and not 1 <= self.k <= self.latent_dim:
            raise ConfigError(
                f"config key 'k': sparsity='ksparse' keeps k of the latent_dim={self.latent_dim} code units, "
                f"so 1 <= k <= {self.latent_dim}; got k={self.k}"
            )


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """Zero all but the k largest entries of each row of ``z`` (Makhzani & Frey's support selection)."""
    values, idx = z.topk(k, dim=1)
    return torch.zeros_like(z).scatter(1, idx, values)


def kl_sparsity(z: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_j KL(rho || rho_hat_j) with rho_hat_j = mean_n z_nj: Bernoulli KL per code unit."""
    rho_hat = z.mean(0).clamp(EPS, 1 - EPS)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


@torch.no_grad()
def code_stats(z: torch.Tensor, tol: float = 0.1) -> dict[str, float]:
    """How sparse codes ``(N, d)`` are.

    ``mean_abs``: mean |z|. ``near_zero``: fraction of entries with |z_nj| <= tol * max_j |z_nj|,
    i.e. small next to the largest unit of the same example (scale-free, so a model cannot look
    sparse by shrinking every code and growing its decoder). ``nonzero_per_code``: mean count of
    exact non-zeros per example.
    """
    z = z.reshape(z.shape[0], -1).float()
    a = z.abs()
    peak = a.amax(1, keepdim=True)
    return {
        "mean_abs": a.mean().item(),
        "near_zero": (a <= tol * peak).float().mean().item(),
        "nonzero_per_code": (z != 0).float().sum(1).mean().item(),
    }


@register_model("sparse")
class SparseAE(AE):
    """Sparse autoencoder: L1 or KL sparsity penalty on the code, or k-sparse codes."""

    config_cls = SparseConfig
    summary = "sparse autoencoder: reconstruction + sparsity penalty on the code (L1, KL to rho), or top-k"
    figure_captions = {"code_histogram": "Code activations on the test data (a sparse code piles up at zero)"}

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        z = super().encode(x, y)
        if self.config.sparsity == "ksparse":
            z = keep_top_k(z, self.config.k)  # exactly k non-zeros, in training and in use alike
        return z

    def penalty(self, x_in: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        if c.sparsity == "l1":
            # Omega = lambda * mean_n sum_j |z_nj|
            return {"sparsity": c.sparsity_weight * z.abs().sum(1).mean()}
        if c.sparsity == "kl":
            # Omega = lambda * sum_j [rho log(rho/rho_hat_j) + (1-rho) log((1-rho)/(1-rho_hat_j))]
            return {"sparsity": c.sparsity_weight * kl_sparsity(z, c.rho)}
        return {}  # ksparse: the constraint is in encode()

    @torch.no_grad()
    def figure_data(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        return {"code_histogram": ("histogram", self.encode(x, y))}
