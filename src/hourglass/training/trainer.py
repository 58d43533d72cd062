"""One training loop for every model. Nothing in this file knows what an autoencoder is.

The model declares its optimizers (``configure_optimizers() -> {name: optimizer}``) and, for each
batch and each optimizer in that order, returns the loss to minimise from
``training_step(batch, phase=name)``; ``after_step(name)`` follows that optimizer's step (where a
model may update a moving average of its weights). A plain model has one phase; an adversarial one has
several (reconstruction, discriminator, generator) and gets a fresh forward pass for each, so every
phase sees the parameters the phase before it has just updated. ``active_phases(epoch)`` lets greedy
schedules (layer-wise pretraining) train some optimizers in some epochs only.

Data come as a batch source (:mod:`hourglass.data.batches`): by default the whole data set as one
tensor on the training device, batched by index. Loss values stay on the device and are read back
every ``log_every`` steps, where they also feed the callbacks and the non-finite check.

What happens around the loop (checkpoints, TensorBoard, the progress bar) are :class:`Callback`
objects the trainer calls at fixed points; the trainer itself writes nothing.

Setting ``stop_requested`` (a signal handler does, see :class:`~hourglass.training.callbacks.StopOnSignal`)
stops training after the current step: the trainer records how far the epoch got, calls the callbacks'
``on_stop`` (the checkpoint callback writes a checkpoint) and raises
:class:`~hourglass.errors.TrainingInterrupted`. Its state then holds the step, the epoch's running loss
sums and the shuffling generator's state at the start of the epoch, so a resumed run draws the same order,
skips the steps already done and ends bit-identical to a run that was never stopped.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ..data.batches import Batches, as_batches
from ..errors import CheckpointError, ConfigError, DataError, TrainingError, TrainingInterrupted
from ..options import TrainConfig
from ..threads import ThreadGovernor
from . import distributed
from .callbacks import Callback, ProgressBar
from .precision import Precision
from .speed import CompiledStep, compile_errors, match_state_layouts, to_channels_last

__all__ = ["Callback", "TrainConfig", "Trainer", "TrainerState", "TrainingError", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda``/``cuda:N`` only when CUDA is available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available on this machine")
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' requested but it is not available on this machine")
        return torch.device("mps")
    raise ConfigError(f"device {name!r}: choose auto, cpu, cuda or cuda:N")


@dataclass
class TrainerState:
    """What a resumed run needs besides the weights."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed in the epoch after those, when a stop request cut it short
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = math.inf
    bad_epochs: int = 0
    stopped_early: bool = False


