"""Encoder and decoder builders, from the shape of one example.

* ``(D,)`` data, or ``architecture="mlp"``: a multilayer perceptron, hidden widths from the config;
  the decoder mirrors the encoder.
* ``(C, H, W)`` images with ``architecture="conv"``: a stack of 3x3 convolutions, each followed by a
  2x downsampling (max-pooling as in the classic Keras example, or a stride-2 convolution). Any
  height and width work: pooling rounds up ("same" padding) and the decoder upsamples by 2 and then
  crops to the exact size the encoder saw at that level, so 28 -> 14 -> 7 -> 4 comes back as
  4 -> 7 -> 14 -> 28 and a 30x45 image comes back 30x45.

The code is either a dense vector (``conv_code="dense"``, a linear layer after the conv stack) or
the final feature map itself (``conv_code="map"``, the Keras conv autoencoder's 4x4x8 code).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}


# Non-decreasing activations, which commute with max-pooling (GELU dips below zero: not one of them).
MONOTONE = frozenset({"relu", "leaky_relu", "elu", "selu", "tanh", "sigmoid", "softplus", "linear"})


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(sizes: Sequence[int], act: str, last_act: str = "linear") -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]``, ``act`` between them, ``last_act`` at the end."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        is_last = i == len(sizes) - 2
        a = last_act if is_last else act
        if a != "linear":
            layers.append(activation(a))
    return nn.Sequential(*layers)


def _pooled(size: int) -> int:
    return math.ceil(size / 2)


def conv_sizes(hw: tuple[int, int], depth: int) -> list[tuple[int, int]]:
    """Spatial sizes seen by each encoder level: input, after 1 downsampling, ..., after ``depth``."""
    sizes = [hw]
    for _ in range(depth):
        h, w = sizes[-1]
        sizes.append((_pooled(h), _pooled(w)))
    return sizes


class Crop(nn.Module):
    """Crop a feature map to ``(h, w)`` from its top-left corner (undoes the rounding-up of pooling)."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.h, : self.w]

    def extra_repr(self) -> str:
        return f"h={self.h}, w={self.w}"


class UpsampledConv2d(nn.Conv2d):
    """Nearest-neighbour 2x upsampling, a crop to ``size``, then a 3x3 convolution with padding 1: one
    step up the conv decoder, with the weights of that convolution alone.

    When the crop keeps the whole upsampled map (even sizes), the three are one convolution at the
    low resolution followed by a pixel shuffle (the sub-pixel convolution of Shi et al. 2016). Output
    pixel (2i + a, 2j + b) sees upsampled rows 2i + a - 1 .. 2i + a + 1, which are input rows
    (i - 1, i, i) for a = 0 and (i, i, i + 1) for a = 1 (the zero padding falls on the same places);
    so phase (a, b) is a 3x3 convolution of the input with the kernel R_a W R_b^T, where R_a adds the
    taps that land on the same input row:

        R_0 = [[1, 0, 0], [0, 1, 1], [0, 0, 0]],   R_1 = [[0, 0, 0], [1, 1, 0], [0, 0, 1]].

    The four phases are 4 x out_channels output channels of one convolution, interleaved back into
    the image by ``pixel_shuffle(2)`` (on channels-last maps, with the channels ordered phase first,
    by a permute that moves whole runs of channels). The function is the same; the work is done on
    maps a quarter the size, and the upsampled input is never materialised (in the ``keras-conv``
    preset this halves the decoder's time). Odd sizes (a crop that drops the last row or column) take the direct
    path."""

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int]):
        super().__init__(in_channels, out_channels, 3, padding=1)
        self.size = tuple(size)
        phases = torch.tensor([[[1, 0, 0], [0, 1, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 0], [0, 0, 1]]],
                              dtype=torch.float32)
        self.register_buffer("phases", phases, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        if (h, w) != (2 * x.shape[-2], 2 * x.shape[-1]):
            up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")[..., :h, :w]
            return super().forward(up)
        r = self.phases.to(self.weight.dtype)
        if self.out_channels > 1 and x.is_contiguous(memory_format=torch.channels_last):
            # Channels-last maps: the phases outermost (channel a 2C + b C + o), so that interleaving
            # them moves runs of C contiguous values; pixel_shuffle's order (o 4 + a 2 + b) would
            # gather every value with a stride of 4 (a quarter of the time, forward and backward,
            # for the keras-conv decoder's 8 -> 16 step).
            kernel = torch.einsum("ary,ocyx,bsx->abocrs", r, self.weight, r).reshape(-1, self.in_channels, 3, 3)
            y = torch.nn.functional.conv2d(x, kernel, self.bias.repeat(4) if self.bias is not None else None,
                                           padding=1)
            n, _, hh, ww = y.shape
            return (y.permute(0, 2, 3, 1).reshape(n, hh, ww, 2, 2, self.out_channels).permute(0, 1, 3, 2, 4, 5)
                    .reshape(n, h, w, self.out_channels).permute(0, 3, 1, 2))
        kernel = torch.einsum("ary,ocyx,bsx->oabcrs", r, self.weight, r).reshape(-1, self.in_channels, 3, 3)
        bias = self.bias.repeat_interleave(4) if self.bias is not None else None
        return torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(x, kernel, bias, padding=1), 2)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, upsampled to {self.size[0]}x{self.size[1]}"


