"""What the trainer does to a model to make its steps cheaper, without changing what they compute.

* **Channels-last** (``TrainConfig.channels_last``): conv weights, and with them every feature map,
  in NHWC order. oneDNN (CPU) and cuDNN (GPU) convolve NHWC without reordering each tensor into
  their blocked layouts and back, and max-pooling and upsampling run vectorised over channels. On the
  ``keras-conv`` preset (batch 256, CPU) a step takes about half the time (benchmarks/README.md).
  Only the layout changes: the values are the same up to the summation order of the kernels.
* **Compilation** (``TrainConfig.compile``): :func:`torch.compile` of the model's ``training_step``.
  TorchDynamo captures the forward pass and loss, AOTAutograd derives the backward pass, and Inductor
  fuses the elementwise work (activations, the loss, the reparameterisation) into a few generated
  kernels around the library's matrix and convolution calls. It costs a one-off compilation (tens of
  seconds on a CPU) per phase, and pays where per-kernel overhead dominates a step.

* **Memory reuse on the CPU** (``TrainConfig.reuse_memory``): glibc's ``malloc`` serves large blocks
  (from 128 KiB, a threshold it raises as it goes, up to 32 MiB) with fresh ``mmap`` pages and gives
  them back on ``free``, and trims the top of its heap when more than a threshold is free there. A
  training step frees all its activations and allocates them again in the next step, so the kernel
  maps, zero-fills and faults in the same megabytes every step: about 9,000 page faults per step of
  the ``keras-conv`` preset (batch 256), a third of its time. :func:`keep_freed_memory` sets both
  thresholds so high (``mallopt``) that freed blocks stay in the heap and the next step reuses them:
  the page faults drop to none and the step takes about two thirds of the time. The setting is
  process-wide and stays (the process keeps its peak memory, as a GPU caching allocator does), so
  :func:`hourglass.train` applies it to runs whose data are in memory: a streamed run has a memory
  budget to keep to, and a heap that is never trimmed can hold more than its live data.

Optimizer state must share its parameter's layout: the fused Adam kernels walk the parameter, its
gradient and its moments as flat memory, so a channels-last weight with contiguous moments (as
``Optimizer.load_state_dict`` restores them from a checkpoint) would be updated with the wrong
moments. :func:`match_state_layouts` puts them back in the parameter's layout after loading.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Callable

import torch
from torch import nn

from ..errors import TrainingError

StepFn = Callable[..., dict[str, torch.Tensor]]


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def to_channels_last(model: nn.Module) -> bool:
    """Put a conv model's 4-d weights in channels-last layout (in place); False for a model without
    convolutions, which is left as it is."""
    if not has_conv(model):
        return False
    model.to(memory_format=torch.channels_last)
    return True


# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse instead of returning them to the system; True when it
    took (Linux with glibc), False elsewhere (nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # glibc releases before 2.36 refuse an mmap threshold above 32 MiB (HEAP_MAX_SIZE / 2).
    mmap_ok = any(mallopt(M_MMAP_THRESHOLD, value) == 1 for value in (1 << 30, 32 << 20))
    return bool(mmap_ok and mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1) == 1)


def match_state_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give every state tensor shaped like its parameter (Adam's moments, momentum buffers) the
    parameter's strides, keeping its values."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if (isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride()):
                    state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


class CompiledStep:
    """``model.training_step`` through :func:`torch.compile`. A failure to compile (on the first step of
    each phase, where Dynamo traces and Inductor generates code) is one :class:`TrainingError` that
    names the model and the cause; errors the model itself raises pass through unchanged."""

    def __init__(self, model: nn.Module, wrapper: nn.Module | None = None):
        self.name = type(model).__name__
        # Several ranks: the DDP wrapper is compiled (its forward is the training step), so the
        # gradients are still all-reduced.
        self.fn = torch.compile(wrapper if wrapper is not None else model.training_step)
        self.compiled: set[str] = set()

    def first(self, phase: str) -> bool:
        return phase not in self.compiled

    def __call__(self, batch, phase: str) -> dict[str, torch.Tensor]:
        return self.fn(batch, phase)

    def failed(self, phase: str, error: Exception) -> TrainingError:
        lines = str(error).strip().splitlines()
        cause = lines[0] if lines else ""
        return TrainingError(f"compile=True: torch.compile could not compile {self.name}.training_step (phase "
                             f"{phase!r}): {type(error).__name__}: {cause}; train with compile=False")


def compile_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a failed compilation (Dynamo's, and Inductor's, which derive from them)."""
    from torch._dynamo.exc import TorchDynamoException

    return (TorchDynamoException,)
