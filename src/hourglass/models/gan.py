"""The generative adversarial network (Goodfellow et al. 2014, "Generative Adversarial Nets").

A generator G maps noise z ~ N(0, I) (``latent_dim`` values) to data; a discriminator D, returning
a logit, learns to tell real data from G's output. The two play

    min_G max_D  E_x log D(x) + E_z log(1 - D(G(z))).

Each batch trains two phases, each with its own optimizer, in this order:

  "disc": L_D = BCE(D(x), 1 - s) + BCE(D(G(z)), 0)
              = -(1 - s) log D(x) - s log(1 - D(x)) - log(1 - D(G(z)))
          with one-sided label smoothing s (``label_smoothing``, Salimans et al. 2016: only the real
          targets are softened);
  "gen":  gen_loss="non_saturating" (default): L_G = BCE(D(G(z)), 1) = -log D(G(z)), whose gradient
          stays large while D still wins easily (Goodfellow et al. Sec. 3);
          gen_loss="minimax": L_G = -BCE(D(G(z)), 0) = log(1 - D(G(z))), the game's value as written.

All losses are computed from logits (``binary_cross_entropy_with_logits``). Architectures come from
the input shape, as for every model: an MLP, or for images a DCGAN-style pair (Radford et al. 2016)
built from the library's blocks: ``blocks.Decoder`` is the generator (a dense layer to a small
feature map, then conv + 2x upsampling back to the image) and ``blocks.Encoder`` with one output the
discriminator (strided convs, leaky ReLU by default). ``spectral_norm`` divides each discriminator
weight by its largest singular value (Miyato et al. 2018), bounding D's Lipschitz constant.

The generator's output is in data space like any decoder's: a sigmoid for ``recon_loss="bce"``
(data in [0, 1]), the identity for ``"mse"`` (real-valued data). A GAN has no encoder: it is a
:class:`~hourglass.models.base.Generator`, not an ``Autoencoder``, so it has ``decode`` and ``sample``
but no ``encode`` or ``reconstruct``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, option
from ..registry import register_model, register_preset
from .base import Activation, BaseConfig, Batch, Generator, make_optimizer
from .blocks import ACTIVATIONS, Decoder, Encoder


@dataclass
class GANConfig(BaseConfig):
    gen_loss: Literal["non_saturating", "minimax"] = option(
        "non_saturating", "generator loss: -log D(G(z)) (non_saturating) or log(1 - D(G(z))) (minimax)"
    )
    label_smoothing: float = option(
        0.0, "one-sided label smoothing: real targets are 1 - this (0: off; 0.1 typical)"
    )
    spectral_norm: bool = option(False, "spectral normalisation of every discriminator layer")
    batch_norm: bool = option(True, "batch normalisation after each hidden generator layer (DCGAN)")
    disc_activation: Activation = option("leaky_relu", "discriminator hidden activation (leaky ReLU as in DCGAN)")
    disc_lr: float | None = option(None, "discriminator learning rate (None: lr)")
    adam_beta1: float = option(0.5, "Adam's beta1 for both networks (0.5 as in DCGAN; 0.9 is Adam's default)")

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"config key 'label_smoothing': must be in [0, 1), got {self.label_smoothing}")
        if self.disc_lr is not None and not self.disc_lr > 0:
            raise ConfigError(f"config key 'disc_lr': must be > 0, got {self.disc_lr}")
        if not 0.0 <= self.adam_beta1 < 1.0:
            raise ConfigError(f"config key 'adam_beta1': must be in [0, 1), got {self.adam_beta1}")
        if self.conv_code != "dense":
            raise ConfigError(f"config key 'conv_code': a GAN needs conv_code='dense', got {self.conv_code!r}")


_ACTIVATION_TYPES = tuple({type(make()) for make in ACTIVATIONS.values()} - {nn.Identity})


def _batch_normalise(seq: nn.Sequential) -> nn.Sequential:
    """A copy of ``seq`` with BatchNorm between each Linear/Conv2d and the activation after it."""
    layers: list[nn.Module] = []
    children = list(seq)
    for i, child in enumerate(children):
        if isinstance(child, nn.Sequential):
            child = _batch_normalise(child)
        layers.append(child)
        followed_by_act = i + 1 < len(children) and isinstance(children[i + 1], _ACTIVATION_TYPES)
        if followed_by_act and isinstance(child, nn.Linear):
            layers.append(nn.BatchNorm1d(child.out_features))
        elif followed_by_act and isinstance(child, nn.Conv2d):
            layers.append(nn.BatchNorm2d(child.out_channels))
    return nn.Sequential(*layers)


def _spectral_normalise(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            _spectral_normalise(child)


@register_model("gan")
class GAN(Generator):
    """GAN: generator (the library's decoder) vs discriminator (its encoder with one output)."""

    config_cls = GANConfig
    summary = "generative adversarial network: generator vs discriminator, BCE from logits; sample(n), no encoder"

    def __init__(self, config: GANConfig):
        super().__init__(config)
        self.generator = Decoder(config, config.latent_dim)
        if config.batch_norm:
            # Without it the generator's sigmoid outputs drift into saturation (all black on MNIST)
            # while the discriminator wins; DCGAN normalises every hidden generator layer.
            self.generator.net = _batch_normalise(self.generator.net)
        disc_cfg = dataclasses.replace(config, activation=config.disc_activation)
        self.discriminator = Encoder(disc_cfg, 1)
        self._init()
        if config.spectral_norm:
            _spectral_normalise(self.discriminator)

    # -- surface -------------------------------------------------------------------------------------
    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)

    def noise(self, n: int) -> torch.Tensor:
        """z ~ N(0, I), drawn from torch's global generator (seeded by the trainer)."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def sample(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """n draws G(z); batch norm uses its running statistics (so n=1 works, even mid-training)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            with torch.no_grad():
                return self.decode(self.noise(n))
        finally:
            self.generator.train(was_training)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator logits (N,) for data-space inputs x."""
        return self.discriminator(x).squeeze(1)

    # -- the two phases --------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        opts = {"disc": make_optimizer(self.discriminator.parameters(), c, lr=c.disc_lr or c.lr),
                "gen": make_optimizer(self.generator.parameters(), c)}
        if c.optimizer in ("adam", "adamw"):
            for opt in opts.values():
                for group in opt.param_groups:
                    group["betas"] = (c.adam_beta1, group["betas"][1])
        return opts

    def disc_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-batch L_D and the logits on real and fake inputs."""
        with torch.no_grad():  # D's phase: G is fixed, no graph through it
            fake_x = self.decode(self.noise(len(x)))
        real, fake = self.critic(x), self.critic(fake_x)
        target = torch.full_like(real, 1.0 - self.config.label_smoothing)
        # L_D = -(1 - s) log D(x) - s log(1 - D(x)) - log(1 - D(G(z)))
        loss = F.binary_cross_entropy_with_logits(real, target) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake))
        return loss, real, fake

    def gen_loss(self, n: int) -> torch.Tensor:
        fake = self.critic(self.decode(self.noise(n)))
        if self.config.gen_loss == "non_saturating":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # -log D(G(z))
        return -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))  # log(1 - D(G(z)))

    def training_step(self, batch: Batch, phase: str = "disc") -> dict[str, torch.Tensor]:
        x, _ = batch
        if phase == "disc":
            loss, real, fake = self.disc_loss(x)
            return {"loss": loss, "d_real": torch.sigmoid(real).mean(), "d_fake": torch.sigmoid(fake).mean()}
        if phase == "gen":
            return {"loss": self.gen_loss(len(x))}
        raise ValueError(f"gan has phases 'disc', 'gen'; got phase {phase!r}")

    @torch.no_grad()
    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The discriminator's loss on held-out data against fresh fakes (log 4 = 1.386 at equilibrium)."""
        x, _ = batch
        loss, real, fake = self.disc_loss(x)
        return {"loss": loss, "gen": self.gen_loss(len(x)), "d_real": torch.sigmoid(real).mean(),
                "d_fake": torch.sigmoid(fake).mean()}

    @torch.no_grad()
    def adversarial_balance(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-example D(x) on real data and D(G(z)) on as many samples, as probabilities (the collapse
        diagnostics read the balance of the game from them)."""
        return {"d_real": torch.sigmoid(self.critic(x)), "d_fake": torch.sigmoid(self.critic(self.sample(len(x))))}

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-example D(x) on real data (no reconstruction metrics: a GAN has no encoder)."""
        return {"d_real": torch.sigmoid(self.critic(x))}


register_preset(
    "gan-mnist",
    "gan",
    "DCGAN-style pair for 28x28 digits (conv 32-64, 64-D noise, lr 2e-4, label smoothing 0.1)",
    train={"epochs": 25, "batch_size": 64},
    architecture="conv",
    conv_channels=(32, 64),
    latent_dim=64,
    lr=2e-4,
    label_smoothing=0.1,
)
