"""What the trainer iterates over: batches of ``(x, y)``, shuffled for training, in order for validation.

:class:`TensorBatches` is the fast path: the whole data set as one tensor on the training device,
batched by index (no DataLoader, no per-example Python work). Any other source (a streaming loader
for data larger than memory) implements the same four members.
"""

from __future__ import annotations

import math
from typing import Iterator, Protocol

import torch

Batch = tuple[torch.Tensor, "torch.Tensor | None"]


class Batches(Protocol):
    """A data set the trainer can iterate over."""

    def __len__(self) -> int:
        """Number of examples."""

    def to(self, device: torch.device) -> "Batches":
        """This data set, ready to yield batches on ``device``."""

    def num_batches(self, batch_size: int) -> int:
        """Batches per pass at ``batch_size``."""

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One pass in an order drawn from ``generator`` (training)."""

    def ordered(self, batch_size: int) -> Iterator[Batch]:
        """One pass in order (validation, evaluation)."""


class TensorBatches:
    """In-memory examples ``x`` (and labels ``y``), batched by index."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None):
        if y is not None and len(y) != len(x):
            raise ValueError(f"{len(x)} examples but {len(y)} labels")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device) -> "TensorBatches":
        return TensorBatches(self.x.to(device), self.y.to(device) if self.y is not None else None)

    def num_batches(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        perm = torch.randperm(len(self), generator=generator).to(self.x.device)
        for start in range(0, len(self), batch_size):
            idx = perm[start : start + batch_size]
            yield self.x[idx], (self.y[idx] if self.y is not None else None)

    def ordered(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self), batch_size):
            yield (self.x[start : start + batch_size],
                   self.y[start : start + batch_size] if self.y is not None else None)


def as_batches(x, y=None) -> Batches:
    """``x`` itself when it is already a batch source, else ``TensorBatches(x, y)``."""
    if isinstance(x, torch.Tensor):
        return TensorBatches(x, y)
    if y is not None:
        raise ValueError("labels are part of a batch source; pass y only with a tensor x")
    return x
