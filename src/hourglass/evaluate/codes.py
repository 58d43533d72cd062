"""How good are the codes? Label-aware and geometry-aware scores of an embedding.

Given codes of training and test examples (and their labels):

* ``knn_acc``: accuracy of a k-nearest-neighbour classifier (k=5, Euclidean) fitted on the training
  codes and scored on the test codes - are the classes local neighbourhoods in code space?
* ``probe_acc``: accuracy of a linear probe (multinomial logistic regression on standardised codes),
  fitted on train, scored on test - are the classes linearly separable in code space?
* ``kmeans_nmi`` / ``kmeans_acc``: k-means with K = number of classes on the test codes, scored by
  normalised mutual information and by cluster accuracy, ``max_perm (1/N) sum_i [y_i = perm(c_i)]``
  with the best one-to-one matching of clusters to classes found by the Hungarian algorithm
  (``scipy.optimize.linear_sum_assignment`` on the contingency table).
* ``trustworthiness`` (Venna & Kaski 2001): are the k nearest neighbours in code space also near
  in input space? ``T(k) = 1 - 2/(N k (2N - 3k - 1)) sum_i sum_{j in U_k(i)} (r(i, j) - k)`` with
  ``U_k(i)`` the code-space neighbours of i that are not input-space neighbours, ``r`` the input-space
  rank. ``continuity`` is its mirror (input-space neighbours kept in code space): the same formula with
  input and embedding swapped. Both are 1 for an isometry and computed on a seeded subset
  (``max_points``) since they need all pairwise distances.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..models.base import Autoencoder

MAX_POINTS = 1000  # trustworthiness / continuity subset
MAX_FIT = 5000  # training codes used by the kNN and the probe


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Best accuracy over one-to-one matchings of predicted clusters to classes (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise DataError(f"y_true and y_pred differ in length: {y_true.shape} vs {y_pred.shape}")
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(y_true))


def continuity(x: np.ndarray, z: np.ndarray, n_neighbors: int = 5) -> float:
    """Continuity of embedding ``z`` of ``x``: trustworthiness with the roles of input and embedding swapped."""
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(np.asarray(z), np.asarray(x), n_neighbors=n_neighbors))


def neighbourhood_scores(x: np.ndarray, z: np.ndarray, n_neighbors: int = 5, max_points: int = MAX_POINTS,
                         seed: int = 0) -> dict[str, float]:
    """Trustworthiness and continuity of ``z`` as an embedding of ``x`` (flattened), on <= max_points points."""
    from sklearn.manifold import trustworthiness

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    if len(x) != len(z):
        raise DataError(f"x and z differ in length: {len(x)} vs {len(z)}")
    if len(x) > max_points:
        idx = np.random.default_rng(seed).choice(len(x), max_points, replace=False)
        x, z = x[idx], z[idx]
    # sklearn requires n_neighbors < n_samples / 2
    k = min(n_neighbors, (len(x) - 1) // 2)
    if k < 1:
        return {}
    return {"trustworthiness": float(trustworthiness(x, z, n_neighbors=k)),
            "continuity": float(trustworthiness(z, x, n_neighbors=k))}


def code_metrics(z_train, y_train, z_test, y_test, x_test=None, *, k: int = 5, max_points: int = MAX_POINTS,
                 seed: int = 0) -> dict[str, float]:
    """kNN and linear-probe accuracy (train codes -> test codes), k-means NMI and cluster accuracy on the
    test codes and, with ``x_test`` (the inputs of ``z_test``), trustworthiness and continuity."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z_train = _as2d(z_train, "z_train")
    z_test = _as2d(z_test, "z_test")
    y_train = np.asarray(y_train).ravel()
    y_test = np.asarray(y_test).ravel()
    if len(z_train) != len(y_train) or len(z_test) != len(y_test):
        raise DataError(f"codes and labels differ in length: train {len(z_train)} vs {len(y_train)}, "
                         f"test {len(z_test)} vs {len(y_test)}")
    if not (np.isfinite(z_train).all() and np.isfinite(z_test).all()):
        raise DataError("codes contain NaN or Inf")
    if len(z_train) > MAX_FIT:
        idx = np.random.default_rng(seed).choice(len(z_train), MAX_FIT, replace=False)
        z_train, y_train = z_train[idx], y_train[idx]
    out: dict[str, float] = {}
    if len(z_train) >= k and len(np.unique(y_train)) >= 1:
        knn = KNeighborsClassifier(n_neighbors=k).fit(z_train, y_train)
        out["knn_acc"] = float((knn.predict(z_test) == y_test).mean())
    if len(np.unique(y_train)) >= 2:
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        probe.fit(z_train, y_train)
        out["probe_acc"] = float((probe.predict(z_test) == y_test).mean())
    n_classes = len(np.unique(y_test))
    if 2 <= n_classes <= len(z_test):
        clusters = KMeans(n_clusters=n_classes, n_init=5, random_state=seed).fit_predict(z_test)
        out["kmeans_nmi"] = float(normalized_mutual_info_score(y_test, clusters))
        out["kmeans_acc"] = cluster_accuracy(y_test, clusters)
    if x_test is not None:
        out.update(neighbourhood_scores(x_test, z_test, k, max_points, seed))
    return out


def _as2d(z, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) == 0:
        raise DataError(f"{name} must be a non-empty (N, d) array of codes, got shape {z.shape}")
    return z


@torch.no_grad()
def encode_all(model, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1024) -> np.ndarray:
    """Codes of ``x`` in batches (the model's device), as a numpy array."""
    model.eval()
    dev = model.device
    out = []
    for s in range(0, len(x), batch_size):
        yb = y[s : s + batch_size].to(dev) if y is not None else None
        out.append(model.encode(x[s : s + batch_size].to(dev), yb).cpu())
    return torch.cat(out).numpy()


def model_code_metrics(model, x_train, y_train, x_test, y_test, seed: int = 0) -> dict[str, float]:
    """``code_metrics`` of a model's codes (empty when the model has no encoder or there are no labels)."""
    if not isinstance(model, Autoencoder) or y_train is None or y_test is None:
        return {}
    # Unknown labels (-1, semi-supervised data) cannot score anything: only labelled examples count.
    x_train, y_train = labelled(x_train, y_train)
    x_test, y_test = labelled(x_test, y_test)
    if len(y_train) < 2 or len(y_test) < 2:
        return {}
    if len(x_train) > MAX_FIT:
        idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:MAX_FIT]
        x_train, y_train = x_train[idx], y_train[idx]
    yc_train = y_train if model.conditional else None
    yc_test = y_test if model.conditional else None
    z_train = encode_all(model, x_train, yc_train)
    z_test = encode_all(model, x_test, yc_test)
    return code_metrics(z_train, _np(y_train), z_test, _np(y_test), _np(x_test), seed=seed)


def labelled(x, y):
    """The examples whose label is known (not -1), with their labels."""
    known = y >= 0
    return (x, y) if bool(known.all()) else (x[known], y[known])


def _np(t) -> np.ndarray:
    return t.cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
