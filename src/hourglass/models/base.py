"""What every model shares: the common config fields, the model surface, reconstruction losses.

The surface (the trainer, the CLI and the tests use nothing else):

* ``decode(z, y=None) -> x_hat`` (in data space); autoencoders add ``encode(x, y=None) -> z`` and
  ``reconstruct(x, y=None)``;
* ``configure_optimizers() -> {name: optimizer}``, stepped in that order each batch;
* ``training_step(batch, phase) -> {"loss": tensor to minimise with optimizer ``phase``, **logs}``,
  and ``after_step(phase)`` once that optimizer has stepped;
* ``validation_step(batch) -> {"loss": ..., **logs}`` (the number early stopping watches);
* ``metrics_batch(x, y) -> {name: per-example tensor}`` for evaluation;
* generative models add ``sample(n, y=None)``.

:class:`Generator` holds the decoder side of that surface (``decode``, ``sample``, ``num_classes``);
:class:`Autoencoder` extends it with ``encode`` and ``reconstruct``. The GAN is a ``Generator``.

Batches are ``(x, y)`` with ``y`` a tensor of integer labels or ``None``; models that do not use
labels ignore them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from .blocks import init_weights
from .common import Activation, BaseConfig

__all__ = ["Activation", "Autoencoder", "BaseConfig", "Batch", "Generator", "bce_per_value", "check_labels",
           "gaussian_nll", "make_optimizer", "per_example", "sample_labels"]

Batch = tuple[torch.Tensor, "torch.Tensor | None"]


def make_optimizer(params, cfg: BaseConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer``, with PyTorch's fastest update kernels for the device.

    Adam, AdamW and SGD get the *fused* kernels on CPU and CUDA: one pass over each parameter, its
    gradient and its state per step, where the *foreach* path runs one vectorised kernel per
    operation of the update (Adam: about ten) and the plain loop one per operation and parameter.
    The update rule is the same; the results differ in the last bits of float32 at most (measured on
    the VAE and AE presets: benchmarks/README.md). RMSprop has no fused kernel and uses foreach.
    Build it after the model is on its device (the trainer does)."""
    lr = cfg.lr if lr is None else lr
    params = [p for p in params if p.requires_grad]
    kernel = {"fused": True} if params and all(p.device.type in ("cpu", "cuda") for p in params) else {"foreach": True}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay, **kernel)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay, **kernel)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **kernel)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                   foreach=True)
    raise ConfigError(f"config key 'optimizer': unknown optimizer {cfg.optimizer!r}")


def check_labels(y: torch.Tensor | None, num_classes: int, *, missing: str, allow_unknown: bool = False,
                 unknown_hint: str = "") -> torch.Tensor:
    """Labels ``y`` of a conditional model, checked rather than trusted: class indices in
    [0, ``num_classes``), or -1 (unknown) where ``allow_unknown``. ``missing`` is the error for y=None;
    ``unknown_hint`` is added when -1 appears where it is not allowed. One host sync (the range)."""
    if y is None:
        raise DataError(missing)
    if y.numel():
        lo, hi = (int(v) for v in torch.aminmax(y))
        if lo < (-1 if allow_unknown else 0) or hi >= num_classes:
            extra = " or -1 (unknown)" if allow_unknown else ""
            hint = unknown_hint if lo == -1 and not allow_unknown else ""
            raise DataError(f"labels must be in [0, {num_classes}){extra}; got values in [{lo}, {hi}]{hint}")
    return y


def sample_labels(n: int, y: torch.Tensor | int, device: torch.device) -> torch.Tensor:
    """The labels of ``sample(n, y)`` as a (n,) long tensor: y is one label per sample, or one for all."""
    y = torch.as_tensor(y, dtype=torch.long, device=device)
    if y.ndim == 0:
        y = y.expand(n)
    if y.shape != (n,):
        raise DataError(f"sample(n={n}, y): expected {n} labels, got shape {tuple(y.shape)}")
    return y


# Below this logit, log sigmoid(l) = l - log(1 + e^l) equals l to float32 precision (e^-80 ~ 2e-35), and
# sigmoid(l) would leave float32's normal range; see _BCEWithLogits.
_LOGIT_FLOOR = -80.0


