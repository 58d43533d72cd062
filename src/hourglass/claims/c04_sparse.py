"""Claim 4: a sparse autoencoder limits how many code units are active, and is more robust.

Two sparsity penalties of :mod:`hourglass.models.sparse`, each against the plain autoencoder with the
same code activation (the penalty is the only difference):

* ``l1`` on ReLU codes, Omega = lambda mean_n sum_j |z_nj| (the Keras "activity regulariser"), at a light
  and a strong weight;
* ``kl`` on sigmoid codes, Omega = beta sum_j KL(rho || rho_hat_j) (Ng 2011), rho = 0.05.

A unit is *active* on an example when |z_nj| > 0.1 max_k |z_nk| (the scale-free rule of
:func:`~hourglass.models.sparse.code_stats`: a model cannot look sparse by shrinking every code and
growing its decoder). Population sparsity: the share of units active per example; lifetime sparsity:
the share of examples each unit is active on (dead units: active on fewer than 1%). Robustness: how far
the codes move under input noise relative to their spread, and kNN accuracy of the codes of noisy test
images (fitted on clean training codes).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..evaluate.robustness import code_shift
from .base import Context, Finding, claim
from .common import code_scores, mean_std, plot_band, pm, recon_errors

TOL = 0.1  # active: above 10% of the example's largest code value (code_stats' rule)
NOISE = 0.2  # input noise std (clipped to [0, 1]) of the robustness measures
CURVE_NOISE = (0.0, 0.1, 0.2, 0.3)
SPARSER = 0.7  # "limits the active units": at most 70% of the control's active share, every seed


def _arms(strong_l1: float, light_l1: float, kl: float) -> dict[str, tuple[str, dict, str | None]]:
    """name -> (model, options, control's name); the control has the same code activation."""
    return {
        "AE, ReLU code": ("ae", {"code_activation": "relu"}, None),
        f"L1 λ={light_l1:g}": ("sparse", {"code_activation": "relu", "sparsity": "l1", "sparsity_weight": light_l1},
                               "AE, ReLU code"),
        f"L1 λ={strong_l1:g}": ("sparse", {"code_activation": "relu", "sparsity": "l1", "sparsity_weight": strong_l1},
                                "AE, ReLU code"),
        "AE, sigmoid code": ("ae", {"code_activation": "sigmoid"}, None),
        f"KL ρ=0.05 β={kl:g}": ("sparse", {"code_activation": "sigmoid", "sparsity": "kl", "rho": 0.05,
                                           "sparsity_weight": kl}, "AE, sigmoid code"),
    }


@claim(4, "A sparse autoencoder has few active units and is more robust",
       """A sparse autoencoder (an L1 or KL sparsity penalty on the code) limits how many code units are active
       for each input, and is more robust than a plain autoencoder.""")
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
    arms: dict  # name -> (model, options, control's name)
    runs: dict  # (name, seed) -> run


@dataclasses.dataclass
class Measured:
    trained: Trained
    rows: list[dict]  # one per (arm, seed)
    lifetimes: dict  # (arm, seed) -> each unit's share of test examples it is active on, sorted
    knn_curves: dict  # (arm, seed) -> kNN accuracy of noisy test codes at each CURVE_NOISE


def train(ctx: Context) -> Trained:
    """The two penalties' arms and their plain controls, one size, per seed, on the same images."""
    x, y = ctx.subset(ctx.pick(4000, 1438), seed=0)
    epochs = ctx.pick(10, 20)
    arch = dict(hidden=ctx.pick((256,), (64,)), latent_dim=ctx.pick(64, 32), val_fraction=0.0, epochs=epochs)
    arms = _arms(*ctx.pick((1.0, 0.1, 1.0), (0.3, 0.03, 1.0)))
    runs = {(name, seed): ctx.train(model, x, seed=seed, **arch, **options)
            for seed in ctx.seeds for name, (model, options, _) in arms.items()}
    return Trained(x, y, epochs, arch, arms, runs)


def measure(ctx: Context, t: Trained) -> Measured:
    """Population and lifetime sparsity of the test codes, reconstruction, and robustness to input noise."""
    x, y = t.x, t.y
    x_test, y_test = ctx.x_test, ctx.y_test
    eps = np.random.default_rng(12345).standard_normal(x_test.shape).astype(np.float32)
    noisy = {s: np.clip(x_test + s * eps, 0.0, 1.0) for s in CURVE_NOISE}
    rows, lifetimes, knn_curves = [], {}, {}
    for (name, seed), run in t.runs.items():
        z = run.encode(x_test)
        a = np.abs(z)
        active = a > TOL * a.max(1, keepdims=True)
        lifetime = active.mean(0)  # per unit: share of test examples it is active on
        z_train = run.encode(x)
        knn = [code_scores(ctx, z_train, y, run.encode(noisy[s]), y_test)["knn_acc"] for s in CURVE_NOISE]
        lifetimes[name, seed], knn_curves[name, seed] = np.sort(lifetime)[::-1], knn
        live = lifetime[lifetime >= 0.01]
        rows.append({"model": name, "seed": seed, "active share per example": float(active.mean()),
                     "dead units": int((lifetime < 0.01).sum()),
                     "median lifetime activity (live units)": float(np.median(live)) if len(live) else 0.0,
                     "pixel MSE": recon_errors(run.reconstruct(x_test), x_test)["pixel MSE"],
                     "kNN clean": knn[0], f"kNN noisy σ={NOISE}": knn[CURVE_NOISE.index(NOISE)],
                     f"code shift σ={NOISE}": code_shift(run.encode, x_test, NOISE, seed=seed)})
    return Measured(t, rows, lifetimes, knn_curves)


def verdict(ctx: Context, m: Measured) -> Finding:
    """Holds when every penalty cuts the active share below 70% of its control's and makes the codes more
    robust (they move less under noise, every seed, without losing kNN accuracy)."""
    rows, arms = m.rows, m.trained.arms
    x, epochs, arch, x_test = m.trained.x, m.trained.epochs, m.trained.arch, ctx.x_test

    def values(name: str, key: str) -> np.ndarray:
        return np.array([r[key] for r in rows if r["model"] == name])

    sparse_names = [n for n, (_, _, c) in arms.items() if c is not None]
    judged = {}
    for name in sparse_names:
        control = arms[name][2]
        ratio = values(name, "active share per example") / values(control, "active share per example")
        shift = values(name, f"code shift σ={NOISE}") - values(control, f"code shift σ={NOISE}")
        knn = values(name, f"kNN noisy σ={NOISE}") - values(control, f"kNN noisy σ={NOISE}")
        if np.all(shift < 0) and knn.mean() > -0.005:
            robust = "more robust"
        elif np.all(shift > 0) and np.all(knn < 0):
            robust = "less robust"
        else:
            robust = "mixed"
        judged[name] = {"sparser": bool(np.all(ratio < SPARSER)), "ratio": ratio, "shift": shift, "knn": knn,
                        "robust": robust}
    sparse_ok = all(j["sparser"] for j in judged.values())
    more = [n for n, j in judged.items() if j["robust"] == "more robust"]
    less = [n for n, j in judged.items() if j["robust"] == "less robust"]

    def robust_text(names: list[str]) -> str:
        return "; ".join(f"{n}: code shift {pm(judged[n]['shift'], 2, unit='')} of the spread, noisy kNN "
                         f"{pm(judged[n]['knn'], 1, 100)} points against its control" for n in names)

    if sparse_ok and len(more) == len(judged):
        verdict, caveat = "holds", ""
    elif sparse_ok and not less:
        verdict = "holds with a caveat"
        caveat = ("the codes are sparse, but more robust only for "
                  + (", ".join(more) if more else "none of the penalties")
                  + "; " + robust_text([n for n in judged if n not in more]))
    else:
        verdict = "does not hold here"
        if not sparse_ok:
            caveat = "the penalty does not cut the active units to 70% of the control's in every seed: " + ", ".join(
                f"{n}: {pm(j['ratio'], 2)} of the control" for n, j in judged.items())
        else:
            caveat = (f"the codes are sparse as claimed, but not more robust: with {', '.join(less)} they move further "
                      "under input noise and lose more kNN accuracy than the plain autoencoder's ("
                      + robust_text(list(judged)) + ")")

    fig = _figure(ctx, m, values)
    names = list(arms)

    light, strong, kl = sparse_names
    return Finding(
        verdict=verdict,
        experiment=(
            f"Five MLPs of one size (`hidden={arch['hidden']}`, `latent_dim={arch['latent_dim']}`, BCE, Adam, {epochs} "
            f"epochs on the same {len(x):,} training images, seeds {', '.join(map(str, ctx.seeds))}): `sparse` with "
            f"`sparsity=l1` on ReLU codes at two weights ({light}, {strong}) against the plain `ae` with ReLU codes, "
            "and "
            f"`sparsity=kl` on sigmoid codes ({kl}) against the plain `ae` with sigmoid codes. On the {len(x_test):,} "
            f"test images: the share of code units active per example (|z| above {TOL:g} of the example's largest), "
            "each unit's share of examples (dead: under 1%), the reconstruction error; robustness: how far the codes "
            f"move under Gaussian input noise σ={NOISE} relative to their spread, and kNN accuracy (k=5, fitted on "
            "clean training codes) for noisy test images."),
        result=(
            "Active units per example: " + "; ".join(
                f"{n} {pm(values(n, 'active share per example'), 0, 100, '%')}" for n in names)
            + ". Dead units: " + ", ".join(f"{n} {pm(values(n, 'dead units'), 0)}" for n in names)
            + ". Pixel MSE: " + ", ".join(f"{n} {pm(values(n, 'pixel MSE'), 4)}" for n in names)
            + f". Under noise σ={NOISE}, codes move (share of their spread): " + ", ".join(
                f"{n} {pm(values(n, f'code shift σ={NOISE}'), 2)}" for n in names)
            + "; kNN accuracy of noisy images' codes: " + ", ".join(
                f"{n} {pm(values(n, f'kNN noisy σ={NOISE}'), 1, 100, '%')}" for n in names)
            + " (clean: " + ", ".join(f"{n} {pm(values(n, 'kNN clean'), 1, 100, '%')}" for n in names) + ")."),
        figure=fig, seeds=ctx.seeds, table=rows,
        numbers={f"active share, {light} / control": float(judged[light]["ratio"].mean()),
                 f"active share, {kl} / control": float(judged[kl]["ratio"].mean()),
                 f"code shift σ={NOISE}, {light} - control": float(judged[light]["shift"].mean()),
                 f"noisy kNN, {light} - control (points)": float(100 * judged[light]["knn"].mean()),
                 f"noisy kNN, {kl} - control (points)": float(100 * judged[kl]["knn"].mean())},
        caveat=caveat)


def _figure(ctx: Context, m: Measured, values):
    """Population sparsity, lifetime sparsity, kNN accuracy of noisy inputs' codes."""
    from ..report.figures import new_figure

    arms, lifetimes, knn_curves = m.trained.arms, m.lifetimes, m.knn_curves
    fig = new_figure((15, 4.2))
    colours = dict(zip(arms, ("tab:blue", "tab:green", "tab:olive", "tab:gray", "tab:red")))
    s0 = ctx.seeds[0]
    ax = fig.add_subplot(1, 3, 1)
    names = list(arms)
    stats = [mean_std(values(n, "active share per example")) for n in names]
    ax.barh(np.arange(len(names)), [100 * m for m, _ in stats], xerr=[100 * s for _, s in stats],
            color=[colours[n] for n in names], capsize=3)
    ax.set_yticks(np.arange(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"code units active per test example (%), |z| > {TOL:g} × the largest")
    ax.set_title("population sparsity (mean ± std over seeds)")
    ax = fig.add_subplot(1, 3, 2)
    for n in names:
        life = lifetimes[n, s0]
        ax.plot(np.arange(1, len(life) + 1), 100 * life, color=colours[n], label=n)
    ax.set_xlabel("code unit, sorted by activity")
    ax.set_ylabel("test examples it is active on (%)")
    ax.set_title(f"lifetime sparsity (seed {s0})")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 3, 3)
    for n in names:
        plot_band(ax, CURVE_NOISE, 100 * np.array([knn_curves[n, s] for s in ctx.seeds]), "o-", colours[n], n)
    ax.set_xlabel("std σ of the Gaussian noise on the test images")
    ax.set_ylabel("kNN accuracy of the codes (%)")
    ax.set_title("robustness: classifying noisy inputs' codes")
    ax.legend(fontsize=8)
    return fig
