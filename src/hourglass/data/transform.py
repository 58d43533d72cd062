"""The fitted table transform: named columns -> a float32 matrix, fitted once and applied in one place.

A table reaches hourglass as named columns (:class:`TableSource`): numeric columns as float64 with NaN
for a missing value, text columns as strings (None when missing). The files are read by their format
(:mod:`hourglass.data.formats.table`: CSV, TSV, Parquet); a DataFrame by :func:`dataframe_columns`.

:class:`TableTransform` turns the chosen feature columns into a float32 matrix, in the column order
of the table:

* numeric columns as they are; a missing value is an error naming the column and how many rows
  miss it, unless ``impute`` is ``mean``, ``median`` or ``most-frequent`` (the value fitted on the
  training split; text columns are always imputed with their most frequent category);
* text columns one-hot encoded, with the categories (sorted) fitted on the training split; a
  category first seen later (at encode time) maps to all zeros and is counted in a warning. With
  ``categorical="error"`` a text column is an error naming it.

The transform is fitted in one pass over the training rows (chunk by chunk, so a Parquet file
larger than memory is never held whole: only the median needs its column's training values), is
stored in the run's ``config.json`` and applied again by ``encode``, ``reconstruct`` and the Python
API, so the same file a run was trained on can be encoded by it. The label column is never a
feature; ``feature_columns`` picks the features, ``drop_columns`` leaves some out.

Every use goes through the functions at the end of this module: :func:`table_bundle` (a data set
to train on: fit on the training rows, or the run's stored transform), :func:`table_examples` (new
rows for a run), :func:`table_arrays` (numbers only, ``categorical="error"``) and
:func:`features_of` (a DataFrame or raw array handed to a run's ``encode``); the rows come out as
:class:`TableRows`, which applies the transform as they are read.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import numpy as np

from ..errors import DataError, HourglassWarning
from .bundle import DataBundle, split_indices
from .rows import CHUNK, Rows, is_dataframe, labels_to_int

F32_MAX = float(np.finfo(np.float32).max)
IMPUTE = ("none", "mean", "median", "most-frequent")


class TableSource:
    """Named columns of a table, read by rows. ``kinds[name]`` is ``"numeric"`` or ``"text"``."""

    source: str
    columns: list[str]
    kinds: dict[str, str]
    n_rows: int

    def read(self, idx: np.ndarray, columns: list[str]) -> dict[str, np.ndarray]:
        """Columns ``columns`` of rows ``idx`` (sorted): float64 (NaN: missing) or object (None: missing)."""
        raise NotImplementedError

    def blocks(self) -> np.ndarray | None:
        return None

    def line(self, row: int) -> str:
        """How an error names data row ``row``."""
        return f"row {row}"


class ColumnsSource(TableSource):
    """A table held in memory as columns (a parsed CSV/TSV, a DataFrame)."""

    def __init__(self, source: str, data: dict[str, np.ndarray], kinds: dict[str, str],
                 lines: list[int] | None = None):
        self.source, self.data, self.kinds = source, data, kinds
        self.columns = list(data)
        self.n_rows = len(next(iter(data.values()))) if data else 0
        self.lines = lines  # the file line of each data row (CSV), None for DataFrames

    def read(self, idx, columns):
        return {c: self.data[c][idx] for c in columns}

    def line(self, row: int) -> str:
        return f"row {row}" if self.lines is None else f"line {self.lines[row]} (row {row})"


def dataframe_columns(df) -> ColumnsSource:
    """A pandas DataFrame as a :class:`ColumnsSource` (numeric dtypes numeric, the rest text)."""
    data: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for col in df.columns:
        name = str(col)
        if name in data:
            raise DataError(f"DataFrame column {name!r} appears twice")
        series = df[col]
        if getattr(series.dtype, "kind", "O") in "biuf":
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.flatnonzero(np.isinf(values) | (np.abs(np.nan_to_num(values)) > F32_MAX))
            if len(bad):
                raise DataError(f"DataFrame column {name!r}, row {int(bad[0])}: {values[bad[0]]!r} "
                                + ("is not finite" if np.isinf(values[bad[0]]) else "overflows float32"))
            data[name], kinds[name] = values, "numeric"
        else:
            values = series.to_numpy(dtype=object)
            missing = series.isna().to_numpy()
            data[name] = np.asarray([None if m else str(v) for v, m in zip(values, missing)], dtype=object)
            kinds[name] = "text"
    return ColumnsSource("DataFrame", data, kinds)


def resolve_columns(src: TableSource, label_column: str | int | None, feature_columns=None,
                    drop_columns=None) -> tuple[str | None, list[str]]:
    """(label column name or None, feature column names in file order); unknown names are errors."""
    cols = src.columns
    listing = f"; columns: {', '.join(cols)}"
    label = None
    if label_column is not None:
        if isinstance(label_column, int) and not isinstance(label_column, bool) and str(label_column) not in cols:
            if not -len(cols) <= label_column < len(cols):
                raise DataError(f"{src.source}: label column {label_column} is out of range "
                                f"(the table has {len(cols)} columns)")
            label = cols[label_column]
        elif str(label_column) in cols:
            label = str(label_column)
        else:
            raise DataError(f"{src.source}: no label column {label_column!r}{listing}")
    for what, given in (("feature", feature_columns), ("drop", drop_columns)):
        for c in given or ():
            if c not in cols:
                raise DataError(f"{src.source}: no {what} column {c!r}{listing}")
    if feature_columns:
        if label in feature_columns:
            raise DataError(f"{src.source}: column {label!r} is the label; it cannot also be a feature")
        wanted = set(feature_columns)
        features = [c for c in cols if c in wanted]
    else:
        features = [c for c in cols if c != label]
    features = [c for c in features if c not in set(drop_columns or ())]
    if not features:
        raise DataError(f"{src.source}: no feature columns left besides the label{listing}")
    for c in features:
        if src.kinds[c] not in ("numeric", "text"):
            raise DataError(f"{src.source}: column {c!r} holds {src.kinds[c]} values; drop it (--drop-columns)")
    return label, features


def row_chunks(idx: np.ndarray, blocks: np.ndarray | None, size: int = CHUNK):
    """Sorted row numbers ``idx`` in chunks: whole blocks (row groups) when the source has them."""
    idx = np.sort(np.asarray(idx, dtype=np.int64))
    if blocks is not None and len(idx):
        b = blocks[idx]
        cuts = np.flatnonzero(np.diff(b)) + 1
        yield from np.split(idx, cuts)
        return
    for s in range(0, len(idx), size):
        yield idx[s : s + size]


# -- the fitted transform -------------------------------------------------------------------------
class TableTransform:
    """Feature columns -> float32 matrix (numeric as is, text one-hot), fitted on training rows."""

    def __init__(self, columns: list[str], kinds: dict[str, str], categories: dict[str, list[str]],
                 fill: dict[str, Any], categorical: str = "onehot", impute: str = "none",
                 label: str | None = None):
        self.columns, self.kinds, self.categories, self.fill = columns, kinds, categories, fill
        self.categorical, self.impute, self.label = categorical, impute, label
        self._index = {c: {v: i for i, v in enumerate(cats)} for c, cats in categories.items()}

    @property
    def feature_names(self) -> list[str]:
        out = []
        for c in self.columns:
            out += [f"{c}={v}" for v in self.categories[c]] if self.kinds[c] == "text" else [c]
        return out

    @property
    def width(self) -> int:
        return len(self.feature_names)

    @classmethod
    def fit(cls, src: TableSource, idx: np.ndarray, label: str | None, features: list[str],
            categorical: str = "onehot", impute: str = "none") -> "TableTransform":
        """Categories, imputation values: one pass over training rows ``idx``, chunk by chunk."""
        if impute not in IMPUTE:
            raise DataError(f"impute {impute!r}: choose none, mean, median or most-frequent")
        kinds = {c: src.kinds[c] for c in features}
        text = [c for c in features if kinds[c] == "text"]
        if text and categorical == "error":
            raise DataError(f"{src.source}: column {text[0]!r} holds text (categorical='error'); encode it as "
                            "numbers, drop it (--drop-columns) or one-hot encode it (--categorical onehot)")
        counts = {c: Counter() for c in features if kinds[c] == "text" or impute == "most-frequent"}
        sums = {c: [0.0, 0] for c in features if kinds[c] == "numeric"}
        missing = Counter()
        median_values: dict[str, list[np.ndarray]] = {c: [] for c in sums} if impute == "median" else {}
        for chunk in row_chunks(idx, src.blocks()):
            data = src.read(chunk, features)
            for c in features:
                v = data[c]
                if kinds[c] == "numeric":
                    ok = ~np.isnan(v)
                    missing[c] += int((~ok).sum())
                    sums[c][0] += float(v[ok].sum())
                    sums[c][1] += int(ok.sum())
                    if c in median_values:
                        median_values[c].append(v[ok])
                    if c in counts:
                        counts[c].update(v[ok].tolist())
                else:
                    present = [s for s in v if s is not None]
                    missing[c] += len(v) - len(present)
                    counts[c].update(present)
        categories = {c: sorted(counts[c]) for c in text}
        fill: dict[str, Any] = {}
        for c in features:
            n_present = sums[c][1] if c in sums else sum(counts[c].values())
            if n_present == 0:
                raise DataError(f"{src.source}: column {c!r} has no values in the training rows")
            if missing[c] and impute == "none" and kinds[c] == "numeric":
                raise DataError(f"{src.source}: column {c!r} has missing values in {missing[c]} of the training "
                                "rows; fill them in, drop the column, or use --impute mean|median|most-frequent")
            if kinds[c] == "text" or impute == "most-frequent":
                # ties go to the smallest value, whatever order the rows were read in
                top = min(counts[c].items(), key=lambda kv: (-kv[1], str(kv[0])))[0]
                fill[c] = top if kinds[c] == "text" else float(top)
            elif impute == "mean":
                fill[c] = sums[c][0] / sums[c][1]
            elif impute == "median":
                fill[c] = float(np.median(np.concatenate(median_values[c])))
        return cls(features, kinds, categories, fill, categorical, impute, label)

    def apply(self, data: dict[str, np.ndarray], src: TableSource | None = None,
              rows: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """(float32 features, number of unseen category values) of raw columns ``data``."""
        n = len(next(iter(data.values()))) if data else 0
        out = np.zeros((n, self.width), dtype=np.float32)
        unseen = 0
        j = 0
        for c in self.columns:
            v = data[c]
            if self.kinds[c] == "numeric":
                v = np.asarray(v, dtype=np.float64)
                miss = np.isnan(v)
                if miss.any():
                    if c not in self.fill:
                        first = int(np.argmax(miss))
                        where = (src.line(int(rows[first])) if src is not None and rows is not None
                                 else f"row {first}")
                        raise DataError(f"{src.source if src else 'table'}: column {c!r} has missing values in "
                                        f"{int(miss.sum())} rows (the first: {where}); use --impute "
                                        "mean|median|most-frequent")
                    v = np.where(miss, self.fill[c], v)
                out[:, j] = v
                j += 1
            else:
                index = self._index[c]
                codes = np.fromiter((index.get(self.fill[c] if s is None else str(s), -1) for s in v),
                                    dtype=np.int64, count=n)
                unseen += int((codes < 0).sum())
                hit = codes >= 0
                out[np.flatnonzero(hit), j + codes[hit]] = 1.0
                j += len(self.categories[c])
        return out, unseen

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "kinds": self.kinds, "categories": self.categories, "fill": self.fill,
                "categorical": self.categorical, "impute": self.impute, "label": self.label,
                "features": self.feature_names}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TableTransform":
        try:
            return cls(list(d["columns"]), dict(d["kinds"]), {k: list(v) for k, v in d["categories"].items()},
                       dict(d["fill"]), d.get("categorical", "onehot"), d.get("impute", "none"), d.get("label"))
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"damaged table transform record: {e!r}") from None


def warn_unseen(source: str, unseen: int) -> None:
    if unseen:
        warnings.warn(f"{source}: {unseen} value(s) of a category the run was not trained on were encoded as "
                      "all zeros", HourglassWarning, stacklevel=3)


class TableRows(Rows):
    """Rows ``idx`` of a table, read on demand and transformed by a fitted :class:`TableTransform`."""

    def __init__(self, src: TableSource, transform: TableTransform, idx: np.ndarray):
        self.src, self.transform, self.idx = src, transform, np.asarray(idx, dtype=np.int64)
        self.shape = (len(self.idx), transform.width)
        self.source = src.source
        self.unseen = 0

    def _take_sorted(self, idx: np.ndarray) -> np.ndarray:
        rows = self.idx[idx]
        order = np.argsort(rows, kind="stable")  # idx sorted does not make rows sorted (a random split)
        x, unseen = self.transform.apply(self.src.read(rows[order], self.transform.columns), self.src, rows[order])
        self.unseen += unseen
        out = np.empty_like(x)
        out[order] = x
        return out

    def blocks(self) -> np.ndarray | None:
        b = self.src.blocks()
        return None if b is None else b[self.idx]


def read_labels(src: TableSource, label: str) -> np.ndarray:
    """The label column, whole (one value per row; a missing label is an error naming the row)."""
    parts = [src.read(chunk, [label])[label] for chunk in row_chunks(np.arange(src.n_rows), src.blocks())]
    y = np.concatenate(parts) if parts else np.empty(0)
    if src.kinds[label] == "numeric":
        bad = np.flatnonzero(np.isnan(y))
    else:
        bad = np.flatnonzero(np.asarray([v is None for v in y], dtype=bool))
    if len(bad):
        raise DataError(f"{src.source}: the label column {label!r} is missing in {len(bad)} rows "
                        f"(the first: {src.line(int(bad[0]))})")
    if src.kinds[label] == "numeric" and np.all(y == np.round(y)):
        return y.astype(np.int64)
    return y.astype(str) if src.kinds[label] == "numeric" else y.astype(str)


# -- the one place a transform is fitted and applied --------------------------------------------
def _label_values(src: TableSource, label: str, label_names: list[str] | None) -> tuple[np.ndarray, list | None]:
    raw = read_labels(src, label)
    y, names = labels_to_int(raw, f"{src.source} label column {label!r}")
    if label_names:
        names = label_names
        y = np.asarray([names.index(str(v)) for v in raw], dtype=np.int64)
    return y, names


def table_bundle(src: TableSource, request, *, name: str, source: str,
                 files: dict[str, Any] | None = None) -> DataBundle:
    """A table split into train and test (``request``: a :class:`~hourglass.data.formats.Request`), its
    transform fitted on the training rows, or the run's stored one (``request.stored["transform"]``) applied."""
    stored = request.record
    if stored.get("transform"):
        transform = TableTransform.from_dict(stored["transform"])
        label, features = transform.label, None
    else:
        transform = None
        label, features = resolve_columns(src, request.label_column, request.option("feature_columns"),
                                          request.option("drop_columns"))
    y = names = None
    if label is not None:
        y, names = _label_values(src, label, stored.get("label_names"))
    tr, te = split_indices(src.source, src.n_rows, y, request.test_fraction, request.seed)
    if transform is None:
        transform = TableTransform.fit(src, tr, label, features, request.option("categorical", "onehot"),
                                       request.option("impute", "none"))
    x_tr, x_te = TableRows(src, transform, tr), TableRows(src, transform, te)
    if not request.lazy:
        x_tr, x_te = x_tr.read_all(), x_te.read_all()
    return DataBundle(name, x_tr, y[tr] if y is not None else None, x_te, y[te] if y is not None else None,
                      "tabular", None, source, names, transform=transform.to_dict(), files=files, index_test=te)


