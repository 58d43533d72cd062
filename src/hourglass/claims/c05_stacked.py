"""Claim 5: greedy layer-wise pretraining was how deep autoencoders were initialised before Xavier/Glorot
initialisation; with modern initialisation it matters less.

Before 2010 a deep sigmoid network started from small random weights (Hinton's N(0, 0.01^2)) barely
trained end to end: the signal and the gradient shrink through every layer. Greedy pretraining
(Hinton & Salakhutdinov 2006; Bengio, Lamblin, Popovici & Larochelle 2007) trains one shallow
autoencoder per layer first, so the deep one starts near a useful solution. Glorot & Bengio (2010)
scale the initial weights to keep the variance of activations and gradients through the layers,
Var(W) = 2 / (fan_in + fan_out); with ReLU units and adaptive optimisers a deep autoencoder trains
from there directly.

The experiment takes one deep autoencoder (:mod:`hourglass.models.stacked`, 784-256-128-64-16 and back)
in three starts: sigmoid units from N(0, 0.01^2) (the old one), sigmoid units from Glorot, ReLU units
from Glorot (the modern one), each trained for the same number of epochs with and without greedy
pretraining (one epoch per layer, the rest fine-tuning), and asks how much pretraining buys in each.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .base import Context, Finding, claim
from .common import code_scores, fit_module, mean_std, pixel_mse, plot_band, pm, recon_errors

OLD_STD = 0.01  # Hinton's "small random values, N(0, 0.01^2)"
STARTS = ("sigmoid, N(0, 0.01²)", "sigmoid, Glorot", "ReLU, Glorot")
RESCUE = 0.2  # pretraining "rescues" the old start when it cuts the test error by 20% or more, every seed
SMALL_MSE, SMALL_KNN = 0.05, 0.01  # a gain below 5% of the test error and 1 point of kNN is "little"


@claim(5, "Greedy layer-wise pretraining matters less with modern initialisation",
       """Greedy layer-wise pretraining of stacked autoencoders was how deep networks were initialised before
       Xavier/Glorot initialisation; with modern initialisation it matters less.""")
def check(ctx: Context) -> Finding:
    trained = train(ctx)
    measured = measure(ctx, trained)
    return verdict(ctx, measured)


@dataclasses.dataclass
class Trained:
    x: np.ndarray  # the training images, and their labels
    y: np.ndarray
    hidden: tuple[int, ...]
    latent: int
    epochs: int
    batch: int
    lr: float
    nets: dict  # (start, pretrained, seed) -> the trained network
    curves: dict  # (start, pretrained, seed) -> test pixel MSE after each epoch
    seconds: dict  # (start, pretrained, seed) -> training wall time

    @property
    def layers(self) -> int:
        return len(self.hidden) + 1


@dataclasses.dataclass
class Measured:
    trained: Trained
    rows: list[dict]  # one per (start, pretrained, seed)
    shown: dict  # (start, pretrained) -> reconstructions of 8 test images (first seed)


def train(ctx: Context) -> Trained:
    """One deep autoencoder from each start, end to end and pretrained, per seed, through the trainer."""
    import torch
    from torch import nn

    from ..models import create
    from ..seeding import seeded

    x, y = ctx.subset(ctx.pick(4000, 1438), seed=0)
    hidden, latent = ctx.pick(((256, 128, 64), 16), ((32, 16), 8))
    layers = len(hidden) + 1
    epochs = ctx.pick(10, 12)
    batch, lr = 32, 5e-3
    xt = torch.as_tensor(ctx.x_test)

    def build(start: str, pretrain: bool, seed: int):
        with seeded(seed):
            net = create("stacked", input_shape=ctx.image_shape, hidden=hidden, latent_dim=latent,
                         activation="relu" if start.startswith("ReLU") else "sigmoid", code_activation="linear",
                         init="glorot", optimizer="adam", lr=lr, pretrain_epochs=int(pretrain),
                         finetune_epochs=epochs - layers * int(pretrain))
            if start == STARTS[0]:
                for m in net.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.normal_(m.weight, 0.0, OLD_STD)
                        nn.init.zeros_(m.bias)
        return net

    nets, curves, seconds = {}, {}, {}
    for seed in ctx.seeds:
        for start in STARTS:
            for pretrain in (False, True):
                net = build(start, pretrain, seed)
                curve: list[float] = []
                history = fit_module(ctx, net, x, seed=seed, epochs=epochs, batch_size=batch,
                                     each_epoch=lambda m, c=curve: c.append(pixel_mse(m, xt)))
                key = start, pretrain, seed
                nets[key], curves[key], seconds[key] = net, curve, float(sum(h["seconds"] for h in history))
    return Trained(x, y, hidden, latent, epochs, batch, lr, nets, curves, seconds)


def measure(ctx: Context, t: Trained) -> Measured:
    """Test reconstruction error, kNN and probe accuracy of every network's codes."""
    import torch

    xt = torch.as_tensor(ctx.x_test)
    rows, shown = [], {}
    for (start, pretrain, seed), net in t.nets.items():
        with torch.no_grad():
            rec = net.reconstruct(xt).numpy()
            scores = code_scores(ctx, net.encode(torch.as_tensor(t.x)).numpy(), t.y, net.encode(xt).numpy(),
                                 ctx.y_test)
        if seed == ctx.seeds[0]:
            shown[start, pretrain] = rec[:8]
        rows.append({"start": start, "pretrained": pretrain, "seed": seed, **recon_errors(rec, ctx.x_test),
                     "kNN": scores["knn_acc"], "probe": scores["probe_acc"],
                     "training seconds": t.seconds[start, pretrain, seed]})
    return Measured(t, rows, shown)


