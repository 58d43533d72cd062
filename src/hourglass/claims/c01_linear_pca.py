"""Claim 1: a linear undercomplete autoencoder trained with SGD on squared error finds PCA's subspace."""

from __future__ import annotations

import numpy as np

from .base import Context, Finding, claim


@claim(1, "A linear autoencoder finds PCA's subspace",
       """A linear undercomplete autoencoder trained with SGD and MSE (3-D data to 2-D codes) finds the
       same subspace as PCA.""")
def check(ctx: Context) -> Finding:
    from sklearn.decomposition import PCA

    from ..data.datasets import load_data
    from ..evaluate.subspace import pca_subspace_angles
    from ..models import create
    from ..report.figures import new_figure
    from ..seeding import seeded

    x = load_data("plane3d").x_train
    epochs = ctx.pick(50, 15)
    checkpoints = sorted({1, 2, 5, epochs // 2, epochs})
    rows, curves = [], {}
    for seed in ctx.seeds:
        curve = []
        for e in checkpoints if seed == ctx.seeds[0] else [epochs]:
            run = ctx.train("ae", x, preset="linear-pca", epochs=e, seed=seed, scaling="standard")
            curve.append(float(pca_subspace_angles(run, x).max()))
        curves[seed] = curve
        z = run.prepare(x).numpy()
        pca = PCA(2).fit(z)
        # both in the standardised units the two minimise their squared error in
        recon = float(((run.prepare(run.reconstruct(x)).numpy() - z) ** 2).mean())
        pca_recon = float(((pca.inverse_transform(pca.transform(z)) - z) ** 2).mean())
        codes = run.encode(x)
        scores = pca.transform(z)
        # the codes are PCA's scores up to an invertible linear map: how much of the scores it explains
        a, *_ = np.linalg.lstsq(np.c_[codes, np.ones(len(codes))], scores, rcond=None)
        r2 = 1 - ((np.c_[codes, np.ones(len(codes))] @ a - scores) ** 2).sum() / ((scores - scores.mean(0)) ** 2).sum()
        rows.append({"seed": seed, "largest angle (deg)": curve[-1], "AE MSE": recon, "PCA MSE": pca_recon,
                     "excess MSE (% of variance)": 100 * (recon - pca_recon) / float(z.var(0).mean()),
                     "R² codes -> PCA scores": float(r2)})
    untrained = []
    for s in ctx.seeds:
        with seeded(s):
            fresh = create("ae", preset="linear-pca", input_shape=(3,))
        untrained.append(float(pca_subspace_angles(fresh, run.prepare(x)).max()))

    fig = new_figure((10, 3.8))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(checkpoints, curves[ctx.seeds[0]], "o-", label=f"linear AE, seed {ctx.seeds[0]}")
    ax.axhline(np.mean(untrained), color="grey", ls="--", label="untrained (mean over seeds)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epochs of SGD")
    ax.set_ylabel("largest principal angle to PCA (deg)")
    ax.set_title("the decoder's plane turns onto PCA's")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    fitted = np.c_[codes, np.ones(len(codes))] @ a
    ax.scatter(scores[:, 0], fitted[:, 0], s=3, label="component 1")
    ax.scatter(scores[:, 1], fitted[:, 1], s=3, label="component 2")
    ax.set_xlabel("PCA score")
    ax.set_ylabel("AE code, linearly mapped")
    ax.set_title("codes = PCA scores up to a linear map")
    ax.legend(fontsize=8, markerscale=3)

    worst = max(r["largest angle (deg)"] for r in rows)
    excess = max(r["excess MSE (% of variance)"] for r in rows)
    holds = worst < 1.0 and excess < 0.5
    return Finding(
        verdict="holds" if holds else "does not hold here",
        experiment=(f"The `linear-pca` preset (3 -> 2 -> 3, no nonlinearity, MSE, plain SGD lr 0.1, batch 32) "
                    f"trained {epochs} epochs on the `plane3d` data (1,600 points near a plane, standard deviations "
                    "3, 1 and 0.1 along rotated axes). Measured: the principal angles between the decoder's column "
                    "space and the top-2 PCA components; the reconstruction MSE against PCA's; how well a linear map "
                    "of the codes gives the PCA scores. Control: the same network untrained."),
        result=(f"Largest principal angle {worst:.3f} degrees at most over {len(rows)} "
                f"seed{'s' if len(rows) > 1 else ''} (untrained: {np.mean(untrained):.0f} degrees); reconstruction "
                f"MSE above PCA's by at most {excess:.2f}% of the data's variance; the codes are the PCA scores up "
                f"to a linear map (R² at least {min(r['R² codes -> PCA scores'] for r in rows):.4f}). The code "
                "axes themselves are not the components (any invertible mix spans the same plane)."),
        figure=fig, seeds=ctx.seeds, table=rows,
        numbers={"largest angle (deg)": worst, "excess MSE (% of variance)": excess,
                 "untrained angle (deg)": float(np.mean(untrained))},
        caveat="" if holds else f"after {epochs} epochs the angle is {worst:.2f} degrees")
