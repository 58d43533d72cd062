"""Figures as PNG files, with numpy and matplotlib only (no torchvision).

Image grids are assembled in numpy and written with ``matplotlib.image.imsave`` (no axes, one
pixel per pixel, scaled up for small images). Plots are drawn on ``matplotlib.figure.Figure`` objects
and saved directly: pyplot is never imported, so no backend is chosen and no global state changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import path_access


def image_grid(images: np.ndarray, nrow: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """``(N, C, H, W)`` in [0, 1] -> one ``(H', W')`` or ``(H', W', 3)`` array, ``nrow`` images a row."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"image_grid expects (N, C, H, W) images, got shape {images.shape}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        images, c = images[:, :1], 1
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol_rows = math.ceil(n / nrow)
    grid = np.full((c, ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad), pad_value, dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y0 : y0 + h, x0 : x0 + w] = images[i]
    grid = np.clip(grid, 0.0, 1.0)
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def show_grids(ax, blocks: Sequence[np.ndarray], titles: Sequence[str], nrow: int | Sequence[int],
               gap: int = 3) -> None:
    """Draw several sets of images ``(N, C, H, W)`` in [0, 1] on one axes, each as a grid of ``nrow`` a
    row (one number for all, or one per block), side by side with ``gap`` white pixels between them and
    its title above it (e.g. samples of two models drawn the same way, for the eye to compare)."""
    nrows = [nrow] * len(blocks) if isinstance(nrow, int) else list(nrow)
    if not len(blocks) == len(titles) == len(nrows):
        raise ValueError(f"show_grids: {len(blocks)} blocks, {len(titles)} titles, {len(nrows)} row lengths")
    grids = [image_grid(b, n) for b, n in zip(blocks, nrows)]
    height = max(g.shape[0] for g in grids)
    parts, centres, x = [], [], 0
    for i, g in enumerate(grids):
        if g.ndim == 2:
            g = np.stack([g] * 3, -1)
        parts.append(np.pad(g, ((0, height - g.shape[0]), (0, 0), (0, 0)), constant_values=1.0))
        centres.append(x + g.shape[1] / 2)
        x += g.shape[1]
        if i < len(grids) - 1:
            parts.append(np.ones((height, gap, 3), dtype=np.float32))
            x += gap
    ax.imshow(np.concatenate(parts, 1), interpolation="nearest", vmin=0.0, vmax=1.0)
    ax.set_yticks([])
    ax.set_xticks(centres, titles)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)


# Small images are drawn at least this many screen pixels high, pixels kept square and sharp (an 8x8
# digit becomes 56x56): a grid of digits is something a person looks at, not a thumbnail.
MIN_CELL = 56
FONT = 10  # points; at 100 dpi one character is about CHAR_PX pixels wide
CHAR_PX = 7.5
DPI = 100


def _upscale(grid: np.ndarray, scale: int) -> np.ndarray:
    if scale <= 1:
        return grid
    return np.kron(grid, np.ones((scale, scale) + ((1,) if grid.ndim == 3 else ()), dtype=grid.dtype))


def grid_scale(images: np.ndarray, grid_shape: tuple[int, ...], min_size: int = 256, min_cell: int = MIN_CELL) -> int:
    """The integer factor that makes each image at least ``min_cell`` and the grid at least ``min_size``
    pixels on its longer side."""
    h = np.asarray(images).shape[-2]
    return max(1, math.ceil(min_cell / h), math.ceil(min_size / max(grid_shape[:2])))


