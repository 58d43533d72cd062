"""Claim 10: a conditional VAE learns from partially labelled data (Kingma, Rezende, Mohamed & Welling
2014, "Semi-Supervised Learning with Deep Generative Models", model M2).

What "learns from" has to show is that the unlabelled images add something: the classifier q(y|x) of
an M2 model trained on a few labels and many unlabelled images is compared with classifiers that see
the same labelled images only. The sharpest of those controls is the same M2 model trained on the
labelled images alone, for as many optimisation steps (its labelled replay then sees the same labelled
batches); beside it a small CNN (the judge's architecture) and a logistic regression on the pixels."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from .base import Context, Finding, claim
from .common import ms

LABELS = 100


@claim(10, "A conditional VAE learns from partially labelled data",
       """A conditional VAE (the M2 model) learns from partially labelled data: with a classifier q(y|x)
       standing in for missing labels, the unlabelled images help it classify (semi-supervised learning).""")
def check(ctx: Context) -> Finding:
    trained = train(ctx)
    rows = measure(ctx, trained)
    return verdict(ctx, rows)


@dataclasses.dataclass
class Budget:
    n: int  # training images per seed, of which LABELS keep their label
    epochs: int
    batch: int
    cnn_epochs: int

    @property
    def steps(self) -> int:
        """The M2 run's optimiser steps, which its labelled-only twin gets too."""
        return math.ceil(self.n / self.batch) * self.epochs


def _budget(ctx: Context) -> Budget:
    return Budget(ctx.pick(2000, len(ctx.x_train)), ctx.pick(10, 3), 100, ctx.pick(60, 20))


def train(ctx: Context) -> dict[int, dict]:
    """Per seed: M2 on the partly labelled images, and the controls on the labelled images alone (the same
    model as long, a CNN, a logistic regression). seed -> {name: run or fitted model}; the CNN's is its
    test accuracy, which :func:`~hourglass.evaluate.reference.train_judge` measures as it trains."""
    from sklearn.linear_model import LogisticRegression

    from ..evaluate.reference import train_judge

    b = _budget(ctx)
    trained = {}
    for seed in ctx.seeds:
        x, y = ctx.subset(b.n, seed=seed)
        m2 = ctx.train("cvae", x, y, preset="m2-mnist", keep_labels=LABELS, seed=seed, epochs=b.epochs,
                       batch_size=b.batch, val_fraction=0.0)
        # the labelled images the run kept (drawn balanced over the classes by the run's seed)
        s = m2.splits()
        kept = s.y_train_seen >= 0
        xl, yl = s.x_train[kept].numpy(), s.y_train_seen[kept].numpy()
        alone = ctx.train("cvae", xl, yl, preset="m2-mnist", seed=seed, epochs=b.steps, batch_size=b.batch,
                          val_fraction=0.0)
        _, cnn = train_judge(xl, yl, ctx.x_test, ctx.y_test, epochs=b.cnn_epochs, seed=seed, threads=ctx.threads)
        pixels = LogisticRegression(max_iter=2000).fit(xl.reshape(len(xl), -1), yl)
        trained[seed] = {"m2": m2, "alone": alone, "cnn accuracy": cnn, "pixels": pixels}
    return trained


def measure(ctx: Context, trained: dict[int, dict]) -> list[dict]:
    """Test accuracy of every classifier, one row per seed."""
    x_test = torch.as_tensor(ctx.x_test)
    rows = []
    for seed, t in trained.items():
        linear = float(t["pixels"].score(ctx.x_test.reshape(len(ctx.x_test), -1), ctx.y_test))
        rows.append({"seed": seed,
                     "M2, labelled + unlabelled": _accuracy(t["m2"], x_test, ctx.y_test),
                     "M2, labelled only": _accuracy(t["alone"], x_test, ctx.y_test),
                     "CNN, labelled only": t["cnn accuracy"],
                     "logistic regression on pixels": linear})
    return rows


def verdict(ctx: Context, rows: list[dict]) -> Finding:
    """Holds when M2 beats every control clearly; a caveat when it beats only its own labelled-only twin."""
    from ..report.figures import new_figure

    b = _budget(ctx)
    n, epochs, steps, cnn_epochs = b.n, b.epochs, b.steps, b.cnn_epochs
    methods = [k for k in rows[0] if k != "seed"]
    acc = {m: np.array([r[m] for r in rows]) for m in methods}
    m2 = acc[methods[0]]
    controls = {m: acc[m] for m in methods[1:]}
    # the rules: M2's mean accuracy above a control's mean by more than both spreads together (and by at
    # least one point); better than the same model without the unlabelled images, and than every
    # control, is "holds"; better than its own labelled-only twin but not every control, a caveat
    beats = {m: bool(m2.mean() - m2.std() - 0.01 > a.mean() + a.std()) for m, a in controls.items()}
    if all(beats.values()):
        verdict, caveat = "holds", ""
    elif beats["M2, labelled only"]:
        verdict = "holds with a caveat"
        caveat = ("the unlabelled images help the M2 model, but " + ", ".join(m for m, b in beats.items() if not b)
                  + " does as well on the labels alone")
    else:
        verdict = "does not hold here"
        caveat = (f"in this budget ({n:,} images, {epochs} epochs) the unlabelled images add nothing measurable "
                  "over the same model trained on the labelled images alone")

    fig = new_figure((8.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:grey"]
    for i, m in enumerate(methods):
        a = acc[m]
        ax.barh(i, a.mean(), xerr=a.std() if len(a) > 1 else None, color=colours[i], alpha=0.8, capsize=4)
        ax.plot(a, np.full(len(a), i), "k.", ms=6)
        ax.text(a.mean() + 0.01 + (a.std() if len(a) > 1 else 0), i, f"{a.mean():.1%}", va="center", fontsize=9)
    ax.set_yticks(range(len(methods)), methods)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    ax.set_xlabel(f"test accuracy ({len(ctx.x_test):,} test images); bars: mean, dots: seeds")
    ax.set_title(f"{LABELS} labels: does the rest of the data help?")

    return Finding(
        verdict=verdict, caveat=caveat, seeds=ctx.seeds, figure=fig, table=rows,
        experiment=(f"The `m2-mnist` preset (CVAE 512-256-8 with a conv classifier q(y|x), labelled replay) trained "
                    f"{epochs} epochs on {n:,} training images of which {LABELS} keep their label (`keep_labels`, "
                    f"balanced over the classes, a different draw per seed). Controls on the same {LABELS} labelled "
                    f"images only: the same M2 model for the same {steps} steps; a small CNN (the judge's "
                    f"architecture, {cnn_epochs} epochs); a logistic regression on the pixels. Measured: accuracy "
                    f"on all {len(ctx.x_test):,} test images."),
        result=(f"Test accuracy from {LABELS} labels: "
                + "; ".join(f"{m} {ms(a, '.1%')}" for m, a in acc.items()) + ". "
                + ("The unlabelled images add accuracy." if beats["M2, labelled only"] else
                   "The unlabelled images do not add measurable accuracy in this budget.")),
        numbers={"M2 accuracy": float(m2.mean()), "same model, labels only": float(acc["M2, labelled only"].mean()),
                 "CNN, labels only": float(acc["CNN, labelled only"].mean()),
                 "logistic regression, labels only": float(acc["logistic regression on pixels"].mean())})


def _accuracy(run, x: torch.Tensor, y: np.ndarray) -> float:
    """Test accuracy of the run's classifier q(y|x)."""
    run.model.eval()
    with torch.no_grad():
        return float((run.model.classify(x).numpy() == y).mean())
