"""Sizes are checked against memory before anything is allocated: the one module of memory limits.

Two questions, two limits, one error (:class:`MemoryLimitError`, both a ``ConfigError`` and a
``DataError``: a size too large is a fault of the value or of the file that states it):

* **may hourglass build this?** (:func:`check_fits`, :func:`check_count`, :func:`check_model`) Every
  size that comes from a file or a flag (a model config read from ``config.json`` or given on the
  command line, ``sample -n``, ``interpolate --steps``) is turned into the bytes it would allocate and
  compared with the memory hourglass may use: the machine's physical memory, or
  ``$HOURGLASS_MEMORY_LIMIT`` (bytes, or a number with K, M, G or T: ``8G``).
* **can this read be held now?** (:func:`ensure_fits`) Every reader computes the bytes an array will
  need from its file's header (an IDX header's dimensions, a ``.npy`` header's shape and dtype, an
  image's size) and asks before it allocates: a damaged or hostile header that claims terabytes is an
  error naming the file and the memory it would need, not a ``MemoryError`` (or the kernel's OOM
  killer) half-way through. The limit is the memory available now (``MemAvailable`` in
  ``/proc/meminfo``, the kernel's estimate of what can be allocated without swapping), or
  ``$HOURGLASS_MAX_READ_BYTES`` when set (tests set it to show the check without a machine that small).

The model estimate is model-agnostic: the model is built on PyTorch's ``meta`` device, which records
shapes and allocates nothing, so its parameter count is exact for every registered model. Activations
are bounded from the layers found there, per example: every ``Linear`` layer's outputs, and for every
``Conv2d`` or ``ConvTranspose2d`` layer its channels times the input's height and width (no layer in
these networks works above the input's resolution), each counted three times (the layer, its
activation, a pooling or upsampling); the input and the output count twice. Training needs the
parameters four times (weights, gradients, two Adam moments) and the batch's activations twice (kept
for the backward pass, and their gradients).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
from typing import Any

from .errors import ConfigError, DataError

MAX_LAYERS = 1000  # entries of one tuple-valued config field (hidden widths, channels) considered sane
BYTES_PER_VALUE = 4  # float32


class MemoryLimitError(ConfigError, DataError):
    """A size that would not fit in memory; the message names the value or file and the bytes."""


def memory_limit() -> tuple[int, str]:
    """(bytes hourglass may allocate, where that number comes from)."""
    env = os.environ.get("HOURGLASS_MEMORY_LIMIT", "").strip()
    if env:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", env.lower())
        if not m:
            raise MemoryLimitError(f"HOURGLASS_MEMORY_LIMIT={env!r}: expected bytes, or a number with K, M, G or T")
        scale = 1024 ** " kmgt".index(m.group(2) or " ")
        return int(float(m.group(1)) * scale), "the limit set by HOURGLASS_MEMORY_LIMIT"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        total = 16 << 30
    return int(total), "this machine's memory"


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def check_fits(need: float, what: str, detail: str = "") -> None:
    """Refuse ``what`` (a phrase naming the value) when it would need more than the memory limit."""
    limit, source = memory_limit()
    if need > limit:
        raise MemoryLimitError(f"{what} would need about {format_bytes(need)} of memory{detail}, more than {source} "
                          f"({format_bytes(limit)})")


def human_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``; binary units, one decimal (the readers' messages)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def available_bytes() -> int:
    """Memory available for new allocations now (``MemAvailable``; the physical size where
    ``/proc/meminfo`` is absent), or ``$HOURGLASS_MAX_READ_BYTES`` when set."""
    env = os.environ.get("HOURGLASS_MAX_READ_BYTES")
    if env:
        try:
            return int(env)
        except ValueError:
            raise MemoryLimitError(f"HOURGLASS_MAX_READ_BYTES={env!r} is not a whole number of bytes") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux nor macOS
        return 1 << 34


def ensure_fits(nbytes: int, source: str, what: str = "reading it") -> None:
    """Refuse to read ``source`` when ``nbytes`` exceed the memory available now."""
    limit = available_bytes()
    if nbytes > limit:
        raise MemoryLimitError(f"{source}: {what} needs {human_bytes(nbytes)} of memory, more than the "
                               f"{human_bytes(limit)} available (a damaged header, or data to stream: "
                               "--in-memory never)")


def _number(v: int) -> str:
    """An integer for a message: as it is, or its order of magnitude when it is absurdly long."""
    return str(v) if abs(v) < 10 ** 15 else f"about 10^{len(str(abs(v))) - 1}"


def check_count(name: str, n: Any, bytes_each: float, low: int = 1) -> int:
    """A count from a flag or argument (``-n``, ``--steps``): a whole number >= ``low`` whose
    ``n * bytes_each`` fits in memory."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ConfigError(f"{name} must be a whole number, got {n!r}")
    n = int(n)
    if n < low:
        raise ConfigError(f"{name} must be at least {low}, got {n}")
    check_fits(n * bytes_each, f"{name}={n:,}")
    return n


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """What a model built from a config holds and works on."""

    parameter_bytes: int  # parameters and buffers
    activation_bytes: int  # a bound on the values one example makes in one forward pass
    state_shapes: dict[str, tuple[int, ...]]  # name -> shape of every entry of its state_dict