def save_grid(path: str | Path, images: np.ndarray, nrow: int | None = None, min_size: int = 256, *,
              row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
              title: str | None = None, min_cell: int = MIN_CELL) -> Path:
    """Write ``images`` as one PNG grid, ``nrow`` a row, each image scaled up by an integer factor (at
    least ``min_cell`` pixels high, the grid at least ``min_size``), with its rows and columns labelled
    in the image itself when ``row_labels`` / ``col_labels`` / ``title`` are given."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]
    grid = image_grid(images, nrow)
    scale = grid_scale(images, grid.shape, min_size, min_cell)
    grid = _upscale(grid, scale)
    path = Path(path)
    if not (row_labels or col_labels or title):
        from matplotlib.image import imsave

        with path_access(path, "write"):
            path.parent.mkdir(parents=True, exist_ok=True)
            imsave(path, grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0)
        return path
    n, _, h, w = images.shape
    per_row = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / per_row)
    fig = _labelled_image(grid, scale, h, w, rows, per_row, row_labels, col_labels, title)
    return save_figure(fig, path, tight=False)


def _labelled_image(grid: np.ndarray, scale: int, h: int, w: int, rows: int, cols: int,
                    row_labels: Sequence[str] | None, col_labels: Sequence[str] | None, title: str | None):
    """A figure exactly the size of ``grid`` plus margins for the labels (pixels stay 1:1)."""
    gh, gw = grid.shape[:2]
    cell_w = (w + 1) * scale
    left = 8 + CHAR_PX * max(len(str(t)) for t in row_labels) + 6 if row_labels else 4
    rotate = bool(col_labels) and CHAR_PX * max(len(str(t)) for t in col_labels) > cell_w - 4
    col_h = (CHAR_PX * max(len(str(t)) for t in col_labels) + 8 if rotate else 18) if col_labels else 0
    title_h = 24 * (1 + str(title).count("\n")) if title else 0
    top = 4 + title_h + col_h
    width, height = gw + left + 6, gh + top + 4
    if title:  # a title wider than the grid widens the canvas
        width = max(width, CHAR_PX * 1.1 * max(len(t) for t in str(title).split("\n")) + 16)
    fig = new_figure((width / DPI, height / DPI))
    ax = fig.add_axes((left / width, 4 / height, gw / width, gh / height))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest",
              aspect="auto")
    ax.set_axis_off()
    for r, label in enumerate(list(row_labels or [])[:rows]):
        y = 4 + gh - (1 + r * (h + 1) + h / 2) * scale
        fig.text((left - 6) / width, y / height, str(label), ha="right", va="center", fontsize=FONT)
    for c, label in enumerate(list(col_labels or [])[:cols]):
        x = left + (1 + c * (w + 1) + w / 2) * scale
        fig.text(x / width, (4 + gh + 3) / height, str(label), ha="center", va="bottom", fontsize=FONT - 1,
                 rotation=90 if rotate else 0)
    if title:
        fig.text(0.5, 1 - 4 / height, str(title), ha="center", va="top", fontsize=FONT + 1)
    return fig


def save_rows(path: str | Path, rows: Sequence[np.ndarray], row_labels: Sequence[str] | None = None,
              col_labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Several equally long image rows stacked (originals / reconstructions, noisy / denoised / clean),
    each row named by ``row_labels`` and each column by ``col_labels`` in the image."""
    n = min(len(r) for r in rows)
    return save_grid(path, np.concatenate([np.asarray(r[:n]) for r in rows]), nrow=n, row_labels=row_labels,
                     col_labels=list(col_labels)[:n] if col_labels is not None else None, title=title)


def save_manifold(path: str | Path, images: np.ndarray, steps: int, span: float, title: str = "") -> Path:
    """A ``steps x steps`` grid of images decoded from 2-D codes on ``[-span, span]^2`` (row 0: the
    largest z[1]), drawn on axes that read in code units."""
    images = np.asarray(images, dtype=np.float32)
    grid = image_grid(images, steps, pad=0)
    scale = max(1, math.ceil(36 / images.shape[-2]))
    grid = _upscale(grid, scale)
    fig = new_figure((7.2, 7.0))
    ax = fig.subplots()
    half = span / (steps - 1) if steps > 1 else 0.5  # each image is centred on its code
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest",
              extent=(-span - half, span + half, -span - half, span + half))
    ax.set_xlabel("z[0] (code value)")
    ax.set_ylabel("z[1] (code value)")
    ax.set_title(title or f"decoded {steps} x {steps} grid of codes")
    return save_figure(fig, path)


def save_table_rows(path: str | Path, rows: Sequence[np.ndarray], titles: Sequence[str]) -> Path:
    """Tabular data: heatmaps of a few examples (rows) side by side, e.g. original vs reconstruction."""
    fig = new_figure((3.2 * len(rows) + 1, 3.2))
    axes = fig.subplots(1, len(rows), squeeze=False)
    vmin = min(float(np.min(r)) for r in rows)
    vmax = max(float(np.max(r)) for r in rows)
    im = None
    for ax, r, t in zip(axes[0], rows, titles):
        im = ax.imshow(np.asarray(r).reshape(len(r), -1), aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
                       interpolation="nearest")
        ax.set_title(t)
        ax.set_xlabel("feature (column index)")
        ax.set_ylabel("example (test row)")
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), label="value (scaled units)")
    return save_figure(fig, path, tight=False)


def class_colours(k: int):
    """k distinguishable colours: tab10 up to 10 classes, tab20 up to 20, then a sampled hsv wheel."""
    from matplotlib import colormaps

    if k <= 10:
        return [colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [colormaps["tab20"](i) for i in range(k)]
    return [colormaps["hsv"](i / k) for i in range(k)]


MAX_LEGEND = 40  # more classes than this are drawn with a colour bar of class indices


def class_scatter(ax, z: np.ndarray, labels: np.ndarray | None, label_names: Sequence[str] | None = None,
                  legend: bool = True, size: float = 4) -> None:
    """2-D points, one colour per class with a legend naming each class (its name from ``label_names``,
    else its index). Unknown labels (-1) are grey; without labels, one colour."""
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=size, alpha=0.7)
        return
    labels = np.asarray(labels).ravel()
    classes = [int(c) for c in np.unique(labels) if c >= 0]
    if len(classes) > MAX_LEGEND and not label_names:
        sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="viridis", s=size, alpha=0.7)
        ax.figure.colorbar(sc, ax=ax, label="class index")
        return
    colours = class_colours(max(classes) + 1 if classes else 1)
    if (labels < 0).any():
        m = labels < 0
        ax.scatter(z[m, 0], z[m, 1], s=size, alpha=0.4, color="0.7", label="unlabelled")
    for k in classes:
        m = labels == k
        name = str(label_names[k]) if label_names is not None and k < len(label_names) else str(k)
        ax.scatter(z[m, 0], z[m, 1], s=size, alpha=0.7, color=colours[k], label=name)
    if legend:
        ax.legend(title="class", markerscale=10 / max(size, 1) + 1, fontsize=8, title_fontsize=9,
                  loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1 if len(classes) <= 20 else 2,
                  frameon=False)


