"""Seeded randomness that leaves the caller's random streams untouched."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global generators seeded with ``seed``, then restore their states
    (``torch.random.fork_rng``): evaluation and figures are repeatable and do not shift training's
    random stream."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
