"""The figures every training run writes into its directory (and report.html inlines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models.base import Autoencoder, sample_grid
from ..report import figures
from ..seeding import seeded

MANIFOLD_STEPS = 15
MANIFOLD_SPAN = 2.5  # +-2.5 standard deviations of an N(0, I) prior covers ~99% of each axis


def loss_ylabels(model) -> dict[str, str]:
    """y-axis labels, with units, of the quantities a model logs (``losses.png``)."""
    c = model.config
    if getattr(c, "reduction", "sum") == "sum":
        recon = "nats per example" if c.recon_loss == "bce" or model.generative else "squared error per example"
    else:
        recon = "BCE per value (nats)" if c.recon_loss == "bce" else "squared error per value"
    adversarial = "BCE (nats per example)"
    labels = {"loss": f"loss ({recon})", "recon": f"reconstruction ({recon})", "kl": "KL (nats per example)",
              "bound": "bound (nats per example)", "entropy": "H(q(y|x)) (nats)",
              "class_ce": "-log q(y|x) (nats per labelled example)", "class_acc": "accuracy (fraction)",
              "replay_ce": "-log q(y|x), replayed labels (nats)",
              "d_real": "mean D(real) (probability)", "d_fake": "mean D(fake) (probability)",
              "disc_acc": "discriminator accuracy (fraction)", "gen": f"generator loss ({adversarial})",
              "codes_pass_as_prior": "codes taken for prior samples (fraction)"}
    for phase in ("disc", "gen"):
        labels[f"{phase}/loss"] = f"{'discriminator' if phase == 'disc' else 'generator'} loss ({adversarial})"
    if not hasattr(c, "beta") and model.generative and not isinstance(model, Autoencoder):
        labels["loss"] = f"discriminator loss ({adversarial})"  # a GAN validates its discriminator
    for key in list(labels):
        labels.setdefault(f"recon/{key}", labels[key])
    return labels


def _names(labels, label_names) -> list[str]:
    return [str(label_names[int(k)]) if label_names is not None and 0 <= int(k) < len(label_names) else str(int(k))
            for k in labels]


@torch.no_grad()
def write_run_figures(out_dir, model, splits, *, history=None, image: bool = True, title: str = "",
                      n_show: int = 16, n_map: int = 2000, label_names=None) -> list[str]:
    """Write a run's figures into ``out_dir`` and return their paths.

    losses.png (from ``history``); for autoencoders reconstructions.png (test originals over their
    reconstructions), latent.png (codes of test data coloured by label, or their top-2 PCs) and, for
    images, interpolation.png; samples.png for generative models; manifold.png (decoded grid of 2-D
    codes) for non-conditional generative models with a 2-D latent; and the model's own figures
    (``figure_captions`` / ``figure_data``: the DAE's noisy/denoised/clean rows, the sparse AE's code
    histogram). ``splits`` are the run's scaled :class:`~hourglass.data.splits.Splits`; ``label_names``
    the class names (legends and row labels show them; class indices without)."""
    out = Path(out_dir)
    title = title or model.name
    model = model.eval()
    dev = model.device
    encoder = isinstance(model, Autoencoder)
    written = []
    if history:
        written.append(figures.save_loss_curves(out / "losses.png", history, loss_ylabels(model)))
    with seeded(0):  # the same draws whenever the figures are redrawn
        if encoder:
            x = splits.x_test[:n_show].to(dev)
            y = splits.y_test[:n_show].to(dev) if splits.y_test is not None else None
            recon = model.reconstruct(x, y).cpu().numpy()
            if image:
                cols = _names(y.cpu().numpy(), label_names) if y is not None else None
                what = "test examples (labelled with their class)" if cols else "test examples"
                written.append(figures.save_rows(out / "reconstructions.png", [x.cpu().numpy(), recon],
                                                 ["test data", "reconstruction"], cols,
                                                 f"{title}: {what} and reconstructions"))
            else:
                written.append(figures.save_table_rows(out / "reconstructions.png", [x.cpu().numpy(), recon],
                                                       ["test data (scaled)", "reconstruction"]))
            # The model's own figures see up to n_map test examples (histograms want many); rows show n_show.
            xf = splits.x_test[:n_map].to(dev)
            yf = splits.y_test[:n_map].to(dev) if splits.y_test is not None else None
            for stem, (kind, data) in model.figure_data(xf, yf).items():
                written.append(_model_figure(out / f"{stem}.png", kind, data, image, f"{title}: {stem}", n_show))
        if model.generative:
            samples, nrow = sample_grid(model, 64)
            if image:
                if model.conditional:
                    rows = _names(range(model.num_classes), label_names)
                    what = f"{title}: samples, one row per class asked for (z ~ N(0, I))"
                else:
                    rows, what = None, f"{title}: {len(samples)} samples"
                written.append(figures.save_grid(out / "samples.png", samples, nrow=nrow, row_labels=rows, title=what))
            else:
                written.append(figures.save_latent_map(out / "samples.png", samples.reshape(len(samples), -1)[:, :3],
                                                       None, "samples (first features)"))
            if image and model.latent_dim == 2 and not model.conditional:
                written.append(figures.save_manifold(out / "manifold.png", manifold_grid(model), MANIFOLD_STEPS,
                                                     MANIFOLD_SPAN, f"{title}: decoded grid of 2-D codes"))
        if encoder:
            xm = splits.x_test[:n_map]
            ym = splits.y_test[:n_map] if splits.y_test is not None else None
            codes = torch.cat([model.encode(xm[i:i + 1024].to(dev), ym[i:i + 1024].to(dev) if ym is not None else None)
                               .cpu() for i in range(0, len(xm), 1024)]).numpy()
            labels = ym.numpy() if ym is not None else None
            written.append(figures.save_latent_map(out / "latent.png", codes, labels,
                                                   f"{title}: test codes ({codes.shape[1]}-D)", label_names))
            if image and len(splits.x_test) >= 2:
                pairs = _pair_indices(splits.y_test, len(splits.x_test), 3)
                strip = interpolation_rows(model, splits.x_test, splits.y_test, pairs=pairs)
                yt = splits.y_test
                rows = ([" to ".join(_names([yt[i], yt[j]], label_names)) for i, j in pairs] if yt is not None
                        else [f"example {i} to {j}" for i, j in pairs])
                steps = len(strip[0])
                cols = [f"{t / (steps - 1):.2g}" for t in range(steps)] if steps > 1 else None
                written.append(figures.save_rows(out / "interpolation.png", strip, rows, cols,
                                                 f"{title}: decoded codes (1 - t) z_a + t z_b, t in columns"))
    return [str(p) for p in written]


def _model_figure(path: Path, kind: str, data, image: bool, title: str, n_show: int) -> Path:
    """Draw one of a model's own figures (``Autoencoder.figure_data``)."""
    if kind == "histogram":
        return figures.save_histogram(path, data.cpu().numpy(), title)
    if kind == "rows":
        titles = [t for t, _ in data]
        rows = [r[:n_show].cpu().numpy() for _, r in data]
        if image:
            return figures.save_rows(path, rows, titles, title=title)
        return figures.save_table_rows(path, rows, titles)
    raise TypeError(f"figure_data kind must be 'rows' or 'histogram', got {kind!r}")


