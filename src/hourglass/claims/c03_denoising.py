"""Claim 3: a denoising autoencoder learns a more robust manifold and more meaningful codes than a plain one.

The DAE (Vincent et al. 2008, 2010) encodes a corrupted x~ = clip(x + sigma eps, 0, 1) and is asked for
the clean x, so the reconstruction g(f(x~)) has to point back to the data manifold. Against the plain
autoencoder of the same size, trained as long on the same images, that should show as: better
reconstructions of noisy inputs, codes that move less when the input gets noise (relative to how far
apart the codes of different inputs are), and codes from which a classifier reads the digit at least
as well (kNN and a linear probe, :mod:`hourglass.evaluate.codes`), on clean and on noisy inputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..evaluate.robustness import code_shift
from .base import Context, Finding, claim
from .common import code_scores, mean_std, plot_band, pm, recon_errors

NOISE = 0.3  # the DAE's training noise std, and the test noise of the robustness measures
TEST_NOISE = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
MEANINGFUL = 0.01  # codes are "more meaningful" with kNN and probe accuracy higher by a point or more


@claim(3, "A denoising autoencoder learns a more robust manifold",
       """A denoising autoencoder (Gaussian noise on the input, the clean input as target) learns a more robust
       manifold and more meaningful codes than a plain autoencoder of the same size.""")
def check(ctx: Context) -> Finding:
    trained = train(ctx)
    measured = measure(ctx, trained)
    return verdict(ctx, measured)


@dataclasses.dataclass
class Trained:
    x: np.ndarray  # the training images, and their labels
    y: np.ndarray
    epochs: int
    arch: dict
    runs: dict  # (model, seed) -> run; model "AE" or "DAE"


@dataclasses.dataclass
class Measured:
    trained: Trained
    rows: list[dict]  # one per (model, seed)
    curves: dict  # (model, seed) -> pixel MSE to the clean image at each TEST_NOISE
    shown: dict  # model -> its reconstructions of 8 noisy test images (first seed)
    noisy: dict  # noise std -> the noisy test images every model saw


def train(ctx: Context) -> Trained:
    """A plain AE and a DAE of one size, per seed, on the same images."""
    x, y = ctx.subset(ctx.pick(8000, 1438), seed=0)
    epochs = ctx.pick(10, 40)
    arch = dict(hidden=ctx.pick((256,), (64,)), latent_dim=ctx.pick(32, 16), val_fraction=0.0, epochs=epochs)
    runs = {}
    for seed in ctx.seeds:
        for model, extra in (("AE", {}), ("DAE", {"noise": "gaussian", "noise_level": NOISE})):
            runs[model, seed] = ctx.train(model.lower(), x, seed=seed, **arch, **extra)
    return Trained(x, y, epochs, arch, runs)


def measure(ctx: Context, t: Trained) -> Measured:
    """Reconstructions of noisy inputs, code shift under noise, kNN and probe accuracy of clean and noisy codes."""
    x, y = t.x, t.y
    x_test, y_test = ctx.x_test, ctx.y_test
    rng = np.random.default_rng(12345)  # the same noisy test images for every model
    eps = rng.standard_normal(x_test.shape).astype(np.float32)
    noisy = {s: np.clip(x_test + s * eps, 0.0, 1.0) for s in TEST_NOISE}
    rows, curves, shown = [], {}, {}
    for (model, seed), run in t.runs.items():
        curves[model, seed] = [recon_errors(run.reconstruct(noisy[s]), x_test)["pixel MSE"] for s in TEST_NOISE]
        z_train = run.encode(x)
        clean = code_scores(ctx, z_train, y, run.encode(x_test), y_test)
        dirty = code_scores(ctx, z_train, y, run.encode(noisy[NOISE]), y_test)
        rows.append({"model": model, "seed": seed, "clean pixel MSE": curves[model, seed][0],
                     f"denoised pixel MSE (σ={NOISE})": curves[model, seed][TEST_NOISE.index(NOISE)],
                     "code shift σ=0.1": code_shift(run.encode, x_test, 0.1, seed=seed),
                     f"code shift σ={NOISE}": code_shift(run.encode, x_test, NOISE, seed=seed),
                     "kNN clean": clean["knn_acc"], "probe clean": clean["probe_acc"],
                     "kNN noisy": dirty["knn_acc"], "probe noisy": dirty["probe_acc"]})
        if seed == ctx.seeds[0]:
            shown[model] = run.reconstruct(noisy[NOISE][:8])
    return Measured(t, rows, curves, shown, noisy)


def verdict(ctx: Context, m: Measured) -> Finding:
    """Robust: the DAE denoises better and its codes move less, every seed; meaningful: its clean codes
    classify a point or more better."""
    rows = m.rows
    x, epochs, arch = m.trained.x, m.trained.epochs, m.trained.arch
    x_test = ctx.x_test

    def paired(key: str) -> np.ndarray:
        """DAE minus AE, per seed."""
        get = lambda m: np.array([r[key] for r in rows if r["model"] == m])  # noqa: E731
        return get("DAE") - get("AE")

    def values(model: str, key: str) -> list[float]:
        return [r[key] for r in rows if r["model"] == model]

    def vs(key: str, digits: int, scale: float = 1.0, unit: str = "") -> str:
        return f"{pm(values('DAE', key), digits, scale, unit)} vs {pm(values('AE', key), digits, scale, unit)}"

    denoised = f"denoised pixel MSE (σ={NOISE})"
    denoise = paired(denoised)
    shift = paired(f"code shift σ={NOISE}")
    robust = bool(np.all(denoise < 0) and np.all(shift < 0))
    knn, probe = paired("kNN clean"), paired("probe clean")
    meaningful = bool(knn.mean() >= MEANINGFUL and probe.mean() >= MEANINGFUL and np.all(knn > 0) and np.all(probe > 0))
    knn_noisy, probe_noisy = paired("kNN noisy"), paired("probe noisy")
    noisy_worse = [name for name, d in (("kNN", knn_noisy), ("linear probe", probe_noisy)) if np.all(d < 0)]

    if robust and meaningful and not noisy_worse:
        verdict, caveat = "holds", ""
    elif robust:
        verdict = "holds with a caveat"
        parts = []
        if not meaningful:
            parts.append(f"the codes of clean images are no better for telling the digits apart (kNN "
                         f"{_pts(knn)}, linear probe {_pts(probe)} points, DAE minus AE)")
        if noisy_worse:
            parts.append(f"on noisy images the {' and '.join(noisy_worse)} fitted on clean codes do worse with the "
                         f"DAE's codes (kNN {_pts(knn_noisy)}, probe {_pts(probe_noisy)} points)")
        caveat = "; ".join(parts) + ": the gain is robustness to the noise, not better features"
    else:
        verdict = "does not hold here"
        caveat = (f"the DAE does not denoise better or its codes move as much under noise in every seed "
                  f"(denoised MSE difference {pm(denoise, 4)}, code shift difference {pm(shift, 3)})")

    fig = _figure(ctx, m, values)

    return Finding(
        verdict=verdict,
        experiment=(
            f"A plain `ae` and a `dae` (Gaussian noise σ={NOISE}, clipped to [0, 1]; clean target), both MLPs "
            f"`hidden={arch['hidden']}`, `latent_dim={arch['latent_dim']}`, BCE, Adam, {epochs} epochs on the same "
            f"{len(x):,} training images, seeds {', '.join(map(str, ctx.seeds))}. Measured on the {len(x_test):,} test "
            "images: reconstruction error of clean and of noisy inputs against the clean image; how far the codes move "
            "under input noise, relative to the spread of the codes (`code shift`); kNN (k=5) and linear-probe "
            "accuracy of the codes (fitted on the training codes), for clean test images and for noisy ones "
            f"(σ={NOISE})."),
        result=(
            f"Noisy inputs (σ={NOISE}) are reconstructed with pixel MSE {vs(denoised, 4)} (DAE vs AE), at the price of "
            f"clean reconstructions ({vs('clean pixel MSE', 4)})"
            + (": the DAE, which never saw a clean input in training, reconstructs clean images worse than noisy ones"
               if np.mean(values("DAE", "clean pixel MSE")) > np.mean(values("DAE", denoised)) else "")
            + f". The codes move {vs(f'code shift σ={NOISE}', 2)} of their spread under that noise (at σ=0.1: "
            f"{vs('code shift σ=0.1', 2)}). Clean codes: kNN {vs('kNN clean', 1, 100, '%')}, linear probe "
            f"{vs('probe clean', 1, 100, '%')}. Noisy codes: kNN {vs('kNN noisy', 1, 100, '%')}, linear probe "
            f"{vs('probe noisy', 1, 100, '%')}."),
        figure=fig, seeds=ctx.seeds, table=rows,
        numbers={"denoised MSE, DAE - AE": float(denoise.mean()), "code shift, DAE - AE": float(shift.mean()),
                 "kNN accuracy clean, DAE - AE (points)": float(100 * knn.mean()),
                 "probe accuracy clean, DAE - AE (points)": float(100 * probe.mean()),
                 "kNN accuracy noisy, DAE - AE (points)": float(100 * knn_noisy.mean())},
        caveat=caveat)


def _pts(d: np.ndarray) -> str:
    m, s = mean_std(100 * d)
    return f"{m:+.1f}" + (f" ± {s:.1f}" if len(d) > 1 else "")


def _figure(ctx: Context, m: Measured, values):
    """Denoising curves, what the codes tell a classifier, and noisy test images reconstructed."""
    from ..report.figures import image_grid, new_figure

    curves, shown, noisy, x_test = m.curves, m.shown, m.noisy, ctx.x_test
    fig = new_figure((15, 4.2))
    ax = fig.add_subplot(1, 3, 1)
    for model, colour in (("AE", "tab:blue"), ("DAE", "tab:orange")):
        plot_band(ax, TEST_NOISE, [curves[model, s] for s in ctx.seeds], "o-", colour, model)
    ax.axvline(NOISE, color="grey", ls=":", label=f"DAE's training noise σ={NOISE}")
    ax.set_xlabel("std σ of the Gaussian noise on the test images")
    ax.set_ylabel("pixel MSE to the clean image")
    ax.set_title("reconstructing noisy inputs")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 3, 2)
    keys = ["kNN clean", "probe clean", "kNN noisy", "probe noisy"]
    pos = np.arange(len(keys))
    for i, (model, colour) in enumerate((("AE", "tab:blue"), ("DAE", "tab:orange"))):
        stats = [mean_std(values(model, k)) for k in keys]
        ax.bar(pos + (i - 0.5) * 0.38, [100 * m for m, _ in stats], 0.38, yerr=[100 * s for _, s in stats],
               color=colour, label=model, capsize=3)
    ax.set_xticks(pos, [k.replace(" ", "\n") + ("\n(σ=%g)" % NOISE if "noisy" in k else "") for k in keys])
    low = min(min(values(m, k)) for m in ("AE", "DAE") for k in keys)
    ax.set_ylim(max(0.0, 100 * low - 10), 100)
    ax.set_ylabel("test accuracy from the codes (%)")
    ax.set_title("what the codes tell a classifier")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 3, 3)
    ax.imshow(image_grid(np.concatenate([noisy[NOISE][:8], shown["AE"], shown["DAE"], x_test[:8]]), nrow=8),
              cmap="gray", vmin=0, vmax=1)
    h = x_test.shape[-2] + 1
    ax.set_xticks([])
    ax.set_yticks([h * (i + 0.5) for i in range(4)], [f"noisy (σ={NOISE})", "AE", "DAE", "clean"])
    ax.set_title(f"noisy test images reconstructed (seed {ctx.seeds[0]})")
    return fig
