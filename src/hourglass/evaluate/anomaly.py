"""Anomaly detection with an autoencoder: a class the model never saw should reconstruct badly.

Train without class C (``hourglass train MODEL --anomaly-class C`` drops C from the training data),
then score every test example by how poorly the model explains it:

* VAE-type models: the negative ELBO, an upper bound on -log p(x) in nats;
* every other model with an encoder: the reconstruction error, in the model's own likelihood
  (mean per-value BCE for ``recon_loss="bce"``, MSE for ``"mse"``).

Each model computes its own score (``Autoencoder.anomaly_score``), deterministically and independently
of the batch an example is in: the scikit-learn detector (:mod:`hourglass.sklearn`) thresholds the same
numbers.

``anomaly_auc`` is the ROC-AUC of that score for telling class C (positive) from the rest: 0.5 is
chance, 1 a perfect detector. It is only meaningful for a model trained without class C.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..models.base import Autoencoder
from ..seeding import seeded


@torch.no_grad()
def anomaly_scores(model, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1024,
                   seed: int = 0) -> tuple[np.ndarray, str]:
    """Per-example anomaly score (higher = more anomalous) and the name of the quantity used."""
    if not isinstance(model, Autoencoder):
        raise DataError(f"model {model.name!r} has no encoder: it cannot score examples by reconstruction")
    if len(x) == 0:
        raise DataError("no examples to score")
    model.eval()
    dev = model.device
    parts = []
    with seeded(seed):  # a model whose score samples would repeat its draws
        for s in range(0, len(x), batch_size):
            yb = y[s : s + batch_size].to(dev) if (y is not None and model.conditional) else None
            parts.append(model.anomaly_score(x[s : s + batch_size].to(dev), yb).double().cpu())
    return torch.cat(parts).numpy(), model.anomaly_score_name


def anomaly_auc(model, x: torch.Tensor, y, anomaly_class: int, batch_size: int = 1024, seed: int = 0) -> float:
    """ROC-AUC of the anomaly score for telling class ``anomaly_class`` from the other classes."""
    return anomaly_report(model, x, y, anomaly_class, batch_size, seed)["auc"]


def anomaly_report(model, x: torch.Tensor, y, anomaly_class: int, batch_size: int = 1024,
                   seed: int = 0) -> dict:
    """``{"class", "score", "auc", "n_anomalies", "n"}`` for the examples ``x`` with labels ``y``."""
    from sklearn.metrics import roc_auc_score

    if y is None:
        raise DataError("anomaly detection needs labels to know which examples are of the anomaly class")
    yt = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y), dtype=torch.long)
    positive = (yt == int(anomaly_class)).numpy()
    if not positive.any():
        present = sorted(int(v) for v in torch.unique(yt))
        raise DataError(f"anomaly class {anomaly_class} does not occur in the data (classes: {present})")
    if positive.all():
        raise DataError(f"every example is of class {anomaly_class}: there is nothing to tell it from")
    # A conditional model is given the true labels, as in its other metrics.
    scores, key = anomaly_scores(model, x, yt, batch_size, seed)
    return {"class": int(anomaly_class), "score": key, "auc": float(roc_auc_score(positive, scores)),
            "n_anomalies": int(positive.sum()), "n": int(len(positive))}
