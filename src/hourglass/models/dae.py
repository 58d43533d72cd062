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
hook of :class:`AE`); ``encode`` and evaluation see the clean input. :func:`corrupt` and
:func:`parse_noise_spec` are public, for ``hourglass denoise`` and for evaluating any model on
corrupted inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from ..config import ConfigError, option
from ..registry import register_model
from .ae import AE, AEConfig
from .base import bce_per_value, per_example

NoiseKind = Literal["gaussian", "masking", "salt_pepper"]
NOISE_KINDS: tuple[str, ...] = get_args(NoiseKind)


def check_noise(noise: str, level: float, key: str = "noise_level") -> None:
    """Raise ValueError naming ``key`` when ``level`` is not a valid ``noise`` level."""
    if noise not in NOISE_KINDS:
        raise ValueError(f"unknown noise {noise!r}; choose from {', '.join(NOISE_KINDS)}")
    if noise == "gaussian" and not level >= 0:
        raise ValueError(f"{key}: got {level!r}; a Gaussian noise std must be >= 0")
    if noise != "gaussian" and not 0 <= level <= 1:
        raise ValueError(f"{key}: got {level!r}; {noise} noise corrupts a fraction of the values, in [0, 1]")


def corrupt(
    x: torch.Tensor,
    noise: str,
    level: float,
    generator: torch.Generator | None = None,
    *,
    clip: tuple[float, float] | None = None,
) -> torch.Tensor:
    """A corrupted copy of ``x`` (any shape), drawn on ``x``'s device.

    ``noise`` is ``gaussian`` (std ``level``), ``masking`` or ``salt_pepper`` (fraction ``level``).
    ``clip=(lo, hi)`` is the data range (``(0, 1)`` for data in [0, 1]): Gaussian-corrupted values
    are clipped to it and salt/pepper take its ends; without it nothing is clipped and salt/pepper
    are the batch's maximum/minimum. ``generator`` (on ``x``'s device) makes the noise repeatable.
    """
    check_noise(noise, level)
    if level == 0:
        return x.clone()
    kw = {"generator": generator, "device": x.device}
    if noise == "gaussian":
        out = x + level * torch.randn(x.shape, dtype=x.dtype, **kw)
        return out.clamp(*clip) if clip is not None else out
    hit = torch.rand(x.shape, **kw) < level  # the values to corrupt, each with probability `level`
    if noise == "masking":
        return x.masked_fill(hit, 0.0)
    lo, hi = clip if clip is not None else (x.min(), x.max())
    salt = torch.rand(x.shape, **kw) < 0.5
    fill = torch.where(salt, torch.as_tensor(hi, dtype=x.dtype, device=x.device),
                       torch.as_tensor(lo, dtype=x.dtype, device=x.device))
    return torch.where(hit, fill, x)


def parse_noise_spec(spec: str) -> tuple[str, float]:
    """``"gaussian:0.5"`` -> ``("gaussian", 0.5)``; a malformed spec raises ValueError quoting it."""
    kind, sep, value = str(spec).strip().partition(":")
    kind = kind.strip().replace("-", "_")
    if not sep or kind not in NOISE_KINDS:
        raise ValueError(
            f"noise spec {spec!r}: expected KIND:LEVEL with KIND one of {', '.join(NOISE_KINDS)} "
            "(e.g. 'gaussian:0.5')"
        )
    try:
        level = float(value)
    except ValueError:
        raise ValueError(f"noise spec {spec!r}: level {value.strip()!r} is not a number") from None
    try:
        check_noise(kind, level)
    except ValueError as e:
        raise ValueError(f"noise spec {spec!r}: {e}") from None
    return kind, level


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
        except ValueError as e:
            raise ConfigError(f"{e} (noise={self.noise!r})") from None


@register_model("dae")
class DAE(AE):
    """Denoising autoencoder: encode a corrupted input, reconstruct the clean one."""

    config_cls = DAEConfig
    summary = "denoising autoencoder: reconstruct x from a corrupted x~ (gaussian, masking, salt-and-pepper)"
    figure_captions = {"denoising": "Test examples corrupted as in training (top), denoised by the model (middle), "
                                    "clean (bottom)"}

    @property
    def data_range(self) -> tuple[float, float] | None:
        """(0, 1) for Bernoulli (bce) data, else None (real-valued data are not clipped)."""
        return (0.0, 1.0) if self.config.recon_loss == "bce" else None

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
