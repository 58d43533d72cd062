"""The ``.npy`` format: one array ``(N, ...)``, read whole or row by row on demand (``os.pread``).

The header is read and checked before anything is allocated (numbers only, its shape against the
file's size and the memory available); the values are then checked as every reader's are: no NaN
or Inf (the first bad row is named), nothing empty, the right number of dimensions. A ``.npy`` file
has no columns: labels come with an ``.npz`` file (:mod:`~hourglass.data.formats.npz`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ...errors import DataError, path_access
from ...memory import ensure_fits, human_bytes
from ..bundle import file_record, split_arrays
from ..rows import Rows, check_array, check_finite, rows_value_range
from . import Examples, Format, Request, register_format

NPY_MAGIC = b"\x93NUMPY"
MAX_NPY_HEADER = 1 << 16  # numpy writes ~128 bytes; a longer header is damage, not data


def parse_npy_header(read, source: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran_order, header bytes) of a ``.npy`` stream, from ``read(n) -> bytes``.

    The format (numpy's ``lib.format``): the magic ``\\x93NUMPY``, a version byte pair, the header
    length (2 bytes little-endian in version 1, 4 in versions 2 and 3), then a Python dict literal
    ``{'descr': ..., 'fortran_order': ..., 'shape': (...)}``. Parsed here with ``ast.literal_eval``
    (never unpickled) so that any damage is a :class:`DataError` naming ``source``."""
    import ast
    import struct

    def fail(what: str) -> DataError:
        return DataError(f"{source}: not a readable .npy file ({what})")

    lead = read(8)
    if len(lead) < 8 or lead[:6] != NPY_MAGIC:
        raise fail("no .npy magic number at the start")
    major = lead[6]
    if major == 1:
        size_bytes, fmt, encoding = 2, "<H", "latin1"
    elif major in (2, 3):
        size_bytes, fmt, encoding = 4, "<I", "latin1" if major == 2 else "utf8"
    else:
        raise fail(f"format version {major}.{lead[7]}")
    raw = read(size_bytes)
    if len(raw) < size_bytes:
        raise fail("truncated header")
    (length,) = struct.unpack(fmt, raw)
    if length > MAX_NPY_HEADER:
        raise fail(f"header of {length} bytes")
    text = read(length)
    if len(text) < length:
        raise fail("truncated header")
    try:
        d = ast.literal_eval(text.decode(encoding))
    except (ValueError, SyntaxError, TypeError, UnicodeDecodeError, MemoryError, RecursionError):
        raise fail("damaged header") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise fail("header without descr, fortran_order and shape")
    shape, fortran = d["shape"], d["fortran_order"]
    if (not isinstance(shape, tuple) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                 for s in shape) or not isinstance(fortran, bool)):
        raise fail(f"shape {shape!r}, fortran_order {fortran!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(d["descr"])
    except Exception:  # noqa: BLE001 - any malformed dtype description is damage in the file
        raise fail(f"dtype {d['descr']!r}") from None
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise DataError(f"{source}: expected numbers, found dtype {dtype}")
    return shape, dtype, fortran, len(lead) + size_bytes + length


def npy_nbytes(shape, dtype) -> int:
    return math.prod(shape) * dtype.itemsize  # Python ints: no overflow on absurd headers


def check_payload(source: str, shape, dtype, have: int) -> int:
    need = npy_nbytes(shape, dtype)
    if have != need:
        raise DataError(f"{source}: the header declares shape {shape} of {dtype} ({human_bytes(need)}) but the file "
                        f"holds {human_bytes(have)} of data" + (" (truncated?)" if have < need else ""))
    # The float32 copy the checks make sits beside the array read.
    ensure_fits(need + 4 * math.prod(shape), source)
    return need


def npy_layout(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran_order, data offset) of a ``.npy`` file, its size checked against the header."""
    with path_access(path, "read"), open(path, "rb") as f:
        shape, dtype, fortran, offset = parse_npy_header(f.read, str(path))
        size = os.fstat(f.fileno()).st_size
    check_payload(str(path), shape, dtype, size - offset)
    return shape, dtype, fortran, offset


def read_npy(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    shape, dtype, fortran, offset = npy_layout(path)
    with path_access(path, "read"), open(path, "rb") as f:
        f.seek(offset)
        x = np.fromfile(f, dtype=dtype, count=math.prod(shape))
    x = x.reshape(shape, order="F" if fortran else "C")
    return check_array(x, str(path)), None, None


def open_npy_rows(path: Path) -> "NpyRows":
    """A ``.npy`` file as :class:`NpyRows`, read on demand (C order only)."""
    shape, dtype, fortran, offset = npy_layout(path)
    if len(shape) < 2 or shape[0] == 0:
        raise DataError(f"{path}: expected an array of shape (N, ...) with N examples, found shape {shape}")
    if fortran and len(shape) > 1:
        raise DataError(f"{path}: stored in Fortran order, which cannot be read row by row; save it with "
                        "numpy.save(path, numpy.ascontiguousarray(x)) or use --in-memory always")
    return NpyRows(str(path), shape, dtype, offset)



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



@register_format("npy", (".npy",))
class Npy(Format):
    """One array per file; streamed runs and new examples read it row by row."""

    def read(self, path, label_column=None):
        if label_column is not None:
            raise DataError(f"{path}: a .npy file has no columns to take labels from; use .npz with a 'y' array")
        return read_npy(path)

    def bundle(self, path: Path, request: Request):
        if not request.lazy:
            return super().bundle(path, request)
        if request.label_column is not None:
            self.read(path, request.label_column)  # the error above, before anything is read
        rows = open_npy_rows(path)
        kind = "tabular" if len(rows.shape) == 2 else "image"
        bundle = split_arrays(str(path), rows, None, None, request.test_fraction, request.seed,
                              source=str(path.resolve()), kind=kind, value_range=rows_value_range(rows, kind))
        bundle.files = {"files": [file_record(path)]}
        return bundle

    def examples(self, path, stored):
        rows = open_npy_rows(path)
        return Examples(rows, None, None, np.arange(len(rows)))
