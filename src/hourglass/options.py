"""Training and data options: typed dataclasses, shared by the Python API and the command line.

``hourglass.train(model, data, **options)`` and ``hourglass train MODEL --option ...`` take the same
options from the same dataclasses: the CLI's flags, their help and their defaults are generated from
the fields below, and both paths validate through ``build_config`` (an unknown key or a value of the
wrong type is a ``ConfigError`` naming the key). This module imports no torch, so ``hourglass --help``
answers at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .config import option
from .errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


@dataclass
class TrainConfig:
    """How a model is trained (the model's own settings live in its config dataclass)."""

    epochs: int = option(30, "passes over the training data")
    batch_size: int = option(64, "examples per optimisation step")
    seed: int = option(0, "seed for the split, weights, shuffling and noise")
    device: str = option("auto", "auto (cuda if available), cpu, cuda or cuda:N")
    threads: int | None = option(
        None, "CPU threads for torch (None: automatic - all usable cores, fewer while other processes "
              "keep them busy)")
    val_fraction: float = option(0.1, "fraction of the training data held out for validation (0: none)")
    patience: int = option(0, "early stopping: epochs without validation improvement (0: off)")
    min_delta: float = option(0.0, "early stopping: smallest improvement that counts")
    grad_clip: float = option(0.0, "clip each optimizer's gradient norm to this (0: off)")
    log_every: int = option(25, "steps between reading losses back (progress bar, non-finite check)")
    checkpoint_interval: float = option(
        10.0, "seconds between checkpoints of a run directory: one is written after the first epoch that ends this "
              "long after the last (0: after every epoch); the last epoch and a stop on SIGTERM or Ctrl-C always "
              "write one")
    progress: bool = option(True, "show a progress bar")
    eval_batch_size: int = option(1024, "batch size for validation and evaluation")
    precision: Literal["fp32", "bf16", "fp16"] = option(
        "fp32", "arithmetic of the matrix products and convolutions (torch.autocast; weights and optimizer "
                "state stay fp32): fp32; bf16 (CUDA, or CPUs with AVX-512 BF16/AMX; emulated and slow on other "
                "CPUs); fp16 (CUDA only, with loss scaling)")
    compile: bool = option(
        False, "torch.compile the model's training step (a one-off compilation, then fused kernels; pays for "
               "long runs of small-kernel models on GPU)")
    channels_last: bool = option(
        True, "conv models: keep conv weights and feature maps channels-last (NHWC), the layout oneDNN and "
              "cuDNN convolve fastest; no effect on MLPs")
    reuse_memory: bool = option(
        True, "CPU training on Linux with the data in memory: keep the memory a step frees for the next step "
              "(glibc mallopt, for the whole process) instead of returning it to the system and faulting it in "
              "again; the process keeps its peak memory (streamed runs keep to their memory budget instead)")

    def validate(self) -> None:
        checks = {
            "epochs": self.epochs >= 0,
            "batch_size": self.batch_size >= 1,
            "val_fraction": 0.0 <= self.val_fraction < 1.0,
            "patience": self.patience >= 0,
            "min_delta": self.min_delta >= 0,
            "grad_clip": self.grad_clip >= 0,
            "log_every": self.log_every >= 1,
            "checkpoint_interval": self.checkpoint_interval >= 0,
            "eval_batch_size": self.eval_batch_size >= 1,
            "threads": self.threads is None or 1 <= self.threads <= 4096,
            "device": bool(_DEVICE.match(self.device)),
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"training option {key!r}: invalid value {getattr(self, key)!r}"
                                  + ("; choose auto, cpu, cuda or cuda:N" if key == "device" else ""))


@dataclass
class DataOptions:
    """How a data set is read, split and scaled for a run (the data itself is the ``data`` argument)."""

    data_dir: str | None = option(None, "folder holding the IDX files of mnist-like data sets ($HOURGLASS_DATA)")
    test_fraction: float = option(0.2, "test share for data without their own split")
    label_column: int | str | None = option(None, "label column of a table (name or index)")
    feature_columns: tuple[str, ...] | None = option(
        None, "table columns to use as features, comma-separated (default: all but the label)")
    drop_columns: tuple[str, ...] | None = option(None, "table columns to leave out, comma-separated")
    categorical: Literal["onehot", "error"] = option(
        "onehot", "text columns of a table: onehot (categories fitted on the training split) or error")
    impute: Literal["none", "mean", "median", "most-frequent"] = option(
        "none", "missing numbers in a table: none (an error naming the column), or the training split's "
                "mean, median or most frequent value")
    channels: int | None = option(
        None, "image folders: 1 (grayscale) or 3 (RGB; alpha is composited on white); default: 1 when every "
              "image is grayscale, else 3")
    image_size: int | str | None = option(
        None, "image folders: resize every image to H or HxW pixels (default: keep the size all images share)")
    skip_bad_files: bool = option(
        False, "image folders: skip unreadable, truncated or empty files (counted in a warning) instead of "
               "stopping at the first")
    in_memory: Literal["auto", "always", "never"] = option(
        "auto", "auto: the whole data set as tensors in memory when it fits --memory-budget, else streamed "
                "from disk; always; never (always stream)")
    memory_budget: int | None = option(
        None, "MiB the data may take in memory as float32 tensors for --in-memory auto (default: half of the "
              "memory available)")
    workers: int = option(0, "processes that read and decode streamed batches (0: the training process)")
    scaling: Literal["auto", "range", "minmax", "standard", "none"] = option(
        "auto", "how data are scaled: auto (images to [0, 1]; tables minmax for bce, standard for mse), "
                "range (the data's known range), minmax, standard or none")
    anomaly_class: int | None = option(
        None, "leave this class out of the training data and report its anomaly ROC-AUC")
    keep_labels: int | None = option(
        None, "semi-supervised: keep this many training labels (balanced over classes), the rest unknown; "
              "for cvae with semi_supervised=true, aae with use_labels=true or gan with conditional=true")

    def validate(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"data option 'test_fraction': must be between 0 and 1, got {self.test_fraction}")
        if self.keep_labels is not None and self.keep_labels < 1:
            raise ConfigError(f"data option 'keep_labels': must be a positive number of labels, got {self.keep_labels}")
        if self.data_dir is not None and not self.data_dir.strip():
            raise ConfigError("data option 'data_dir': empty path")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"data option 'channels': 1 or 3, got {self.channels}")
        if self.image_size is not None:
            parse_image_size(str(self.image_size))
        if self.memory_budget is not None and self.memory_budget < 1:
            raise ConfigError(f"data option 'memory_budget': a positive number of MiB, got {self.memory_budget}")
        if not 0 <= self.workers <= 256:
            raise ConfigError(f"data option 'workers': 0 to 256, got {self.workers}")


def parse_image_size(text: str) -> tuple[int, int]:
    """``"32"`` -> (32, 32), ``"45x60"`` -> (45, 60) (height x width); anything else is a ConfigError."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise ConfigError(f"data option 'image_size': {text!r} is not H or HxW (whole numbers of pixels, e.g. 32 "
                          "or 45x60)")
    h = int(m.group(1))
    return h, int(m.group(2)) if m.group(2) is not None else h
