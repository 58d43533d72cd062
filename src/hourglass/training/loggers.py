"""Optional TensorBoard logging while a run trains (``hourglass train --tensorboard``).

Writes event files into ``RUN_DIR/tensorboard/``: every numeric entry of each epoch's history
record as a scalar (``train/loss``, ``val/recon``, ``train/disc/loss``, ...); for image data a grid
of validation images over their reconstructions and, for generative models, a grid of samples
(the same draws each epoch, so successive epochs compare); at the end the run's test metrics.
View with ``tensorboard --logdir RUN_DIR``. Needs the ``tensorboard`` package (the
``hourglass-ae[tensorboard]`` extra); without it training refuses to start rather than running
without the logging that was asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..models.base import Autoencoder, sample_grid
from ..report.figures import image_grid
from ..seeding import seeded

INSTALL_HINT = "pip install 'hourglass-ae[tensorboard]'"


def summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or a ConfigError naming the package to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises ImportError when the tensorboard package is missing
        raise ConfigError(f"TensorBoard logging needs the tensorboard package ({exc}); "
                         f"install it with {INSTALL_HINT}") from exc
    return SummaryWriter


def scalar_tag(key: str) -> str:
    """History keys to TensorBoard tags: ``train_loss`` -> ``train/loss``, ``val_disc/loss`` ->
    ``val/disc/loss``, ``seconds`` -> ``time/epoch_seconds``."""
    if key == "seconds":
        return "time/epoch_seconds"
    split, _, rest = key.partition("_")
    return f"{split}/{rest}" if split in ("train", "val") and rest else key


class TensorBoardLogger:
    """Logs a run's epochs to TensorBoard; ``close()`` flushes the event file."""

    def __init__(self, log_dir: str | Path, model, splits, image: bool, n_images: int = 8, n_samples: int = 32):
        self.writer = summary_writer_class()(log_dir=str(log_dir))
        self.model = model
        self.image = image
        x = splits.x_val if splits.x_val is not None and len(splits.x_val) else splits.x_test
        y = splits.y_val if splits.x_val is not None and len(splits.x_val) else splits.y_test
        self.x = x[:n_images]
        self.y = y[:n_images] if y is not None else None
        self.n_samples = n_samples

    def log_epoch(self, record: dict[str, Any]) -> None:
        step = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(scalar_tag(key), float(value), step)
        if self.image:
            self._log_images(step)
        self.writer.flush()

    @torch.no_grad()
    def _log_images(self, step: int) -> None:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            dev = model.device
            if isinstance(model, Autoencoder) and len(self.x):
                x = self.x.to(dev)
                y = self.y.to(dev) if self.y is not None else None
                recon = model.reconstruct(x, y).cpu()
                grid = image_grid(torch.cat([x.cpu(), recon]).numpy(), nrow=len(x))
                self.writer.add_image("reconstructions", grid, step, dataformats=_formats(grid))
            if model.generative:
                # The same draws every epoch (seeded in a forked RNG, so training's stream is untouched).
                with seeded(0):
                    samples, nrow = sample_grid(model, self.n_samples)
                grid = image_grid(samples, nrow=nrow)
                self.writer.add_image("samples", grid, step, dataformats=_formats(grid))
        finally:
            model.train(was_training)

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        for split in ("train", "test"):
            for key, value in (metrics.get(split) or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"metrics_{split}/{key}", float(value), step)
        self.writer.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _formats(grid) -> str:
    return "HW" if grid.ndim == 2 else "HWC"
