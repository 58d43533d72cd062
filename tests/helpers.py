"""Shared helpers for the tests (imported as a plain module; see conftest.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

import hourglass

MNIST10K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k"
NUM_CLASSES = 3


def run_cli(*args) -> int:
    """``hourglass ARGS...`` in-process; arguments may be paths or numbers. Returns the exit status."""
    from hourglass.cli import main

    return main([str(a) for a in args])


def small_model(name: str, input_shape=(12,), **overrides):
    """A small instance of registered model ``name`` for fast tests."""
    cls = hourglass.registry.get_model_class(name)
    fields = {f.name for f in dataclasses.fields(cls.config_cls)}
    cfg = {"input_shape": input_shape, "latent_dim": 3, "hidden": (16,), "conv_channels": (4, 8)}
    if "num_classes" in fields:
        cfg["num_classes"] = NUM_CLASSES
    cfg.update(overrides)
    if len(input_shape) == 3:
        cfg.setdefault("architecture", "conv")
    return hourglass.create(name, **cfg)


def fixed_batch(input_shape=(12,), n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *input_shape, generator=g)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    return x, y