def _size_fields(cfg: Any) -> dict[str, Any]:
    """The config's integer and integer-tuple values (what sizes a network), by field name."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, int) and not isinstance(v, bool) or (
                isinstance(v, tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)):
            out[f.name] = v
    return out


def describe_sizes(cfg: Any) -> str:
    """The size-setting values of a config that look large, else all of them (for error messages)."""
    fields = _size_fields(cfg)
    big = {k: v for k, v in fields.items() if max(v if isinstance(v, tuple) else (v,), default=0) > 4096}
    shown = big or fields
    return ", ".join(f"{k}=[{', '.join(_number(i) for i in v)}]" if isinstance(v, tuple) else f"{k}={_number(v)}"
                     for k, v in shown.items())


def model_size(cls: type, cfg: Any, where: str = "") -> ModelSize:
    """Build ``cls(cfg)`` on the meta device (no memory) and measure it; an impossible config is a
    ConfigError naming its values (after ``where``, e.g. the file's name)."""
    import torch

    for k, v in _size_fields(cfg).items():
        if isinstance(v, tuple) and len(v) > MAX_LAYERS:
            raise ConfigError(f"{where}config key {k!r}: {len(v):,} entries; at most {MAX_LAYERS} are supported")
    try:
        with torch.device("meta"):
            model = cls(cfg)
    except (RuntimeError, OverflowError, ValueError, TypeError, MemoryError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}model {getattr(cls, 'name', cls.__name__)!r} cannot be built with "
                          f"{describe_sizes(cfg)}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    state = model.state_dict(keep_vars=True)
    params = sum(t.numel() * t.element_size() for t in state.values())
    shape = tuple(cfg.input_shape)
    hw = math.prod(shape[1:]) if len(shape) == 3 else 1
    values = 2 * 2 * math.prod(shape)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            values += 2 * m.out_features
        elif isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            values += 3 * m.out_channels * hw
    return ModelSize(params, values * BYTES_PER_VALUE, {k: tuple(v.shape) for k, v in state.items()})


def check_model(cls: type, cfg: Any, *, where: str, batch: int = 1, training: bool = False) -> ModelSize:
    """Refuse a model whose parameters and a batch of ``batch`` examples would not fit in memory."""
    size = model_size(cls, cfg, where)
    need = size.parameter_bytes * (4 if training else 1) + size.activation_bytes * batch * (2 if training else 1)
    name = getattr(cls, "name", cls.__name__)
    doing = f"training on batches of {batch}" if training else "for one example"
    check_fits(need, f"{where}model {name!r} with {describe_sizes(cfg)}",
               f" ({format_bytes(size.parameter_bytes)} of parameters; {doing})")
    return size
