"""Priors: distributions to draw codes from, for the adversarial autoencoder (and sampling).

An adversarial autoencoder (Makhzani et al. 2015, "Adversarial Autoencoders") can impose any prior
p(z) it can *sample* from: its discriminator only ever sees samples, never densities. The paper's
examples are here, in a small registry keyed by name:

* ``gaussian``    N(0, std^2 I).
* ``mixture``     K Gaussians with means on a circle of radius r in the first two code dimensions,
                  mu_k = r (cos 2 pi k / K, sin 2 pi k / K, 0, ...), each N(mu_k, std^2 I);
                  component k is "the region of class k" when labels are used.
* ``swiss_roll``  a 2-D spiral cut into K segments along its length (segment k for class k):
                  u ~ U[k/K, (k+1)/K), z = r sqrt(u) (cos 4 pi sqrt(u), sin 4 pi sqrt(u)) + noise;
                  the sqrt makes points spread evenly along the arc.
* ``uniform``     U[-r, r]^d.

Every prior can ``sample(n, generator=None, device=None)``; the labelled ones (mixture, swiss roll)
also ``sample_for_labels(y)``: one code per label, drawn from that label's component or segment.
Dimensions beyond the first two of the mixture and the swiss roll are N(0, std^2) noise, so the
priors work for any ``latent_dim >= 2``.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, ClassVar, TypeVar

import torch

from .errors import ConfigError, DataError

P = TypeVar("P", bound=type)
_PRIORS: dict[str, type["Prior"]] = {}


def register_prior(name: str) -> Callable[[P], P]:
    """Class decorator: register a prior under ``name`` (duplicates are refused)."""

    def deco(cls: P) -> P:
        if name in _PRIORS and _PRIORS[name] is not cls:
            raise ValueError(f"a prior named {name!r} is already registered")
        cls.name = name  # type: ignore[attr-defined]
        _PRIORS[name] = cls  # type: ignore[assignment]
        return cls

    return deco


def list_priors() -> list[str]:
    return sorted(_PRIORS)


def create_prior(name: str, dim: int, **params: float | int | None) -> "Prior":
    """Prior ``name`` over ``dim``-dimensional codes; ``params`` set to None take the prior's default.

    >>> create_prior("mixture", 2, components=8, radius=4.0).sample(3).shape
    torch.Size([3, 2])
    """
    if name not in _PRIORS:
        raise ConfigError(f"unknown prior {name!r}; available: {', '.join(list_priors())}")
    cls = _PRIORS[name]
    given = {k: v for k, v in params.items() if v is not None}
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "dim"}
    for key in given:
        if key not in accepted:
            raise ConfigError(
                f"prior {name!r} has no parameter {key!r} (it takes: {', '.join(sorted(accepted)) or 'none'})"
            )
    return cls(dim, **given)


class Prior:
    """A distribution over ``dim``-dimensional codes that can be sampled."""

    name: ClassVar[str] = "?"
    labelled: ClassVar[bool] = False  # has sample_for_labels()

    def __init__(self, dim: int):
        if dim < 1:
            raise ConfigError(f"prior {self.name!r}: dim must be >= 1, got {dim}")
        self.dim = dim

    @property
    def num_components(self) -> int:
        """How many labels ``sample_for_labels`` accepts (0: none)."""
        return 0

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        raise NotImplementedError

    def sample_for_labels(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError(
            f"prior {self.name!r} has no per-label regions; use one of "
            f"{', '.join(n for n, c in sorted(_PRIORS.items()) if c.labelled)}"
        )

    def _check_labels(self, y: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(y)
        if y.ndim != 1:
            raise DataError(f"prior {self.name!r}: labels must be a 1-D tensor, got shape {tuple(y.shape)}")
        if len(y):
            lo, hi = (int(v) for v in torch.aminmax(y))
            if lo < 0 or hi >= self.num_components:
                raise DataError(
                    f"prior {self.name!r}: labels must be in [0, {self.num_components}), got values in [{lo}, {hi}]"
                )
        return y.long()

    @staticmethod
    def _gen_device(generator: torch.Generator | None, device) -> torch.device:
        return generator.device if generator is not None else torch.device(device or "cpu")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


@register_prior("gaussian")
class Gaussian(Prior):
    """N(0, std^2 I)."""

    def __init__(self, dim: int, std: float = 1.0):
        super().__init__(dim)
        if not std > 0:
            raise ConfigError(f"prior 'gaussian': std must be > 0, got {std}")
        self.std = float(std)

    def sample(self, n, generator=None, device=None):
        dev = self._gen_device(generator, device)
        return self.std * torch.randn(n, self.dim, generator=generator, device=dev)


@register_prior("uniform")
class Uniform(Prior):
    """U[-radius, radius]^dim."""

    def __init__(self, dim: int, radius: float = 1.0):
        super().__init__(dim)
        if not radius > 0:
            raise ConfigError(f"prior 'uniform': radius must be > 0, got {radius}")
        self.radius = float(radius)

    def sample(self, n, generator=None, device=None):
        dev = self._gen_device(generator, device)
        return self.radius * (2 * torch.rand(n, self.dim, generator=generator, device=dev) - 1)


class _Labelled2D(Prior):
    """Shared by the 2-D priors with K labelled regions (dims beyond two are N(0, std^2) noise)."""

    labelled = True

    def __init__(self, dim: int, components: int, radius: float, std: float):
        super().__init__(dim)
        if dim < 2:
            raise ConfigError(f"prior {self.name!r} is 2-D: it needs dim >= 2, got {dim}")
        if components < 1 or not radius > 0 or std < 0:
            raise ConfigError(
                f"prior {self.name!r}: needs components >= 1, radius > 0, std >= 0 "
                f"(got components={components}, radius={radius}, std={std})"
            )
        self.components, self.radius, self.std = int(components), float(radius), float(std)

    @property
    def num_components(self) -> int:
        return self.components

    def _plane(self, y: torch.Tensor, generator, dev) -> torch.Tensor:
        """(N, 2) points of the labelled shape for labels y (before noise)."""
        raise NotImplementedError

    def sample_for_labels(self, y, generator=None):
        y = self._check_labels(y)
        dev = generator.device if generator is not None else y.device
        z = self.std * torch.randn(len(y), self.dim, generator=generator, device=dev)
        z[:, :2] += self._plane(y.to(dev), generator, dev)
        return z

    def sample(self, n, generator=None, device=None):
        dev = self._gen_device(generator, device)
        y = torch.randint(0, self.components, (n,), generator=generator, device=dev)
        return self.sample_for_labels(y, generator)


@register_prior("mixture")
class Mixture(_Labelled2D):
    """K Gaussians N(mu_k, std^2 I), mu_k = radius (cos 2 pi k/K, sin 2 pi k/K); component = label."""

    def __init__(self, dim: int, components: int = 10, radius: float = 4.0, std: float = 0.5):
        super().__init__(dim, components, radius, std)

    def means(self) -> torch.Tensor:
        """(K, 2) component means on the circle."""
        angle = 2 * math.pi * torch.arange(self.components, dtype=torch.float32) / self.components
        return self.radius * torch.stack([angle.cos(), angle.sin()], 1)

    def _plane(self, y, generator, dev):
        return self.means().to(dev)[y]


@register_prior("swiss_roll")
class SwissRoll(_Labelled2D):
    """A spiral of two turns, z = r sqrt(u) (cos 4 pi sqrt(u), sin 4 pi sqrt(u)); segment k: u in [k/K, (k+1)/K)."""

    def __init__(self, dim: int, components: int = 10, radius: float = 4.0, std: float = 0.05):
        super().__init__(dim, components, radius, std)

    def _plane(self, y, generator, dev):
        u = (y.float() + torch.rand(len(y), generator=generator, device=dev)) / self.components
        s = u.sqrt()
        return self.radius * s[:, None] * torch.stack([(4 * math.pi * s).cos(), (4 * math.pi * s).sin()], 1)
