"""One training loop for every model. Nothing in this file knows what an autoencoder is.

The model declares its optimizers (``configure_optimizers() -> {name: optimizer}``) and, for each
batch and each optimizer in that order, returns the loss to minimise from
``training_step(batch, phase=name)``. A plain model has one phase; an adversarial one has several
(reconstruction, discriminator, generator) and gets a fresh forward pass for each, so every phase
sees the parameters the phase before it has just updated. ``active_phases(epoch)`` lets greedy
schedules (layer-wise pretraining) train some optimizers in some epochs only.

Data sets are single tensors on the training device, batched by index: no DataLoader, no
per-example Python work. Loss values stay on the device and are read back every ``log_every``
steps, where they also feed the progress bar and the non-finite check.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..config import ConfigError, option


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the message names the epoch, step and loss."""


@dataclass
class TrainConfig:
    epochs: int = option(30, "passes over the training data")
    batch_size: int = option(64, "examples per optimisation step")
    seed: int = option(0, "seed for weights, shuffling and noise")
    device: str = option("auto", "auto (cuda if available), cpu, cuda or cuda:N")
    val_fraction: float = option(0.1, "fraction of the training data held out for validation (0: none)")
    patience: int = option(0, "early stopping: epochs without validation improvement (0: off)")
    min_delta: float = option(0.0, "early stopping: smallest improvement that counts")
    grad_clip: float = option(0.0, "clip each optimizer's gradient norm to this (0: off)")
    log_every: int = option(25, "steps between reading losses back (progress bar, non-finite check)")
    progress: bool = option(True, "show a progress bar")
    eval_batch_size: int = option(1024, "batch size for validation and evaluation")

    def validate(self) -> None:
        checks = {
            "epochs": self.epochs >= 0,
            "batch_size": self.batch_size >= 1,
            "val_fraction": 0.0 <= self.val_fraction < 1.0,
            "patience": self.patience >= 0,
            "min_delta": self.min_delta >= 0,
            "grad_clip": self.grad_clip >= 0,
            "log_every": self.log_every >= 1,
            "eval_batch_size": self.eval_batch_size >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"training option {key!r}: invalid value {getattr(self, key)!r}")
        resolve_device(self.device)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available on this machine")
        try:
            return torch.device(name)
        except RuntimeError:
            raise ConfigError(f"device {name!r} is not a valid device name") from None
    raise ConfigError(f"device {name!r}: choose auto, cpu, cuda or cuda:N")