def verdict(ctx: Context, m: Measured) -> Finding:
    """Holds when pretraining rescues the old start, buys less from Glorot's, and little for ReLU."""
    rows = m.rows
    x, x_test = m.trained.x, ctx.x_test
    hidden, latent, epochs, batch, lr, layers = (m.trained.hidden, m.trained.latent, m.trained.epochs,
                                                 m.trained.batch, m.trained.lr, m.trained.layers)

    def values(start: str, pretrain: bool, key: str) -> np.ndarray:
        return np.array([r[key] for r in rows if r["start"] == start and r["pretrained"] == pretrain])

    gain = {}  # per start, per seed: what pretraining buys
    for start in STARTS:
        mse_off, mse_on = values(start, False, "pixel MSE"), values(start, True, "pixel MSE")
        gain[start] = {"mse": (mse_off - mse_on) / mse_off,
                       "knn": values(start, True, "kNN") - values(start, False, "kNN"),
                       "probe": values(start, True, "probe") - values(start, False, "probe")}
    old, glorot, modern = (gain[s] for s in STARTS)
    rescues = bool(np.all(old["mse"] >= RESCUE))
    less = all(g[k].mean() < old[k].mean() for g in (glorot, modern) for k in ("mse", "knn"))
    little = modern["mse"].mean() < SMALL_MSE and modern["knn"].mean() < SMALL_KNN

    def gain_text(start: str) -> str:
        g = gain[start]
        return (f"{start}: test pixel MSE {pm(-100 * g['mse'], 0, unit='%')}, kNN {pm(100 * g['knn'], 1)} points, "
                f"probe {pm(100 * g['probe'], 1)} points")

    if rescues and less and little:
        verdict, caveat = "holds", ""
    elif rescues and less:
        verdict = "holds with a caveat"
        caveat = (f"pretraining's gain shrinks with Glorot's start but does not vanish in this {epochs}-epoch budget "
                  f"({gain_text(STARTS[0])}; {gain_text(STARTS[1])}; {gain_text(STARTS[2])})")
    else:
        verdict = "does not hold here"
        caveat = ("pretraining does not rescue the old start" if not rescues else
                  "pretraining buys as much or more with Glorot's start as with the old one")
        caveat += f" ({gain_text(STARTS[0])}; {gain_text(STARTS[1])}; {gain_text(STARTS[2])})"

    fig = _figure(ctx, m, values)

    return Finding(
        verdict=verdict,
        experiment=(
            f"One deep `stacked` autoencoder ({'-'.join(map(str, (int(np.prod(ctx.image_shape)), *hidden, latent)))} "
            f"and back, linear code, BCE, Adam lr {lr:g}, batch {batch}) trained {epochs} epochs on {len(x):,} "
            f"training images from three starts: sigmoid units with weights from N(0, {OLD_STD:g}²) (the pre-2010 "
            "practice), "
            "sigmoid units from Glorot's uniform initialisation, and ReLU units from Glorot. Each start is trained "
            f"end to end (`pretrain_epochs=0`) and with greedy layer-wise pretraining (`pretrain_epochs=1`: one "
            f"epoch per layer for its {layers} layers, then fine-tuning) in the same number of epochs, seeds "
            f"{', '.join(map(str, ctx.seeds))}. Measured on the {len(x_test):,} test images: reconstruction error, "
            "and kNN and linear-probe accuracy of the codes (fitted on the training codes)."),
        result=(
            "Test pixel MSE, end to end vs pretrained: " + "; ".join(
                f"{s}: {pm(values(s, False, 'pixel MSE'), 4)} vs {pm(values(s, True, 'pixel MSE'), 4)}" for s in STARTS)
            + ". kNN accuracy of the codes: " + "; ".join(
                f"{s}: {pm(values(s, False, 'kNN'), 1, 100, '%')} vs {pm(values(s, True, 'kNN'), 1, 100, '%')}"
                for s in STARTS)
            + ". What pretraining changes: " + "; ".join(gain_text(s) for s in STARTS)
            + ". A pretraining epoch updates one layer only; training wall time (end to end vs pretrained): "
            + "; ".join(f"{s}: {pm(values(s, False, 'training seconds'), 1)} vs "
                        f"{pm(values(s, True, 'training seconds'), 1)} s" for s in STARTS) + "."),
        figure=fig, seeds=ctx.seeds, table=rows,
        numbers={f"pretraining's MSE cut, {s} (%)": float(100 * gain[s]["mse"].mean()) for s in STARTS}
        | {f"pretraining's kNN gain, {s} (points)": float(100 * gain[s]["knn"].mean()) for s in STARTS},
        caveat=caveat)