@torch.no_grad()
def manifold_grid(model, steps: int = MANIFOLD_STEPS, span: float = MANIFOLD_SPAN) -> np.ndarray:
    """Decoded images of a ``steps x steps`` grid of 2-D codes over ``[-span, span]^2`` (row = z[1] from top)."""
    t = torch.linspace(-span, span, steps)
    z1, z0 = torch.meshgrid(t.flip(0), t, indexing="ij")  # z[1] decreases downwards, as on a plot
    z = torch.stack([z0.reshape(-1), z1.reshape(-1)], 1).to(model.device)
    return model.decode(z).cpu().numpy()


@torch.no_grad()
def interpolation_rows(model, x: torch.Tensor, y: torch.Tensor | None, pairs: int | list = 3, steps: int = 10) -> list:
    """Interpolation strips between test examples: ``pairs`` index pairs, or that many pairs (of
    different classes when labelled)."""
    from ..evaluate.interpolate import interpolate

    idx = pairs if isinstance(pairs, list) else _pair_indices(y, len(x), pairs)
    rows = []
    for i, j in idx:
        ya = int(y[i]) if (y is not None and model.conditional) else None
        yb = int(y[j]) if (y is not None and model.conditional) else None
        rows.append(interpolate(model, x[i], x[j], steps, ya, yb).cpu().numpy())
    return rows


def _pair_indices(y, n: int, pairs: int) -> list[tuple[int, int]]:
    if y is None:
        return [(2 * p, 2 * p + 1) for p in range(min(pairs, n // 2))]
    y = np.asarray(y)
    out = []
    used = set()
    for i in range(n):
        if len(out) == pairs:
            break
        if i in used:
            continue
        for j in range(i + 1, n):
            if j not in used and y[j] != y[i]:
                out.append((i, j))
                used.update((i, j))
                break
    return out or [(0, 1)]
