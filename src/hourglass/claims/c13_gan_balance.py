"""Claim 13: a GAN's two players both minimise binary cross-entropy, and training works only while
they stay balanced.

Goodfellow et al. 2014 ("Generative Adversarial Nets") write the game as
min_G max_D E_x log D(x) + E_z log(1 - D(G(z))): the discriminator minimises the BCE of its
real/fake labels, L_D = BCE(D(x), 1) + BCE(D(G(z)), 0), and the generator (in the non-saturating form
of their Sec. 3, hourglass' default) L_G = BCE(D(G(z)), 1) = -log D(G(z)). Part one of the check
reads both losses from :class:`hourglass.models.gan.GAN`'s source and recomputes their values with
scikit-learn's ``log_loss`` from the discriminator's probabilities.

Part two is the balance. When D learns much faster than G it separates real from fake almost
perfectly; the non-saturating loss keeps G's gradient alive, but it points wherever D's sharp boundary
happens to be, and G chases it. When D learns much more slowly, G can fool it without drawing digits.
Radford et al. 2016 (DCGAN) train both with the same Adam settings; Heusel et al. 2017 (TTUR) show that
different rates can converge too, so "balanced" is about how fast each player learns, not identical
numbers. Here the discriminator's learning rate is 1/10, 1 and 10 times the generator's, nothing else
changed, each with several seeds.

What "stable" means here, measured rather than watched, in short runs: a setting **fails** when its
samples are clearly worse than the balanced setting's (the independent judge recognises fewer of them
on every seed than on any balanced seed, or fewer by ``WORSE`` on average), or collapse onto few
classes or shapes (a class above ``CLASS_MAX`` of the recognised samples, or a sample spread below the
diagnostics' collapse threshold), or D wins outright at the end (the diagnostics' ``D_WINS``). We do
not test convergence to an equilibrium, nor runs long enough to diverge later.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from .base import Context, Finding, claim
from .c12_sharpness import CONFIDENT, judged

WORSE = 0.05  # recognised share this much below the balanced setting's mean: clearly worse
CLASS_MAX = 0.5  # a class above this share of the recognised samples: the generator dropped modes
RATIOS = (0.1, 1.0, 10.0)  # discriminator lr / generator lr


def _bce_check(model, x: np.ndarray, seed: int) -> list[dict]:
    """The model's L_D and L_G against scikit-learn's log loss on the same discriminator outputs."""
    import torch
    from sklearn.metrics import log_loss

    from ..seeding import seeded

    model.eval()  # batch norm from its running statistics: the same numbers on every call
    xt = torch.as_tensor(x)
    with torch.no_grad(), seeded(seed):
        loss_d, real, fake, *_ = model.disc_loss(xt)
    with torch.no_grad(), seeded(seed + 1):
        loss_g, _ = model.gen_loss(len(x))
    with torch.no_grad(), seeded(seed + 1):  # the same noise again: the fakes L_G was computed on
        fake_g = model.critic(model._fake(len(x))[0])
    p_real, p_fake, p_g = (torch.sigmoid(v).double().numpy() for v in (real, fake, fake_g))
    n = len(x)
    # L_D is the mean BCE on the reals plus the mean on the fakes: twice the mean over all 2n labels
    ref_d = 2 * log_loss(np.r_[np.ones(n), np.zeros(n)], np.r_[p_real, p_fake], labels=[0, 1])
    ref_g = log_loss(np.ones(n), p_g, labels=[0, 1])
    return [{"loss": "discriminator L_D", "model": float(loss_d), "scikit-learn log_loss": float(ref_d),
             "difference": abs(float(loss_d) - ref_d)},
            {"loss": "generator L_G (non-saturating)", "model": float(loss_g), "scikit-learn log_loss": float(ref_g),
             "difference": abs(float(loss_g) - ref_g)}]


@claim(13, "GAN training needs the two players balanced",
       """A GAN's generator and discriminator both use binary cross-entropy, and training is stable only
       while the two stay balanced.""")
def check(ctx: Context) -> Finding:
    trained = train(ctx)
    measured = measure(ctx, trained)
    return verdict(ctx, measured)


@dataclasses.dataclass
class Measured:
    n_train: int
    epochs: int
    lr: float
    n: int  # samples judged per run
    rows: list[dict]  # one per (ratio, seed)
    curves: dict  # (ratio, seed) -> (D(real), D(fake)) per epoch
    shown: dict  # ratio -> 25 samples (first seed)
    bce: list[dict]  # the losses against scikit-learn's log loss (balanced, first seed)
    in_code: bool  # both losses call binary_cross_entropy_with_logits


def _budget(ctx: Context) -> tuple[int, int, float, dict]:
    """Training images, epochs, the generator's rate, and what every run shares."""
    # Short runs: 10 epochs of a 1,800-image subset (about 250 steps of batch 64; 10 points of history
    # per run); a small DCGAN (conv 16-32) with the gan-mnist presets' rate, so nine runs fit the budget.
    n_train = ctx.pick(1800, 1438)
    epochs = ctx.pick(10, 5)
    lr = 1e-3
    base = dict(architecture="conv", conv_channels=(16, 32), latent_dim=64, init="dcgan", disc_batch_norm=True,
                lr=lr, epochs=epochs, batch_size=64)
    return n_train, epochs, lr, base


