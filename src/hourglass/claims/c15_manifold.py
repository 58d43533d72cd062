"""Claim 15: high-dimensional data lie near a low-dimensional manifold, so an autoencoder's
reconstruction error against its code size flattens at a small dimension.

Sweep the code size ``d`` of one MLP autoencoder and of PCA (the best *linear* ``d``-dimensional
reconstruction, Eckart & Young 1936) and measure the test reconstruction error. The knee of a curve
is defined here as the smallest ``d`` of the sweep whose error has made 90% of the reduction the curve
makes from ``d = 0`` (predicting the mean image: the error is the data's variance) to the largest
``d``::

    knee = min { d : err(d) <= err(0) - 0.9 (err(0) - err(d_max)) }

A curved manifold of low dimension shows as an autoencoder knee at a small ``d``, with PCA needing
many more linear dimensions to reach the same error (Hinton & Salakhutdinov 2006). A model-free
reference beside it: the intrinsic dimension of the training images by the TwoNN estimator (Facco et
al. 2017), ``d = N / sum_i log(r2_i / r1_i)`` from each point's distances to its two nearest
neighbours (the maximum-likelihood estimate under a locally uniform density). The measures are
:mod:`hourglass.evaluate.intrinsic`'s.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..evaluate.intrinsic import components_for, knee, pca_error_curve, twonn_dimension
from .base import Context, Finding, claim

FRACTION = 0.9  # the knee: this share of the largest code's error reduction


@claim(15, "Reconstruction error flattens at a small code size",
       """High-dimensional data lie near a low-dimensional manifold: an autoencoder's reconstruction error
       against its code size flattens at a small dimension, where a linear map (PCA) needs many more.""")
def check(ctx: Context) -> Finding:
    runs = train(ctx)
    curves = measure(ctx, runs)
    return verdict(ctx, curves)


@dataclasses.dataclass
class Curves:
    """What the sweep measured: the test MSE of every autoencoder, and PCA's for every component count."""

    dims: tuple[int, ...]
    epochs: int
    n_train: int  # images per seed
    rows: list[dict]  # one per (model, code size, seed)
    ae: dict[int, list[float]]  # code size -> the AE's test MSE per seed
    pca_err: np.ndarray  # test MSE with k = 0, 1, ... PCA components (first seed's training images)
    intrinsic: float  # TwoNN intrinsic dimension of the first seed's training images
    n_test: int
    n_in: int


def _budget(ctx: Context) -> tuple[tuple[int, ...], int, int]:
    """The code sizes of the sweep, training images per seed, epochs."""
    return ctx.pick((1, 2, 4, 8, 16, 32, 64), (1, 2, 4, 8, 16, 32)), ctx.pick(4000, 1438), ctx.pick(12, 15)


def train(ctx: Context) -> dict[tuple[int, int], object]:
    """One MLP autoencoder (squared error, as PCA's) per seed and code size: (seed, size) -> run."""
    dims, n_train, epochs = _budget(ctx)
    runs = {}
    for seed in ctx.seeds:
        x, _ = ctx.subset(n_train, seed)
        for d in dims:
            runs[seed, d] = ctx.train("ae", x, seed=seed, latent_dim=d, epochs=epochs, val_fraction=0.0,
                                      recon_loss="mse")
    return runs


def measure(ctx: Context, runs: dict[tuple[int, int], object]) -> Curves:
    """Test MSE against code size for the autoencoders and for PCA, and the TwoNN reference."""
    dims, n_train, epochs = _budget(ctx)
    n_in = int(np.prod(ctx.image_shape))
    x_test = ctx.x_test.reshape(len(ctx.x_test), -1)
    rows, ae = [], {d: [] for d in dims}
    for (seed, d), run in runs.items():
        err = float(((run.reconstruct(ctx.x_test).reshape(len(x_test), -1) - x_test) ** 2).mean())
        ae[d].append(err)
        rows.append({"model": "AE", "code size": d, "seed": seed, "test MSE": err})
    # PCA on the first seed's training images, every component it can have (for "how many to match")
    x0 = ctx.subset(n_train, ctx.seeds[0])[0].reshape(-1, n_in)
    pca_err = pca_error_curve(x0, x_test)
    for r in rows:  # how many linear dimensions make the AE's error
        r["PCA components for this MSE"] = components_for(pca_err, r["test MSE"])
    for d in dims:
        rows.append({"model": "PCA", "code size": d, "seed": ctx.seeds[0], "test MSE": float(pca_err[d]),
                     "PCA components for this MSE": d})
    intrinsic = twonn_dimension(x0[: ctx.pick(3000, 1438)])
    return Curves(dims, epochs, len(x0), rows, ae, pca_err, intrinsic, len(x_test), n_in)