class Trainer:
    def __init__(self, model: torch.nn.Module, config: TrainConfig, callbacks: Sequence[Callback] = ()):
        config.validate()
        self.model = model
        self.config = config
        self.dist = distributed.current()
        self.device = resolve_device(distributed.device_for(config.device))
        self.precision = Precision(config.precision, self.device)
        self.model.to(self.device)
        if config.channels_last:
            to_channels_last(self.model)
        # Built after the move, so that make_optimizer sees the device and picks fused kernels.
        self.optimizers: dict[str, torch.optim.Optimizer] = model.configure_optimizers()
        if not self.optimizers:
            raise ValueError(f"model {type(model).__name__} declared no optimizers")
        self._ddp = distributed.wrap(model, self.device, len(self.optimizers))  # several ranks: all-reduced grads
        self.scalers = {name: self.precision.scaler() for name in self.optimizers}  # fp16 loss scaling, else None
        self._compiled = CompiledStep(model, self._ddp) if config.compile else None
        self.state = TrainerState()
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.callbacks: list[Callback] = list(callbacks)
        if config.progress and self.dist.is_main:
            self.callbacks.append(ProgressBar())
        self._best_weights: dict[str, torch.Tensor] | None = None
        self.stop_requested: str | None = None  # set from outside (why): stop after the current step
        self._stop_agreed: str | None = None  # several ranks: the stop request all of them last agreed on
        self._epoch_start_shuffle = self.shuffle.get_state()  # to draw an interrupted epoch's order again
        self._partial: dict[str, Any] = {"sums": {}, "seconds": 0.0}  # the epoch so far, when cut short

    # -- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "trainer": {
                "epoch": self.state.epoch,
                "step": self.state.step,
                "partial": self._partial if self.state.step else None,
                "history": self.state.history,
                "best_val": self.state.best_val,
                "bad_epochs": self.state.bad_epochs,
                "stopped_early": self.state.stopped_early,
            },
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scalers": {name: sc.state_dict() for name, sc in self.scalers.items() if sc is not None},
            "rng": {"torch": torch.get_rng_state(),
                    "shuffle": self._epoch_start_shuffle if self.state.step else self.shuffle.get_state()},
            "best_weights": self._best_weights,
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        try:
            t = sd["trainer"]
            self.state = TrainerState(int(t["epoch"]), int(t["step"]), list(t["history"]), float(t["best_val"]),
                                      int(t["bad_epochs"]), bool(t["stopped_early"]))
            if self.state.epoch < 0 or self.state.step < 0:
                raise ValueError(f"epoch {self.state.epoch}, step {self.state.step}")
            if self.state.step:
                sums = {str(k): v.to(self.device) for k, v in t["partial"]["sums"].items()}
                self._partial = {"sums": sums, "seconds": float(t["partial"]["seconds"])}
            best = sd["best_weights"]
            self._best_weights = {str(k): v.to(self.device) for k, v in best.items()} if best is not None else None
            for name, opt in self.optimizers.items():
                if name not in sd["optimizers"]:
                    raise CheckpointError(f"the trainer state has no state for optimizer {name!r}")
                opt.load_state_dict(sd["optimizers"][name])
                match_state_layouts(opt)  # a channels-last weight's moments in its layout (fused kernels)
                if self.scalers[name] is not None and name in sd.get("scalers", {}):
                    self.scalers[name].load_state_dict(sd["scalers"][name])
            torch.set_rng_state(sd["rng"]["torch"])
            self.shuffle.set_state(sd["rng"]["shuffle"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
            if isinstance(e, CheckpointError):
                raise
            what = f"it has no entry {e.args[0]!r}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            raise CheckpointError(f"the trainer state is damaged or belongs to another model: {what}") from None

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self, x, y: torch.Tensor | None = None, x_val=None,
            y_val: torch.Tensor | None = None) -> list[dict[str, Any]]:
        """Train until ``config.epochs`` epochs are done (counting any resumed ones) or early stop.

        ``x`` (and ``x_val``) are tensors, with labels ``y`` (``y_val``) or None, or batch sources
        (:class:`~hourglass.data.batches.Batches`)."""
        cfg, model, dev = self.config, self.model, self.device
        train = as_batches(x, y).to(dev)
        val = as_batches(x_val, y_val).to(dev) if x_val is not None else None
        if len(train) == 0:
            raise DataError("no training examples")
        if self.dist.active:  # each rank takes its part of every global batch
            train = train.shard(self.dist.rank, self.dist.world_size)
            if val is not None and len(val) >= self.dist.world_size:  # else each scores all of it
                val = val.shard(self.dist.rank, self.dist.world_size)
        model.on_fit_start(cfg.epochs)
        if self.state.epoch == 0 and self.state.step == 0:
            torch.manual_seed(cfg.seed + self.dist.rank)
        elif self.dist.rank:  # resumed on several ranks: the checkpoint holds rank 0's random state
            torch.manual_seed(cfg.seed + self.dist.rank + 7919 * (self.state.epoch * 1_000_003 + self.state.step))
        steps = train.num_batches(cfg.batch_size)
        governor = ThreadGovernor(cfg.threads)
        governor.start()
        for cb in self.callbacks:
            cb.on_fit_start(self)
        try:
            while self.state.epoch < cfg.epochs and not self.state.stopped_early:
                record = self._epoch(train, val, steps, governor)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, record)
                requested = self._stop_agreed if self.dist.active else self.stop_requested
                if requested and self.state.epoch < cfg.epochs and not self.state.stopped_early:
                    raise TrainingInterrupted(f"training stopped ({self.stop_requested}) after epoch "
                                              f"{self.state.epoch} of {cfg.epochs}")
        finally:
            governor.stop()
            for cb in self.callbacks:
                cb.on_fit_end(self)
        if self.state.stopped_early and self._best_weights is not None:
            model.load_state_dict(self._best_weights)
        model.eval()
        return self.state.history

    def _epoch(self, train: Batches, val: Batches | None, steps: int, governor: ThreadGovernor) -> dict[str, Any]:
        cfg, model = self.config, self.model
        epoch, start = self.state.epoch, self.state.step
        if start >= steps:
            raise CheckpointError(f"the trainer state stopped at step {start} of epoch {epoch + 1}, which has {steps} "
                                  "steps here: the data or the batch size differ from the run's")
        t0 = time.perf_counter() - self._partial["seconds"]
        self._epoch_start_shuffle = self.shuffle.get_state()
        model.train()
        phases = model.active_phases(epoch) or list(self.optimizers)
        unknown = [p for p in phases if p not in self.optimizers]
        if unknown:
            raise ValueError(f"active_phases() named unknown optimizers {unknown}")
        prefix = "" if len(self.optimizers) == 1 else "{}/"
        sums: dict[str, torch.Tensor] = dict(self._partial["sums"])
        window: list[tuple[int, str, torch.Tensor]] = []
        for step, batch in enumerate(train.shuffled(cfg.batch_size, self.shuffle)):
            if step < start:  # done before a stop request: the same order is drawn again, these are skipped
                continue
            model.progress = epoch + step / steps
            for phase in phases:
                out = self._step(phase, batch)
                for k, v in out.items():
                    key = prefix.format(phase) + k
                    sums[key] = sums[key] + v if key in sums else v.clone()
                window.append((step, phase, out["loss"]))
            at_log = len(window) >= cfg.log_every * len(phases) or step == steps - 1
            if at_log:
                self._check_finite(window, epoch)
                window.clear()
                governor.tick()
                if self.callbacks:
                    means = {k: v.item() / (step + 1) for k, v in sums.items()}
                    for cb in self.callbacks:
                        cb.on_log(self, epoch, step, steps, means)
            if self.dist.active:  # the ranks agree on a stop at the log points, so all stop at one step
                stop = self._agree_on_stop() if at_log else None
            else:
                stop = self.stop_requested
            if stop and step < steps - 1:
                self._stop(window, epoch, step + 1, steps, sums, time.perf_counter() - t0)
        model.progress = float(epoch + 1)
        record: dict[str, Any] = {"epoch": epoch + 1}
        if self.dist.active:  # each rank's sums of its per-step means: the global means are their average
            sums = {k: distributed.all_reduce_sum(v) / self.dist.world_size for k, v in sums.items()}
        record.update({f"train_{k}": v.item() / steps for k, v in sums.items()})
        if val is not None and len(val) > 0:
            record.update({f"val_{k}": v for k, v in self.validate(val).items()})
        record["phases"] = ",".join(phases)
        record["seconds"] = time.perf_counter() - t0
        self._early_stopping(record)
        self.state.history.append(record)
        self.state.epoch += 1
        self.state.step, self._partial = 0, {"sums": {}, "seconds": 0.0}
        return record

    def _stop(self, window, epoch: int, done: int, steps: int, sums: dict[str, torch.Tensor], seconds: float) -> None:
        """A stop request after step ``done`` of ``steps``: record where the epoch got, let the callbacks
        save it, and stop."""
        if window:
            self._check_finite(window, epoch)
        self.state.step, self._partial = done, {"sums": sums, "seconds": seconds}
        for cb in self.callbacks:
            cb.on_stop(self)
        raise TrainingInterrupted(f"training stopped ({self.stop_requested}) at epoch {epoch + 1}, "
                                  f"step {done} of {steps}")

    def _agree_on_stop(self) -> str | None:
        """Several ranks: whether any of them was asked to stop (a collective, at the log points)."""
        if distributed.any_rank(bool(self.stop_requested), self.device):
            self.stop_requested = self.stop_requested or "a signal to another rank"
            self._stop_agreed = self.stop_requested
        return self._stop_agreed

    def _step(self, phase: str, batch) -> dict[str, torch.Tensor]:
        """One optimisation step of ``phase``: forward and loss in the run's precision, backward, step.
        Nothing here reads a value back to the host (under fp16 the scaler's overflow check does)."""
        compiled = self._compiled
        if compiled is not None and compiled.first(phase):
            try:  # the first call of each phase traces and compiles the forward and the backward pass
                out = self._update(phase, batch, compiled)
            except compile_errors() as e:
                raise compiled.failed(phase, e) from e
            compiled.compiled.add(phase)
            return out
        if compiled is not None:
            return self._update(phase, batch, compiled)
        return self._update(phase, batch, self._ddp if self._ddp is not None else self.model.training_step)

    def _update(self, phase: str, batch, training_step) -> dict[str, torch.Tensor]:
        opt, scaler = self.optimizers[phase], self.scalers[phase]
        opt.zero_grad(set_to_none=True)
        with self.precision.autocast():
            out = training_step(batch, phase)
        if "loss" not in out:
            raise ValueError(f"training_step(phase={phase!r}) must return a dict with a 'loss' entry")
        if scaler is None:
            out["loss"].backward()
        else:  # fp16: backward on S * loss, gradients unscaled before clipping and the step
            scaler.scale(out["loss"]).backward()
            scaler.unscale_(opt)
        if self.config.grad_clip > 0:
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)  # skipped when a gradient overflowed; the scale then shrinks
            scaler.update()
        self.model.after_step(phase)
        # Logged values in float32 whatever the precision: the epoch's sums accumulate them.
        return {k: v.detach().float() for k, v in out.items()}

    def _check_finite(self, window: list[tuple[int, str, torch.Tensor]], epoch: int) -> None:
        values = torch.stack([w[2] for w in window]).float().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if self.dist.active and distributed.any_rank(bool(len(bad)), self.device) and not len(bad):
            raise TrainingError(f"the loss became NaN or infinite on another rank at epoch {epoch + 1}; training "
                                "stopped (try a lower --lr, grad_clip, or check the data scaling)")
        if len(bad):
            step, phase, _ = window[int(bad[0])]
            name = "loss" if len(self.optimizers) == 1 else f"{phase} loss"
            raise TrainingError(
                f"the {name} became {values[int(bad[0])].item()} at epoch {epoch + 1}, step {step + 1}; "
                "training stopped (try a lower --lr, grad_clip, or check the data scaling)"
            )

    @torch.no_grad()
    def validate(self, val, y: torch.Tensor | None = None) -> dict[str, float]:
        """Mean of ``validation_step``'s numbers over ``val`` (a batch source, or a tensor with labels ``y``)."""
        val = as_batches(val, y).to(self.device)
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        for xb, yb in val.ordered(self.config.eval_batch_size):
            with self.precision.autocast():
                out = self.model.validation_step((xb, yb))
            for k, v in out.items():
                sums[k] = sums.get(k, 0) + v.float() * xb.shape[0]
        self.model.train()
        if getattr(val, "world_size", 1) > 1:  # each rank scored its share: sum over ranks, names in one order
            names = sorted(sums)
            values = [torch.as_tensor(sums[k], device=self.device).double().reshape(()) for k in names]
            total = distributed.all_reduce_sum(torch.stack(values))
            sums = dict(zip(names, total.unbind()))
        return {k: v.item() / len(val) for k, v in sums.items()}

    def _early_stopping(self, record: dict[str, Any]) -> None:
        monitor = record.get("val_loss", record.get("train_loss"))
        if monitor is None:  # several optimizers and no validation: no single number to watch
            return
        if not math.isfinite(monitor):
            raise TrainingError(f"the validation loss became {monitor} at epoch {record['epoch']}; training stopped")
        if monitor < self.state.best_val - self.config.min_delta:
            self.state.best_val = monitor
            self.state.bad_epochs = 0
            if self.config.patience > 0:
                self._best_weights = copy.deepcopy({k: v.detach() for k, v in self.model.state_dict().items()})
        else:
            self.state.bad_epochs += 1
            if self.config.patience > 0 and self.state.bad_epochs >= self.config.patience:
                self.state.stopped_early = True
                record["early_stop"] = True
