"""Scaling fitted on the training data, stored with the run, applied again to new data.

Kinds:
* ``range``: a fixed known range ``[lo, hi]`` -> [0, 1] (image bytes 0..255, digits 0..16);
* ``minmax``: per-feature min/max of the training data -> [0, 1] (clipped, for BCE: values of new
  data outside the training range would not be probabilities);
* ``standard``: per-feature mean 0, std 1 (for MSE / Gaussian models); constant features keep std 1;
* ``none``: values as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError

KINDS = ("none", "range", "minmax", "standard")


class Scaler:
    def __init__(self, kind: str = "none", lo: float | None = None, hi: float | None = None, clip: bool | None = None):
        if kind not in KINDS:
            raise DataError(f"unknown scaling {kind!r}; choose from {', '.join(KINDS)}")
        if kind == "range" and (lo is None or hi is None or not hi > lo):
            raise DataError(f"scaling 'range' needs lo < hi, got lo={lo}, hi={hi}")
        self.kind = kind
        self.lo, self.hi = lo, hi
        self.clip = (kind == "minmax") if clip is None else bool(clip)
        self.shape: tuple[int, ...] | None = None
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x) -> "Scaler":
        """Fit on training examples ``x``: an array, or :class:`~hourglass.data.rows.Rows` read in one
        streaming pass (:meth:`fit_chunks`)."""
        from .rows import Rows

        if isinstance(x, Rows):
            if len(x) == 0:
                raise DataError(f"cannot fit scaling on data of shape {x.shape}")
            return self.fit_chunks(x.chunks(), x.example_shape)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2 or len(x) == 0:
            raise DataError(f"cannot fit scaling on data of shape {x.shape}")
        self.shape = tuple(x.shape[1:])
        if self.kind == "none":
            self.offset, self.scale = np.zeros(1), np.ones(1)
        elif self.kind == "range":
            self.offset, self.scale = np.array([self.lo]), np.array([self.hi - self.lo])
        elif self.kind == "minmax":
            lo, hi = x.min(0), x.max(0)
            span = hi - lo
            self.offset, self.scale = lo, np.where(span > 0, span, 1.0)
        else:
            mean, std = x.mean(0), x.std(0)
            self.offset, self.scale = mean, np.where(std > 0, std, 1.0)
        return self

    def fit_chunks(self, chunks, example_shape: tuple[int, ...]) -> "Scaler":
        """Fit in one pass over chunks of examples: per-feature min and max, and mean and (population)
        variance merged chunk by chunk (Chan, Golub & LeVeque 1979): for counts n_a, n_b, means m_a, m_b
        and sums of squared deviations M_a, M_b, with d = m_b - m_a and n = n_a + n_b,
        ``m = m_a + d n_b / n`` and ``M = M_a + M_b + d^2 n_a n_b / n``; the variance is M / n."""
        self.shape = tuple(example_shape)
        if self.kind in ("none", "range"):
            return self.fit(np.zeros((1, *example_shape)))
        n, mean, m2, lo, hi = 0, None, None, None, None
        for chunk in chunks:
            c = np.array(chunk, dtype=np.float64)
            nb = len(c)
            if nb == 0:
                continue
            lo_b, hi_b = c.min(0), c.max(0)
            mb = c.mean(0)
            c -= mb  # in place: the chunk is a float64 copy already
            m2b = np.einsum("ij,ij->j", c, c) if c.ndim == 2 else (c * c).sum(0)
            if mean is None:
                n, mean, m2, lo, hi = nb, mb, m2b, lo_b, hi_b
                continue
            d = mb - mean
            total = n + nb
            mean = mean + d * nb / total
            m2 = m2 + m2b + d**2 * n * nb / total
            n = total
            lo, hi = np.minimum(lo, lo_b), np.maximum(hi, hi_b)
        if mean is None:
            raise DataError("cannot fit scaling on no examples")
        if self.kind == "minmax":
            span = hi - lo
            self.offset, self.scale = lo, np.where(span > 0, span, 1.0)
        else:
            std = np.sqrt(m2 / n)
            self.offset, self.scale = mean, np.where(std > 0, std, 1.0)
        return self

    def _check(self, x: np.ndarray) -> np.ndarray:
        if self.offset is None:
            raise DataError("this scaler has not been fitted")
        x = np.asarray(x)
        if self.shape is not None and tuple(x.shape[1:]) != self.shape:
            raise DataError(f"expected examples of shape {self.shape}, found {tuple(x.shape[1:])}")
        return x

    def transform(self, x: np.ndarray) -> np.ndarray:
        # in place on one float64 copy: the same arithmetic as (x - offset) / scale, a third of the memory
        out = self._check(x).astype(np.float64)
        out -= self.offset
        out /= self.scale
        if self.clip:
            np.clip(out, 0.0, 1.0, out=out)
        return out.astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x).astype(np.float64)
        return (x * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lo": self.lo,
            "hi": self.hi,
            "clip": self.clip,
            "shape": list(self.shape) if self.shape is not None else None,
            "offset": self.offset.tolist() if self.offset is not None else None,
            "scale": self.scale.tolist() if self.scale is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scaler":
        try:
            s = cls(d["kind"], d.get("lo"), d.get("hi"), d.get("clip"))
            s.shape = tuple(d["shape"]) if d.get("shape") is not None else None
            s.offset = np.asarray(d["offset"], dtype=np.float64) if d.get("offset") is not None else None
            s.scale = np.asarray(d["scale"], dtype=np.float64) if d.get("scale") is not None else None
        except (KeyError, TypeError) as e:
            raise DataError(f"damaged scaling record: {e}") from None
        return s

    def __repr__(self) -> str:
        return f"Scaler({self.kind!r})"


def default_scaling(bundle, recon_loss: str) -> Scaler:
    """Images with a known range -> [0, 1]; tables: minmax for BCE, standardised for MSE."""
    if bundle.value_range is not None:
        return Scaler("range", lo=float(bundle.value_range[0]), hi=float(bundle.value_range[1]))
    return Scaler("minmax") if recon_loss == "bce" else Scaler("standard")


def make_scaler(kind: str, bundle, recon_loss: str) -> Scaler:
    """The (unfitted) scaler a run asks for: ``auto`` picks by data kind and likelihood (see
    :func:`default_scaling`); ``range`` needs the data's known range."""
    if kind == "auto":
        return default_scaling(bundle, recon_loss)
    if kind == "range":
        if bundle.value_range is None:
            raise DataError(f"scaling 'range' needs a known value range; data set {bundle.name!r} has none")
        return Scaler("range", lo=bundle.value_range[0], hi=bundle.value_range[1])
    if kind in ("none", "minmax", "standard"):
        return Scaler(kind)
    raise DataError(f"scaling {kind!r}: choose auto, range, minmax, standard or none")
