"""The denoising autoencoder (Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting and Composing
Robust Features with Denoising Autoencoders"; Vincent et al. 2010, "Stacked Denoising Autoencoders").

Each training batch is corrupted by a stochastic process q(x~ | x); the network encodes the corrupted
input and is asked for the *clean* one:

    x~ ~ q(x~ | x),   z = f(x~),   L = E_x E_q[ -log p(x | g(f(x~))) ]

so it cannot learn the identity and must model the data's structure (Vincent et al. show it learns
a vector field pointing back towards the data manifold). Three corruptions, ``noise_level`` = nu:

* ``gaussian``:    x~ = x + nu * eps, eps ~ N(0, I)                        (additive isotropic noise)
* ``masking``:     a fraction nu of the values, chosen at random, set to 0     (Vincent's "masking noise")
* ``salt_pepper``: a fraction nu of the values set to the minimum or the maximum of the data range,
  each with probability 1/2.

Data in [0, 1] (``recon_loss="bce"``) stay in [0, 1]: Gaussian-corrupted values are clipped to it and
salt and pepper are 0 and 1. For real-valued (``mse``) data nothing is clipped (the Gaussian noise
stays purely additive; masking sets values to 0, the mean of standardised data) and salt and pepper
are the minimum and maximum of the batch.

The corruption is drawn on the batch, on its device, inside the training step (the ``corrupt``
hook of :class:`AE`); ``encode`` and evaluation see the clean input. The corruptions themselves live
in :mod:`hourglass.models.noise`, shared with stacked pretraining and ``hourglass denoise``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import ConfigError, option
from ..registry import register_model
from .ae import AE, AEConfig
from .base import bce_per_value, per_example
from .noise import NoiseKind, check_noise, corrupt


@dataclass
class DAEConfig(AEConfig):
    noise: NoiseKind = option(
        "gaussian", "corruption: gaussian (additive), masking (set to 0), salt_pepper (set to min or max)"
    )
    noise_level: float = option(0.3, "gaussian: the noise std; masking, salt_pepper: the fraction hit")

    def validate(self) -> None:
        super().validate()
        try:
            check_noise(self.noise, self.noise_level, key="config key 'noise_level'")
        except ConfigError as e:
            raise ConfigError(f"{e} (noise={self.noise!r})") from None


@register_model("dae")
class DAE(AE):
    """Denoising autoencoder: encode a corrupted input, reconstruct the clean one."""

    config_cls = DAEConfig
    summary = "denoising autoencoder: reconstruct x from a corrupted x~ (gaussian, masking, salt-and-pepper)"
    figure_captions = {"denoising": "Test examples corrupted as in training (top), denoised by the model (middle), "
                                    "clean (bottom)"}

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        # Called by AE.training_step only: x~ ~ q(x~ | x); the loss then compares g(f(x~)) with x.
        return corrupt(x, self.config.noise, self.config.noise_level, clip=self.data_range)

    @torch.no_grad()
    def figure_data(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        noisy = self.corrupt(x)
        denoised = self.decode(self.encode(noisy, y), y)
        return {"denoising": ("rows", [("corrupted", noisy), ("denoised", denoised), ("clean", x)])}

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Adds ``denoise_mse`` / ``denoise_bce``: the clean x against the reconstruction of x~."""
        out = super().metrics_batch(x, y)
        rec = self.decode_raw(self.encode(self.corrupt(x), y), y)
        out["denoise_mse"] = per_example((self.output(rec) - x) ** 2, "mean")
        if self.config.recon_loss == "bce":
            out["denoise_bce"] = per_example(bce_per_value(rec, x), "mean")
        return out
