"""What happens around the training loop, as :class:`Callback` s the trainer calls at fixed points: a
progress bar, a checkpoint after every epoch, TensorBoard logging. (The trainer is passed in; this
module does not import it.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Callback:
    """Hooks the trainer calls with itself as ``trainer``; every method is optional. ``record`` is the
    epoch's history entry."""

    def on_fit_start(self, trainer) -> None: ...

    def on_log(self, trainer, epoch: int, step: int, steps: int, means: dict[str, float]) -> None:
        """Every ``log_every`` steps: the running mean of each loss over the epoch so far."""

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer) -> None:
        """After the last epoch, or when training stops on an error (then from a ``finally``)."""


class ProgressBar(Callback):
    """A tqdm bar over epochs, with the running losses of the epoch as its postfix."""

    def __init__(self) -> None:
        self.bar = None

    def on_fit_start(self, trainer) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.config.epochs, initial=trainer.state.epoch, unit="epoch",
                        dynamic_ncols=True, leave=True)

    def on_log(self, trainer, epoch: int, step: int, steps: int, means: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:4]})

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(1)
            shown = {k: v for k, v in record.items() if k.endswith("loss") and isinstance(v, float)}
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})

    def on_fit_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Checkpoint(Callback):
    """After every epoch: the weights, the trainer state and the history into the run directory."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        from . import checkpoint

        checkpoint.save_checkpoint(self.run_dir, trainer.model.state_dict(), trainer.state_dict())


class TensorBoard(Callback):
    """Every epoch's losses (and image grids) into ``RUN_DIR/tensorboard`` (see report.tensorboard)."""

    def __init__(self, logger) -> None:
        self.logger = logger

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        self.logger.log_epoch(record)

    def on_fit_end(self, trainer) -> None:
        self.logger.flush()
