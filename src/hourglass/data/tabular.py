"""Arrays from files: ``.npy`` and ``.npz`` (tables: :mod:`~hourglass.data.tables`; IDX image files for new inputs).

Everything that comes in is checked before it reaches a model: numbers only, no NaN or Inf (the
first bad row is named), nothing empty, the right number of dimensions.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import DataError, path_access
from .limits import ensure_fits, human_bytes
from .rows import check_finite

X_KEYS = ("x", "X", "data", "features", "images")
Y_KEYS = ("y", "labels", "label", "target", "targets")


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


# -- .npy and .npz: the header is read and checked before anything is allocated ----------------------
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


def _npy_nbytes(shape, dtype) -> int:
    return math.prod(shape) * dtype.itemsize  # Python ints: no overflow on absurd headers


def _check_payload(source: str, shape, dtype, have: int) -> int:
    need = _npy_nbytes(shape, dtype)
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
    _check_payload(str(path), shape, dtype, size - offset)
    return shape, dtype, fortran, offset


def read_npy(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    shape, dtype, fortran, offset = npy_layout(path)
    with path_access(path, "read"), open(path, "rb") as f:
        f.seek(offset)
        x = np.fromfile(f, dtype=dtype, count=math.prod(shape))
    x = x.reshape(shape, order="F" if fortran else "C")
    return check_array(x, str(path)), None, None


def open_npy_rows(path: Path):
    """A ``.npy`` file as :class:`~hourglass.data.rows.NpyRows`, read on demand (C order only)."""
    from .rows import NpyRows

    shape, dtype, fortran, offset = npy_layout(path)
    if len(shape) < 2 or shape[0] == 0:
        raise DataError(f"{path}: expected an array of shape (N, ...) with N examples, found shape {shape}")
    if fortran and len(shape) > 1:
        raise DataError(f"{path}: stored in Fortran order, which cannot be read row by row; save it with "
                        "numpy.save(path, numpy.ascontiguousarray(x)) or use --in-memory always")
    return NpyRows(str(path), shape, dtype, offset)


def _npz_member(zf, name: str, source: str) -> np.ndarray:
    info = zf.getinfo(name)
    with zf.open(info) as f:
        shape, dtype, fortran, offset = parse_npy_header(f.read, source)
        need = _check_payload(source, shape, dtype, info.file_size - offset)
        data = f.read(need)
        if len(data) != need or f.read(1):
            raise DataError(f"{source}: the member's size does not match its header")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """The features (and labels) of an ``.npz`` file; only those members are read."""
    import zipfile
    import zlib

    try:
        with path_access(path, "read"), zipfile.ZipFile(path) as zf:
            members = {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}
            xk = next((k for k in X_KEYS if k in members), None)
            if xk is None:
                if len(members) != 1:
                    raise DataError(f"{path}: no features array; name it one of {', '.join(X_KEYS)} "
                                    f"(found {', '.join(members) or 'nothing'})")
                xk = next(iter(members))
            yk = next((k for k in Y_KEYS if k in members), None)
            x = check_array(_npz_member(zf, members[xk], f"{path}[{xk}]"), f"{path}[{xk}]")
            y, names = (None, None)
            if yk is not None:
                y, names = labels_to_int(_npz_member(zf, members[yk], f"{path}[{yk}]"), f"{path}[{yk}]")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise DataError(f"{path}: cannot read as an .npz file ({e})") from None
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: {len(x)} examples but {len(y)} labels")
    return x, y, names


def read_table(path: str | Path, label_column: str | int | None = None):
    """(x, y or None, label names or None) from a .npy, .npz, .csv, .tsv or .parquet file, numbers only
    (a table's text columns are an error here; training one-hot encodes them: :mod:`~hourglass.data.tables`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if label_column is not None:
            raise DataError(f"{path}: a .npy file has no columns to take labels from; use .npz with a 'y' array")
        return read_npy(path)
    if suffix == ".npz":
        return read_npz(path)
    from .tables import TABLE_SUFFIXES, TableRows, TableTransform, open_table, read_labels, resolve_columns

    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r} (use .npy, .npz, .csv, .tsv or .parquet)")
    src = open_table(path)
    label, features = resolve_columns(src, label_column)
    every = np.arange(src.n_rows)
    transform = TableTransform.fit(src, every, label, features, categorical="error")
    x = TableRows(src, transform, every).read_all()
    y, names = labels_to_int(read_labels(src, label), f"{path} label column") if label is not None else (None, None)
    return x, y, names


def read_examples(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples to encode or reconstruct: a table or array file, or an IDX image file (plain or .gz)."""
    path = Path(path)
    from .tables import TABLE_SUFFIXES

    if path.suffix.lower() in (".npy", ".npz", *TABLE_SUFFIXES):
        x, y, _ = read_table(path)
        return x, y
    from .idx import read_idx

    x = read_idx(path)
    if x.ndim == 3:
        x = x[:, None]
    return check_array(x, str(path)), None