def _figure(ctx: Context, m: Measured, values):
    """Learning curves, kNN by start, reconstructions."""
    from ..report.figures import image_grid, new_figure

    curves, shown, layers, epochs, x_test = m.trained.curves, m.shown, m.trained.layers, m.trained.epochs, ctx.x_test
    fig = new_figure((15, 4.4))
    colours = dict(zip(STARTS, ("tab:red", "tab:orange", "tab:blue")))
    ax = fig.add_subplot(1, 3, 1)
    e = np.arange(1, epochs + 1)
    ax.axvspan(0.5, layers + 0.5, color="grey", alpha=0.12, label=f"pretraining ({layers} layers, 1 epoch each)")
    for start in STARTS:
        for pretrain, style in ((False, "-"), (True, "--")):
            plot_band(ax, e, [curves[start, pretrain, s] for s in ctx.seeds], style, colours[start],
                      f"{start}, {'pretrained' if pretrain else 'end to end'}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (same budget for all)")
    ax.set_ylabel("test pixel MSE (mean over seeds, band: min-max)")
    ax.set_title("learning curves")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 3, 2)
    pos = np.arange(len(STARTS))
    for i, pretrain in enumerate((False, True)):
        stats = [mean_std(values(s, pretrain, "kNN")) for s in STARTS]
        ax.bar(pos + (i - 0.5) * 0.38, [100 * m for m, _ in stats], 0.38, yerr=[100 * s for _, s in stats],
               color=[colours[s] for s in STARTS], alpha=1.0 if pretrain else 0.45, capsize=3,
               label="pretrained" if pretrain else "end to end (pale)")
    ax.set_xticks(pos, [s.replace(", ", ",\n", 1) for s in STARTS])
    ax.set_ylabel("kNN accuracy of the codes on test images (%)")
    ax.set_title("what pretraining buys, by start")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 3, 3)
    order = [(s, p) for s in STARTS for p in (False, True)]
    ax.imshow(image_grid(np.concatenate([x_test[:8]] + [shown[k] for k in order]), nrow=8), cmap="gray",
              vmin=0, vmax=1)
    h = x_test.shape[-2] + 1
    ax.set_xticks([])
    ax.set_yticks([h * (i + 0.5) for i in range(len(order) + 1)],
                  ["test images"] + [f"{s}{', pretr.' if p else ''}" for s, p in order], fontsize=8)
    ax.set_title(f"reconstructions after {epochs} epochs (seed {ctx.seeds[0]})")
    return fig
