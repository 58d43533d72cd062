"""Examples read on demand: the data sets that are not held in memory.

A :class:`Rows` is a data set of ``len(rows)`` examples of shape ``rows.shape[1:]`` that reads the
examples it is asked for and nothing else: ``take(indices)`` returns them as a float32 array, in
the order asked. The streaming path (:mod:`hourglass.data.streaming`) feeds the trainer from one;
``read_all()`` materialises it for the in-memory path.

Kinds: :class:`ArrayRows` (an array already in memory, or a ``numpy.memmap``), :class:`NpyRows`
(a ``.npy`` file read with ``os.pread``), :class:`SubsetRows` (a split of another), and the table
and image-folder rows of :mod:`~hourglass.data.tables` and :mod:`~hourglass.data.images`. Sources
stored in blocks (Parquet row groups) say so through ``blocks()``, so a shuffled pass can visit one
block at a time.

This module imports no torch.
"""

from __future__ import annotations

import math
import os
from typing import Iterator

import numpy as np

from ..errors import DataError, path_access

CHUNK = 4096  # examples per chunk in streaming passes (scaling statistics, value ranges) ...
CHUNK_BYTES = 1 << 20  # ... and at most this many bytes of float32 (the statistics take ~4x that in float64)


class Rows:
    """A data set read on demand (see the module docstring)."""

    shape: tuple[int, ...] = (0,)
    source: str = "data"
    raw_dtype: np.dtype = np.dtype(np.float32)  # the dtype stored (uint8 images keep their 0..255 range)

    def __len__(self) -> int:
        return int(self.shape[0])

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[1:])

    @property
    def nbytes(self) -> int:
        """Bytes of these examples as float32, i.e. as the in-memory path would hold them."""
        return 4 * len(self) * math.prod(self.example_shape)

    def take(self, idx) -> np.ndarray:
        """Examples ``idx`` (any order, repeats allowed) as a float32 array ``(len(idx), *example_shape)``."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.source}: index out of range 0..{len(self) - 1}")
        if len(idx) < 2 or bool((np.diff(idx) >= 0).all()):
            return self._take_sorted(idx)
        order = np.argsort(idx, kind="stable")
        out = self._take_sorted(idx[order])
        result = np.empty_like(out)
        result[order] = out
        return result

    def _take_sorted(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def blocks(self) -> np.ndarray | None:
        """A block number per example when the source is stored in blocks (Parquet row groups), else None."""
        return None

    def subset(self, idx) -> "Rows":
        return SubsetRows(self, np.asarray(idx, dtype=np.int64))

    def chunks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """The examples in order, ``size`` at a time (default: ``CHUNK``, fewer for large examples)."""
        if size is None:
            size = max(1, min(CHUNK, CHUNK_BYTES // (4 * max(1, math.prod(self.example_shape)))))
        for start in range(0, len(self), size):
            yield self.take(np.arange(start, min(start + size, len(self))))

    def read_all(self) -> np.ndarray:
        from .limits import ensure_fits

        ensure_fits(self.nbytes, self.source)
        return self.take(np.arange(len(self)))


class ArrayRows(Rows):
    """An array (or ``numpy.memmap``) as :class:`Rows`."""

    def __init__(self, array: np.ndarray, source: str = "array"):
        self.array = array
        self.shape = tuple(array.shape)
        self.source = source
        self.raw_dtype = array.dtype

    def _take_sorted(self, idx: np.ndarray) -> np.ndarray:
        return check_finite(np.asarray(self.array[idx]), self.source, rows=idx)


class SubsetRows(Rows):
    """Examples ``idx`` of ``base``, in that order (a train, validation or test split)."""

    def __init__(self, base: Rows, idx: np.ndarray):
        self.base = base.base if isinstance(base, SubsetRows) else base
        self.idx = base.idx[idx] if isinstance(base, SubsetRows) else idx
        self.shape = (len(self.idx), *base.example_shape)
        self.source = base.source
        self.raw_dtype = base.raw_dtype

    def _take_sorted(self, idx: np.ndarray) -> np.ndarray:
        return self.base.take(self.idx[idx])

    def blocks(self) -> np.ndarray | None:
        b = self.base.blocks()
        return None if b is None else b[self.idx]


class NpyRows(Rows):
    """A ``.npy`` file read row by row with ``os.pread``.

    Why not ``numpy.load(mmap_mode="r")``: the pages of a memory map that a pass has touched count
    towards the process's resident memory until the kernel needs them back, so one epoch over a
    mapped file grows the resident set to the file's size. ``pread`` goes through the page cache
    too, but only the batch being read is ever resident in the process."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype: np.dtype, offset: int):
        self.path, self.shape, self.raw_dtype, self.offset = path, tuple(shape), np.dtype(dtype), offset
        self.source = path
        self.row_bytes = self.raw_dtype.itemsize * math.prod(shape[1:])
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self):  # DataLoader workers open their own descriptor
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            with path_access(self.path, "read"):
                self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
        return self._fd

    def _take_sorted(self, idx: np.ndarray) -> np.ndarray:
        fd = self._descriptor()
        out = np.empty((len(idx), *self.example_shape), dtype=self.raw_dtype)
        flat = out.reshape(len(idx), -1).view(np.uint8).reshape(len(idx), self.row_bytes) if len(idx) else None
        # Runs of consecutive rows are read with one call each.
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for run in np.split(np.arange(len(idx)), breaks):
            if not len(run):
                continue
            first, count = int(idx[run[0]]), len(run)
            want = count * self.row_bytes
            with path_access(self.path, "read"):
                data = os.pread(fd, want, self.offset + first * self.row_bytes)
            if len(data) != want:
                raise DataError(f"{self.path}: the file ended early (truncated since it was opened?)")
            flat[run[0] : run[0] + count] = np.frombuffer(data, np.uint8).reshape(count, self.row_bytes)
        return check_finite(out, self.path, rows=idx)


def check_finite(x: np.ndarray, source: str, base: int = 0, rows: np.ndarray | None = None) -> np.ndarray:
    """``x`` as float32, refusing NaN and Inf *after* the conversion (1e308 in float64 is finite but
    overflows float32): the error names the example (``rows[i]`` or ``base + i``) and the position."""
    if x.dtype == np.float32:
        y = x
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            y = x.astype(np.float32)
    if np.issubdtype(x.dtype, np.floating):
        flat = y.reshape(len(y), -1)
        finite = np.isfinite(flat)
        if not finite.all():
            i, j = (int(v) for v in np.argwhere(~finite)[0])
            row = int(rows[i]) if rows is not None else base + i
            where = (f"column {j}" if y.ndim == 2 else
                     f"position {tuple(int(v) for v in np.unravel_index(j, y.shape[1:]))}")
            original = x.reshape(len(x), -1)[i, j]
            if np.isfinite(original):
                raise DataError(f"{source}: row {row}, {where}: {float(original)!r} overflows float32 "
                                f"(largest {np.finfo(np.float32).max:.3g})")
            raise DataError(f"{source}: row {row} has a non-finite value ({float(original)}) in {where}")
    return y
