"""Arithmetic precision of training and evaluation: ``TrainConfig.precision`` = fp32, bf16 or fp16.

Mixed precision (Micikevicius et al. 2018, "Mixed Precision Training") runs the matrix products and
convolutions in a 16-bit format through :func:`torch.autocast` while the weights, the optimizer state
and the loss reductions stay in float32. The two 16-bit formats differ in where they lose:

* ``bf16`` (bfloat16) keeps float32's 8 exponent bits and 7 mantissa bits (relative rounding error
  2^-8, about 0.4%). Its range is float32's, so gradients neither underflow nor overflow and no loss
  scaling is needed. CUDA GPUs from Ampere on, and CPUs with AVX-512 BF16 or AMX, run it natively;
  on other CPUs oneDNN emulates it, correctly but many times slower than float32 (a warning says so).
* ``fp16`` (IEEE half) has 10 mantissa bits but only 5 exponent bits: values below 2^-24 flush to
  zero, so small gradients vanish. The loss is therefore multiplied by a scale S before the backward
  pass and the gradients divided by S before the step (:class:`torch.amp.GradScaler`, which also
  skips a step whose gradients overflowed and adapts S). Only on CUDA: CPUs have no fast fp16 matrix
  kernels, and asking for it there is a ``ConfigError``.

A run's precision is part of its training options: checkpoints carry the loss scaler's state, so a
resumed fp16 run continues with the scale it stopped with.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, ContextManager

import torch

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 matrix products natively here (AVX-512 BF16 or AMX)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


class Precision:
    """The autocast context and, for fp16, the loss scaler of one precision on one device.

    Raises ``ConfigError`` for a combination that cannot run: fp16 anywhere but CUDA, bf16 on a CUDA
    device without bfloat16 support, a 16-bit precision on mps."""

    def __init__(self, name: str, device: torch.device):
        if name not in PRECISIONS:
            raise ConfigError(f"training option 'precision': {name!r}; choose fp32, bf16 or fp16")
        self.name, self.device = name, device
        kind = device.type
        if name == "fp16" and kind != "cuda":
            raise ConfigError(f"training option 'precision': fp16 needs a CUDA device (this run trains on {kind}); "
                              "use bf16 or fp32")
        if name == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"training option 'precision': the CUDA device {torch.cuda.get_device_name(device)!r} "
                              "does not support bf16; use fp16 or fp32")
        if name != "fp32" and kind not in ("cpu", "cuda"):
            raise ConfigError(f"training option 'precision': {name} is supported on cpu and cuda, not {kind}; "
                              "use fp32")
        if name == "bf16" and kind == "cpu" and not cpu_has_native_bf16():
            warnings.warn("precision='bf16' on a CPU without native bfloat16 instructions (AVX-512 BF16 or AMX): "
                          "oneDNN emulates it, many times slower than fp32", RuntimeWarning, stacklevel=3)
        self.dtype = _DTYPES.get(name)

    def autocast(self) -> ContextManager[Any]:
        """The matrix products and convolutions of the block in this precision (nothing for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """A fresh loss scaler for one optimizer under fp16, else None."""
        return torch.amp.GradScaler(self.device.type) if self.name == "fp16" else None


def autocast_for(name: str, device: torch.device) -> ContextManager[Any]:
    """Evaluation's autocast context for a run trained in precision ``name`` on ``device``: the same
    16-bit products where the device runs them natively, float32 where it cannot (an fp16 run
    evaluated on a CPU; bf16 on a CPU that would only emulate it), which is slower at worst by the
    products' share and never less accurate."""
    if name == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        return contextlib.nullcontext()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return Precision(name, device).autocast()
    except ConfigError:
        return contextlib.nullcontext()
