"""Tables with a header: CSV, TSV, Parquet and DataFrames, turned into numbers by a fitted transform.

A table is read as named columns (:class:`TableSource`): numeric columns as float64 with NaN for
a missing value, text columns as strings (None when missing). A CSV/TSV cell is missing when it is
empty or one of ``NA``, ``N/A``, ``NaN``, ``null``, ``None``; a CSV's first line is its header when
any of its cells is not a number (otherwise the columns are named ``0``, ``1``, ...). A column
whose values are all numbers is numeric; one that is mostly text is text (its numbers become
categories too); one that is mostly numbers with some text is an error naming the first such cell
(a typo in a numeric column should not silently become a category).

:class:`TableTransform` turns the chosen feature columns into a float32 matrix, in the column order
of the file:

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

Parquet needs pyarrow (the ``parquet`` extra); without it, a Parquet path is an error naming the
extra. Parquet files are read by row group.
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, HourglassWarning, path_access
from .limits import ensure_fits
from .rows import CHUNK, Rows

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
MISSING = {"", "na", "n/a", "nan", "null", "none"}
F32_MAX = float(np.finfo(np.float32).max)
CSV_BYTES_FACTOR = 12  # memory per byte of CSV text while it is parsed (Python strings, then float64 columns)
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


class ParquetSource(TableSource):
    """A Parquet file, read one row group at a time (the last one kept for the next read)."""

    def __init__(self, path: Path):
        pq = _pyarrow_parquet(path)
        import pyarrow as pa

        self.path, self.source = path, str(path)
        try:
            with path_access(path, "read"):
                self.file = pq.ParquetFile(path)
        except (pa.ArrowException, ValueError) as e:
            raise DataError(f"{path}: cannot read as a Parquet file ({e})") from None
        schema = self.file.schema_arrow
        self.columns = [str(n) for n in schema.names]
        self.kinds = {}
        for field in schema:
            t = field.type
            if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
                self.kinds[field.name] = "numeric"
            elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
                self.kinds[field.name] = "text"
            else:
                self.kinds[field.name] = f"unsupported ({t})"
        meta = self.file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_rows = int(self.offsets[-1])
        self._cache: tuple[int, tuple[str, ...], dict[str, np.ndarray]] | None = None

    def __getstate__(self):  # DataLoader workers reopen the file
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def blocks(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))

    def _group(self, g: int, columns: list[str]) -> dict[str, np.ndarray]:
        key = tuple(columns)
        if self._cache is not None and self._cache[0] == g and self._cache[1] == key:
            return self._cache[2]
        import pyarrow as pa

        try:
            with path_access(self.path, "read"):
                table = self.file.read_row_group(g, columns=columns)
        except (pa.ArrowException, ValueError) as e:
            raise DataError(f"{self.path}: cannot read row group {g} ({e})") from None
        out = {c: _arrow_column(table.column(c), self.kinds[c]) for c in columns}
        self._cache = (g, key, out)
        return out

    def read(self, idx, columns):
        groups = np.searchsorted(self.offsets, idx, side="right") - 1
        parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
        for g in np.unique(groups):
            data = self._group(int(g), columns)
            local = idx[groups == g] - self.offsets[g]
            for c in columns:
                parts[c].append(data[c][local])
        return {c: (np.concatenate(v) if v else np.empty(0)) for c, v in parts.items()}


def _arrow_column(col, kind: str) -> np.ndarray:
    import pyarrow as pa

    if kind == "numeric":
        if pa.types.is_boolean(col.type) or pa.types.is_decimal(col.type):
            col = col.cast(pa.float64())
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    values = col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col
    return np.asarray(values.to_pylist(), dtype=object)


def _pyarrow_parquet(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install 'hourglass-ae[parquet]'") from None
    return pq


# -- reading ----------------------------------------------------------------------------------------
def open_table(path: str | Path) -> TableSource:
    """A CSV/TSV (parsed into memory) or Parquet file (read on demand) as a :class:`TableSource`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return ParquetSource(path)
    return read_csv_columns(path, "\t" if suffix == ".tsv" else ",")


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_csv_columns(path: Path, delimiter: str = ",") -> ColumnsSource:
    """A CSV/TSV file's columns (see the module docstring for headers, missing values and column kinds).
    A UTF-8 byte-order mark is dropped, so it never hides the first row or column name."""
    ensure_fits(path.stat().st_size * CSV_BYTES_FACTOR, str(path), "parsing it")
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with path_access(path, "read"), open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                if row and any(c.strip() for c in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    if not rows:
        raise DataError(f"{path}: empty file")
    header_row = any(_number(c) is None and c.strip().lower() not in MISSING for c in rows[0])
    if header_row:
        names, rows, lines = [c.strip() for c in rows[0]], rows[1:], lines[1:]
        for i, name in enumerate(names):
            if not name:
                raise DataError(f"{path}: column {i} of the header has no name")
        dup = [n for n, k in Counter(names).items() if k > 1]
        if dup:
            raise DataError(f"{path}: column {dup[0]!r} appears twice in the header")
    else:
        names = [str(i) for i in range(len(rows[0]))]
    if not rows:
        raise DataError(f"{path}: no data rows")
    width = len(names)
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} columns, expected {width}")
    data: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for j, name in enumerate(names):
        cells = [r[j].strip() for r in rows]
        values = [None if c.lower() in MISSING else _number(c) for c in cells]
        texts = [i for i, (c, v) in enumerate(zip(cells, values)) if v is None and c.lower() not in MISSING]
        present = sum(1 for c in cells if c.lower() not in MISSING)
        if texts and len(texts) * 2 <= present:  # mostly numbers: the text is a mistake
            i = texts[0]
            raise DataError(f"{path}: line {lines[i]}, column {name!r}: {cells[i]!r} is not a number "
                            "(the column's other values are)")
        if texts:
            kinds[name] = "text"
            data[name] = np.asarray([None if c.lower() in MISSING else c for c in cells], dtype=object)
            continue
        col = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
        bad = np.flatnonzero(np.isinf(col) | (np.abs(np.nan_to_num(col)) > F32_MAX))
        if len(bad):
            i = int(bad[0])
            what = "is not a finite number" if np.isinf(col[i]) else "overflows float32 (largest 3.4e+38)"
            raise DataError(f"{path}: line {lines[i]} (row {i}), column {name!r}: {cells[i]!r} {what}")
        kinds[name] = "numeric"
        data[name] = col
    return ColumnsSource(str(path), data, kinds, lines)


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
