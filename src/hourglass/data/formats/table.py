"""Tables with a header: CSV, TSV and Parquet files, read as named columns.

A table is read as named columns (:class:`~hourglass.data.transform.TableSource`): numeric columns as
float64 with NaN for a missing value, text columns as strings (None when missing). A CSV/TSV cell is
missing when it is empty or one of ``NA``, ``N/A``, ``NaN``, ``null``, ``None``; a CSV's first line
is its header when any of its cells is not a number (otherwise the columns are named ``0``, ``1``,
...). A column whose values are all numbers is numeric; one that is mostly text is text (its numbers
become categories too); one that is mostly numbers with some text is an error naming the first such
cell (a typo in a numeric column should not silently become a category).

The columns become numbers through the fitted transform of :mod:`hourglass.data.transform`.

Parquet needs pyarrow (the ``parquet`` extra); without it, a Parquet path is an error naming the
extra. Parquet files are read by row group, on demand.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from ...errors import DataError, path_access
from ...memory import ensure_fits
from ..bundle import file_record
from ..transform import F32_MAX, ColumnsSource, TableSource, table_arrays, table_bundle, table_examples
from . import Examples, Format, Request, register_format

PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (".csv", ".tsv", *PARQUET_SUFFIXES)
MISSING = {"", "na", "n/a", "nan", "null", "none"}
CSV_BYTES_FACTOR = 12  # memory per byte of CSV text while it is parsed (Python strings, then float64 columns)


class ParquetSource(TableSource):
    """A Parquet file, read one row group at a time (the last one kept for the next read)."""

    def __init__(self, path: Path):
        pq = pyarrow_parquet(path)
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


def pyarrow_parquet(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install 'hourglass-ae[parquet]'") from None
    return pq


def open_table(path: str | Path) -> TableSource:
    """A CSV/TSV (parsed into memory) or Parquet file (read on demand) as a :class:`TableSource`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
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


@register_format("table", TABLE_SUFFIXES)
class Table(Format):
    """A table with a header; Parquet files are read on demand, CSV and TSV parsed into memory."""

    def read(self, path, label_column=None):
        return table_arrays(open_table(path), label_column)

    def bundle(self, path: Path, request: Request):
        return table_bundle(open_table(path), request, name=str(path), source=str(path.resolve()),
                            files={"files": [file_record(path)]})

    def examples(self, path, stored):
        if not stored.get("transform"):
            # a run trained on arrays takes a table of numbers as they are, every column a feature
            return super().examples(path, {**stored, "label_column": None})
        return Examples(*table_examples(open_table(path), stored))
