"""Interpolation through code space: decode the straight line between the codes of two examples.

    z_t = (1 - t) f(x_a) + t f(x_b),   t = 0, 1/(steps-1), ..., 1,   x_t = g(z_t [, y_t])

Works for every :class:`~hourglass.models.base.Autoencoder`. For conditional models the label is part
of what the decoder sees: it can stay fixed (``y_b`` omitted: the style of x_a morphs into that of
x_b within class y_a) or switch half-way (``y_b`` given: the first half of the strip is decoded
with y_a, the second with y_b).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, DataError
from ..models.base import Autoencoder

MAX_STEPS = 10_000  # a strip longer than this is not an image anyone can look at


@torch.no_grad()
def interpolate(
    model,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    steps: int = 8,
    y_a: torch.Tensor | int | None = None,
    y_b: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Decoded images ``(steps, *input_shape)`` along the line from the code of ``x_a`` to that of ``x_b``.

    ``x_a`` and ``x_b`` are single examples, of shape ``input_shape`` or ``(1, *input_shape)``.
    The end points are the model's reconstructions of x_a and x_b.
    """
    if not isinstance(model, Autoencoder):
        raise ConfigError(f"model {model.name!r} has no encoder: there is no code of x_a and x_b to interpolate")
    if not 2 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be between 2 (the two end points) and {MAX_STEPS}, got {steps}")
    shape = tuple(model.config.input_shape)
    dev = model.device
    xa, xb = (_one(x, shape, name).to(dev) for x, name in ((x_a, "x_a"), (x_b, "x_b")))
    if model.conditional and y_a is None:
        raise DataError(f"model {model.name!r} is conditional: pass y_a (and optionally y_b)")
    ya = _label(y_a, dev)
    yb = _label(y_b, dev) if y_b is not None else ya
    was_training = model.training
    model.eval()
    try:
        za, zb = model.encode(xa, ya), model.encode(xb, yb)
        t = torch.linspace(0.0, 1.0, steps, device=dev).unsqueeze(1)
        z = (1 - t) * za + t * zb
        ys = None
        if ya is not None:
            ys = torch.where(t.squeeze(1) < 0.5, ya, yb)
        return model.decode(z, ys)
    finally:
        model.train(was_training)


def _one(x: torch.Tensor, shape: tuple[int, ...], name: str) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    if tuple(x.shape) == shape:
        return x.unsqueeze(0)
    if tuple(x.shape) == (1, *shape):
        return x
    raise DataError(f"{name} must be one example of shape {shape} (or (1, *shape)), got {tuple(x.shape)}")


def _label(y, dev) -> torch.Tensor | None:
    if y is None:
        return None
    y = torch.as_tensor(y, dtype=torch.long, device=dev).reshape(-1)
    if y.numel() != 1:
        raise DataError(f"a label for one example is a single class index, got {y.numel()} values")
    return y
