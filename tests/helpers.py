"""Shared helpers for the tests (imported as a plain module; see conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import torch

import hourglass

MNIST10K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k"
NUM_CLASSES = 3
# Small, quick training settings for the runs the reliability tests damage, lock, kill and resume (a
# checkpoint after every epoch).
SMALL_RUN = {"latent_dim": 3, "hidden": (16,), "batch_size": 256, "progress": False, "threads": 1, "figures": False,
             "checkpoint_interval": 0}


def run_cli(*args) -> int:
    """``hourglass ARGS...`` in-process; arguments may be paths or numbers. Returns the exit status."""
    from hourglass.cli import main

    return main([str(a) for a in args])


def one_line_error(capsys, *args) -> str:
    """Run the CLI, expect exit status 2 and exactly one line on stderr (``hourglass: error: ...``); return it."""
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hourglass: error: "), err
    return err


def subprocess_env() -> dict[str, str]:
    """The environment for a child Python that must import this checkout's hourglass (one OpenMP thread)."""
    src = Path(hourglass.__file__).resolve().parents[1]
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}


def copied(run: Path, tmp_path: Path) -> Path:
    """A copy of run directory ``run`` as ``tmp_path/run``, to damage or continue."""
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


def small_model(name: str, input_shape=(12,), **overrides):
    """A small instance of registered model ``name`` for fast tests."""
    cls = hourglass.models.get_model_class(name)
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
