"""Tables and arrays from files: ``.npy``, ``.npz``, ``.csv`` (and IDX image files for new inputs).

Everything that comes in is checked before it reaches a model: numbers only, no NaN or Inf (the
first bad row is named), nothing empty, the right number of dimensions.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DataError

X_KEYS = ("x", "X", "data", "features", "images")
Y_KEYS = ("y", "labels", "label", "target", "targets")


def check_array(x: np.ndarray, source: str, min_dims: int = 2) -> np.ndarray:
    """Numeric, non-empty, finite; returns float32. Names the first non-finite row."""
    x = np.asarray(x)
    if x.dtype == object or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{source}: expected numbers, found dtype {x.dtype}")
    if x.ndim < min_dims:
        raise DataError(f"{source}: expected an array of shape (N, ...) with N examples, found shape {x.shape}")
    if x.size == 0:
        raise DataError(f"{source}: no data (shape {x.shape})")
    flat = x.reshape(len(x), -1)
    if np.issubdtype(x.dtype, np.floating):
        finite = np.isfinite(flat)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise DataError(f"{source}: row {row} has a non-finite value ({flat[row, col]}) in column {col}")
    return x


def labels_to_int(y: np.ndarray, source: str) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels as int64; other labels mapped to 0..K-1 with their names kept."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be one per example, found shape {y.shape}")
    if np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64), None
    if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and np.all(y == np.round(y)):
        return y.astype(np.int64), None
    names, codes = np.unique(y.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]


def read_npy(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{path}: cannot read as a numeric .npy file ({e})") from None
    return check_array(x, str(path)), None, None


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        raise DataError(f"{path}: cannot read as a numeric .npz file ({e})") from None
    xk = next((k for k in X_KEYS if k in arrays), None)
    if xk is None:
        if len(arrays) == 1:
            xk = next(iter(arrays))
        else:
            raise DataError(f"{path}: no features array; name it one of {', '.join(X_KEYS)} "
                            f"(found {', '.join(arrays)})")
    x = check_array(arrays[xk], f"{path}[{xk}]")
    yk = next((k for k in Y_KEYS if k in arrays), None)
    y, names = (None, None)
    if yk is not None:
        y, names = labels_to_int(arrays[yk], f"{path}[{yk}]")
        if len(y) != len(x):
            raise DataError(f"{path}: {len(x)} examples but {len(y)} labels")
    return x, y, names


def read_csv(path: Path,
             label_column: str | int | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: empty file")
    header = None
    if any(not _is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise DataError(f"{path}: no data rows")
    width = len(rows[0])
    label_idx = None
    if label_column is not None:
        if isinstance(label_column, int):
            label_idx = label_column if label_column >= 0 else width + label_column
        elif header is not None and label_column in header:
            label_idx = header.index(label_column)
        else:
            raise DataError(f"{path}: no label column {label_column!r}"
                            + (f"; columns: {', '.join(header)}" if header else ""))
        if not 0 <= label_idx < width:
            raise DataError(f"{path}: label column {label_column} is out of range (the file has {width} columns)")
    feats, labels = [], []
    for i, row in enumerate(rows):
        line = i + 1 + (header is not None)
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} columns, expected {width}")
        vals = []
        for j, cell in enumerate(row):
            if j == label_idx:
                labels.append(cell.strip())
                continue
            try:
                vals.append(float(cell))
            except ValueError:
                col = header[j] if header else j
                raise DataError(f"{path}: line {line}, column {col!r}: {cell!r} is not a number") from None
        feats.append(vals)
    x = np.asarray(feats, dtype=np.float64)
    if x.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides the label")
    for i, row in enumerate(x):
        if not np.isfinite(row).all():
            raise DataError(f"{path}: data row {i} (line {i + 1 + (header is not None)}) has a NaN or Inf value")
    y, names = (None, None)
    if label_idx is not None:
        y, names = labels_to_int(np.asarray([_maybe_number(v) for v in labels]), f"{path} label column")
    return x.astype(np.float32), y, names


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _maybe_number(s: str):
    try:
        f = float(s)
        return int(f) if f.is_integer() else s
    except ValueError:
        return s


def read_table(path: str | Path, label_column: str | int | None = None):
    """(x, y or None, label names or None) from a .npy, .npz or .csv file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if label_column is not None:
            raise DataError(f"{path}: a .npy file has no columns to take labels from; use .npz with a 'y' array")
        return read_npy(path)
    if suffix == ".npz":
        return read_npz(path)
    if suffix == ".csv":
        return read_csv(path, label_column)
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .npy, .npz or .csv)")


def read_examples(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples to encode or reconstruct: a table file, or an IDX image file (plain or .gz)."""
    path = Path(path)
    if path.suffix.lower() in (".npy", ".npz", ".csv"):
        x, y, _ = read_table(path)
        return x, y
    from .idx import read_idx

    x = read_idx(path)
    if x.ndim == 3:
        x = x[:, None]
    return check_array(x, str(path)), None