def train(ctx: Context) -> dict[tuple[float, int], object]:
    """One GAN per discriminator/generator rate ratio and seed: (ratio, seed) -> run."""
    n_train, _, lr, base = _budget(ctx)
    runs = {}
    for ratio in RATIOS:
        for seed in ctx.seeds:
            x, _ = ctx.subset(n_train, seed)
            runs[ratio, seed] = ctx.train("gan", x, seed=seed, disc_lr=lr * ratio, **base)
    return runs


def measure(ctx: Context, runs: dict[tuple[float, int], object]) -> Measured:
    """Per run: the judge's share of recognised samples, their spread over classes and shapes, and the
    discriminator's outputs over training; both losses against scikit-learn's log loss."""
    import torch

    from ..evaluate.diagnostics import diagnose
    from ..models.gan import GAN

    judge = ctx.judge()
    in_code = all("binary_cross_entropy_with_logits" in inspect.getsource(f) for f in (GAN.disc_loss, GAN.gen_loss))
    n_train, epochs, lr, _ = _budget(ctx)
    n = ctx.pick(1000, 200)
    rows, curves, shown, bce = [], {}, {}, []
    x_eval = torch.as_tensor(ctx.x_test[:1000])
    for (ratio, seed), run in runs.items():
        if ratio == 1.0 and seed == ctx.seeds[0]:
            bce = _bce_check(run.model, ctx.x_test[:256], seed)
        s = run.sample(n, seed=100 + seed).reshape(n, *ctx.image_shape)
        seen = judged(judge, s)
        diag, _ = diagnose(run.model, x_eval)
        d_real = [e["train_disc/d_real"] for e in run.history]  # training mode, as D saw them
        d_fake = [e["train_disc/d_fake"] for e in run.history]
        curves[(ratio, seed)] = (d_real, d_fake)
        rows.append({"D lr / G lr": ratio, "seed": seed, "recognised": seen["recognised"],
                     "largest class share": seen["class share max"], "sample spread": diag["sample_spread"],
                     "D(real) last epoch": d_real[-1], "D(fake) last epoch": d_fake[-1],
                     "D(real) - D(fake), mean over epochs": float(np.mean(np.subtract(d_real, d_fake)))})
        if seed == ctx.seeds[0]:
            shown[ratio] = s[:25]
    return Measured(n_train, epochs, lr, n, rows, curves, shown, bce, in_code)


