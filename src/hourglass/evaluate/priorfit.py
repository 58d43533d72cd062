"""How close is a model's code distribution to a prior? Two measures of the aggregate codes q(z).

A VAE's KL term and an AAE's discriminator both push the codes of the data, the aggregate posterior
q(z) = E_x q(z|x), towards a prior p(z) from which ``sample`` then draws. Whether they get there is a
question about two sets of points, the codes of real data and samples of the prior:

* ``two_sample_accuracy``: the classifier two-sample test (Lopez-Paz & Oquab 2017, "Revisiting
  Classifier Two-Sample Tests"). Half of the pooled points train a k-nearest-neighbour classifier to
  tell codes (label 0) from prior samples (label 1); its accuracy on the other half is about 0.5 when
  the two come from one distribution and approaches 1 as they separate. Unlike a test of moments it
  sees any difference in shape (holes between clusters, a ring where a blob should be), and unlike a
  p-value it says how different: "a classifier tells them apart 70% of the time".
* ``gaussian_kl_to_standard``: KL(N(m, S) || N(0, I)) of the Gaussian fitted to the codes,
  0.5 (tr S + m^T m - d - log det S): 0 when mean and covariance are those of N(0, I), whatever the
  shape. It is the moment part of the distance only (a ring of the right variance scores 0), and it
  is cheap and exact where the test above is a noisy estimate.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

NEIGHBOURS = 25  # smooth enough to be stable at ~1,000 points a side, local enough to see holes


def two_sample_accuracy(a: np.ndarray, b: np.ndarray, *, k: int = NEIGHBOURS, seed: int = 0) -> float:
    """Held-out accuracy of a k-NN classifier telling the rows of ``a`` from those of ``b`` (both
    ``(N, d)``; the larger is subsampled to the size of the smaller, so chance is 0.5)."""
    from sklearn.neighbors import KNeighborsClassifier

    a, b = _points(a, "a"), _points(b, "b")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"two-sample test: the point sets differ in dimension ({a.shape[1]} vs {b.shape[1]})")
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < 2 * k:
        raise DataError(f"two-sample test: needs at least {2 * k} points a side for k={k}, got {n}")
    x = np.concatenate([a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]])
    y = np.repeat([0, 1], n)
    order = rng.permutation(2 * n)
    fit, held = order[:n], order[n:]
    return float(KNeighborsClassifier(k).fit(x[fit], y[fit]).score(x[held], y[held]))


def gaussian_kl_to_standard(z: np.ndarray) -> float:
    """KL(N(m, S) || N(0, I)) in nats for the mean m and covariance S of the codes ``z`` (N, d)."""
    z = _points(z, "z")
    d = z.shape[1]
    m = z.mean(0)
    s = np.atleast_2d(np.cov(z, rowvar=False))
    sign, logdet = np.linalg.slogdet(s)
    if sign <= 0:
        return float("inf")  # codes on a lower-dimensional subspace: infinitely far from N(0, I)
    return float(0.5 * (np.trace(s) + m @ m - d - logdet))


def _points(z, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise DataError(f"{name} must be an (N, d) array of at least two points, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise DataError(f"{name} contains NaN or Inf")
    return z
