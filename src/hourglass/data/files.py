"""Data from a path: a table, an array file or a folder of images, as a :class:`DataBundle`.

* a folder: images (:mod:`~hourglass.data.images`);
* ``.csv``, ``.tsv``, ``.parquet``: a table with a header (:mod:`~hourglass.data.tables`);
* ``.npy``: one array ``(N, ...)``; read on demand (``os.pread``) when the run streams;
* ``.npz``: features and labels (``x``/``y`` and the other names :mod:`~hourglass.data.tabular` knows).

``lazy=True`` returns examples as :class:`~hourglass.data.rows.Rows` where the format can be read
on demand (``.npy``, Parquet, image folders); the caller then decides whether to read them into
memory or to stream them. ``stored`` is what a run recorded of its data (the table transform, the
image settings, the class names): a run reading its own data again, or new data to encode, treats
them exactly as in training instead of fitting anything anew.

Every bundle records the files it came from (:func:`file_record`: path, size, modification time,
and a SHA-256 for files up to ``CHECKSUM_MAX`` bytes).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, path_access
from .bundle import DataBundle, split_arrays, split_indices
from .rows import ArrayRows

CHECKSUM_MAX = 256 << 20  # larger files are recorded by size and modification time only (hashing costs a pass)
ARRAY_SUFFIXES = (".npy", ".npz")


def file_record(path: Path) -> dict[str, Any]:
    """Path, size, modification time and (for files up to ``CHECKSUM_MAX``) SHA-256 of a file."""
    with path_access(path, "read"):
        st = path.stat()
        rec: dict[str, Any] = {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        if st.st_size <= CHECKSUM_MAX:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            rec["sha256"] = h.hexdigest()
    return rec


def changed_since(record: dict[str, Any] | None) -> str | None:
    """A sentence saying how the data recorded in ``record`` differ now, or None when they do not."""
    if not record or "path" not in record:
        return None
    p = Path(record["path"])
    if not p.exists():
        return f"{p} no longer exists"
    if record.get("kind") == "image folder":
        return None  # listing digests are compared by the image loader's own record
    st = p.stat()
    if st.st_size != record.get("bytes"):
        return f"{p} has changed since the run read it ({record.get('bytes')} bytes then, {st.st_size} now)"
    if st.st_mtime_ns != record.get("mtime_ns") and "sha256" in record and file_record(p).get("sha256") != \
            record["sha256"]:
        return f"{p} has changed since the run read it (its SHA-256 differs)"
    return None


def load_path(path: str | Path, *, options=None, test_fraction: float = 0.2, label_column=None, seed: int = 0,
              lazy: bool = False, stored: dict[str, Any] | None = None) -> DataBundle:
    """The data at ``path`` (a file or an image folder) split into train and test (see the module docstring).
    ``options`` is a :class:`~hourglass.options.DataOptions` (its table and image settings are used)."""
    path = Path(path)
    stored = stored or {}
    opt = (lambda k, d=None: getattr(options, k, d)) if options is not None else (lambda k, d=None: d)
    if path.is_dir():
        from .images import load_image_folder

        image = stored.get("image") or {}
        size = image.get("size")
        return load_image_folder(path, channels=image.get("channels", opt("channels")),
                                 image_size="x".join(map(str, size)) if size else opt("image_size"),
                                 skip_bad_files=opt("skip_bad_files", False), test_fraction=test_fraction,
                                 seed=seed, lazy=lazy, label_names=stored.get("label_names"))
    if not path.exists():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    from .tables import TABLE_SUFFIXES

    if suffix in TABLE_SUFFIXES:
        return load_table(path, options=options, label_column=label_column, test_fraction=test_fraction,
                          seed=seed, lazy=lazy, stored=stored)
    if suffix not in ARRAY_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r} (use a folder of images, .csv, .tsv, .parquet, "
                        ".npy or .npz)")
    from .tabular import open_npy_rows, read_table

    if suffix == ".npy" and label_column is not None:
        raise DataError(f"{path}: a .npy file has no columns to take labels from; use .npz with a 'y' array")
    record = {"files": [file_record(path)]}
    if suffix == ".npy" and lazy:
        rows = open_npy_rows(path)
        kind = "tabular" if len(rows.shape) == 2 else "image"
        from .examples import rows_value_range

        bundle = split_arrays(str(path), rows, None, None, test_fraction, seed, source=str(path.resolve()),
                              kind=kind, value_range=rows_value_range(rows, kind))
    else:
        x, y, names = read_table(path)
        from .examples import as_examples, value_range

        x, kind = as_examples(x, str(path))
        bundle = split_arrays(str(path), x, y, names, test_fraction, seed, source=str(path.resolve()), kind=kind,
                              value_range=value_range(x, kind))
    bundle.files = record
    return bundle


def load_table(path_or_frame, *, options=None, label_column=None, test_fraction: float = 0.2, seed: int = 0,
               lazy: bool = False, stored: dict[str, Any] | None = None) -> DataBundle:
    """A CSV/TSV/Parquet file or a DataFrame split into train and test, its transform fitted on the
    training rows (or the run's ``stored`` one applied)."""
    from .tables import TableRows, TableTransform, dataframe_columns, open_table, read_labels, resolve_columns

    stored = stored or {}
    opt = (lambda k, d=None: getattr(options, k, d)) if options is not None else (lambda k, d=None: d)
    is_path = isinstance(path_or_frame, (str, os.PathLike))
    src = open_table(path_or_frame) if is_path else dataframe_columns(path_or_frame)
    if stored.get("transform"):
        transform = TableTransform.from_dict(stored["transform"])
        label = transform.label
    else:
        transform = None
        label, features = resolve_columns(src, label_column, opt("feature_columns"), opt("drop_columns"))
    y = names = None
    if label is not None:
        from .tabular import labels_to_int

        raw = read_labels(src, label)
        y, names = labels_to_int(raw, f"{src.source} label column {label!r}")
        if stored.get("label_names"):
            names = stored["label_names"]
            y = np.asarray([names.index(str(v)) for v in raw], dtype=np.int64)
    tr, te = split_indices(src.source, src.n_rows, y, test_fraction, seed)
    if transform is None:
        transform = TableTransform.fit(src, tr, label, features, opt("categorical", "onehot"), opt("impute", "none"))
    x_tr, x_te = TableRows(src, transform, tr), TableRows(src, transform, te)
    if not lazy:
        x_tr, x_te = x_tr.read_all(), x_te.read_all()
    files = {"files": [file_record(Path(path_or_frame))]} if is_path else None
    source = str(Path(path_or_frame).resolve()) if is_path else "in-memory DataFrame"
    name = str(path_or_frame) if is_path else "in-memory"
    bundle = DataBundle(name, x_tr, y[tr] if y is not None else None, x_te, y[te] if y is not None else None,
                        "tabular", None, source, names, transform=transform.to_dict(), files=files, index_test=te)
    return bundle


def open_examples(path: str | Path, stored: dict[str, Any], input_shape: tuple[int, ...]):
    """New examples to feed a run, read on demand: ``(rows, labels, label values, row numbers)``.

    ``rows`` are float32 examples in the run's feature space (the run's table transform applied;
    images decoded with the run's channels and size); ``labels`` are class indices of the run
    (or None), ``label values`` what the file holds (written beside the codes)."""
    from .tabular import read_examples

    path = Path(path)
    if path.is_dir():
        from .images import ImageRows, list_images

        image = stored.get("image") or {}
        if not image:
            raise DataError(f"{path}: a folder of images, but the run was not trained on images from a folder")
        parts = [path / "train", path / "test"] if (path / "train").is_dir() and (path / "test").is_dir() else [path]
        files, labels = [], []
        for part in parts:
            f, lab = list_images(part)
            files += f
            labels += lab if lab is not None else [None] * len(f)
        rows = ImageRows(files, image["channels"], tuple(image["size"]), str(path))
        names = stored.get("label_names")
        values = np.asarray(labels, dtype=object) if any(v is not None for v in labels) else None
        y = None
        if values is not None and names:
            unknown = sorted({str(v) for v in values} - set(names))
            if unknown:
                raise DataError(f"{path}: class {unknown[0]!r} is not one of the run's classes ({', '.join(names)})")
            y = np.asarray([names.index(str(v)) for v in values], dtype=np.int64)
        return rows, y, values, np.arange(len(rows))
    suffix = path.suffix.lower()
    from .tables import TABLE_SUFFIXES

    if suffix in TABLE_SUFFIXES and stored.get("transform"):
        from .tables import TableRows, TableTransform, open_table, read_labels

        transform = TableTransform.from_dict(stored["transform"])
        src = open_table(path)
        missing = [c for c in transform.columns if c not in src.columns]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r}, one of the run's features "
                            f"({', '.join(transform.columns)})")
        values = y = None
        if transform.label is not None and transform.label in src.columns:
            values = read_labels(src, transform.label)
            names = stored.get("label_names")
            if names is not None:
                known = {str(v) for v in values} <= set(names)
                y = np.asarray([names.index(str(v)) for v in values], dtype=np.int64) if known else None
            elif np.issubdtype(np.asarray(values).dtype, np.integer):
                y = np.asarray(values, dtype=np.int64)
        return TableRows(src, transform, np.arange(src.n_rows)), y, values, np.arange(src.n_rows)
    if suffix == ".npy":
        from .tabular import open_npy_rows

        rows = open_npy_rows(path)
        return rows, None, None, np.arange(len(rows))
    x, y = read_examples(path)
    return ArrayRows(np.asarray(x), str(path)), y, y, np.arange(len(x))
