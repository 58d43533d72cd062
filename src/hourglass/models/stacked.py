"""The stacked autoencoder with greedy layer-wise pretraining (Bengio, Lamblin, Popovici & Larochelle
2007, "Greedy Layer-Wise Training of Deep Networks"; with denoising layers, the stacked denoising
autoencoder of Vincent et al. 2010).

The deep autoencoder x -> h_1 -> ... -> h_L = z -> ... -> x_hat is built from L shallow ones,
(f_l, g_l) for l = 1..L, with h_0 = x and h_l = f_l(h_{l-1}). Training, through the generic trainer
(one optimizer per layer, ``"layer1"`` ... ``"layerL"``, plus ``"finetune"``; ``active_phases(epoch)``
picks which one trains):

1. Greedy pretraining, layer by layer, ``pretrain_epochs`` each: layer l is a shallow autoencoder
   on the codes of the layers below, which are frozen (computed without gradients):

       layer 1:      min  -log p(x | g_1(f_1(x~)))                 (the model's recon_loss)
       layer l > 1:  min  || g_l(f_l(h~_{l-1})) - h_{l-1} ||^2     (hidden codes are real-valued)

   where x~, h~ are the inputs, corrupted by ``layer_noise`` for a stacked denoising autoencoder.
2. Fine-tuning, ``finetune_epochs``: the stack f_L o ... o f_1, g_1 o ... o g_L trained end to end
   on the reconstruction of the clean input, with its own optimizer.

The schedule is fixed in epochs: epoch e < L * pretrain_epochs trains layer e // pretrain_epochs + 1,
later epochs fine-tune. ``required_epochs`` = L * pretrain_epochs + finetune_epochs is the minimum (any epochs beyond it
fine-tune further): the trainer's ``on_fit_start`` hook checks it before training starts and raises
a ConfigError with the numbers; evaluating a model whose training stopped short (early stopping)
warns. The history's ``phases`` column shows each epoch's phase. Early stopping watches the whole stack's
validation loss, which is not what pretraining minimises: use ``patience`` = 0 or larger than the
pretraining.

MLP: layers are the ``hidden`` widths and the code. Conv: one layer per ``conv_channels`` level
(convolution and 2x downsampling; upsampling, crop and convolution back), plus the dense code.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import ConfigError, option
from ..registry import register_model
from .ae import AEConfig
from .base import Autoencoder, Batch, make_optimizer, per_example
from .blocks import Crop, Flatten, Unflatten, activation, conv_sizes
from .noise import check_noise, corrupt


@dataclass
class StackedConfig(AEConfig):
    pretrain_epochs: int = option(2, "greedy pretraining epochs per layer (0: none, a plain deep AE)")
    finetune_epochs: int = option(10, "epochs fine-tuning the whole stack after pretraining (or more)")
    layer_noise: Literal["none", "gaussian", "masking", "salt_pepper"] = option(
        "none", "corruption of each layer's input in pretraining (stacked denoising): none or a dae noise"
    )
    layer_noise_level: float = option(0.3, "std (gaussian) or fraction (masking, salt_pepper) of layer noise")

    def validate(self) -> None:
        super().validate()
        for key in ("pretrain_epochs", "finetune_epochs"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config key {key!r}: must be >= 0, got {getattr(self, key)}")
        if self.layer_noise != "none":
            try:
                check_noise(self.layer_noise, self.layer_noise_level, key="config key 'layer_noise_level'")
            except ConfigError as e:
                raise ConfigError(f"{e} (layer_noise={self.layer_noise!r})") from None


def build_layers(cfg: StackedConfig) -> list[tuple[nn.Module, nn.Module]]:
    """(f_l, g_l) pairs, input side first; composing them gives the same shapes as ``AE``."""
    act, shape, pairs = cfg.activation, tuple(cfg.input_shape), []
    if cfg.architecture == "mlp":
        sizes = [math.prod(shape), *cfg.hidden, cfg.latent_dim]
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            f = [Flatten()] if i == 0 else []
            f += [nn.Linear(sizes[i], sizes[i + 1]), activation(cfg.code_activation if last else act)]
            g = [nn.Linear(sizes[i + 1], sizes[i]), Unflatten(shape) if i == 0 else activation(act)]
            pairs.append((nn.Sequential(*f), nn.Sequential(*g)))
        return pairs
    chans = [shape[0], *cfg.conv_channels]
    hw = conv_sizes(tuple(shape[1:]), len(cfg.conv_channels))
    for i in range(len(chans) - 1):
        if cfg.conv_downsample == "maxpool":
            f = [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1), activation(act)]
            f += [nn.MaxPool2d(2, ceil_mode=True)]
        else:
            f = [nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1), activation(act)]
        g = [nn.Upsample(scale_factor=2, mode="nearest"), Crop(*hw[i])]
        g += [nn.Conv2d(chans[i + 1], chans[i], 3, padding=1)] + ([activation(act)] if i > 0 else [])
        if cfg.conv_code == "map" and i == len(chans) - 2:  # the last feature map is the code
            f, g = f + [Flatten(), activation(cfg.code_activation)], [Unflatten((chans[-1], *hw[-1]))] + g
        pairs.append((nn.Sequential(*f), nn.Sequential(*g)))
    if cfg.conv_code == "dense":
        feat = chans[-1] * hw[-1][0] * hw[-1][1]
        f = nn.Sequential(Flatten(), nn.Linear(feat, cfg.latent_dim), activation(cfg.code_activation))
        g = nn.Sequential(nn.Linear(cfg.latent_dim, feat), activation(act), Unflatten((chans[-1], *hw[-1])))
        pairs.append((f, g))
    return pairs


@register_model("stacked")
class StackedAE(Autoencoder):
    """Deep autoencoder pretrained greedily, one shallow autoencoder per layer, then fine-tuned."""

    config_cls = StackedConfig
    summary = "stacked autoencoder: greedy layer-wise pretraining (optionally denoising), then fine-tuning"

    def __init__(self, config: StackedConfig):
        super().__init__(config)
        pairs = build_layers(config)
        self.encoders = nn.ModuleList(f for f, _ in pairs)
        self.decoders = nn.ModuleList(g for _, g in pairs)
        self._init()
        self._last_epoch = -1  # the last epoch active_phases() was asked about
        self._warned = False

    # -- the network ------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.encoders)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        for f in self.encoders:  # h_l = f_l(h_{l-1})
            x = f(x)
        return x

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        for g in reversed(self.decoders):
            z = g(z)
        return z

    # -- the schedule -----------------------------------------------------------------------------
    @property
    def phase_names(self) -> list[str]:
        return [f"layer{i + 1}" for i in range(self.num_layers)] + ["finetune"]

    @property
    def required_epochs(self) -> int:
        """Epochs the schedule needs: layers x pretrain_epochs + finetune_epochs."""
        return self.num_layers * self.config.pretrain_epochs + self.config.finetune_epochs

    def schedule(self) -> list[str]:
        """The phase of each epoch of the schedule (epochs after it fine-tune)."""
        return [self.phase_of(e) for e in range(self.required_epochs)]

    def check_epochs(self, epochs: int) -> None:
        """Raise ConfigError, with the numbers, when ``epochs`` cannot fit the schedule."""
        c = self.config
        if epochs < self.required_epochs:
            raise ConfigError(
                f"stacked: epochs={epochs} is too few for the schedule: {self.num_layers} layers x "
                f"pretrain_epochs={c.pretrain_epochs} + finetune_epochs={c.finetune_epochs} = "
                f"{self.required_epochs} epochs (required_epochs); train for at least that many"
            )

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {
            name: make_optimizer([*f.parameters(), *g.parameters()], self.config)
            for name, f, g in zip(self.phase_names, self.encoders, self.decoders)
        }
        opts["finetune"] = make_optimizer(self.parameters(), self.config)
        return opts

    def phase_of(self, epoch: int) -> str:
        p = self.config.pretrain_epochs
        if epoch < self.num_layers * p:
            return f"layer{epoch // p + 1}"  # 1. greedy pretraining, one layer at a time
        return "finetune"  # 2. the whole stack, end to end

    def on_fit_start(self, epochs: int) -> None:
        self.check_epochs(epochs)  # fail before training, not after a schedule cut short

    def active_phases(self, epoch: int) -> list[str]:
        self._last_epoch = epoch  # remembered to warn if evaluated before the schedule is done
        return [self.phase_of(epoch)]

    # -- losses -----------------------------------------------------------------------------------
    def training_step(self, batch: Batch, phase: str = "finetune") -> dict[str, torch.Tensor]:
        x, y = batch
        if phase == "finetune" or phase == "model":
            recon = self.recon_loss(self.decode_raw(self.encode(x)), x).mean()
            return {"loss": recon, "recon": recon}
        if phase not in self.phase_names:
            raise ValueError(f"stacked: unknown phase {phase!r}; phases are {', '.join(self.phase_names)}")
        i = self.phase_names.index(phase)  # layer l = i + 1
        with torch.no_grad():  # the layers below are frozen: h_{l-1} = f_{l-1}(... f_1(x))
            h = x
            for f in self.encoders[:i]:
                h = f(h)
        c = self.config
        h_in = h
        if c.layer_noise != "none":  # stacked denoising: corrupt the layer's input, rebuild the clean one
            clip = self.data_range if i == 0 else None
            h_in = corrupt(h, c.layer_noise, c.layer_noise_level, clip=clip)
        out = self.decoders[i](self.encoders[i](h_in))
        if i == 0:
            loss = self.recon_loss(out, h).mean()  # -log p(x | g_1(f_1(x~)))
        else:
            loss = per_example((out - h) ** 2, c.reduction).mean()  # ||g_l(f_l(h~)) - h||^2
        return {"loss": loss}

    @torch.no_grad()
    def metrics_batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if 0 <= self._last_epoch < self.required_epochs - 1 and not self._warned:
            self._warned = True
            warnings.warn(
                f"stacked: evaluated after {self._last_epoch + 1} training epochs, but the schedule needs "
                f"{self.required_epochs} ({self.num_layers} layers x {self.config.pretrain_epochs} "
                f"pretrain_epochs + {self.config.finetune_epochs} finetune_epochs): not fully trained",
                stacklevel=2,
            )
        return super().metrics_batch(x, y)