class _BCEWithLogits(torch.autograd.Function):
    """Per-value BCE from logits, -[x log p + (1 - x) log(1 - p)] with p = sigmoid(l), in one pass of
    transcendental functions each way: the CPU path of :func:`bce_per_value`.

    With log(1 - p) = log p - l,  BCE = (1 - x) l - log p;  and for l below the floor c = -80,
    log p = l to float32 precision, so with l_c = max(l, c):  log p = log sigmoid(l_c) + (l - l_c), and

        BCE = l_c - x l - log sigmoid(l_c),        dBCE/dl = p - x,   dBCE/dx = -l.

    Forward: one sigmoid and one log; p is kept for the backward pass, which is then a subtraction.
    PyTorch's own kernel computes log sigmoid (an exp and a log1p with a buffer) forward and the
    sigmoid again backward: on a 2-core AVX2 CPU, 256 x 784 values, its forward alone took ~0.65-0.8 ms,
    a whole 784-32-784 training step (both matrix products each way, Adam) ~2.7 ms, and this function
    saved 7-13% of that step's CPU time. Above l ~ 17, p rounds to 1 in float32 and the loss of a
    pixel with x = 1 comes out 0 instead of e^-l < 4e-8: below float32's resolution of any sum it
    joins. Once differentiable (no second derivatives through the loss; none of hourglass' models
    takes any)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        lc = logits.clamp_min(_LOGIT_FLOOR)
        p = torch.sigmoid(lc)
        ctx.save_for_backward(p, x, logits)
        return torch.addcmul(lc, x, logits, value=-1.0).sub_(p.log())

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        p, x, logits = ctx.saved_tensors
        d_logits = (p - x).mul_(grad) if ctx.needs_input_grad[0] else None
        d_x = -(logits * grad) if ctx.needs_input_grad[1] else None
        return d_logits, d_x


def bce_per_value(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-[x log p + (1 - x) log(1 - p)], p = sigmoid(logits), computed stably from the logits, in
    float32 or wider (logits from bf16/fp16 matrix products are widened first, as autocast does for
    PyTorch's own loss). On CPU :class:`_BCEWithLogits` computes it; on other devices, and inside
    ``torch.compile`` (which fuses the elementwise work itself), PyTorch's kernel does."""
    if logits.device.type != "cpu" or torch.compiler.is_compiling():
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    dtype = torch.promote_types(torch.promote_types(logits.dtype, x.dtype), torch.float32)
    return _BCEWithLogits.apply(logits.to(dtype), x.to(dtype))


