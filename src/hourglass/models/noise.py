"""Input corruptions q(x~ | x), shared by the denoising autoencoder, stacked denoising pretraining and
``hourglass denoise``.

Three corruptions, ``level`` = nu:

* ``gaussian``:    x~ = x + nu * eps, eps ~ N(0, I)                        (additive isotropic noise)
* ``masking``:     a fraction nu of the values, chosen at random, set to 0     (Vincent's "masking noise")
* ``salt_pepper``: a fraction nu of the values set to the minimum or the maximum of the data range,
  each with probability 1/2.

The data range is the model's ``data_range``: (0, 1) for Bernoulli (bce) models, whose Gaussian-
corrupted values are clipped to it; None for real-valued (mse) models, where nothing is clipped and
salt and pepper are the batch's minimum and maximum.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from ..errors import ConfigError

NoiseKind = Literal["gaussian", "masking", "salt_pepper"]
NOISE_KINDS: tuple[str, ...] = get_args(NoiseKind)


def check_noise(noise: str, level: float, key: str = "noise_level") -> None:
    """Raise ConfigError naming ``key`` when ``level`` is not a valid ``noise`` level."""
    if noise not in NOISE_KINDS:
        raise ConfigError(f"unknown noise {noise!r}; choose from {', '.join(NOISE_KINDS)}")
    if noise == "gaussian" and not level >= 0:
        raise ConfigError(f"{key}: got {level!r}; a Gaussian noise std must be >= 0")
    if noise != "gaussian" and not 0 <= level <= 1:
        raise ConfigError(f"{key}: got {level!r}; {noise} noise corrupts a fraction of the values, in [0, 1]")


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
    """``"gaussian:0.5"`` -> ``("gaussian", 0.5)``; a malformed spec raises ConfigError quoting it."""
    kind, sep, value = str(spec).strip().partition(":")
    kind = kind.strip().replace("-", "_")
    if not sep or kind not in NOISE_KINDS:
        raise ConfigError(
            f"noise spec {spec!r}: expected KIND:LEVEL with KIND one of {', '.join(NOISE_KINDS)} "
            "(e.g. 'gaussian:0.5')"
        )
    try:
        level = float(value)
    except ValueError:
        raise ConfigError(f"noise spec {spec!r}: level {value.strip()!r} is not a number") from None
    try:
        check_noise(kind, level)
    except ConfigError as e:
        raise ConfigError(f"noise spec {spec!r}: {e}") from None
    return kind, level
