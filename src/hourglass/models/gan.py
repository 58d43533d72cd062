"""The generative adversarial network (Goodfellow et al. 2014, "Generative Adversarial Nets").

A generator G maps noise z ~ N(0, I) (``latent_dim`` values) to data; a discriminator D, returning
a logit, learns to tell real data from G's output. The two play

    min_G max_D  E_x log D(x) + E_z log(1 - D(G(z))).

Each batch trains two phases, each with its own optimizer, in this order:

  "disc": L_D = BCE(D(x), 1 - s) + BCE(D(G(z)), 0)
              = -(1 - s) log D(x) - s log(1 - D(x)) - log(1 - D(G(z)))
          with one-sided label smoothing s (``label_smoothing``, Salimans et al. 2016, "Improved
          Techniques for Training GANs": only the real targets are softened);
  "gen":  gen_loss="non_saturating" (default): L_G = BCE(D(G(z)), 1) = -log D(G(z)), whose gradient
          stays large while D still wins easily (Goodfellow et al. Sec. 3);
          gen_loss="minimax": L_G = -BCE(D(G(z)), 0) = log(1 - D(G(z))), the game's value as written.

All losses are computed from logits (``binary_cross_entropy_with_logits``).

Architectures come from the input shape, as for every model: MLPs, or for images (``architecture=
"conv"``) the DCGAN pair of Radford, Metz & Chintala 2016 ("Unsupervised Representation Learning with
Deep Convolutional GANs"). The generator is a dense layer to the smallest feature map, then one 4x4
stride-2 transposed convolution per level of ``conv_channels`` (read backwards), each doubling height
and width (cropped to the size of that level, so 7 -> 14 -> 28 and odd sizes come out exact), with
batch normalisation and ReLU between them (``batch_norm``); the last one makes the image's channels.
The discriminator is 4x4 stride-2 convolutions with leaky ReLU (``disc_activation``), batch
normalisation after all but the first (``disc_batch_norm``, as in DCGAN), and a dense layer to the
logit. ``spectral_norm`` divides each discriminator weight by its largest singular value instead
(Miyato et al. 2018, "Spectral Normalization for GANs"), bounding D's Lipschitz constant.
``init="dcgan"`` draws the weights from N(0, 0.02) as DCGAN does; ``adam_beta1`` is DCGAN's 0.5.

Four further tools, off by default:

* ``ema_decay`` b > 0: ``sample`` and ``decode`` use an exponential moving average of the generator's
  weights, G_ema <- b_t G_ema + (1 - b_t) G after every generator step (Yazici et al. 2019, "The
  Unusual Effectiveness of Averaging in GAN Training"), its batch-norm statistics averaged alike
  (``torch.optim.swa_utils.AveragedModel``). b_t = min(b, (1 + t) / (10 + t)) after t updates, the
  warm-up of TensorFlow's ``ExponentialMovingAverage``, so a short run is not averaged with its
  random initial weights. Training (both phases) uses the live generator.
* ``categories`` K > 0: InfoGAN's categorical code (Chen et al. 2016, "InfoGAN: Interpretable
  Representation Learning by Information Maximizing GANs"). G takes z and a one-hot c drawn
  uniformly from K categories; D has K more outputs, Q(c|x), and both phases add
  lambda * CE(Q(c | G(z, c)), c) (``info_weight`` lambda), the negative of the variational lower bound
  on the mutual information I(c; G(z, c)) less H(c). G is pushed to make c recognisable from its
  output, so its latent space falls into K discrete parts: on data made of separate kinds (the ten
  digits) it spends fewer samples between the kinds. No labels are used; ``sample`` draws c uniformly.
* ``conditional``: the auxiliary-classifier GAN (AC-GAN; Odena, Olah & Shlens 2017, "Conditional Image
  Synthesis with Auxiliary Classifier GANs"), which **uses the data's labels**. The same machinery with
  the code replaced by the class: G takes z and a one-hot class y (K = ``num_classes``, set from the
  data's labels), D has K class logits Q(y|x) beside its real/fake logit, and with lambda =
  ``info_weight``

      "disc": L_D + lambda [CE(Q(y|x), y) on real labelled data + CE(Q(y|G(z, y)), y)],
      "gen":  L_G + lambda CE(Q(y|G(z, y)), y),

  the classes of the fakes drawn uniformly. D learns to classify real digits and G to draw digits D
  classifies as the class it was given, so ``sample(n, y)`` draws class y (``y=None``: classes drawn
  uniformly) and the model is ``conditional`` like the CVAE: ``decode(z, y)`` takes the noise and
  the labels. With labels partly hidden (``--keep-labels``; unknown labels are -1) the real term is
  the mean over the labelled rows only (none in a batch: 0); the fakes always have their class. It
  excludes ``categories`` (both would append a one-hot code to z). Without labels in the data,
  training stops with an error naming ``conditional``.
* ``sample_temperature`` T < 1: ``sample`` draws z ~ N(0, T^2 I), the noise of a narrower prior than
  the one G was trained on. Samples near the prior's mode are the ones G draws best, so fewer of them
  come out malformed, for less variety: the "temperature" of Kingma & Dhariwal 2018 (Glow, T = 0.7)
  and a smooth form of the truncation trick of Brock et al. 2019 (BigGAN), which resamples the values
  beyond a threshold instead. Kinds G draws from the prior's tails get rarer: with the ``gan-mnist``
  preset, T = 0.7 raised the share of samples the examples' judge recognises from 76% to 83% in one
  run, but the rarest digit fell from 4.9% to 2.5% of them. Training always draws z ~ N(0, I);
  ``decode`` takes z as given.

The generator's output is in data space like any decoder's: a sigmoid for ``recon_loss="bce"``
(data in [0, 1]), the identity for ``"mse"`` (real-valued data). A GAN has no encoder: it is a
:class:`~hourglass.models.base.Generator`, not an ``Autoencoder``, so it has ``decode`` and ``sample``
but no ``encode`` or ``reconstruct``; ``decode`` takes z followed by the one-hot code when
``categories`` K > 0, and z with labels y (``decode(z, y)``) when ``conditional``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ..config import ConfigError, option
from ..registry import register_model, register_preset
from .base import Activation, BaseConfig, Batch, Generator, check_labels, make_optimizer, sample_labels
from .blocks import ACTIVATIONS, Crop, Decoder, Encoder, Flatten, Unflatten, activation, conv_sizes, image_shape


@dataclass
class GANConfig(BaseConfig):
    latent_dim: int = option(16, "size of the noise z ~ N(0, I) the generator draws (InfoGAN's code comes on top)")
    gen_loss: Literal["non_saturating", "minimax"] = option(
        "non_saturating", "generator loss: -log D(G(z)) (non_saturating) or log(1 - D(G(z))) (minimax)"
    )
    label_smoothing: float = option(
        0.0, "one-sided label smoothing: real targets are 1 - this (0: off; 0.1 typical)"
    )
    spectral_norm: bool = option(False, "spectral normalisation of every discriminator layer")
    batch_norm: bool = option(True, "batch normalisation after each hidden generator layer (DCGAN)")
    disc_batch_norm: bool = option(
        False, "batch normalisation after each discriminator convolution but the first (DCGAN; conv only)")
    disc_activation: Activation = option("leaky_relu", "discriminator hidden activation (leaky ReLU as in DCGAN)")
    disc_lr: float | None = option(None, "discriminator learning rate (None: lr)")
    adam_beta1: float = option(0.5, "Adam's beta1 for both networks (0.5 as in DCGAN; 0.9 is Adam's default)")
    ema_decay: float = option(
        0.0, "sample from a moving average of the generator's weights with this decay (0: off; 0.999 typical)")
    categories: int = option(
        0, "InfoGAN categorical code: the generator also takes one of this many categories, drawn uniformly, "
           "and must make it recognisable (0: off)")
    conditional: bool = option(
        False, "class-conditional GAN (AC-GAN) trained on the data's labels: the generator takes a class, the "
               "discriminator also classifies; sample(n, y) draws class y (needs labelled data)")
    num_classes: int = option(0, "number of classes K for conditional (set from the data's labels)")
    info_weight: float = option(
        1.0, "weight of the categorical code's mutual-information term (InfoGAN: 1), or of the class "
             "cross-entropies when conditional (AC-GAN: 1)")
    sample_temperature: float = option(
        1.0, "samples draw the noise from N(0, T^2 I) with this T; below 1 (the truncation trick): fewer "
             "malformed samples, less variety, rarer kinds rarer still; training always draws from N(0, I)")

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
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"config key 'ema_decay': must be in [0, 1), got {self.ema_decay}")
        if self.categories < 0 or self.categories == 1:
            raise ConfigError(f"config key 'categories': 0 (off) or at least 2, got {self.categories}")
        if self.conditional and self.categories:
            raise ConfigError(f"config keys 'conditional' and 'categories': a conditional GAN takes the class as "
                              f"its code; set categories=0 or conditional=false (got categories={self.categories})")
        if self.conditional and self.num_classes < 2:
            raise ConfigError(f"config key 'conditional': a conditional GAN needs labelled data with >= 2 classes "
                              f"(num_classes, set from the data's labels), got num_classes={self.num_classes}")
        if self.num_classes < 0:
            raise ConfigError(f"config key 'num_classes': must be >= 0, got {self.num_classes}")
        if not self.info_weight >= 0:
            raise ConfigError(f"config key 'info_weight': must be >= 0, got {self.info_weight}")
        if not 0 < self.sample_temperature <= 10:
            raise ConfigError(f"config key 'sample_temperature': must be in (0, 10], got {self.sample_temperature}")
        if self.architecture == "conv":
            if self.conv_downsample != "stride":
                raise ConfigError(f"config key 'conv_downsample': the conv GAN downsamples with stride-2 "
                                  f"convolutions (DCGAN), got {self.conv_downsample!r}")
            if len(self.input_shape) == 3:
                # each 4x4 stride-2 convolution (padding 1) takes h to h // 2 and needs h >= 2
                h = min(self.input_shape[1:])
                for level in range(1, len(self.conv_channels) + 1):
                    if h < 2:
                        raise ConfigError(
                            f"config key 'conv_channels': {len(self.conv_channels)} levels of stride-2 convolutions "
                            f"shrink {self.input_shape[1]}x{self.input_shape[2]} images below 2 pixels at level "
                            f"{level}; use fewer levels")
                    h //= 2


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


class ConvGenerator(nn.Module):
    """DCGAN generator: (N, in_dim) -> (N, C, H, W) raw outputs (see the module docstring)."""

    def __init__(self, cfg: GANConfig, in_dim: int):
        super().__init__()
        c, h, w = image_shape(tuple(cfg.input_shape))
        chans = list(cfg.conv_channels)
        sizes = conv_sizes((h, w), len(chans))  # 28 -> 14 -> 7: the levels, largest first
        fh, fw = sizes[-1]
        norm = cfg.batch_norm
        layers: list[nn.Module] = [nn.Linear(in_dim, chans[-1] * fh * fw)]
        layers += [nn.BatchNorm1d(chans[-1] * fh * fw)] if norm else []
        layers += [activation(cfg.activation), Unflatten((chans[-1], fh, fw))]
        for level in range(len(chans) - 1, -1, -1):
            out = chans[level - 1] if level else c
            # 4x4, stride 2, padding 1: exactly twice the size, then cropped to the level's own size
            layers += [nn.ConvTranspose2d(chans[level], out, 4, stride=2, padding=1), Crop(*sizes[level])]
            if level:
                layers += ([nn.BatchNorm2d(out)] if norm else []) + [activation(cfg.activation)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator: (N, C, H, W) -> (N, out_dim) logits (see the module docstring)."""

    def __init__(self, cfg: GANConfig, out_dim: int):
        super().__init__()
        c, h, w = image_shape(tuple(cfg.input_shape))
        layers: list[nn.Module] = []
        ch_in = c
        for i, ch in enumerate(cfg.conv_channels):  # GANConfig.validate checks every level keeps >= 1 pixel
            layers.append(nn.Conv2d(ch_in, ch, 4, stride=2, padding=1))  # (h + 2 - 4) // 2 + 1 = h // 2
            h, w = h // 2, w // 2
            if i and cfg.disc_batch_norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(activation(cfg.disc_activation))
            ch_in = ch
        self.net = nn.Sequential(*layers, Flatten(), nn.Linear(ch_in * h * w, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _ema_update(decay: float):
    """AveragedModel's ``multi_avg_fn``: ema <- b_t ema + (1 - b_t) current, b_t = min(b, (1 + t) / (10 + t))
    after t updates (integer buffers, batch norm's step count, are copied)."""

    @torch.no_grad()
    def update(ema: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        t = float(updates)
        b = min(decay, (1.0 + t) / (10.0 + t))
        if torch.is_floating_point(ema[0]):
            torch._foreach_lerp_(ema, current, 1.0 - b)
        else:
            torch._foreach_copy_(ema, current)

    return update


@register_model("gan")
class GAN(Generator):
    """GAN: generator vs discriminator (MLPs, or the DCGAN pair for images); class-conditional (AC-GAN)
    with ``conditional``."""

    config_cls = GANConfig
    summary = ("generative adversarial network: generator vs discriminator, BCE from logits; InfoGAN code or "
               "class-conditional (AC-GAN, from labels); sample(n[, y]), no encoder")

    def __init__(self, config: GANConfig):
        super().__init__(config)
        # Per instance: a GAN takes labels when configured to (the class attribute says False).
        self.conditional = config.conditional
        k = self.code_dim
        conv = config.architecture == "conv"
        if conv:
            self.generator: nn.Module = ConvGenerator(config, config.latent_dim + k)
        else:
            self.generator = Decoder(config, config.latent_dim + k)
            if config.batch_norm:
                # Without it the generator's sigmoid outputs drift into saturation (all black on MNIST)
                # while the discriminator wins; DCGAN normalises every hidden generator layer.
                self.generator.net = _batch_normalise(self.generator.net)
        if conv:
            self.discriminator: nn.Module = ConvDiscriminator(config, 1 + k)
        else:
            self.discriminator = Encoder(dataclasses.replace(config, activation=config.disc_activation), 1 + k)
        self._init()
        if config.spectral_norm:
            _spectral_normalise(self.discriminator)
        self.generator_ema: AveragedModel | None = None
        if config.ema_decay > 0:
            self.generator_ema = AveragedModel(self.generator, multi_avg_fn=_ema_update(config.ema_decay),
                                               use_buffers=True)
            self.generator_ema.requires_grad_(False)

    # -- surface -------------------------------------------------------------------------------------
    @property
    def code_dim(self) -> int:
        """Width of the one-hot code G takes after the noise: InfoGAN's categories, the classes when
        conditional, or 0."""
        c = self.config
        return c.num_classes if c.conditional else c.categories

    @property
    def latent_dim(self) -> int:
        """What ``decode`` takes as z: ``config.latent_dim`` noise values, then InfoGAN's one-hot code
        (the class of a conditional GAN comes separately, as labels y)."""
        return self.config.latent_dim + self.config.categories

    @property
    def num_classes(self) -> int | None:
        return self.config.num_classes if self.conditional else None

    @property
    def accepts_unknown_labels(self) -> bool:
        return self.conditional  # unknown labels (-1) leave their rows out of the real class term

    def _check(self, y: torch.Tensor | None, allow_unknown: bool = False) -> torch.Tensor:
        """Labels y, checked: class indices in [0, K) (or -1, unknown, where allowed)."""
        return check_labels(y, self.num_classes, missing="gan with conditional=true needs labels y (class indices)",
                            allow_unknown=allow_unknown).long()

    @property
    def sampler(self) -> nn.Module:
        """The generator ``decode`` and ``sample`` use: the moving average when ``ema_decay`` > 0."""
        return self.generator_ema.module if self.generator_ema is not None else self.generator

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional:
            z = torch.cat([z, F.one_hot(self._check(y), self.code_dim).to(z.dtype)], 1)
        return self.sampler(z)

    def describe_code(self) -> str:
        c = self.config
        text = f"noise z ~ N(0, I) of {c.latent_dim} values"
        if c.categories:
            return f"{text}, then InfoGAN's one-hot code of {c.categories} categories"
        return f"{text} and class indices y in 0..{c.num_classes - 1}" if self.conditional else text

    def noise(self, n: int, temperature: float = 1.0, y: torch.Tensor | None = None) -> torch.Tensor:
        """G's input (z, one-hot c): z ~ N(0, T^2 I) (T = ``temperature``; training draws T = 1, the
        prior) and c the code or class, uniform over the K of them unless given as labels ``y``; from
        torch's global generator (seeded by the trainer)."""
        z = torch.randn(n, self.config.latent_dim, device=self.device) * temperature
        k = self.code_dim
        if not k:
            return z
        c = torch.randint(0, k, (n,), device=self.device) if y is None else y
        return torch.cat([z, F.one_hot(c, k).to(z.dtype)], 1)

    def sample(self, n: int, y: torch.Tensor | int | None = None) -> torch.Tensor:
        """n draws G(z [, y]), z ~ N(0, T^2 I) with T = ``sample_temperature``; batch norm uses its running
        statistics (so n=1 works, even mid-training). A conditional GAN draws class y (an int, or one
        label per sample; None: classes drawn uniformly); otherwise y is ignored."""
        if self.conditional and y is not None:
            y = self._check(sample_labels(n, y, self.device))
        else:
            y = None
        g = self.sampler
        was_training = g.training
        g.eval()
        try:
            with torch.no_grad():
                return self.output(g(self.noise(n, self.config.sample_temperature, y)))
        finally:
            g.train(was_training)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator logits (N,) for data-space inputs x."""
        return self.discriminator(x)[:, 0]

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

    def after_step(self, phase: str) -> None:
        if phase == "gen" and self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)

    def _fake(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples of the live generator (in training mode) and the noise they came from."""
        z = self.noise(n)
        return self.output(self.generator(z)), z

    def _code_ce(self, out: torch.Tensor, z: torch.Tensor) -> torch.Tensor | None:
        """InfoGAN / AC-GAN: CE(Q(c|x), c) from D's outputs ``out`` on G(z, c); None without a code."""
        if not self.code_dim:
            return None
        return F.cross_entropy(out[:, 1:], z[:, self.config.latent_dim:].argmax(1))

    @staticmethod
    def _real_class_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """AC-GAN: CE(Q(y|x), y) from D's outputs ``out`` on real x, the mean over the rows whose label
        is known (y >= 0); 0 when none is. No host sync: the count is a tensor."""
        known = y >= 0
        per_row = F.cross_entropy(out[:, 1:], y.clamp(min=0), reduction="none")
        return (per_row * known).sum() / known.sum().clamp(min=1)

    def disc_loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[
            torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Per-batch L_D (with the code's or the classes' terms), the logits on real and fake inputs, the
        code's CE on the fakes, and (conditional, with labels ``y``) the class CE on the real data."""
        with torch.no_grad():  # D's phase: G is fixed, no graph through it
            fake_x, z = self._fake(len(x))
        out_real, out = self.discriminator(x), self.discriminator(fake_x)
        real, fake = out_real[:, 0], out[:, 0]
        target = torch.full_like(real, 1.0 - self.config.label_smoothing)
        # L_D = -(1 - s) log D(x) - s log(1 - D(x)) - log(1 - D(G(z)))  [+ lambda CE(Q(c|G(z, c)), c)]
        loss = F.binary_cross_entropy_with_logits(real, target) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake))
        ce = self._code_ce(out, z)
        if ce is not None:
            loss = loss + self.config.info_weight * ce
        real_ce = None
        if self.conditional and y is not None:  # AC-GAN: [+ lambda CE(Q(y|x), y)] on labelled real data
            real_ce = self._real_class_ce(out_real, y)
            loss = loss + self.config.info_weight * real_ce
        return loss, real, fake, ce, real_ce

    def gen_loss(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """L_G (with the code's term) and the code's CE."""
        fake_x, z = self._fake(n)
        out = self.discriminator(fake_x)
        fake = out[:, 0]
        if self.config.gen_loss == "non_saturating":
            loss = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # -log D(G(z))
        else:
            loss = -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))  # log(1 - D(G(z)))
        ce = self._code_ce(out, z)
        if ce is not None:
            loss = loss + self.config.info_weight * ce
        return loss, ce

    def training_step(self, batch: Batch, phase: str = "disc") -> dict[str, torch.Tensor]:
        x, y = batch
        real_ce = None
        if phase == "disc":
            labels = self._check(y, allow_unknown=True) if self.conditional else None
            loss, real, fake, ce, real_ce = self.disc_loss(x, labels)
            out = {"loss": loss, "d_real": torch.sigmoid(real).mean(), "d_fake": torch.sigmoid(fake).mean()}
        elif phase == "gen":
            loss, ce = self.gen_loss(len(x))
            out = {"loss": loss}
        else:
            raise ValueError(f"gan has phases 'disc', 'gen'; got phase {phase!r}")
        if ce is not None:
            # log K when the code (class) cannot be read back from G's output, 0 at best
            out["class_ce" if self.conditional else "code_ce"] = ce.detach()
        if real_ce is not None:
            out["real_class_ce"] = real_ce.detach()  # D's classifier on real data
        return out

    @torch.no_grad()
    def validation_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The discriminator's loss on held-out data against fresh fakes (its real/fake part is log 4 =
        1.386 at equilibrium; a conditional GAN adds the class terms)."""
        x, y = batch
        labels = self._check(y, allow_unknown=True) if (self.conditional and y is not None) else None
        loss, real, fake, _, _ = self.disc_loss(x, labels)
        return {"loss": loss, "gen": self.gen_loss(len(x))[0], "d_real": torch.sigmoid(real).mean(),
                "d_fake": torch.sigmoid(fake).mean()}

    @torch.no_grad()
    def adversarial_balance(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-example D(x) on real data and D(G(z)) on as many samples, as probabilities (the collapse
        diagnostics read the balance of the game from them)."""
        return {"d_real": torch.sigmoid(self.critic(x)), "d_fake": torch.sigmoid(self.critic(self.sample(len(x))))}

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-example D(x) on real data (no reconstruction metrics: a GAN has no encoder); a conditional
        GAN with every label known adds ``disc_class_accuracy``, whether D's classifier Q(y|x) names it."""
        out = self.discriminator(x)
        values = {"d_real": torch.sigmoid(out[:, 0])}
        if self.conditional and y is not None and bool((y >= 0).all()):
            values["disc_class_accuracy"] = (out[:, 1:].argmax(1) == y).float()
        return values


# The DCGAN pair both MNIST presets share: 45 epochs of batches of 64 fit 600 CPU seconds (2 cores, 5 minutes).
_DCGAN_MNIST = dict(train={"epochs": 45, "batch_size": 64}, architecture="conv", conv_channels=(32, 64), latent_dim=64,
                    lr=1e-3, init="dcgan", disc_batch_norm=True, ema_decay=0.999)

register_preset(
    "gan-mnist",
    "gan",
    "class-conditional DCGAN (AC-GAN) for 28x28 digits, trained on the labels, EMA generator: sample(n, y) "
    "draws digit y",
    **_DCGAN_MNIST,
    conditional=True,
    num_classes=10,  # MNIST's; training sets it from the data's labels
)

register_preset(
    "gan-mnist-unconditional",
    "gan",
    "DCGAN pair for 28x28 digits with a 10-way InfoGAN code and an EMA generator, no labels used",
    **_DCGAN_MNIST,
    categories=10,
)
