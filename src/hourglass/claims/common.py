"""What several claims of the classic family (claims 2-6) share: training a network built in the claim
(a changed loss, a chosen initialisation) through hourglass's own trainer, reconstruction errors in
both likelihoods, and mean-and-spread summaries. How far codes move when the input is perturbed is
:mod:`hourglass.evaluate.robustness`'s."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


def fit_module(ctx, net, x: np.ndarray, *, seed: int, epochs: int, batch_size: int = 64,
               each_epoch: Callable[[Any], None] | None = None) -> list[dict[str, Any]]:
    """Train the model instance ``net`` on all of ``x`` with :class:`~hourglass.training.trainer.Trainer`
    (the loop ``hourglass.train`` uses: same shuffling, seeding, phases), for claims that change what a
    config cannot (the loss itself, the initial weights). ``each_epoch(net)`` runs after every epoch
    (in eval mode, without gradients): learning curves. Returns the trainer's history."""
    import torch

    from ..options import TrainConfig
    from ..training.callbacks import Callback
    from ..training.trainer import Trainer

    class _EachEpoch(Callback):
        def on_epoch_end(self, trainer, record):
            net.eval()
            with torch.no_grad():
                each_epoch(net)
            net.train()

    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, threads=ctx.threads, progress=False)
    trainer = Trainer(net, config, [_EachEpoch()] if each_epoch is not None else [])
    return trainer.fit(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)))


def pixel_mse(net, x) -> float:
    """Mean squared error of a model's reconstructions of the tensor ``x`` (a learning-curve point)."""
    return float(((net.reconstruct(x) - x) ** 2).mean())


def recon_errors(p: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """Mean per-pixel squared error and binary cross-entropy of reconstructions ``p`` (in [0, 1]) of
    ``x``: each is the other likelihood's loss, so neither model is judged only by its own."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    x = np.asarray(x, dtype=np.float64)
    return {"pixel MSE": float(((p - x) ** 2).mean()),
            "pixel BCE": float(-(x * np.log(p) + (1 - x) * np.log(1 - p)).mean())}


def code_scores(ctx, z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray,
                y_test: np.ndarray) -> dict[str, float]:
    """:func:`hourglass.evaluate.codes.code_metrics` (kNN and linear-probe accuracy, fitted on the training
    codes, scored on the test codes); the runner holds the threads at ``--threads``."""
    from ..evaluate.codes import code_metrics

    return code_metrics(z_train, y_train, z_test, y_test)


def plot_band(ax, xs: Sequence[float], per_seed: Sequence[Sequence[float]], style: str, colour: str,
              label: str) -> None:
    """One curve per seed drawn as their mean, with the band from their minimum to their maximum."""
    c = np.asarray(per_seed, dtype=np.float64)
    ax.plot(xs, c.mean(0), style, color=colour, label=label)
    if len(c) > 1:
        ax.fill_between(xs, c.min(0), c.max(0), color=colour, alpha=0.15)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation (population, ddof 0: the seeds are all there is) over seeds; 0 for one."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std())


def ms(values: Sequence[float], fmt: str = ".3f") -> str:
    """``values`` over seeds as "mean ± std" (just the value for one seed), each written with the format
    spec ``fmt`` (".1%", "+.3f": a sign is shown on the mean only)."""
    m, s = mean_std(values)
    if len(values) == 1:
        return format(m, fmt)
    return f"{format(m, fmt)} ± {format(s, fmt.replace('+', ''))}"


def pm(values: Sequence[float], digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """:func:`ms` of the ``values`` times ``scale``, with ``digits`` decimals and ``unit`` once at the end."""
    return ms([scale * v for v in values], f".{digits}f") + unit
