"""The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2015, "Adversarial Autoencoders").

An autoencoder whose code distribution q(z) = E_x q(z|x) is pushed onto a chosen prior p(z) by a GAN
played in code space: the encoder is the generator, and a discriminator D(z) learns to tell samples
of p(z) (label 1) from codes of data (label 0). Any prior that can be sampled works
(``hourglass.priors``: gaussian, mixture, swiss_roll, uniform), and ``sample(n)`` is then simply

    z ~ p(z),   x = g(z).

Each batch trains in three phases, each with its own optimizer, in this order:

  1. "recon": encoder + decoder minimise the reconstruction loss  L_rec = -log p(x | g(f(x)));
  2. "disc":  the discriminator minimises
              L_D = BCE(D(z'), 1) + BCE(D(f(x)), 0),   z' ~ p(z)
              = -log D(z') - log(1 - D(f(x)));
  3. "gen":   the encoder fools it: L_G = BCE(D(f(x)), 1) = -log D(f(x))
              (the non-saturating form of Goodfellow et al.).

The trainer gives each phase a fresh forward pass, so phase 2 sees the encoder phase 1 has updated.

With labels (``use_labels``) the discriminator also receives the one-hot label, and each prior
sample is drawn from the component (mixture) or segment (swiss roll) of the label it is paired with:
the codes of class k are then pushed into region k of the prior (the paper's Sec. 2.3). Unknown
labels (-1) get an all-zero label vector and a prior sample from the whole prior, as the paper's
extra "unlabelled" input does. Encoder and decoder never see labels, so the model is not
``conditional``; ``sample(n, y)`` draws codes from region y of the prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import option
from ..errors import ConfigError, DataError
from ..priors import create_prior
from ..registry import register_model
from .base import Autoencoder, BaseConfig, Batch, make_optimizer
from .blocks import Decoder, Encoder, activation, mlp


@dataclass
class AAEConfig(BaseConfig):
    prior: Literal["gaussian", "mixture", "swiss_roll", "uniform"] = option(
        "gaussian", "the code prior p(z) the discriminator pushes the codes onto"
    )
    prior_components: int | None = option(None, "mixture components / swiss-roll segments K (None: 10)")
    prior_radius: float | None = option(
        None, "mixture: radius of the circle of means (4); swiss roll: outer radius (4); uniform: half-width (1)"
    )
    prior_std: float | None = option(
        None, "gaussian: std (1); mixture: component std (0.5); swiss roll: noise (0.05)"
    )
    use_labels: bool = option(False, "feed the one-hot label to the discriminator: class k goes to prior region k")
    num_classes: int = option(0, "number of classes for use_labels (set from the data's labels)")
    disc_hidden: tuple[int, ...] = option((256, 256), "discriminator MLP hidden widths")
    disc_lr: float | None = option(None, "learning rate of the discriminator and generator phases (None: lr)")
    adam_beta1: float = option(
        0.5, "Adam's beta1 in the two adversarial phases (0.5 as for GANs; 0.9: Adam's default)"
    )

    def make_prior(self):
        return create_prior(self.prior, self.latent_dim, components=self.prior_components,
                            radius=self.prior_radius, std=self.prior_std)

    def validate(self) -> None:
        super().validate()
        if self.conv_code != "dense":
            raise ConfigError(f"config key 'conv_code': an AAE needs a dense code, got {self.conv_code!r}")
        if not self.disc_hidden or any(h < 1 for h in self.disc_hidden):
            raise ConfigError(f"config key 'disc_hidden': needs positive widths, got {self.disc_hidden}")
        if self.disc_lr is not None and not self.disc_lr > 0:
            raise ConfigError(f"config key 'disc_lr': must be > 0, got {self.disc_lr}")
        if not 0.0 <= self.adam_beta1 < 1.0:
            raise ConfigError(f"config key 'adam_beta1': must be in [0, 1), got {self.adam_beta1}")
        try:
            prior = self.make_prior()
        except ValueError as e:
            raise ConfigError(f"config key 'prior': {e}") from None
        if self.use_labels:
            if not prior.labelled:
                raise ConfigError(
                    f"config key 'use_labels': prior {self.prior!r} has no per-label regions; "
                    "use prior='mixture' or 'swiss_roll'"
                )
            if self.num_classes < 1:
                raise ConfigError(
                    f"config key 'num_classes': use_labels needs num_classes >= 1, got {self.num_classes}"
                )
            if prior.num_components < self.num_classes:
                raise ConfigError(
                    f"config key 'prior_components': {prior.num_components} regions for "
                    f"{self.num_classes} classes; use_labels needs one region per class"
                )


@register_model("aae")
class AAE(Autoencoder):
    """Adversarial autoencoder: reconstruction + a code-space GAN against a prior."""

    config_cls = AAEConfig
    generative = True
    summary = "adversarial autoencoder: reconstruction + a discriminator matching the codes to a prior; sample(n)"

    def __init__(self, config: AAEConfig):
        super().__init__(config)
        self.prior = config.make_prior()
        self.encoder = Encoder(config, config.latent_dim)
        self.code_act = activation(config.code_activation)
        self.decoder = Decoder(config, config.latent_dim)
        self.label_dim = config.num_classes if config.use_labels else 0
        self.discriminator = mlp([config.latent_dim + self.label_dim, *config.disc_hidden, 1], config.activation)
        self._init()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.code_act(self.encoder(x))

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)

    def sample_prior(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """n codes from p(z); with labels y, code i from region y_i (y_i = -1: from the whole prior)."""
        if y is None:
            return self.prior.sample(n, device=self.device)
        y = torch.as_tensor(y, device=self.device).long()
        if y.shape != (n,):
            raise DataError(f"expected {n} labels, got shape {tuple(y.shape)}")
        # Both draws for every row, then a select: no boolean indexing, no host sync per step.
        z_any = self.prior.sample(n, device=self.device)
        z_label = self.prior.sample_for_labels(y.clamp(min=0))
        return torch.where((y >= 0).unsqueeze(1), z_label, z_any)

    def sample(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.decode(self.sample_prior(n, y))

    # -- the three phases ----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        lr = c.disc_lr or c.lr
        opts = {
            "recon": make_optimizer([*self.encoder.parameters(), *self.decoder.parameters()], c),
            "disc": make_optimizer(self.discriminator.parameters(), c, lr=lr),
            "gen": make_optimizer(self.encoder.parameters(), c, lr=lr),
        }
        if c.optimizer in ("adam", "adamw"):
            for name in ("disc", "gen"):
                for group in opts[name].param_groups:
                    group["betas"] = (c.adam_beta1, group["betas"][1])
        return opts

    @property
    def num_classes(self) -> int | None:
        """With ``use_labels``, ``sample(n, y)`` draws from region y of the prior."""
        return self.label_dim or None

    @property
    def accepts_unknown_labels(self) -> bool:
        return bool(self.label_dim)  # an unknown label gives the discriminator a zero one-hot

    def _labels(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """The discriminator's label input: one-hot, all-zero for unknown (-1); None without use_labels."""
        if not self.label_dim:
            return None
        if y is None:
            raise DataError("aae with use_labels=True needs labels y in every batch (use -1 for unknown)")
        lo, hi = (int(v) for v in torch.aminmax(y))  # one host sync: labels are checked, not trusted
        if lo < -1 or hi >= self.label_dim:
            raise DataError(f"labels must be in [0, {self.label_dim}) or -1 (unknown), got values in [{lo}, {hi}]")
        # one-hot by comparison: an unknown label (-1) matches no class and gives the zero vector
        return (y.unsqueeze(1) == torch.arange(self.label_dim, device=y.device)).float()

    def critic(self, z: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        """Discriminator logits D(z [, label]) of shape (N,)."""
        h = z if onehot is None else torch.cat([z, onehot], 1)
        return self.discriminator(h).squeeze(1)

    @torch.no_grad()
    def adversarial_balance(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-example D on prior samples ("real") and on the codes of ``x`` ("fake"), as probabilities
        (the collapse diagnostics read the balance of the code-space game from them)."""
        onehot = self._labels(y) if self.label_dim and y is not None else None
        if self.label_dim and onehot is None:
            onehot = x.new_zeros(len(x), self.label_dim)  # unknown labels: the zero one-hot
        z_prior = self.sample_prior(len(x), y if y is not None and self.label_dim else None)
        return {"d_real": torch.sigmoid(self.critic(z_prior, onehot)),
                "d_fake": torch.sigmoid(self.critic(self.encode(x), onehot))}

    def training_step(self, batch: Batch, phase: str = "recon") -> dict[str, torch.Tensor]:
        x, y = batch
        z = self.encode(x)
        onehot = self._labels(y) if phase != "recon" else None
        if phase == "recon":
            # 1. reconstruction: L_rec = -log p(x | g(f(x)))
            recon = self.recon_loss(self.decode_raw(z), x).mean()
            return {"loss": recon, "recon": recon}
        if phase == "disc":
            # 2. discriminator: L_D = -log D(z') - log(1 - D(f(x))), z' ~ p(z) (region of the label)
            z_prior = self.sample_prior(len(x), y if onehot is not None else None)
            real, fake = self.critic(z_prior, onehot), self.critic(z.detach(), onehot)
            loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
            acc = 0.5 * ((real > 0).float().mean() + (fake < 0).float().mean())
            return {"loss": loss, "disc_acc": acc}
        if phase == "gen":
            # 3. generator (the encoder): L_G = -log D(f(x))
            fake = self.critic(z, onehot)
            loss = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
            return {"loss": loss}
        raise ValueError(f"aae has phases 'recon', 'disc', 'gen'; got phase {phase!r}")

    @torch.no_grad()
    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y = batch
        z = self.encode(x)
        onehot = self._labels(y) if self.label_dim else None
        recon = self.recon_loss(self.decode_raw(z), x).mean()
        fooled = (self.critic(z, onehot) > 0).float().mean()  # codes the discriminator takes for prior samples
        return {"loss": recon, "recon": recon, "codes_pass_as_prior": fooled}

