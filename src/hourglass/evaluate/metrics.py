"""The one metric pipeline: what ``metrics.json``, ``hourglass evaluate``, the report and resume report.

``evaluate_splits(model, splits, ...)`` scores a trained model on a run's :class:`~hourglass.data.splits.Splits`:

* ``train`` and ``test``: the mean of each per-example number a model reports from ``metrics_batch``
  (every autoencoder the mean per-value binary cross-entropy ``recon_bce``, the Keras convention,
  meaningful for data in [0, 1], the mean squared error ``recon_mse`` and ``psnr``; VAE-type models the
  negative ELBO ``neg_elbo`` and the importance-sampled negative log-likelihood ``nll``, in nats per
  example). The training split is scored on a seeded subset of at most ``MAX_TRAIN_EVAL`` examples.
* on ``test`` also the code metrics (kNN and probe accuracy with the *training* codes as reference,
  k-means NMI, trustworthiness, continuity: :mod:`~hourglass.evaluate.codes`); their cost grows with
  the square of the data, so they run on seeded subsets of a fixed size (at most ``MAX_FIT`` reference
  codes, ``MAX_POINTS`` points for the neighbourhoods), recorded as ``subsample`` in the output, the
  diagnostics of collapse (active code units, KL per dimension, the spread of samples, the
  discriminator's balance: :mod:`~hourglass.evaluate.diagnostics`), the sample metrics of generative
  models (:mod:`~hourglass.evaluate.samples`) and, for a run trained without one class, ``anomaly_auc``
  (:mod:`~hourglass.evaluate.anomaly`).

``warnings`` lists what the diagnostics found wrong (posterior or mode collapse, a discriminator that
wins outright), each ``{"code", "message"}`` with the usual cures; ``diagnostics`` holds the
per-dimension numbers. ``progress(stage, done, total)``, if given, is called before each stage
(``stage`` names the metric being computed) and once more with ``done == total`` at the end.

Everything random (the ELBO's posterior samples, the subsets) is seeded with ``seed`` in a forked RNG,
so the same model on the same splits gives the same numbers, whoever asks.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, ContextManager

import torch

from ..errors import ConfigError, DataError
from ..models.base import Autoencoder
from ..seeding import seeded

# Evaluating a VAE's NLL costs k decoder passes per example; on large training sets the train-split
# metrics use a fixed random subset of this many examples (metrics.json records "n").
MAX_TRAIN_EVAL = 5000


@torch.no_grad()
def evaluate(
    model,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    batch_size: int = 1024,
    max_examples: int | None = None,
    seed: int = 0,
    autocast: Callable[[], ContextManager[Any]] | None = None,
) -> dict[str, float]:
    """Mean of each per-example metric over ``x`` (a seeded random subset of ``max_examples`` if given).

    ``autocast`` gives the context the model's passes run in (the run's training precision); the
    per-example numbers are summed in float64 whatever it is.

    ``recon_bce`` is left out when the data are not in [0, 1] (it is not a likelihood there).
    """
    model.eval()
    n = x.shape[0]
    if n == 0:
        raise DataError("cannot evaluate on an empty data set")
    if max_examples is not None and n > max_examples:
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_examples]
        x = x[idx]
        y = y[idx] if y is not None else None
        n = max_examples
    dev = model.device
    sums: dict[str, float] = {}
    with seeded(seed):  # the ELBO and IWAE estimates sample: make them repeatable
        for start in range(0, n, batch_size):
            xb = x[start : start + batch_size].to(dev)
            yb = y[start : start + batch_size].to(dev) if y is not None else None
            with autocast() if autocast is not None else contextlib.nullcontext():
                values = model.metrics_batch(xb, yb)
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v.double().sum())
    out = {k: v / n for k, v in sums.items()}
    if float(x.min()) < 0 or float(x.max()) > 1:
        out.pop("recon_bce", None)
    if "recon_mse" in out and out["recon_mse"] > 0:
        # PSNR for data in [0, 1]: 10 log10(1 / MSE)
        if "recon_bce" in out:
            out["psnr"] = 10 * math.log10(1.0 / out["recon_mse"])
    out["n"] = n
    return out


def evaluate_splits(model, splits, *, data_name: str, sample_identity: str | None = None,
                    exclude_class: int | None = None, anomaly_class: int | None = None, batch_size: int = 1024,
                    seed: int = 0, progress: Callable[[str, int, int], None] | None = None,
                    autocast: Callable[[], ContextManager[Any]] | None = None) -> dict[str, Any]:
    """``{"train": ..., "test": ..., ["anomaly": ...]}`` for ``model`` on ``splits`` (see module docstring).

    ``data_name`` and ``sample_identity`` pick the cached classifier of the sample metrics (every run on
    the same data and scaling shares one); ``exclude_class`` is the class the run was trained without,
    whose anomaly ROC-AUC is reported (or that of ``anomaly_class``, when given)."""
    from .codes import model_code_metrics
    from .diagnostics import diagnose, warnings_for
    from .samples import sample_metrics

    s = splits
    anomaly_class = exclude_class if anomaly_class is None else anomaly_class
    nll = " and importance-weighted NLL" if hasattr(model, "iwae_nll") else ""
    stages = [f"training-set metrics{nll}", f"test-set metrics{nll}", "code metrics", "sample metrics",
              "collapse diagnostics"] + (["anomaly ROC-AUC"] if anomaly_class is not None else [])
    step = _Stages(stages, progress)
    out: dict[str, Any] = {}
    step()
    out["train"] = evaluate(model, s.x_train, s.y_train, batch_size, max_examples=MAX_TRAIN_EVAL, seed=seed,
                            autocast=autocast)
    step()
    out["test"] = evaluate(model, s.x_test, s.y_test, batch_size, seed=seed, autocast=autocast)
    step()
    out["test"].update(model_code_metrics(model, s.x_train, s.y_train, s.x_test, s.y_test, seed=seed))
    if "knn_acc" in out["test"] or "trustworthiness" in out["test"]:
        # what the metrics whose cost grows with the square of the data were computed on (seeded subsets)
        from .codes import MAX_FIT, MAX_POINTS

        n_tr, n_te = int((s.y_train >= 0).sum()), int((s.y_test >= 0).sum())
        out["subsample"] = {"neighbourhood_points": min(MAX_POINTS, n_te), "reference_codes": min(MAX_FIT, n_tr),
                            "seed": seed}
    step()
    # A run trained without a class has no classifier for it: no sample metrics.
    if exclude_class is None:
        out["test"].update(sample_metrics(model, data_name, s.x_train, s.y_train, s.x_test, seed=seed,
                                          identity=sample_identity))
    step()
    scalars, details = diagnose(model, s.x_test, s.y_test, seed=seed, batch_size=batch_size)
    out["test"].update(scalars)
    if details:
        out["diagnostics"] = details
    if anomaly_class is not None:
        from .anomaly import anomaly_report

        step()
        if not isinstance(model, Autoencoder):
            raise ConfigError(f"model {model.name!r} has no encoder: it gives no anomaly score")
        out["anomaly"] = anomaly_report(model, s.x_test, s.y_test, anomaly_class, batch_size, seed)
        out["test"]["anomaly_auc"] = out["anomaly"]["auc"]
    out["warnings"] = warnings_for(model, out["test"])
    step.done()
    return out


class _Stages:
    """Calls ``progress(stage, i, total)`` as each stage starts, and ``("done", total, total)`` at the end."""

    def __init__(self, stages: list[str], progress: Callable[[str, int, int], None] | None):
        self.stages, self.progress, self.i = stages, progress, 0

    def __call__(self) -> None:
        if self.progress is not None:
            self.progress(self.stages[self.i], self.i, len(self.stages))
        self.i += 1

    def done(self) -> None:
        if self.progress is not None:
            self.progress("done", len(self.stages), len(self.stages))
