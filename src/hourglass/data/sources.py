"""The one dispatcher: data in every form a user holds it, turned into the same objects.

Training, ``--resume``, ``evaluate`` and the scikit-learn estimators take their data through
:func:`as_bundle` (a :class:`DataBundle` of raw train and test examples); a run reading new examples
(``encode``, ``reconstruct``, ``run.encode(df)``) through :func:`open_input` and :func:`table_features`;
:func:`read_table` and :func:`read_examples` read a file whole as numbers. Files and folders go to
their registered format (:mod:`hourglass.data.formats`, found by :func:`~hourglass.data.formats.format_for`
and nowhere else); a fitted table transform is applied by :mod:`hourglass.data.transform` alone.

``as_bundle(data, ...)`` accepts:

* a registered data set name (``"digits"``, ``"mnist"``, ...), a file path (``.npy``, ``.npz``, ``.csv``,
  ``.tsv``, ``.parquet``, or a suffix a plugin format registers) or a folder of images;
* an array ``x`` of shape ``(N, D)`` (a table), ``(N, C, H, W)`` or ``(N, H, W, C)`` (images; channels
  last when the last axis has 1, 3 or 4 values and the second does not) or ``(N, H, W)`` (grayscale
  images); a NumPy array, a torch tensor or anything ``numpy.asarray`` takes;
* a pair ``(x, y)``: examples and one label per example;
* a pair ``(x_train, x_test)``: a split you made (the second has the shape of the first);
* ``((x_train, y_train), (x_test, y_test))``: the form ``keras.datasets.mnist.load_data()`` returns;
* a pandas DataFrame; ``label_column`` names the label column, text columns are one-hot encoded
  (:mod:`~hourglass.data.transform`).

Data without a split of their own are split into train and test by ``test_fraction`` (stratified by
label where every class has two examples or more), seeded. Every failure is a :class:`DataError` naming
the shape, dtype or column at fault.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .bundle import DataBundle, split_arrays
from .datasets import load_data
from .formats import Examples, Request, format_for
from .rows import as_array, as_examples, is_dataframe, labels_to_int, value_range
from .transform import dataframe_columns, features_of, table_bundle

IN_MEMORY = "in-memory"


def as_bundle(data: Any, *, data_dir: str | None = None, test_fraction: float = 0.2,
              label_column: str | int | None = None, seed: int = 0, options=None, lazy: bool = False,
              stored: dict | None = None) -> DataBundle:
    """A :class:`DataBundle` of raw arrays from ``data`` in any of the forms in the module docstring.
    ``options`` (:class:`~hourglass.options.DataOptions`) carries the table and image settings; with
    ``lazy``, files that can be read on demand come as :class:`~hourglass.data.rows.Rows`; ``stored``
    is a run's record of its data (see :class:`hourglass.data.formats.Request`)."""
    if isinstance(data, DataBundle):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_data(os.fspath(data), data_dir, test_fraction=test_fraction, label_column=label_column,
                         seed=seed, options=options, lazy=lazy, stored=stored)
    if data_dir is not None:
        raise DataError(f"data_dir={data_dir!r} is for named data sets; the data here are given in memory")
    if is_dataframe(data):
        request = Request(options, label_column, test_fraction, seed, False, stored)
        bundle = table_bundle(dataframe_columns(data), request, name="in-memory", source="in-memory DataFrame")
        bundle.fingerprint = fingerprint(bundle)
        return bundle
    if label_column is not None:
        raise DataError(f"label_column={label_column!r} names a column, but the data given are "
                        f"{type(data).__name__}, not a table with columns (use a DataFrame or a file)")
    if isinstance(data, (tuple, list)) and not _is_array_like(data):
        return _from_tuple(data, test_fraction, seed)
    return _bundle_from_arrays(data, None, None, None, None, test_fraction, seed, "array")


def _is_array_like(obj: Any) -> bool:
    """A list of numbers or of equal-length rows (an array written as a list), not a tuple of arrays."""
    if isinstance(obj, tuple) or not obj:
        return False
    return all(isinstance(v, (int, float, np.number)) or (isinstance(v, (list, tuple)) and
               all(isinstance(w, (int, float, np.number)) for w in v)) for v in obj)