def top2(codes: np.ndarray) -> tuple[np.ndarray, str, str]:
    """2-D view of codes: themselves if 2-D (a 1-D code gets a zero second axis), else their top-2 PCs."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.shape[1] > 2:
        centred = codes - codes.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T, "PC 1 of the codes (code units)", "PC 2 of the codes (code units)"
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "z[0] (code value)", "(none: 1-D code)"
    return codes, "z[0] (code value)", "z[1] (code value)"


def latent_map_figure(codes: np.ndarray, labels: np.ndarray | None, title: str = "",
                      label_names: Sequence[str] | None = None):
    """Scatter of 2-D codes, one colour per class with the class names in a legend; codes wider than 2
    are projected on their top-2 principal components."""
    z, xlabel, ylabel = top2(codes)
    fig = new_figure((7.2, 5))
    ax = fig.subplots()
    class_scatter(ax, z, labels, label_names)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def save_latent_map(path: str | Path, codes: np.ndarray, labels: np.ndarray | None, title: str = "",
                    label_names: Sequence[str] | None = None) -> Path:
    """:func:`latent_map_figure` as a PNG."""
    return save_figure(latent_map_figure(codes, labels, title, label_names), path)


def save_histogram(path: str | Path, values: np.ndarray, title: str = "", bins: int = 60) -> Path:
    """Histogram of all ``values`` (log counts), titled with the share of near-zero ones (|v| at most
    10% of the largest |v|)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    fig = new_figure((5.5, 3.6))
    ax = fig.subplots()
    if v.size:
        ax.hist(v, bins=bins, color="#4c72b0")
        ax.set_yscale("log")
        top = np.abs(v).max()
        near_zero = float(np.mean(np.abs(v) <= 0.1 * top)) if top > 0 else 1.0
        title = f"{title}\n{v.size} values, {100 * near_zero:.0f}% at most 1/10 of the largest |value|".strip()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("code value")
    ax.set_ylabel("count (log scale)")
    return save_figure(fig, path)


def loss_panels(histories: dict[str, list[dict]]) -> list[str]:
    """The quantities logged in any of ``histories`` (``train_X`` / ``val_X`` -> ``X``), ``loss`` first."""
    keys = {k for h in histories.values() for rec in h for k in rec if k.startswith(("train_", "val_"))}
    names = sorted({k.split("_", 1)[1] for k in keys})
    return sorted(names, key=lambda n: (n != "loss", n))


def save_loss_curves(path, history: list[dict] | dict[str, list[dict]],
                     ylabels: dict[str, str] | None = None) -> Path:
    """Every logged training/validation number per epoch, one panel per quantity, y axes labelled with
    ``ylabels`` (quantity -> label with units). ``history`` may be one run's history or
    ``{run name: history}``: then every run is drawn on the same axes, one colour per run (solid:
    training, dashed: validation)."""
    histories = history if isinstance(history, dict) else {"": history}
    names = loss_panels(histories)
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols) or 1
    fig = new_figure((4.4 * cols, 3.3 * rows + (0.4 if len(histories) > 1 else 0)))
    axes = fig.subplots(rows, cols, squeeze=False)
    ylabels = ylabels or {}
    from matplotlib import colormaps

    for ax, name in zip(axes.flat, names):
        for i, (run, hist) in enumerate(histories.items()):
            epochs = [rec["epoch"] for rec in hist]
            for split, style in (("train", "-"), ("val", "--")):
                vals = [rec.get(f"{split}_{name}", np.nan) for rec in hist]
                if not any(np.isfinite(v) for v in vals):
                    continue
                what = "training" if split == "train" else "validation"
                kw = {"color": colormaps["tab10"](i % 10)} if run else {}
                ax.plot(epochs, vals, style, label=f"{run}: {what}" if run else what,
                        marker="." if len(epochs) < 30 else None, **kw)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabels.get(name, name))
        ax.legend(fontsize=7 if len(histories) > 1 else 8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return save_figure(fig, path)


def new_figure(size: tuple[float, float]):
    """A matplotlib Figure not registered with pyplot (saved with :func:`save_figure`, then garbage)."""
    from matplotlib.figure import Figure

    return Figure(figsize=size)


def save_figure(fig, path, dpi: int = DPI, tight: bool = True):
    """Write ``fig`` as a PNG to ``path`` (a file name, or a binary file object such as ``io.BytesIO``)."""
    if tight:
        fig.tight_layout()
    if hasattr(path, "write"):
        fig.savefig(path, dpi=dpi, format="png")
        return path
    path = Path(path)
    with path_access(path, "write"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return path