def per_example(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce ``(N, ...)`` per-value losses to ``(N,)`` by sum or mean over everything but N."""
    flat = values.reshape(values.shape[0], -1)
    # The mean as sum / n: the same float32 values as flat.mean(1) (which divides its sum), but its
    # backward pass divides the (N,) gradient and broadcasts it, where mean's divides a full (N, D) one.
    return flat.sum(1) if reduction == "sum" else flat.sum(1) / flat.shape[1]


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, std: float) -> torch.Tensor:
    """Per-example -log N(x; mean, std^2 I) = sum 0.5((x - mean)/std)^2 + log(std sqrt(2 pi))."""
    d = mean[0].numel()
    sq = ((x - mean) ** 2).reshape(x.shape[0], -1).sum(1)
    return 0.5 * sq / std**2 + d * (math.log(std) + 0.5 * math.log(2 * math.pi))


class Generator(nn.Module):
    """Base of every model: a decoder from codes to data, trained by the generic trainer.

    The surface every model shares: ``decode(z, y=None)``, ``sample(n, y=None)`` (generative models),
    ``num_classes`` (the labels a model takes, or None), ``configure_optimizers``, ``training_step``,
    ``validation_step`` and ``metrics_batch``. :class:`Autoencoder` adds an encoder. A pure generator
    (the GAN) is a ``Generator`` and nothing more: code that needs ``encode`` asks
    ``isinstance(model, Autoencoder)``.
    """

    name: ClassVar[str] = "?"
    config_cls: ClassVar[type] = BaseConfig
    generative: ClassVar[bool] = True  # has sample(n)
    conditional: ClassVar[bool] = False  # uses labels y in encode/decode/sample
    summary: ClassVar[str] = ""  # one line for `hourglass list`
    # Figures that show a variant's point: file stem -> caption. Every run draws them as STEM.png
    # from figure_data() and report.html shows them with these captions.
    figure_captions: ClassVar[dict[str, str]] = {}

    def __init__(self, config: BaseConfig):
        super().__init__()
        if not isinstance(config, self.config_cls):
            raise TypeError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(config).__name__}")
        if not config.input_shape:
            raise ConfigError("config key 'input_shape' is required: the shape of one example, e.g. (784,) "
                              "or (1, 28, 28)")
        config.validate()
        self.config = config
        # Fraction of training done, in epochs (a float); the trainer sets it before each step.
        # Schedules (KL warm-up, cyclical annealing) read it; it is 0 before training.
        self.progress = 0.0

    # -- surface ------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def num_classes(self) -> int | None:
        """How many classes ``sample(n, y)`` and (for conditional models) ``encode``/``decode`` take
        labels from; None for a model that takes no labels."""
        return None

    @property
    def data_range(self) -> tuple[float, float] | None:
        """(0, 1) for a Bernoulli (bce) model, whose data are probabilities; None for real-valued data."""
        return (0.0, 1.0) if self.config.recon_loss == "bce" else None

    @property
    def accepts_unknown_labels(self) -> bool:
        """Whether training takes labels with some unknown (-1): semi-supervised models say True."""
        return False

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's raw output: logits (bce) or the mean (mse)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.output(self.decode_raw(z, y))

    def sample(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError(f"model {self.name!r} is not generative: it has no sample()")

    def describe_code(self) -> str:
        """What ``decode`` takes, in words (an export of a model without an encoder says it)."""
        text = f"z of {self.latent_dim} values"
        return f"{text} and class indices y in 0..{self.num_classes - 1}" if self.conditional else text

    def figure_data(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, tuple[str, Any]]:
        """Data of the figures named in ``figure_captions``, computed on test examples ``x``:
        stem -> ``("rows", [(title, tensor), ...])`` (equally long rows of examples, drawn as image
        rows or table rows) or ``("histogram", tensor)`` (the values to histogram)."""
        return {}

    # -- training -------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": make_optimizer(self.parameters(), self.config)}

    def on_fit_start(self, epochs: int) -> None:
        """Called by the trainer before training with the total number of epochs (schedules check it)."""

    def active_phases(self, epoch: int) -> list[str] | None:
        """Which optimizers train in ``epoch`` (``None``: all of them). Greedy schedules override it."""
        return None

    def training_step(self, batch: Batch, phase: str = "model") -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def after_step(self, phase: str) -> None:
        """Called by the trainer right after optimizer ``phase`` has stepped (the GAN updates the moving
        average of its generator's weights here)."""

    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-example evaluation numbers ``{name: (N,) tensor}`` on data ``x``."""
        return {}

    # -- helpers --------------------------------------------------------------------------------
    def output(self, raw: torch.Tensor) -> torch.Tensor:
        """Map decoder output to data space: sigmoid for bce, identity for mse."""
        return torch.sigmoid(raw) if self.config.recon_loss == "bce" else raw

    def _init(self, scheme: str | None = None) -> None:
        init_weights(self, scheme or self.config.init)


class Autoencoder(Generator):
    """A generator with an encoder: ``encode(x, y=None) -> z`` and ``reconstruct``. Not every
    autoencoder can sample (``generative``: the VAE, CVAE and AAE can; the plain AE cannot)."""

    generative: ClassVar[bool] = False

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, y), y)

    @torch.no_grad()
    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y = batch
        loss = self.recon_loss(self.decode_raw(self.encode(x, y), y), x).mean()
        return {"loss": loss}

    def recon_loss(self, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-example reconstruction loss ``(N,)`` from the decoder's raw output."""
        if self.config.recon_loss == "bce":
            values = bce_per_value(raw, x)
        else:
            values = (raw - x) ** 2
        return per_example(values, self.config.reduction)

    @property
    def anomaly_score_name(self) -> str:
        """What :meth:`anomaly_score` measures (``recon_bce`` or ``recon_mse``; VAEs: ``neg_elbo``)."""
        return "recon_bce" if self.config.recon_loss == "bce" else "recon_mse"

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Per-example anomaly score ``(N,)``, higher for examples the model explains worse: the
        reconstruction error in the model's own likelihood, mean per value (BCE for ``recon_loss="bce"``,
        squared error for ``"mse"``; the ``recon_bce`` / ``recon_mse`` of :meth:`metrics_batch`).
        Deterministic: an example's score does not depend on the batch it is scored in."""
        raw = self.decode_raw(self.encode(x, y), y)
        if self.config.recon_loss == "bce":
            return per_example(bce_per_value(raw, x), "mean")
        return per_example((self.output(raw) - x) ** 2, "mean")

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-example evaluation numbers: mean per-value BCE (data in [0, 1]) and MSE."""
        raw = self.decode_raw(self.encode(x, y), y)
        out = {"recon_mse": per_example((self.output(raw) - x) ** 2, "mean")}
        if self.config.recon_loss == "bce":
            out["recon_bce"] = per_example(bce_per_value(raw, x), "mean")
        else:
            p = self.output(raw).clamp(1e-7, 1 - 1e-7)
            out["recon_bce"] = per_example(F.binary_cross_entropy(p, x.clamp(0, 1), reduction="none"), "mean")
        return out


@torch.no_grad()
def sample_grid(model, n: int) -> tuple[np.ndarray, int]:
    """About ``n`` samples of a generative model and the row length of their grid: for a conditional
    model ``n // K`` of each class, a row per class; otherwise ``n`` samples in rows of 8."""
    ys, nrow = None, 8
    if model.conditional:
        k = model.num_classes
        nrow = max(1, n // k)
        ys = torch.arange(k, device=model.device).repeat_interleave(nrow)
        n = len(ys)
    return model.sample(n, ys).cpu().numpy(), nrow