def _from_tuple(data, test_fraction: float, seed: int) -> DataBundle:
    if len(data) != 2:
        raise DataError(
            f"data given as a sequence of {len(data)} items; pass x, (x, y), (x_train, x_test) or "
            "((x_train, y_train), (x_test, y_test))")
    first, second = data
    if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)) and not _is_array_like(first):
        if len(first) != 2 or len(second) != 2:
            raise DataError("data as ((x_train, y_train), (x_test, y_test)) needs two pairs")
        x_tr, x_te = as_array(first[0], "x_train"), as_array(second[0], "x_test")
        return _bundle_from_arrays(x_tr, first[1], None, x_te, second[1], test_fraction, seed, "arrays")
    a, b = as_array(first, "data[0]"), as_array(second, "data[1]")
    if b.ndim == 1 and a.ndim >= 2 and len(b) == len(a):
        return _bundle_from_arrays(a, b, None, None, None, test_fraction, seed, "array")
    if b.ndim == a.ndim and a.ndim >= 2 and b.shape[1:] == a.shape[1:]:
        return _bundle_from_arrays(a, None, None, b, None, test_fraction, seed, "arrays")
    raise DataError(
        f"data as a pair: shapes {a.shape} and {b.shape} are neither (x, y) with one label per example nor "
        "(x_train, x_test) with examples of the same shape")


def _labels(y: Any, n: int, what: str) -> tuple[np.ndarray | None, list[str] | None]:
    if y is None:
        return None, None
    y, names = labels_to_int(as_array(y, what), what)
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
                              value_range=value_range(x, kind))
    else:
        x_test, kind_test = as_examples(x_test, "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"x_test: examples of shape {x_test.shape[1:]}, but x_train's are {x.shape[1:]}")
        y_test, _ = _labels(y_test, len(x_test), "y_test")
        if (y is None) != (y_test is None):
            raise DataError("labels given for only one of the train and test data")
        source = f"{IN_MEMORY} {what} train {tuple(x.shape)}, test {tuple(x_test.shape)} {x.dtype}"
        bundle = DataBundle(IN_MEMORY, x, y, x_test, y_test, kind, value_range(x, kind), source, names)
    bundle.fingerprint = fingerprint(bundle)
    return bundle


def fingerprint(bundle: DataBundle) -> str:
    """A short hash of the bundle's arrays: which in-memory data a run was trained on."""
    h = hashlib.sha256()
    for a in (bundle.x_train, bundle.y_train, bundle.x_test, bundle.y_test):
        if a is not None and isinstance(a, np.ndarray):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def open_input(path: str | Path, stored: dict[str, Any]) -> Examples:
    """New examples for a run from the file or image folder ``path``, read on demand by its format in
    the run's feature space (``stored``: the run's table transform, image settings and class names);
    a file no format claims by its suffix is read as IDX (:class:`~hourglass.data.formats.Examples`)."""
    path = Path(path)
    fmt = format_for(path, new_examples=True)
    if fmt is None:
        raise DataError(f"{path}: no format reads it")
    return fmt.examples(path, stored)


def read_table(path: str | Path, label_column: str | int | None = None):
    """(x, y or None, label names or None) from a file of numbers: a registered format's whole content
    (``.npy``, ``.npz``, a table's columns; a table's text columns are an error here, training one-hot
    encodes them: :mod:`~hourglass.data.transform`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    fmt = format_for(path)
    if fmt is None:
        from .formats import describe

        raise DataError(f"{path}: unsupported file type {path.suffix.lower()!r} (use {describe()})")
    return fmt.checked_read(path, label_column)


def read_examples(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples to encode or reconstruct: a file of a registered format, or an IDX image file (plain or .gz)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    fmt = format_for(path, new_examples=True)
    if fmt is None:
        raise DataError(f"{path}: no format reads it")
    x, y, _ = fmt.checked_read(path)
    return x, y


def table_features(x, record: dict[str, Any] | None):
    """Raw table rows (a DataFrame, or an array of the table's raw columns) in a run's feature space by
    its stored transform ``record`` (None: ``x`` as it is); see :func:`hourglass.data.transform.features_of`."""
    return features_of(x, record)
