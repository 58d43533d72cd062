"""The conditional VAE, with optional semi-supervised training (Kingma, Rezende, Mohamed & Welling 2014,
"Semi-Supervised Learning with Deep Generative Models", model M2; Sohn et al. 2015 for the CVAE).

The label y (one-hot) is fed to both networks, q(z|x, y) and p(x|z, y), and the bound is the VAE's
with everything conditioned on y:

    L(x, y) = -ELBO(x, y) = -E_q log p(x|z, y) + KL(q(z|x, y) || N(0, I))       (a loss, >= -log p(x|y))

so ``sample(n, y)`` draws images of class y: z ~ N(0, I), x = g(z, y).

Semi-supervised (``semi_supervised=True``): labels may be unknown, given as -1. A classifier
q(y|x) (an MLP, or a small conv net for images) stands in for them. For an unlabelled x the label is
summed out under q:

    U(x) = sum_y q(y|x) L(x, y) - H(q(y|x)),      H(q) = -sum_y q(y|x) log q(y|x)

and for a labelled (x, y) the classifier also learns directly:  L(x, y) + alpha * (-log q(y|x)).
Kingma et al. write J^alpha = sum_labelled L + sum_unlabelled U + alpha E_labelled[-log q(y|x)]
with alpha = 0.1 N (N: the data-set size); dividing by N gives the per-example form used here,

    loss = mean over the batch of (L or U)  +  alpha' * mean over its labelled x of (-log q(y|x)),

with ``alpha`` (alpha') = 0.1 equivalent to the paper's choice. The default is 10: with 0.1 the
classifier learns far more slowly (MNIST sample, 1,000 labels, 10 epochs: test accuracy 0.59 against
0.91 with 10; digits, 100 labels, 30 epochs: 0.80 against 0.90). The constant log p(y) = -log K of a
uniform label prior is left out of both bounds. ``classify(x)`` returns argmax_y q(y|x), and
evaluation reports the classifier's accuracy (``classifier_accuracy``) on labelled examples.

Kingma et al. train on minibatches that each hold labelled *and* unlabelled examples; with 100 labels
among 8,000 images a shuffled batch of 100 holds about one labelled example, so the classifier would
see each label about once an epoch. ``labelled_replay`` (r) restores the paper's mix: the model keeps
the labelled examples it has been shown (at most ``MAX_REPLAY``) and adds to every training step the
labelled terms of r of them drawn at random, mean L(x, y) + alpha' * mean(-log q(y|x)). For images
the classifier is a small conv net (``classifier_architecture="auto"``), which learns far more from
a hundred labels than an MLP.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import option
from ..errors import ConfigError
from ..registry import register_model, register_preset
from .base import Batch, check_labels, sample_labels
from .blocks import Encoder, init_weights
from .vae import VAE, VAEConfig


@dataclass
class CVAEConfig(VAEConfig):
    num_classes: int = option(0, "number of classes K (set from the data's labels)")
    semi_supervised: bool = option(False, "labels may be unknown (-1): a classifier q(y|x) sums them out (M2)")
    classifier_hidden: tuple[int, ...] = option((256,), "hidden widths of the classifier q(y|x) (MLP data)")
    classifier_architecture: Literal["auto", "mlp", "conv"] = option(
        "auto", "the classifier q(y|x): an MLP, or a conv net (conv_channels) for images; auto: conv for images")
    labelled_replay: int = option(
        64, "semi-supervised: labelled examples replayed from memory in every training step (0: off)")
    alpha: float = option(
        10.0, "weight of the mean -log q(y|x) of labelled examples beside the mean bound (0.1: Kingma's 0.1 N)"
    )

    def validate(self) -> None:
        super().validate()
        if self.num_classes < 2:
            raise ConfigError(
                f"config key 'num_classes': a conditional model needs >= 2 classes, got {self.num_classes}"
            )
        if any(h < 1 for h in self.classifier_hidden):
            raise ConfigError(f"config key 'classifier_hidden': widths must be >= 1, got {self.classifier_hidden}")
        if self.alpha < 0:
            raise ConfigError(f"config key 'alpha': must be >= 0, got {self.alpha}")
        if self.labelled_replay < 0:
            raise ConfigError(f"config key 'labelled_replay': must be >= 0, got {self.labelled_replay}")
        if self.classifier_architecture == "conv" and len(self.input_shape) != 3:
            raise ConfigError("config key 'classifier_architecture': 'conv' needs images (C, H, W), got "
                              f"input_shape {self.input_shape}")

    @property
    def classifier_is_conv(self) -> bool:
        if self.classifier_architecture == "auto":
            return len(self.input_shape) == 3
        return self.classifier_architecture == "conv"


@register_model("cvae")
class CVAE(VAE):
    """Conditional VAE: the one-hot label conditions encoder and decoder; M2 semi-supervised option."""

    config_cls = CVAEConfig
    conditional = True
    summary = "conditional VAE: label to encoder and decoder, sample(n, y) by class; semi-supervised M2 option"

    def __init__(self, config: CVAEConfig):
        super().__init__(config)  # VAE.__init__ widens both networks by label_dim
        if config.semi_supervised:
            if config.classifier_is_conv:
                cls_cfg = dataclasses.replace(config, architecture="conv", conv_code="dense",
                                              conv_downsample="stride")
            else:
                cls_cfg = dataclasses.replace(config, architecture="mlp", hidden=config.classifier_hidden)
            self.classifier = Encoder(cls_cfg, config.num_classes)
            init_weights(self.classifier, config.init)
        # Labelled examples seen in training (semi-supervised replay); not saved with the weights: a
        # resumed run collects them again from its first epoch's batches.
        self._replay_x: torch.Tensor | None = None
        self._replay_y: torch.Tensor | None = None
        self._replay_keys: set[int] = set()

    @property
    def label_dim(self) -> int:  # type: ignore[override]
        return self.config.num_classes

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    # -- labels ----------------------------------------------------------------------------------------
    @property
    def accepts_unknown_labels(self) -> bool:
        return self.config.semi_supervised

    def _check(self, y: torch.Tensor | None, allow_unknown: bool = False) -> torch.Tensor:
        hint = "" if self.config.semi_supervised else "; unknown labels (-1) need semi_supervised=True"
        return check_labels(y, self.label_dim, missing="cvae is conditional: pass labels y (class indices)",
                            allow_unknown=allow_unknown, unknown_hint=hint)

    def condition(self, y: torch.Tensor | None) -> torch.Tensor:
        return F.one_hot(self._check(y).long(), self.label_dim).float()

    def fill_labels(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """y with unknown labels (-1, or y=None) replaced by the classifier's guess (semi-supervised only)."""
        if not self.config.semi_supervised:
            return self._check(y)
        if y is None:
            return self.classify(x)
        y = self._check(y, allow_unknown=True)
        unknown = y < 0
        return torch.where(unknown, self.classify(x), y) if unknown.any() else y

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return super().encode(x, self.fill_labels(x, y))

    @torch.no_grad()
    def code_posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.posterior(x, self.fill_labels(x, y))

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = self.fill_labels(x, y)
        return self.decode(self.encode(x, y), y)

    def anomaly_score(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return super().anomaly_score(x, self.fill_labels(x, y))

    def sample(self, n: int, y: torch.Tensor | int | None = None) -> torch.Tensor:
        """n images of class y (an int, or one label per sample); y=None draws classes from the uniform p(y)."""
        if y is None:
            y = torch.randint(0, self.label_dim, (n,), device=self.device)
        return super().sample(n, sample_labels(n, y, self.device))

    # -- the classifier q(y|x) ---------------------------------------------------------------------------
    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        if not self.config.semi_supervised:
            raise ConfigError("this cvae has no classifier q(y|x); create it with semi_supervised=True")
        return self.classifier(x)

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """argmax_y q(y|x): predicted class indices (N,)."""
        return self.class_logits(x).argmax(1)

    # -- labelled replay -------------------------------------------------------------------------------------
    MAX_REPLAY = 10_000

    def _remember(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Keep labelled examples not seen before (identified by a hash of their values)."""
        flat = x.detach().reshape(len(x), -1)
        keys = [hash(row.cpu().numpy().tobytes()) for row in flat]
        new = [i for i, k in enumerate(keys) if k not in self._replay_keys]
        if not new or len(self._replay_keys) >= self.MAX_REPLAY:
            return
        new = new[: self.MAX_REPLAY - len(self._replay_keys)]
        self._replay_keys.update(keys[i] for i in new)
        idx = torch.as_tensor(new, device=x.device)
        xs, ys = x.detach()[idx], y.detach()[idx]
        self._replay_x = xs if self._replay_x is None else torch.cat([self._replay_x, xs])
        self._replay_y = ys if self._replay_y is None else torch.cat([self._replay_y, ys])

    def _replayed(self) -> dict[str, torch.Tensor]:
        """The labelled terms of ``labelled_replay`` remembered examples: mean L(x, y) + alpha * mean CE."""
        n = len(self._replay_y)
        idx = torch.randint(0, n, (min(self.config.labelled_replay, n),), device=self._replay_y.device)
        x, y = self._replay_x[idx], self._replay_y[idx]
        recon, kl = self.elbo_terms(x, y, charged=True)
        ce = F.cross_entropy(self.class_logits(x), y)
        return {"replay": (recon + self.kl_weight() * kl).mean() + self.config.alpha * ce, "replay_ce": ce}

    # -- the bound -----------------------------------------------------------------------------------------
    def bound(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-batch loss terms: L on labelled rows, U on unlabelled ones, alpha * CE on labelled ones."""
        if not self.config.semi_supervised:
            return VAE.training_step(self, (x, self._check(y)))
        n, k = x.shape[0], self.label_dim
        y = torch.full((n,), -1, dtype=torch.long, device=x.device) if y is None else self._check(y, True)
        known = y >= 0
        w = self.kl_weight()
        total = x.new_zeros(())
        out: dict[str, torch.Tensor] = {}
        logits = self.class_logits(x)
        if known.any():
            recon, kl = self.elbo_terms(x[known], y[known], charged=True)
            total = total + (recon + w * kl).sum()
            # alpha * E_labelled[-log q(y|x)]
            ce = F.cross_entropy(logits[known], y[known])
            out["class_ce"] = ce
            out["class_acc"] = (logits[known].argmax(1) == y[known]).float().mean()
        else:
            ce = out["class_ce"] = x.new_zeros(())
        if (~known).any():
            xu = x[~known]
            m = xu.shape[0]
            # L(x, y) for every class: repeat each unlabelled x once per class, (K, m).
            xs = xu.unsqueeze(0).expand(k, *xu.shape).reshape(k * m, *xu.shape[1:])
            ys = torch.arange(k, device=x.device).repeat_interleave(m)
            recon, kl = self.elbo_terms(xs, ys, charged=True)
            per_class = (recon + w * kl).reshape(k, m).t()  # (m, K)
            log_q = F.log_softmax(logits[~known], 1)
            q = log_q.exp()
            # U(x) = sum_y q(y|x) L(x, y) - H(q),  -H = sum_y q log q
            u = (q * per_class).sum(1) + (q * log_q).sum(1)
            total = total + u.sum()
            out["entropy"] = -(q * log_q).sum(1).mean()
        bound = total / n
        return {"loss": bound + self.config.alpha * ce, "bound": bound, **out}

    def training_step(self, batch: Batch, phase: str = "model") -> dict[str, torch.Tensor]:
        x, y = batch
        out = self.bound(x, y)
        if self.config.semi_supervised and self.config.labelled_replay and y is not None:
            known = y >= 0
            if bool(known.any()):
                self._remember(x[known], y[known])
            if self._replay_y is not None:
                extra = self._replayed()
                out["loss"] = out["loss"] + extra["replay"]
                out["replay_ce"] = extra["replay_ce"]
        return out

    @torch.no_grad()
    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y = batch
        out = self.bound(x, y)
        if not self.config.semi_supervised:  # the ELBO itself, whatever the KL weight in training
            out["loss"] = out["recon"] + out["kl"]
        return out

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        filled = self.fill_labels(x, y)
        out = super().metrics_batch(x, filled)
        if self.config.semi_supervised and y is not None and bool((y >= 0).all()):
            out["classifier_accuracy"] = (self.classify(x) == y).float()  # q(y|x)'s test accuracy
        return out


register_preset(
    "cvae-mnist",
    "cvae",
    "class-conditional VAE for 28x28 digits (MLP 784-512-256-(4)): samples of the class asked for",
    train={"epochs": 30, "batch_size": 100},
    num_classes=10,  # MNIST's; training sets it from the data's labels
    hidden=(512, 256),
    latent_dim=4,  # a small code leaves the class to the label, so each row of samples is its class
    kl_warmup_epochs=2.0,
)

register_preset(
    "m2-mnist",
    "cvae",
    "semi-supervised M2 for 28x28 digits (with --keep-labels): conv classifier q(y|x), labelled replay",
    train={"epochs": 50, "batch_size": 100},
    semi_supervised=True,
    num_classes=10,  # MNIST's; training sets it from the data's labels
    hidden=(512, 256),
    latent_dim=8,
    kl_warmup_epochs=2.0,
)