def _conv3x3(ch_in: int, ch_out: int, up: tuple[int, int] | None) -> nn.Conv2d:
    """A 3x3 convolution with padding 1, after a 2x upsampling to ``up`` when given."""
    return nn.Conv2d(ch_in, ch_out, 3, padding=1) if up is None else UpsampledConv2d(ch_in, ch_out, up)


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class Unflatten(nn.Module):
    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Encoder(nn.Module):
    """x of shape ``(N, *input_shape)`` [+ extra features ``(N, extra_dim)``] -> ``(N, out_dim)``.

    ``extra_dim`` lets conditional models feed a one-hot label beside the input: it is concatenated
    to the flattened input (MLP) or to the flattened feature map (conv).
    """

    def __init__(self, cfg, out_dim: int, extra_dim: int = 0, last_act: str = "linear"):
        super().__init__()
        shape = tuple(cfg.input_shape)
        self.extra_dim = extra_dim
        if cfg.architecture == "mlp":
            self.features = Flatten()
            feat_dim = math.prod(shape)
            self.head = mlp([feat_dim + extra_dim, *cfg.hidden, out_dim], cfg.activation, last_act)
        else:
            c, h, w = image_shape(shape)
            layers: list[nn.Module] = []
            ch_in = c
            for ch in cfg.conv_channels:
                if cfg.conv_downsample == "maxpool" and cfg.activation in MONOTONE:
                    # maxpool(act(x)) = act(maxpool(x)) for a non-decreasing act: pooling first runs
                    # the activation and its backward pass on a quarter of the values. The modules
                    # hold no weights, so the state dict's keys are those of the other order.
                    layers += [nn.Conv2d(ch_in, ch, 3, padding=1), nn.MaxPool2d(2, ceil_mode=True)]
                    layers += [activation(cfg.activation)]
                elif cfg.conv_downsample == "maxpool":
                    layers += [nn.Conv2d(ch_in, ch, 3, padding=1), activation(cfg.activation)]
                    layers += [nn.MaxPool2d(2, ceil_mode=True)]
                else:
                    layers += [nn.Conv2d(ch_in, ch, 3, stride=2, padding=1), activation(cfg.activation)]
                ch_in = ch
            layers.append(Flatten())
            self.features = nn.Sequential(*layers)
            fh, fw = conv_sizes((h, w), len(cfg.conv_channels))[-1]
            feat_dim = ch_in * fh * fw
            if cfg.conv_code == "map":
                # The feature map is the code; a label (if any) cannot be mixed in without a layer.
                self.head = nn.Identity() if extra_dim == 0 else nn.Linear(feat_dim + extra_dim, out_dim)
            else:
                self.head = mlp([feat_dim + extra_dim, out_dim], cfg.activation, last_act)
        self.feature_dim = feat_dim

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        if self.extra_dim:
            if extra is None:
                raise ValueError("this encoder needs the extra (label) input")
            h = torch.cat([h, extra.to(h.dtype)], dim=1)
        return self.head(h)