def verdict(ctx: Context, m: Measured) -> Finding:
    """Holds when both losses are BCE, the balanced setting works and every unbalanced one fails; a
    caveat when only some do."""
    from ..evaluate.diagnostics import D_WINS, SPREAD_COLLAPSED
    from ..report.figures import image_grid, new_figure

    n_train, epochs, lr, n, rows, curves, shown, bce, in_code = (m.n_train, m.epochs, m.lr, m.n, m.rows, m.curves,
                                                                 m.shown, m.bce, m.in_code)

    def per(ratio: float, key: str) -> np.ndarray:
        return np.array([r[key] for r in rows if r["D lr / G lr"] == ratio], dtype=float)

    def spread(ratio: float, key: str, pct: bool = True) -> str:
        v = per(ratio, key)
        f = (lambda a: f"{a:.0%}") if pct else (lambda a: f"{a:.2f}")
        return f(v.mean()) + (f" ({f(v.min())}-{f(v.max())})" if len(v) > 1 else "")

    def failures(ratio: float) -> list[str]:
        """Why the setting failed (empty: it worked), by the rule in the module docstring."""
        rec, bal = per(ratio, "recognised"), per(1.0, "recognised")
        why = []
        if ratio != 1.0 and (rec.max() < bal.min() or rec.mean() < bal.mean() - WORSE):
            why.append(f"recognised {rec.mean():.0%} against {bal.mean():.0%} balanced")
        collapsed = (per(ratio, "largest class share") > CLASS_MAX) | (per(ratio, "sample spread") < SPREAD_COLLAPSED)
        if collapsed.any():
            why.append("samples collapse onto few classes or shapes")
        if ((per(ratio, "D(real) last epoch") > D_WINS) & (per(ratio, "D(fake) last epoch") < 1 - D_WINS)).any():
            why.append("D wins outright")
        return why

    bce_gap = max(r["difference"] for r in bce)
    bce_ok = in_code and bce_gap < 1e-5
    failed = {r: failures(r) for r in RATIOS}
    off = [r for r in RATIOS if r != 1.0]
    caveat = ""
    if not bce_ok:
        verdict, caveat = "does not hold here", "the losses are not both binary cross-entropy"
    elif failed[1.0]:
        verdict, caveat = "does not hold here", f"the balanced setting failed too ({'; '.join(failed[1.0])})"
    elif all(failed[r] for r in off):
        verdict = "holds"
    elif any(failed[r] for r in off):
        fine = [r for r in off if not failed[r]]
        verdict = "holds with a caveat"
        caveat = ("with the discriminator's learning rate " + " and ".join(f"{r:g}x" for r in fine) + " the "
                  "generator's, training went as well as balanced in these short runs: the balance has a margin, "
                  "wider on that side")
    else:
        verdict, caveat = "does not hold here", "no unbalanced setting did worse than the balanced one"

    fig = new_figure((12, 8))
    colours = {0.1: "tab:blue", 1.0: "tab:green", 10.0: "tab:red"}
    ax = fig.add_subplot(2, 2, 1)
    for (ratio, seed), (d_real, d_fake) in curves.items():
        ep = np.arange(1, len(d_real) + 1)
        label = f"D lr {ratio:g}x" if seed == ctx.seeds[0] else None
        ax.plot(ep, d_real, "-", color=colours[ratio], alpha=0.8, label=label)
        ax.plot(ep, d_fake, "--", color=colours[ratio], alpha=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean D(real) (solid), D(fake) (dashed)")
    ax.set_ylim(0, 1)
    ax.set_title("the discriminator's grip during training")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(2, 2, 2)
    for i, ratio in enumerate(RATIOS):
        v = per(ratio, "recognised")
        ax.bar(i, v.mean(), color=colours[ratio], alpha=0.6)
        ax.plot([i] * len(v), v, "ko", ms=4)
    ax.set_xticks(range(len(RATIOS)), [f"{r:g}x" for r in RATIOS])
    ax.set_xlabel("discriminator lr / generator lr")
    ax.set_ylabel(f"samples recognised (confidence >= {CONFIDENT})")
    ax.set_title("sample quality (judge); dots: seeds")
    ax = fig.add_subplot(2, 1, 2)
    grids = [image_grid(shown[r], nrow=5) for r in RATIOS]
    gap = np.ones((grids[0].shape[0], grids[0].shape[1] // 4), dtype=np.float32)
    ax.imshow(np.concatenate([grids[0], gap, grids[1], gap, grids[2]], 1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    w, g = grids[0].shape[1], gap.shape[1]
    for i, ratio in enumerate(RATIOS):
        ax.text(i * (w + g) + w / 2, -1, f"D lr {ratio:g}x the generator's", ha="center", va="bottom", fontsize=10)
    ax.set_title(f"samples, seed {ctx.seeds[0]}", fontsize=10, pad=18)
    ax.set_axis_off()

    seeds = ", ".join(map(str, ctx.seeds))
    outcome = "; ".join(f"{r:g}x: " + ("; ".join(failed[r]) if failed[r] else "works") for r in RATIOS)
    return Finding(
        verdict=verdict,
        experiment=("Part one: `GAN.disc_loss` and `GAN.gen_loss` compute their losses with "
                    f"`binary_cross_entropy_with_logits` ({'read from' if in_code else 'NOT found in'} the source); "
                    "on 256 test digits and as many fakes, the trained balanced model's L_D and L_G are recomputed "
                    "with scikit-learn's `log_loss` from D's probabilities. Part two: a small DCGAN pair (conv 16-32, "
                    f"64-D noise, DCGAN init, batch norm in both, Adam lr {lr:g} with beta1 0.5, no InfoGAN code, no "
                    f"averaging) trained {epochs} epochs (batch 64) on {min(n_train, len(ctx.x_train)):,} training "
                    f"images (about {epochs * int(0.9 * min(n_train, len(ctx.x_train))) // 64} steps), seeds {seeds}, "
                    "with the discriminator's learning rate 0.1, 1 (the balanced control) and 10 times the "
                    f"generator's. Measured: the judge's share of {n} samples recognised with confidence >= "
                    f"{CONFIDENT} and the largest class share among them; the samples' spread "
                    "(`evaluate.diagnostics`); D(real), D(fake) per epoch from `run.history`. A setting fails when "
                    f"it is recognised less than balanced on every seed or by {WORSE:.0%} on average, when a class "
                    f"takes over {CLASS_MAX:.0%} or the spread falls below {SPREAD_COLLAPSED}, or when D wins "
                    f"outright (D(real) > {D_WINS}, D(fake) < {1 - D_WINS:.2f}). 'Stable' means no more than this "
                    "here: short runs, no test of convergence."),
        result=("Both losses are BCE: " + "; ".join(f"{r['loss']} {r['model']:.6f} nats, scikit-learn's log loss "
                                                   f"{r['scikit-learn log_loss']:.6f}" for r in bce)
                + f" (largest difference {bce_gap:.1e}). Recognised samples: D lr 0.1x {spread(0.1, 'recognised')}, "
                f"1x {spread(1.0, 'recognised')}, 10x {spread(10.0, 'recognised')}; largest class share 0.1x "
                f"{spread(0.1, 'largest class share')}, 1x {spread(1.0, 'largest class share')}, 10x "
                f"{spread(10.0, 'largest class share')}; D(real) - D(fake) over training 0.1x "
                f"{spread(0.1, 'D(real) - D(fake), mean over epochs', False)}, 1x "
                f"{spread(1.0, 'D(real) - D(fake), mean over epochs', False)}, 10x "
                f"{spread(10.0, 'D(real) - D(fake), mean over epochs', False)}. Outcome: {outcome}."),
        figure=fig, seeds=ctx.seeds, table=rows,
        numbers={"recognised, balanced": float(per(1.0, "recognised").mean()),
                 "recognised, D lr 10x": float(per(10.0, "recognised").mean()),
                 "recognised, D lr 0.1x": float(per(0.1, "recognised").mean()),
                 "BCE difference (nats)": bce_gap},
        caveat=caveat)
