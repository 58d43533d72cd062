"""Data in every form a user holds it, turned into one :class:`DataBundle` (raw train and test arrays).

``as_bundle(data, ...)`` accepts:

* a registered data set name (``"digits"``, ``"mnist"``, ...) or a file path (``.npy``, ``.npz``, ``.csv``);
* an array ``x`` of shape ``(N, D)`` (a table), ``(N, C, H, W)`` or ``(N, H, W, C)`` (images; channels
  last when the last axis has 1, 3 or 4 values and the second does not) or ``(N, H, W)`` (grayscale
  images); a NumPy array, a torch tensor or anything ``numpy.asarray`` takes;
* a pair ``(x, y)``: examples and one label per example;
* a pair ``(x_train, x_test)``: a split you made (the second has the shape of the first);
* ``((x_train, y_train), (x_test, y_test))``: the form ``keras.datasets.mnist.load_data()`` returns;
* a pandas DataFrame of numeric columns; ``label_column`` names the label column.

Data without a split of their own are split into train and test by ``test_fraction`` (stratified by
label where every class has two examples or more), seeded. Every failure is a :class:`DataError` naming
the shape, dtype or column at fault.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from ..errors import DataError
from .datasets import DataBundle, load_data, split_arrays
from .tabular import check_array, labels_to_int

IN_MEMORY = "in-memory"


def as_bundle(data: Any, *, data_dir: str | None = None, test_fraction: float = 0.2,
              label_column: str | int | None = None, seed: int = 0) -> DataBundle:
    """A :class:`DataBundle` of raw arrays from ``data`` in any of the forms in the module docstring."""
    if isinstance(data, DataBundle):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_data(os.fspath(data), data_dir, test_fraction=test_fraction, label_column=label_column,
                         seed=seed)
    if data_dir is not None:
        raise DataError(f"data_dir={data_dir!r} is for named data sets; the data here are given in memory")
    if _is_dataframe(data):
        x, y, names = _from_dataframe(data, label_column)
        return _bundle_from_arrays(x, y, names, None, None, test_fraction, seed, "DataFrame")
    if label_column is not None:
        raise DataError(f"label_column={label_column!r} names a column, but the data given are "
                        f"{type(data).__name__}, not a table with columns (use a DataFrame or a file)")
    if isinstance(data, (tuple, list)) and not _is_array_like(data):
        return _from_tuple(data, test_fraction, seed)
    return _bundle_from_arrays(data, None, None, None, None, test_fraction, seed, "array")


def _is_dataframe(obj: Any) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "dtypes")


def _is_array_like(obj: Any) -> bool:
    """A list of numbers or of equal-length rows (an array written as a list), not a tuple of arrays."""
    if isinstance(obj, tuple) or not obj:
        return False
    return all(isinstance(v, (int, float, np.number)) or (isinstance(v, (list, tuple)) and
               all(isinstance(w, (int, float, np.number)) for w in v)) for v in obj)


def _array(obj: Any, what: str) -> np.ndarray:
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        obj = obj.detach().cpu().numpy()
    if _is_dataframe(obj):
        obj = obj.to_numpy()
    try:
        return np.asarray(obj)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: cannot be read as an array ({e})") from None


def _from_tuple(data, test_fraction: float, seed: int) -> DataBundle:
    if len(data) != 2:
        raise DataError(
            f"data given as a sequence of {len(data)} items; pass x, (x, y), (x_train, x_test) or "
            "((x_train, y_train), (x_test, y_test))")
    first, second = data
    if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)) and not _is_array_like(first):
        if len(first) != 2 or len(second) != 2:
            raise DataError("data as ((x_train, y_train), (x_test, y_test)) needs two pairs")
        x_tr, x_te = _array(first[0], "x_train"), _array(second[0], "x_test")
        return _bundle_from_arrays(x_tr, first[1], None, x_te, second[1], test_fraction, seed, "arrays")
    a, b = _array(first, "data[0]"), _array(second, "data[1]")
    if b.ndim == 1 and a.ndim >= 2 and len(b) == len(a):
        return _bundle_from_arrays(a, b, None, None, None, test_fraction, seed, "array")
    if b.ndim == a.ndim and a.ndim >= 2 and b.shape[1:] == a.shape[1:]:
        return _bundle_from_arrays(a, None, None, b, None, test_fraction, seed, "arrays")
    raise DataError(
        f"data as a pair: shapes {a.shape} and {b.shape} are neither (x, y) with one label per example nor "
        "(x_train, x_test) with examples of the same shape")


def _from_dataframe(df, label_column) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    columns = [str(c) for c in df.columns]
    y = names = None
    if label_column is not None:
        key = label_column
        if isinstance(key, int) and key not in df.columns:
            if not -len(columns) <= key < len(columns):
                raise DataError(f"label_column {key}: the DataFrame has {len(columns)} columns")
            key = df.columns[key]
        if key not in df.columns:
            raise DataError(f"label_column {label_column!r} is not a column of the DataFrame; columns: "
                            f"{', '.join(columns)}")
        y, names = labels_to_int(df[key].to_numpy(), f"DataFrame column {str(key)!r}")
        df = df.drop(columns=[key])
    if df.shape[1] == 0:
        raise DataError("the DataFrame has no feature columns besides the label")
    for col, dtype in zip(df.columns, df.dtypes):
        kind = getattr(dtype, "kind", "O")
        if kind not in "biuf":
            raise DataError(f"DataFrame column {str(col)!r} has dtype {dtype}: only numeric columns can be "
                            "features (drop it or encode it as numbers)")
    x = df.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        n = int(bad[:, col].sum())
        raise DataError(f"DataFrame column {str(df.columns[col])!r} has {n} missing or non-finite value(s), "
                        f"the first in row {row}")
    return x.astype(np.float32), y, names


def as_examples(x: Any, what: str = "x") -> tuple[np.ndarray, str]:
    """Examples as an array ``(N, ...)`` in the layout hourglass uses, and their kind ("image" or
    "tabular"): ``(N, H, W)`` gains a channel axis and channels-last images are moved to channels-first."""
    x = _array(x, what)
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


def _labels(y: Any, n: int, what: str) -> tuple[np.ndarray | None, list[str] | None]:
    if y is None:
        return None, None
    y, names = labels_to_int(_array(y, what), what)
    if len(y) != n:
        raise DataError(f"{what}: {len(y)} labels for {n} examples")
    return y, names


def _bundle_from_arrays(x, y, names, x_test, y_test, test_fraction, seed, what) -> DataBundle:
    x, kind = as_examples(x, "x" if x_test is None else "x_train")
    y, ynames = _labels(y, len(x), "y" if x_test is None else "y_train")
    names = names or ynames
    if x_test is None:
        source = f"{IN_MEMORY} {what} {tuple(x.shape)} {x.dtype}"
        bundle = split_arrays(IN_MEMORY, x, y, names, test_fraction, seed, source=source, kind=kind,
                              value_range=_value_range(x, kind))
    else:
        x_test, kind_test = as_examples(x_test, "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"x_test: examples of shape {x_test.shape[1:]}, but x_train's are {x.shape[1:]}")
        y_test, _ = _labels(y_test, len(x_test), "y_test")
        if (y is None) != (y_test is None):
            raise DataError("labels given for only one of the train and test data")
        source = f"{IN_MEMORY} {what} train {tuple(x.shape)}, test {tuple(x_test.shape)} {x.dtype}"
        bundle = DataBundle(IN_MEMORY, x, y, x_test, y_test, kind, _value_range(x, kind), source, names)
    bundle.fingerprint = fingerprint(bundle)
    return bundle


def _value_range(x: np.ndarray, kind: str) -> tuple[float, float] | None:
    """Images: bytes are 0..255; other images keep their own global range (per-pixel scaling would blow up
    the noise in near-constant border pixels). Tables: None (scaled per feature)."""
    if kind != "image":
        return None
    if x.dtype == np.uint8:
        return (0.0, 255.0)
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def fingerprint(bundle: DataBundle) -> str:
    """A short hash of the bundle's arrays: which in-memory data a run was trained on."""
    h = hashlib.sha256()
    for a in (bundle.x_train, bundle.y_train, bundle.x_test, bundle.y_test):
        if a is not None:
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]
