"""How many dimensions data need: a model-free estimate, PCA's error for every component count, and
the knee of an error-against-code-size curve.

* :func:`twonn_dimension`: the TwoNN intrinsic dimension (Facco, d'Errico, Rodriguez & Laio 2017),
  ``d = N / sum_i log(r2_i / r1_i)`` from each point's distances to its two nearest neighbours (the
  maximum-likelihood estimate under a locally uniform density);
* :func:`pca_error_curve`: the test MSE of PCA's reconstruction with k = 0, 1, ... components (the
  best *linear* k-dimensional reconstruction, Eckart & Young 1936), from one fit;
* :func:`components_for`: the fewest components of such a curve that reach a given error;
* :func:`knee`: the smallest code size of a sweep whose error has made a given share of the reduction
  from ``d = 0`` (predicting the mean) to the largest size::

      knee = min { d : err(d) <= err(0) - fraction (err(0) - err(d_max)) }

Used by the claim that reconstruction error flattens at a small code size (:mod:`hourglass.claims`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError

__all__ = ["components_for", "knee", "pca_error_curve", "twonn_dimension"]


def twonn_dimension(x: np.ndarray) -> float:
    """TwoNN intrinsic dimension of the rows of ``x`` (flattened): ``N / sum log(r2 / r1)`` over the
    points with distinct nearest neighbours (duplicates, r1 = 0, are left out)."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(x) < 3:
        raise DataError(f"twonn_dimension: {len(x)} points; it needs at least 3 (two neighbours each)")
    dist, _ = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(x)
    r1, r2 = dist[:, 1], dist[:, 2]
    ok = r1 > 0
    if not ok.any():
        raise DataError("twonn_dimension: every point has a duplicate; there are no distances to estimate from")
    return float(ok.sum() / np.log(r2[ok] / r1[ok]).sum())


def pca_error_curve(x_fit: np.ndarray, x_test: np.ndarray, max_components: int = 400) -> np.ndarray:
    """Mean squared error per value of PCA's reconstruction of ``x_test`` with k components, for
    k = 0 (the mean of ``x_fit``: the error is the test variance about it) up to as many as PCA fitted
    on ``x_fit`` can have (at most ``max_components``). Rows are flattened.

    One fit: the error with k components is the squared norm left after projecting the centred test
    rows on the first k, ``(||c||^2 - sum_{j<=k} s_j^2) / D``."""
    from sklearn.decomposition import PCA

    x_fit = np.asarray(x_fit).reshape(len(x_fit), -1)
    x_test = np.asarray(x_test).reshape(len(x_test), -1)
    if x_fit.shape[1] != x_test.shape[1]:
        raise DataError(f"pca_error_curve: fitted on rows of {x_fit.shape[1]} values, tested on {x_test.shape[1]}")
    n_in = x_fit.shape[1]
    pca = PCA(n_components=min(n_in, len(x_fit), max_components), svd_solver="full").fit(x_fit)
    centred = x_test - pca.mean_
    scores = centred @ pca.components_.T
    return np.r_[(centred ** 2).mean(), ((centred ** 2).sum(1).mean() - np.cumsum((scores ** 2).mean(0))) / n_in]


def components_for(curve: np.ndarray, err: float) -> int | None:
    """The fewest components of :func:`pca_error_curve`'s ``curve`` whose error is at most ``err``
    (None: more than it has)."""
    reach = np.nonzero(curve <= err)[0]
    return int(reach[0]) if len(reach) else None


def knee(dims: Sequence[int], err: Sequence[float], base: float, fraction: float = 0.9) -> int:
    """The smallest code size of ``dims`` (ascending) whose error ``err`` has made ``fraction`` of the
    reduction from ``base`` (the error at d = 0) to the largest size's error."""
    if len(dims) != len(err) or not len(dims):
        raise DataError(f"knee: {len(dims)} code sizes and {len(err)} errors")
    if not 0 < fraction <= 1:
        raise DataError(f"knee: fraction {fraction!r} is not in (0, 1]")
    target = base - fraction * (base - err[-1])
    hit = next((d for d, e in zip(dims, err) if e <= target), None)
    if hit is None:  # only when the largest size's error is above base: the curve rose
        raise DataError(f"knee: the error at the largest code size ({err[-1]:g}) is above the error at 0 ({base:g})")
    return int(hit)
