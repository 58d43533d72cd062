"""The config fields every model shares (:class:`BaseConfig`). No torch here: the command line builds
its flags from these fields without loading torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import option
from ..errors import ConfigError

Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid", "softplus", "linear"]


@dataclass
class BaseConfig:
    """Fields every model has. Model configs subclass this and add their own."""

    input_shape: tuple[int, ...] = option((), "shape of one example, (D,) or (C, H, W); set from the data")
    latent_dim: int = option(16, "size of the code (bottleneck)")
    architecture: Literal["mlp", "conv"] = option("mlp", "mlp for any data; conv for (C, H, W) images")
    hidden: tuple[int, ...] = option((256, 128), "MLP hidden widths, encoder order (the decoder mirrors them)")
    conv_channels: tuple[int, ...] = option((32, 64), "conv channels per level, each level halves H and W")
    conv_downsample: Literal["maxpool", "stride"] = option("stride", "conv downsampling: max-pooling or stride 2")
    conv_code: Literal["dense", "map"] = option("dense", "conv code: a dense vector, or the last feature map")
    activation: Activation = option("relu", "hidden-layer activation ('linear' for a linear model)")
    code_activation: Activation = option("linear", "activation applied to the code")
    recon_loss: Literal["bce", "mse"] = option(
        "bce", "bce: Bernoulli likelihood, data in [0, 1]; mse: Gaussian likelihood, real-valued data"
    )
    reduction: Literal["sum", "mean"] = option(
        "sum", "per-example reconstruction loss: sum over values (nats) or mean (the Keras convention)"
    )
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = option("adam", "optimizer")
    lr: float = option(1e-3, "learning rate")
    weight_decay: float = option(0.0, "weight decay (L2; decoupled for adamw)")
    momentum: float = option(0.0, "momentum (sgd, rmsprop)")
    adam_eps: float = option(1e-8, "Adam's epsilon (Keras uses 1e-7)")
    init: Literal["torch", "glorot", "dcgan"] = option(
        "torch", "weight initialisation: PyTorch's, Keras' (glorot), or DCGAN's N(0, 0.02) (dcgan)")

    def validate(self) -> None:
        if self.latent_dim < 1:
            raise ConfigError(f"config key 'latent_dim': must be >= 1, got {self.latent_dim}")
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"config key 'hidden': widths must be >= 1, got {self.hidden}")
        if not self.conv_channels or any(c < 1 for c in self.conv_channels):
            raise ConfigError(f"config key 'conv_channels': needs positive channel counts, got {self.conv_channels}")
        if not self.lr > 0:
            raise ConfigError(f"config key 'lr': must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.momentum < 0 or self.adam_eps <= 0:
            raise ConfigError("config keys 'weight_decay', 'momentum' must be >= 0 and 'adam_eps' > 0")
        if self.input_shape and any(s < 1 for s in self.input_shape):
            raise ConfigError(f"config key 'input_shape': sizes must be >= 1, got {self.input_shape}")