def table_examples(src: TableSource, stored: dict[str, Any]):
    """New rows for a run with a stored transform: ``(rows, class indices or None, label values or None,
    row numbers)``; a feature column the table lacks is an error naming it."""
    transform = TableTransform.from_dict(stored["transform"])
    missing = [c for c in transform.columns if c not in src.columns]
    if missing:
        raise DataError(f"{src.source}: no column {missing[0]!r}, one of the run's features "
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


def table_arrays(src: TableSource, label_column: str | int | None = None):
    """``(x, y or None, label names or None)`` of a whole table, numbers only: a text feature column is
    an error (``categorical="error"``), nothing is imputed."""
    label, features = resolve_columns(src, label_column)
    every = np.arange(src.n_rows)
    transform = TableTransform.fit(src, every, label, features, categorical="error")
    x = TableRows(src, transform, every).read_all()
    y, names = (labels_to_int(read_labels(src, label), f"{src.source} label column") if label is not None
                else (None, None))
    return x, y, names


def features_of(x, record: dict[str, Any] | None):
    """Raw table rows -> a run's features by its stored transform ``record``: a DataFrame, or an array
    with one column per feature column of the table (text columns as strings). Anything else (and
    anything given to a run without a table transform) is taken to be features already."""
    if record is None:
        return x
    t = TableTransform.from_dict(record)
    if is_dataframe(x):
        src = dataframe_columns(x)
        missing = [c for c in t.columns if c not in src.columns]
        if missing:
            raise DataError(f"the DataFrame has no column {missing[0]!r}, one of the run's features")
    else:
        a = np.asarray(x)
        raw = len(t.columns)
        if a.ndim != 2 or a.shape[1] != raw or (a.dtype != object and raw == t.width):
            return x
        data = {}
        for j, c in enumerate(t.columns):
            col = a[:, j]
            if t.kinds[c] == "numeric":
                data[c] = np.asarray([np.nan if v is None else v for v in col], dtype=np.float64)
            else:
                data[c] = np.asarray([None if v is None else str(v) for v in col], dtype=object)
        src = ColumnsSource("array", data, dict(t.kinds))
    rows = TableRows(src, t, np.arange(src.n_rows))
    out = rows.take(np.arange(len(rows)))
    warn_unseen(src.source, rows.unseen)
    return out