def verdict(ctx: Context, c: Curves) -> Finding:
    """The knees of both curves, and whether the AE's comes early and PCA's at least twice as late."""
    dims, pca_err = c.dims, c.pca_err
    base = float(pca_err[0])  # d = 0: the mean image, the error is the test images' variance
    ae_mean = np.array([np.mean(c.ae[d]) for d in dims])
    ae_std = np.array([np.std(c.ae[d]) for d in dims])
    pca_grid = np.array([pca_err[d] for d in dims])
    knee_ae = knee(dims, ae_mean, base, FRACTION)
    knee_pca = knee(dims, pca_grid, base, FRACTION)
    at_knee = float(ae_mean[dims.index(knee_ae)])
    pca_match = components_for(pca_err, at_knee)  # PCA components for the AE's error at its knee
    match = {d: components_for(pca_err, float(e)) for d, e in zip(dims, ae_mean)}
    ident = c.intrinsic

    # The rule: the AE's curve flattens at a small size (its knee at most a quarter of the largest code)
    # and PCA's, by the same definition on the same grid, at least twice as late.
    small = knee_ae <= max(dims) // 4
    linear_later = knee_pca >= 2 * knee_ae
    caveats = []
    if pca_grid[-1] < ae_mean[-1]:
        caveats.append(f"at {dims[-1]} dimensions PCA reconstructs better than the AE ({pca_grid[-1]:.4f} vs "
                       f"{ae_mean[-1]:.4f}): part of the AE's flat tail is its training budget ({c.epochs} epochs on "
                       f"{c.n_train:,} images), not only the manifold")
    if pca_match is not None and pca_match < 2 * knee_ae:
        ratio = {d: (match[d] or len(pca_err)) / d for d in dims}
        best = max(dims, key=lambda d: ratio[d])
        caveats.append(f"at the AE's knee PCA matches its error with {pca_match} components, not many more than "
                       f"{knee_ae}; the nonlinear advantage is largest at a code of {best} (PCA needs "
                       f"{ratio[best]:.1f} times as many)")
    if small and linear_later:
        verdict = "holds with a caveat" if caveats else "holds"
        caveat = "; ".join(caveats)
    else:
        verdict = "does not hold here"
        caveat = (f"the AE's knee is at {knee_ae} of {dims[-1]} dimensions" if not small else
                  f"PCA's knee ({knee_pca}) is less than twice the AE's ({knee_ae})")

    fig = _figure(dims, ae_mean, ae_std, pca_err, base, knee_ae, knee_pca, pca_match, ident, len(ctx.seeds))
    spread = len(ctx.seeds) > 1
    result = (f"The AE's test MSE falls from {base:.4f} (the mean image) to {ae_mean[0]:.4f} with one number and "
              f"{at_knee:.4f} at its knee, {knee_ae} dimensions (90% of the reduction its {dims[-1]}-D code makes; "
              f"{ae_mean[-1]:.4f} at {dims[-1]}"
              + (f"; std over {len(ctx.seeds)} seeds at most {ae_std.max():.4f}" if spread else "") + "). "
              f"PCA's knee on the same grid is at {knee_pca}; PCA needs "
              + (f"{pca_match} components" if pca_match is not None else f"more than {len(pca_err) - 1} components")
              + f" to reach the AE's error at its knee, and explains {1 - pca_err[knee_ae] / base:.1%} of the "
              f"variance with {knee_ae}. PCA components for the AE's error with a code of "
              + ", ".join(f"{d}: {match[d] if match[d] is not None else 'n/a'}" for d in dims)
              + f". The TwoNN intrinsic dimension of the training images is {ident:.1f} "
              f"(of {c.n_in} pixels).")
    return Finding(
        verdict=verdict, caveat=caveat,
        experiment=(f"MLP autoencoders (`ae`, hidden 256-128, squared-error loss, as PCA's) with code size "
                    f"{', '.join(map(str, dims))}, each trained {c.epochs} epochs on {c.n_train:,} training images per "
                    "seed; PCA fitted on the first seed's images (control: the best linear map of each size). "
                    f"Measured: the MSE on the {c.n_test:,} test images against the code size; the knee is the "
                    f"smallest size reaching {FRACTION:.0%} of the error reduction of the largest; the TwoNN intrinsic "
                    "dimension of the training images as a model-free reference."),
        result=result, figure=fig, seeds=ctx.seeds, table=c.rows,
        numbers={"AE knee (dims)": knee_ae, "PCA components for the AE's knee error": pca_match
                 if pca_match is not None else float("nan"), "TwoNN intrinsic dimension": ident,
                 "PCA knee (dims)": knee_pca})


def _figure(dims, ae_mean, ae_std, pca_err, base, knee_ae, knee_pca, pca_match, ident, n_seeds):
    from ..report.figures import new_figure

    fig = new_figure((12, 4.4))
    ax = fig.add_subplot(1, 2, 1)
    ax.errorbar(dims, ae_mean, yerr=ae_std if n_seeds > 1 else None, marker="o", capsize=3,
                label=f"autoencoder ({'mean ± std over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else '1 seed'})")
    ax.plot(dims, [pca_err[d] for d in dims], marker="s", label="PCA (linear)")
    ax.axhline(base, color="grey", ls=":", label="the mean image (code size 0)")
    ax.axvline(knee_ae, color="C0", ls="--", lw=1, label=f"AE knee: {knee_ae}")
    ax.axvline(knee_pca, color="C1", ls="--", lw=1, label=f"PCA knee: {knee_pca}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.set_xlabel("code size (dimensions)")
    ax.set_ylabel("test reconstruction MSE (pixels in [0, 1])")
    ax.set_title("reconstruction error against code size")
    ax.legend(fontsize=8)

    ax = fig.add_subplot(1, 2, 2)
    k = np.arange(1, len(pca_err))
    ax.plot(k, 1 - pca_err[1:] / base, color="C1", label="PCA: share of the variance explained")
    ax.plot(dims, 1 - ae_mean / base, "o-", color="C0", label="AE: share of the variance reconstructed")
    if pca_match is not None:
        ax.axvline(pca_match, color="C1", ls="--", lw=1,
                   label=f"PCA components for the AE's error at {knee_ae}: {pca_match}")
    ax.axvline(ident, color="k", ls=":", lw=1, label=f"TwoNN intrinsic dimension: {ident:.1f}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("code size / components (log scale)")
    ax.set_ylabel("1 - MSE / variance (test images)")
    ax.set_ylim(0, 1)
    ticks = [t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if t < len(pca_err)]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_title("how many linear dimensions make the AE's error")
    ax.legend(fontsize=8, loc="lower right")
    return fig
