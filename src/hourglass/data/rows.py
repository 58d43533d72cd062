"""Examples: arrays in the layout hourglass uses, checked, and data sets read on demand.

Every array that comes in is checked before it reaches a model (:func:`check_array`: numbers only,
no NaN or Inf with the first bad row named, nothing empty, the right number of dimensions) and put
in the layout the models take (:func:`as_examples`: tables ``(N, D)``, images ``(N, C, H, W)``).

A :class:`Rows` is a data set of ``len(rows)`` examples of shape ``rows.shape[1:]`` that reads the
examples it is asked for and nothing else: ``take(indices)`` returns them as a float32 array, in
the order asked. The streaming path (:mod:`hourglass.data.streaming`) feeds the trainer from one;
``read_all()`` materialises it for the in-memory path.

Kinds: :class:`ArrayRows` (an array already in memory, or a ``numpy.memmap``), :class:`SubsetRows`
(a split of another), and those of the formats (:mod:`hourglass.data.formats`: a ``.npy`` file read
with ``os.pread``, image files decoded on demand) and of :mod:`~hourglass.data.transform` (table rows). Sources
stored in blocks (Parquet row groups) say so through ``blocks()``, so a shuffled pass can visit one
block at a time.

This module imports no torch.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from ..errors import DataError

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
        from ..memory import ensure_fits

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


def check_array(x: np.ndarray, source: str, min_dims: int = 2) -> np.ndarray:
    """Numeric, non-empty, finite as float32 (checked after the conversion: 1e308 overflows it).
    Floating-point data come back as float32; integer data keep their dtype (uint8 images keep 0..255)."""
    x = np.asarray(x)
    if x.dtype == object or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        if x.dtype != np.bool_:
            raise DataError(f"{source}: expected numbers, found dtype {x.dtype}")
        x = x.astype(np.uint8)
    if x.ndim < min_dims:
        raise DataError(f"{source}: expected an array of shape (N, ...) with N examples, found shape {x.shape}")
    if x.size == 0:
        raise DataError(f"{source}: no data (shape {x.shape})")
    if np.issubdtype(x.dtype, np.floating):
        return check_finite(x, source)
    return x


def labels_to_int(y: np.ndarray, source: str) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels as int64; other labels mapped to 0..K-1 with their names kept."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be one per example, found shape {y.shape}")
    if np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64), None
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise DataError(f"{source}: label {int(np.argmin(np.isfinite(y)))} is missing or not finite")
        if np.all(y == np.round(y)):
            return y.astype(np.int64), None
    names, codes = np.unique(y.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]


def is_dataframe(obj: Any) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "dtypes")


def as_array(obj: Any, what: str) -> np.ndarray:
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        obj = obj.detach().cpu().numpy()
    if is_dataframe(obj):
        obj = obj.to_numpy()
    try:
        return np.asarray(obj)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: cannot be read as an array ({e})") from None


def as_examples(x: Any, what: str = "x") -> tuple[np.ndarray, str]:
    """Examples as an array ``(N, ...)`` in the layout hourglass uses, and their kind ("image" or
    "tabular"): ``(N, H, W)`` gains a channel axis and channels-last images are moved to channels-first."""
    x = as_array(x, what)
    if x.ndim == 2:
        return check_array(x, what), "tabular"
    if x.ndim == 3:
        return check_array(x[:, None], what), "image"
    if x.ndim == 4:
        if x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
        return check_array(x, what), "image"
    raise DataError(f"{what}: expected examples of shape (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C); "
                    f"found shape {x.shape}")


def value_range(x: np.ndarray, kind: str) -> tuple[float, float] | None:
    """Images: bytes are 0..255; other images keep their own global range (per-pixel scaling would blow up
    the noise in near-constant border pixels). Tables: None (scaled per feature)."""
    if kind != "image":
        return None
    if x.dtype == np.uint8:
        return (0.0, 255.0)
    return _range_rule(float(x.min()), float(x.max()))


def rows_value_range(rows, kind: str) -> tuple[float, float] | None:
    """:func:`value_range` of examples read on demand: one streaming pass for the global min and max."""
    if kind != "image":
        return None
    if rows.raw_dtype == np.uint8:
        return (0.0, 255.0)
    lo, hi = np.inf, -np.inf
    for chunk in rows.chunks():
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    return _range_rule(lo, hi)


def _range_rule(lo: float, hi: float) -> tuple[float, float]:
    if lo >= 0.0 and hi <= 1.0:
        return (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
