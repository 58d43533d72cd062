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


def save_grid(path: str | Path, images: np.ndarray, nrow: int | None = None, min_size: int = 256) -> Path:
    """Write ``images`` as one PNG grid, scaled up by an integer factor to at least ``min_size`` pixels."""
    grid = image_grid(images, nrow)
    scale = max(1, math.ceil(min_size / max(grid.shape[:2])))
    if scale > 1:
        grid = np.kron(grid, np.ones((scale, scale) + ((1,) if grid.ndim == 3 else ()), dtype=grid.dtype))
    from matplotlib.image import imsave

    path = Path(path)
    with path_access(path, "write"):
        path.parent.mkdir(parents=True, exist_ok=True)
        imsave(path, grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0)
    return path


def save_rows(path: str | Path, rows: Sequence[np.ndarray]) -> Path:
    """Several equally long image rows stacked (originals / reconstructions, noisy / denoised / clean)."""
    n = min(len(r) for r in rows)
    return save_grid(path, np.concatenate([np.asarray(r[:n]) for r in rows]), nrow=n)


def save_table_rows(path: str | Path, rows: Sequence[np.ndarray], titles: Sequence[str]) -> Path:
    """Tabular data: heatmaps of a few examples (rows) side by side, e.g. original vs reconstruction."""
    fig = new_figure((3 * len(rows), 3))
    axes = fig.subplots(1, len(rows), squeeze=False)
    vmin = min(float(np.min(r)) for r in rows)
    vmax = max(float(np.max(r)) for r in rows)
    for ax, r, t in zip(axes[0], rows, titles):
        ax.imshow(np.asarray(r).reshape(len(r), -1), aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(t)
        ax.set_xlabel("feature")
        ax.set_ylabel("example")
    return save_figure(fig, path)


def save_latent_map(path: str | Path, codes: np.ndarray, labels: np.ndarray | None, title: str = "") -> Path:
    """Scatter of 2-D codes coloured by label; codes wider than 2 are projected on their top-2 PCs."""
    codes = np.asarray(codes, dtype=np.float64)
    xlabel, ylabel = "z[0]", "z[1]"
    if codes.shape[1] > 2:
        centred = codes - codes.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        codes = centred @ vt[:2].T
        xlabel, ylabel = "PC 1 of the codes", "PC 2 of the codes"
    elif codes.shape[1] == 1:
        codes = np.column_stack([codes[:, 0], np.zeros(len(codes))])
    fig = new_figure((6, 5))
    ax = fig.subplots()
    if labels is not None:
        sc = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7)
        fig.colorbar(sc, ax=ax, label="label")
    else:
        ax.scatter(codes[:, 0], codes[:, 1], s=4, alpha=0.7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save_figure(fig, path)


def save_histogram(path: str | Path, values: np.ndarray, title: str = "", bins: int = 60) -> Path:
    """Histogram of all ``values`` (log counts), titled with the share of near-zero ones (|v| at most
    10% of the largest |v|)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    fig = new_figure((5, 3.2))
    ax = fig.subplots()
    if v.size:
        ax.hist(v, bins=bins, color="#4c72b0")
        ax.set_yscale("log")
        top = np.abs(v).max()
        near_zero = float(np.mean(np.abs(v) <= 0.1 * top)) if top > 0 else 1.0
        title = f"{title}\n{v.size} values, {100 * near_zero:.0f}% at most 1/10 of the largest |value|".strip()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("value")
    ax.set_ylabel("count")
    return save_figure(fig, path)


def save_loss_curves(path: str | Path, history: list[dict]) -> Path:
    """Every logged training/validation number per epoch, one panel per quantity."""
    keys = sorted({k for rec in history for k in rec if k.startswith(("train_", "val_"))})
    names = sorted({k.split("_", 1)[1] for k in keys})
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols) or 1
    fig = new_figure((4 * cols, 3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    epochs = [rec["epoch"] for rec in history]
    for ax, name in zip(axes.flat, names):
        for split in ("train", "val"):
            key = f"{split}_{name}"
            vals = [rec.get(key, np.nan) for rec in history]
            if any(np.isfinite(v) for v in vals):
                ax.plot(epochs, vals, label=split, marker="." if len(epochs) < 30 else None)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return save_figure(fig, path)


def new_figure(size: tuple[float, float]):
    """A matplotlib Figure not registered with pyplot (saved with :func:`save_figure`, then garbage)."""
    from matplotlib.figure import Figure

    return Figure(figsize=size)


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    fig.tight_layout()
    path = Path(path)
    with path_access(path, "write"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return path

