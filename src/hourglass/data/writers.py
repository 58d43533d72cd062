"""Outputs written chunk by chunk: codes and reconstructions as ``.npy``, ``.csv`` or ``.parquet``.

``.npy`` holds the values alone, in their shape (row ``i`` is input row ``i``); ``.csv`` and ``.parquet`` hold a
``row`` column (the example's row number in its input: the data row of a table, the position in an
array or image listing), a ``label`` column when the input has labels, then one column per value
(``z0``, ``z1``, ... for codes; the feature names of a table, or ``x0``, ``x1``, ... for other data).
Each chunk is written as it comes, so memory stays at one chunk whatever the number of rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DataError, path_access

SUFFIXES = (".npy", ".csv", ".parquet")


class ChunkWriter:
    """``write(rows, labels, values)`` chunk by chunk, ``close()`` at the end (see the module docstring)."""

    def __init__(self, path: str | Path, n: int, names: list[str], with_labels: bool,
                 value_shape: tuple[int, ...] | None = None):
        self.path, self.n, self.names, self.with_labels = Path(path), n, names, with_labels
        self.value_shape = tuple(value_shape) if value_shape is not None else (len(names),)  # .npy keeps it
        self.suffix = self.path.suffix.lower()
        if self.suffix not in SUFFIXES:
            raise DataError(f"{path}: write codes to a .npy, .csv or .parquet file")
        self.written = 0
        self._parquet = None
        with path_access(self.path, "write"):
            if self.suffix == ".parquet":
                from .formats.table import pyarrow_parquet

                pyarrow_parquet(self.path)
                self._file = None
            else:
                self._file = open(self.path, "wb") if self.suffix == ".npy" else open(self.path, "w", newline="")
        if self.suffix == ".npy":
            header = {"descr": np.dtype(np.float32).str, "fortran_order": False, "shape": (n, *self.value_shape)}
            with path_access(self.path, "write"):
                np.lib.format.write_array_header_1_0(self._file, header)
        elif self.suffix == ".csv":
            self._csv = csv.writer(self._file)
            with path_access(self.path, "write"):
                self._csv.writerow(["row", *(["label"] if with_labels else []), *names])

    def write(self, rows: np.ndarray, labels, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32).reshape(len(values), -1)
        with path_access(self.path, "write"):
            if self.suffix == ".npy":
                self._file.write(np.ascontiguousarray(values).tobytes())
            elif self.suffix == ".csv":
                for i in range(len(values)):
                    lead = [int(rows[i])] + ([_plain(labels[i])] if self.with_labels else [])
                    self._csv.writerow(lead + [repr(float(v)) for v in values[i]])
            else:
                self._write_parquet(rows, labels, values)
        self.written += len(values)

    def _write_parquet(self, rows, labels, values) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {"row": pa.array(np.asarray(rows, dtype=np.int64))}
        if self.with_labels:
            lab = [_plain(v) for v in labels]
            cols["label"] = pa.array([str(v) for v in lab] if any(isinstance(v, str) for v in lab) else lab)
        for j, name in enumerate(self.names):
            cols[name] = pa.array(values[:, j])
        table = pa.table(cols)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        self._parquet.write_table(table)

    def close(self, complete: bool = True) -> None:
        """Finish the file; ``complete=False`` (the input failed part-way) removes what was written."""
        with path_access(self.path, "write"):
            if self._parquet is not None:
                self._parquet.close()
            if self._file is not None:
                self._file.close()
            if not complete:
                self.path.unlink(missing_ok=True)
                return
        if self.suffix == ".npy" and self.written != self.n:
            raise DataError(f"{self.path}: wrote {self.written} rows, expected {self.n}")


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v