@dataclass
class TrainerState:
    """What a resumed run needs besides the weights."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = math.inf
    bad_epochs: int = 0
    stopped_early: bool = False


class Trainer:
    def __init__(self, model: torch.nn.Module, config: TrainConfig):
        config.validate()
        self.model = model
        self.config = config
        self.device = resolve_device(config.device)
        self.model.to(self.device)
        self.optimizers: dict[str, torch.optim.Optimizer] = model.configure_optimizers()
        if not self.optimizers:
            raise ValueError(f"model {type(model).__name__} declared no optimizers")
        self.state = TrainerState()
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self._best_weights: dict[str, torch.Tensor] | None = None

    # -- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "trainer": {
                "epoch": self.state.epoch,
                "history": self.state.history,
                "best_val": self.state.best_val,
                "bad_epochs": self.state.bad_epochs,
                "stopped_early": self.state.stopped_early,
            },
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "rng": {"torch": torch.get_rng_state(), "shuffle": self.shuffle.get_state()},
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        t = sd["trainer"]
        self.state = TrainerState(t["epoch"], list(t["history"]), t["best_val"], t["bad_epochs"], t["stopped_early"])
        for name, opt in self.optimizers.items():
            if name not in sd["optimizers"]:
                raise ValueError(f"checkpoint has no state for optimizer {name!r}")
            opt.load_state_dict(sd["optimizers"][name])
        torch.set_rng_state(sd["rng"]["torch"])
        self.shuffle.set_state(sd["rng"]["shuffle"])

    # -- the loop ---------------------------------------------------------------------------------
    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        x_val: torch.Tensor | None = None,
        y_val: torch.Tensor | None = None,
        on_epoch_end: Callable[["Trainer"], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Train until ``config.epochs`` epochs are done (counting any resumed ones) or early stop."""
        cfg, model, dev = self.config, self.model, self.device
        model.on_fit_start(cfg.epochs)
        if self.state.epoch == 0:
            torch.manual_seed(cfg.seed)
        x = x.to(dev)
        y = y.to(dev) if y is not None else None
        if x_val is not None:
            x_val = x_val.to(dev)
            y_val = y_val.to(dev) if y_val is not None else None
        n = x.shape[0]
        if n == 0:
            raise ValueError("no training examples")
        steps = math.ceil(n / cfg.batch_size)
        bar = _progress(cfg.progress, total=cfg.epochs, initial=self.state.epoch)
        try:
            while self.state.epoch < cfg.epochs and not self.state.stopped_early:
                epoch = self.state.epoch
                t0 = time.perf_counter()
                model.train()
                phases = model.active_phases(epoch) or list(self.optimizers)
                unknown = [p for p in phases if p not in self.optimizers]
                if unknown:
                    raise ValueError(f"active_phases() named unknown optimizers {unknown}")
                perm = torch.randperm(n, generator=self.shuffle).to(dev)
                sums: dict[str, torch.Tensor] = {}
                window: list[tuple[int, str, torch.Tensor]] = []
                for step in range(steps):
                    idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                    batch = (x[idx], y[idx] if y is not None else None)
                    model.progress = epoch + step / steps
                    for phase in phases:
                        out = self._step(phase, batch)
                        prefix = "" if len(self.optimizers) == 1 else f"{phase}/"
                        for k, v in out.items():
                            key = prefix + k
                            sums[key] = sums[key] + v if key in sums else v.clone()
                        window.append((step, phase, out["loss"]))
                    if len(window) >= cfg.log_every * len(phases) or step == steps - 1:
                        self._check_finite(window, epoch)
                        window.clear()
                        if bar is not None:
                            bar.set_postfix({k: f"{v.item() / (step + 1):.4g}" for k, v in list(sums.items())[:4]})
                model.progress = float(epoch + 1)
                record: dict[str, Any] = {"epoch": epoch + 1}
                record.update({f"train_{k}": v.item() / steps for k, v in sums.items()})
                if x_val is not None and x_val.shape[0] > 0:
                    record.update({f"val_{k}": v for k, v in self.validate(x_val, y_val).items()})
                record["phases"] = ",".join(phases)
                record["seconds"] = time.perf_counter() - t0
                self._early_stopping(record)
                self.state.history.append(record)
                self.state.epoch += 1
                if on_epoch_end is not None:
                    on_epoch_end(self)
                if bar is not None:
                    bar.update(1)
                    shown = {k: v for k, v in record.items() if k.endswith("loss") and isinstance(v, float)}
                    bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
        finally:
            if bar is not None:
                bar.close()
        if self.state.stopped_early and self._best_weights is not None:
            model.load_state_dict(self._best_weights)
        model.eval()
        return self.state.history

    def _step(self, phase: str, batch) -> dict[str, torch.Tensor]:
        opt = self.optimizers[phase]
        opt.zero_grad(set_to_none=True)
        out = self.model.training_step(batch, phase)
        if "loss" not in out:
            raise ValueError(f"training_step(phase={phase!r}) must return a dict with a 'loss' entry")
        out["loss"].backward()
        if self.config.grad_clip > 0:
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        opt.step()
        return {k: v.detach() for k, v in out.items()}

    def _check_finite(self, window: list[tuple[int, str, torch.Tensor]], epoch: int) -> None:
        values = torch.stack([w[2] for w in window]).float().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            step, phase, _ = window[int(bad[0])]
            name = "loss" if len(self.optimizers) == 1 else f"{phase} loss"
            raise TrainingError(
                f"the {name} became {values[int(bad[0])].item()} at epoch {epoch + 1}, step {step + 1}; "
                "training stopped (try a lower --lr, grad_clip, or check the data scaling)"
            )

    @torch.no_grad()
    def validate(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        bs = self.config.eval_batch_size
        for start in range(0, x.shape[0], bs):
            xb = x[start : start + bs]
            yb = y[start : start + bs] if y is not None else None
            out = self.model.validation_step((xb, yb))
            for k, v in out.items():
                sums[k] = sums.get(k, 0) + v * xb.shape[0]
        self.model.train()
        return {k: v.item() / x.shape[0] for k, v in sums.items()}

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


def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True, leave=True)