class Decoder(nn.Module):
    """z of shape ``(N, in_dim)`` [+ extra ``(N, extra_dim)``] -> raw outputs ``(N, *input_shape)``.

    The outputs are logits when the model's likelihood is Bernoulli (BCE is computed from logits,
    which is exact where ``sigmoid`` then ``log`` is not), and the mean itself when it is Gaussian.
    """

    def __init__(self, cfg, in_dim: int, extra_dim: int = 0):
        super().__init__()
        shape = tuple(cfg.input_shape)
        self.extra_dim = extra_dim
        z_dim = in_dim + extra_dim
        if cfg.architecture == "mlp":
            self.net = nn.Sequential(
                mlp([z_dim, *reversed(cfg.hidden), math.prod(shape)], cfg.activation), Unflatten(shape)
            )
        else:
            c, h, w = image_shape(shape)
            chans = list(cfg.conv_channels)
            sizes = conv_sizes((h, w), len(chans))
            fh, fw = sizes[-1]
            layers: list[nn.Module] = []
            if cfg.conv_code == "map" and extra_dim == 0:
                layers.append(Unflatten((chans[-1], fh, fw)))
            else:
                layers += [nn.Linear(z_dim, chans[-1] * fh * fw), activation(cfg.activation)]
                layers.append(Unflatten((chans[-1], fh, fw)))
            ch_in = chans[-1]
            # Mirror the encoder: conv, then upsample x2 and crop to the size that level had. Each
            # upsampling and crop is done by the convolution after it (UpsampledConv2d); the two
            # Identity modules hold their places so that the weights keep their state-dict keys.
            up: tuple[int, int] | None = None
            for level, ch in zip(range(len(chans) - 1, -1, -1), reversed(chans)):
                layers += [_conv3x3(ch_in, ch, up), activation(cfg.activation), nn.Identity(), nn.Identity()]
                up, ch_in = sizes[level], ch
            layers.append(_conv3x3(ch_in, c, up))
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        if self.extra_dim:
            if extra is None:
                raise ValueError("this decoder needs the extra (label) input")
            z = torch.cat([z, extra.to(z.dtype)], dim=1)
        return self.net(z)


def conv_map_dim(cfg) -> int:
    """Size of the code when ``conv_code="map"``: channels x height x width of the last feature map."""
    _, h, w = image_shape(tuple(cfg.input_shape))
    fh, fw = conv_sizes((h, w), len(cfg.conv_channels))[-1]
    return cfg.conv_channels[-1] * fh * fw


def image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ConfigError(
            f"architecture 'conv' needs images of shape (C, H, W); this data has examples of shape {shape}"
        )
    return shape  # type: ignore[return-value]


def init_weights(module: nn.Module, scheme: str) -> None:
    """``torch``: PyTorch's defaults (Kaiming-uniform). ``glorot``: Glorot-uniform weights and zero
    biases, the Keras defaults, for like-for-like comparisons with Keras code. ``dcgan``: weights
    N(0, 0.02), zero biases and batch-norm scales N(1, 0.02), as in Radford et al. 2016 (DCGAN), Sec. 4."""
    if scheme == "torch":
        return
    if scheme not in ("glorot", "dcgan"):
        raise ValueError(f"unknown init {scheme!r}; choose 'torch', 'glorot' or 'dcgan'")
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif scheme == "dcgan" and isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
