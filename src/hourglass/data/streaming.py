"""Data larger than memory: splits read on demand and batches streamed to the trainer.

A streamed run keeps no tensor of its data. Each split is a :class:`StreamSplit` (examples read
from :class:`~hourglass.data.rows.Rows` and scaled when asked for), and the trainer iterates a
:class:`StreamBatches`, which implements the same batch-source protocol as the in-memory
:class:`~hourglass.data.batches.TensorBatches` (:mod:`hourglass.data.batches`):

* the order of a shuffled pass is one ``torch.randperm`` drawn from the trainer's seeded generator,
  exactly as the in-memory path draws it, so a streamed run sees the same batches in the same order
  (and resumes the same way: the generator's state is in the checkpoint). Sources stored in blocks
  (Parquet row groups) visit the permutation block by block - blocks in the order the permutation
  first reaches them, examples within a block in permutation order - so each batch reads one or two
  row groups instead of dozens;
* the batches are read by a ``torch.utils.data.DataLoader`` whose sampler yields whole batches of
  indices (one ``Rows.take`` per batch, so consecutive rows of a file are read with one call), in
  ``workers`` processes when asked (image decoding in parallel, reading ahead of the model).

Memory: a batch (and the DataLoader's prefetched batches) at a time.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from .batches import contiguous_share, shard_positions
from .rows import Rows
from .scaling import Scaler

PREFETCH = 2  # batches each worker reads ahead


class StreamSplit:
    """One split of a streamed data set: examples read from ``rows`` and scaled by ``scaler`` on demand.
    Indexing with a slice or with indices returns a float32 tensor of those examples."""

    def __init__(self, rows: Rows, scaler: Scaler):
        self.rows, self.scaler = rows, scaler

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.rows.shape)

    def take(self, idx) -> torch.Tensor:
        x = self.rows.take(np.asarray(idx, dtype=np.int64))
        return torch.from_numpy(np.ascontiguousarray(self.scaler.transform(x), dtype=np.float32))

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        return self.take(key)

    def batches(self, y: torch.Tensor | None = None, workers: int = 0,
                max_batch_bytes: int | None = None) -> "StreamBatches":
        return StreamBatches(self.rows, self.scaler, y, workers, max_batch_bytes=max_batch_bytes)


class _Batches(torch.utils.data.Dataset):
    """``dataset[indices]`` -> one scaled batch ``(x, y)``; the DataLoader's sampler yields the indices."""

    def __init__(self, rows: Rows, scaler: Scaler, y: torch.Tensor | None):
        self.rows, self.scaler, self.y = rows, scaler, y

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: np.ndarray):
        x = self.scaler.transform(self.rows.take(idx))
        xb = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return xb, (self.y[torch.from_numpy(idx)] if self.y is not None else None)


class StreamBatches:
    """The streaming batch source (see the module docstring); the trainer takes it like TensorBatches."""

    def __init__(self, rows: Rows, scaler: Scaler, y: torch.Tensor | None = None, workers: int = 0,
                 device: torch.device | None = None, max_batch_bytes: int | None = None, rank: int = 0,
                 world_size: int = 1):
        if y is not None and len(y) != len(rows):
            raise ValueError(f"{len(rows)} examples but {len(y)} labels")
        self.rows, self.scaler, self.y, self.workers = rows, scaler, y, workers
        self.max_batch_bytes = max_batch_bytes
        self.device = device or torch.device("cpu")
        self.rank, self.world_size = rank, world_size
        self._blocks = rows.blocks()

    def __len__(self) -> int:
        return len(self.rows)

    def to(self, device: torch.device) -> "StreamBatches":
        return StreamBatches(self.rows, self.scaler, self.y, self.workers, torch.device(device), self.max_batch_bytes,
                             self.rank, self.world_size)

    def shard(self, rank: int, world_size: int) -> "StreamBatches":
        """This rank's part of every batch (see :meth:`hourglass.data.batches.Batches.shard`): it reads
        only its own rows."""
        return StreamBatches(self.rows, self.scaler, self.y, self.workers, self.device, self.max_batch_bytes,
                             rank, world_size)

    def num_batches(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)

    def order(self, generator: torch.Generator) -> np.ndarray:
        """The example order of one shuffled pass (block by block for block-stored sources)."""
        perm = torch.randperm(len(self), generator=generator).numpy()
        if self._blocks is None:
            return perm
        b = self._blocks[perm]
        blocks, first = np.unique(b, return_index=True)  # where the permutation first reaches each block
        rank = np.zeros(int(blocks.max()) + 1, dtype=np.int64)
        rank[blocks] = first
        return perm[np.argsort(rank[b], kind="stable")]

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator:
        perm = self.order(generator)
        batches = [perm[s : s + batch_size] for s in range(0, len(self), batch_size)]
        if self.world_size > 1:
            batches = [b[shard_positions(len(b), self.rank, self.world_size)] for b in batches]
        return self._iterate(batches)

    def ordered(self, batch_size: int) -> Iterator:
        """In order; batches (validation: ``eval_batch_size``) cut to ``max_batch_bytes`` of float32 when set,
        so that a pass whose outcome does not depend on the batch size stays inside the memory budget."""
        if self.max_batch_bytes is not None:
            per = 4 * max(1, int(np.prod(self.rows.example_shape)))
            batch_size = max(1, min(batch_size, self.max_batch_bytes // per))
        lo, hi = contiguous_share(len(self), self.rank, self.world_size)
        return self._iterate([np.arange(s, min(s + batch_size, hi)) for s in range(lo, hi, batch_size)])

    def _iterate(self, index_batches: list[np.ndarray]) -> Iterator:
        loader = torch.utils.data.DataLoader(
            _Batches(self.rows, self.scaler, self.y.cpu() if self.y is not None else None), batch_size=None,
            sampler=index_batches, num_workers=self.workers, prefetch_factor=PREFETCH if self.workers else None,
            pin_memory=self.device.type == "cuda")
        for xb, yb in loader:
            yield (xb.to(self.device, non_blocking=True),
                   yb.to(self.device, non_blocking=True) if yb is not None else None)
