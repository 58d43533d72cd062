"""What happens around the training loop, as :class:`Callback` s the trainer calls at fixed points: a
progress bar, a checkpoint after every epoch (and when training is stopped), TensorBoard logging, and
stopping cleanly on SIGTERM or Ctrl-C. (The trainer is passed in; this module does not import it.)
:class:`EvaluationProgress` shows the metric pipeline's stages after training the same way.

On a terminal, progress is a tqdm bar redrawn in place. When the output is not a terminal (a log file,
CI, a notebook's captured stream), a bar redrawn with carriage returns becomes one huge line, so both
write plain lines instead: one per epoch, or at most about ``PLAIN_LINES`` over a long run, and one per
evaluation stage.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

PLAIN_LINES = 20  # lines a non-terminal progress report writes over a whole run (plus the last epoch)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _fmt(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, (int, float)))


class Callback:
    """Hooks the trainer calls with itself as ``trainer``; every method is optional. ``record`` is the
    epoch's history entry."""

    def on_fit_start(self, trainer) -> None: ...

    def on_log(self, trainer, epoch: int, step: int, steps: int, means: dict[str, float]) -> None:
        """Every ``log_every`` steps: the running mean of each loss over the epoch so far."""

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None: ...

    def on_stop(self, trainer) -> None:
        """Training stops in the middle of an epoch on request (``trainer.stop_requested``), after a step."""

    def on_fit_end(self, trainer) -> None:
        """After the last epoch, or when training stops on an error (then from a ``finally``)."""


class ProgressBar(Callback):
    """Progress over epochs on ``stream`` (default stderr): on a terminal a tqdm bar with the running
    losses of the epoch as its postfix; otherwise plain lines, ``epoch 3/30 (10%): train_loss 25.1,
    val_loss 25.3, 0.4 s``, for every epoch of a short run and about ``PLAIN_LINES`` of a long one."""

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None) -> None:
        self.bar = None
        self.stream = stream
        self.terminal = terminal
        self.every = 1

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def on_fit_start(self, trainer) -> None:
        total = trainer.config.epochs
        if self.terminal if self.terminal is not None else _is_terminal(self._out()):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=trainer.state.epoch, unit="epoch", dynamic_ncols=True,
                            leave=True, file=self._out())
        else:
            self.every = max(1, math.ceil(total / PLAIN_LINES))
            print(f"training {total - trainer.state.epoch} epochs", file=self._out(), flush=True)

    def on_log(self, trainer, epoch: int, step: int, steps: int, means: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:4]})

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        shown = {k: v for k, v in record.items() if k.endswith("loss") and isinstance(v, float)}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
            return
        epoch, total = int(record.get("epoch", trainer.state.epoch)), trainer.config.epochs
        if epoch % self.every == 0 or epoch >= total:
            seconds = record.get("seconds")
            tail = f", {seconds:.2f} s" if isinstance(seconds, (int, float)) else ""
            print(f"epoch {epoch}/{total} ({100 * epoch / max(total, 1):.0f}%): {_fmt(shown)}{tail}",
                  file=self._out(), flush=True)

    def on_fit_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EvaluationProgress:
    """The metric pipeline's ``progress(stage, done, total)`` hook: which metric is being computed and
    how far evaluation has come, on ``stream`` (default stderr): a tqdm bar over the stages on a
    terminal, one plain line per stage otherwise, then the total time."""

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None) -> None:
        self.stream = stream
        self.terminal = terminal
        self.bar = None
        self.t0 = time.perf_counter()

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def __call__(self, stage: str, done: int, total: int) -> None:
        out = self._out()
        if done == 0:
            self.t0 = time.perf_counter()
            if self.terminal if self.terminal is not None else _is_terminal(out):
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, unit="stage", desc="evaluating", leave=False, dynamic_ncols=True,
                                file=out)
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(stage)
            if done >= total:
                self.bar.close()
                self.bar = None
                print(f"evaluated in {time.perf_counter() - self.t0:.1f} s", file=out, flush=True)
            return
        if done >= total:
            print(f"evaluated in {time.perf_counter() - self.t0:.1f} s", file=out, flush=True)
        else:
            print(f"evaluating {done + 1}/{total}: {stage}", file=out, flush=True)


class Checkpoint(Callback):
    """One checkpoint (weights, trainer state, history; see :mod:`~hourglass.training.checkpoint`) into the
    run directory after an epoch when ``interval`` seconds have passed since the last one (0: after every
    epoch), after the last epoch (or early stopping), and when training is stopped on request. A
    checkpoint costs a few fsyncs (tens of milliseconds); the interval keeps that from doubling the time of
    runs whose epochs take less. ``identity`` (model name and config) goes into the manifest."""

    def __init__(self, run_dir: str | Path, identity: dict[str, Any] | None = None, interval: float = 0.0):
        self.run_dir = Path(run_dir)
        self.identity = identity
        self.interval = interval
        self.last = time.monotonic()

    def on_fit_start(self, trainer) -> None:
        self.last = time.monotonic()

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        state = trainer.state
        if (time.monotonic() - self.last >= self.interval or state.epoch >= trainer.config.epochs
                or state.stopped_early or trainer.stop_requested):
            self.save(trainer)

    def on_stop(self, trainer) -> None:
        self.save(trainer)

    def save(self, trainer) -> None:
        from . import checkpoint

        checkpoint.save_checkpoint(self.run_dir, trainer.model.state_dict(), trainer.state_dict(), self.identity)
        self.last = time.monotonic()


class StopOnSignal(Callback):
    """While training runs (in the main thread), SIGTERM and SIGINT (Ctrl-C) ask the trainer to stop after
    its current step (``trainer.stop_requested``); the checkpoint callback then saves the run. A second
    signal stops at once (``KeyboardInterrupt``): the last complete checkpoint is still there."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.received: int | None = None

    def on_fit_start(self, trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set in the main thread

        def handler(signum, frame):
            if self.received is not None:
                raise KeyboardInterrupt
            self.received = signum
            trainer.stop_requested = signal.Signals(signum).name

        for name in self.SIGNALS:
            num = getattr(signal, name, None)
            if num is not None:
                self.previous[num] = signal.signal(num, handler)

    def on_fit_end(self, trainer) -> None:
        for num, old in self.previous.items():
            signal.signal(num, old if old is not None else signal.SIG_DFL)
        self.previous.clear()


class TensorBoard(Callback):
    """Every epoch's losses (and image grids) into ``RUN_DIR/tensorboard`` (see training.loggers)."""

    def __init__(self, logger) -> None:
        self.logger = logger

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        self.logger.log_epoch(record)

    def on_fit_end(self, trainer) -> None:
        self.logger.flush()
