"""What every data source becomes: a :class:`DataBundle` of raw train and test examples.

The examples are arrays in memory, or :class:`~hourglass.data.rows.Rows` read on demand (a
``.npy`` file, a Parquet file, a folder of images) when the run streams its data. Besides the
examples, a bundle carries what a run must record to read the same data again and to treat new
data the same way: the table transform fitted on the training rows, the image settings, the files
read (:func:`file_record`: path, size, modification time, and a SHA-256 for files up to
``CHECKSUM_MAX`` bytes) and notes on what was converted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, path_access
from .rows import Rows

CHECKSUM_MAX = 256 << 20  # larger files are recorded by size and modification time only (hashing costs a pass)


@dataclass
class DataBundle:
    """Raw (unscaled) train and test examples of one data set."""

    name: str
    x_train: np.ndarray | Rows
    y_train: np.ndarray | None
    x_test: np.ndarray | Rows
    y_test: np.ndarray | None
    kind: str  # "image" (N, C, H, W) or "tabular" (N, D)
    value_range: tuple[float, float] | None  # the known native range, if any
    source: str
    label_names: list[str] | None = None
    fingerprint: str | None = None  # hash of in-memory arrays (named sets and files are found again by name)
    transform: dict[str, Any] | None = None  # a table's fitted TableTransform (to_dict)
    image: dict[str, Any] | None = None  # an image folder's settings: channels, size
    files: dict[str, Any] | None = None  # what was read: paths, sizes, modification times, checksums
    notes: list[str] = field(default_factory=list)  # conversions a user should know of
    index_test: np.ndarray | None = None  # row numbers of the test examples in their source
    verified: str | None = None  # how a named data set's files were checked to be that set

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def lazy(self) -> bool:
        return isinstance(self.x_train, Rows)

    @property
    def nbytes(self) -> int:
        """Bytes of all examples as float32 (what the in-memory path holds as tensors)."""
        n = len(self.x_train) + len(self.x_test)
        return 4 * n * int(np.prod(self.input_shape))

    def materialized(self) -> "DataBundle":
        """The same bundle with its examples read into memory."""
        if not self.lazy:
            return self
        import dataclasses

        return dataclasses.replace(self, x_train=self.x_train.read_all(), x_test=self.x_test.read_all())


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


def split_indices(name: str, n: int, y: np.ndarray | None, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train/test split of ``n`` examples as index arrays, stratified by label ``y`` where
    every class has two examples or more."""
    from sklearn.model_selection import train_test_split

    n_test = int(round(n * test_fraction))
    if n_test < 1 or n - n_test < 1:
        raise DataError(f"{name}: {n} examples are too few to split with test_fraction={test_fraction}")
    stratify = None
    if y is not None:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and n_test >= len(counts) and n - n_test >= len(counts):
            stratify = y
    idx_train, idx_test = train_test_split(np.arange(n), test_size=n_test, random_state=seed, stratify=stratify)
    return np.asarray(idx_train), np.asarray(idx_test)


def split_arrays(name, x, y, names, test_fraction, seed, source, kind="tabular", value_range=None) -> DataBundle:
    """A seeded train/test split of ``x`` (an array or :class:`Rows`) and ``y`` (see :func:`split_indices`)."""
    tr, te = split_indices(name, len(x), y, test_fraction, seed)
    pick = (lambda a, i: a.subset(i)) if isinstance(x, Rows) else (lambda a, i: a[i])
    return DataBundle(name, pick(x, tr), y[tr] if y is not None else None, pick(x, te),
                      y[te] if y is not None else None, kind, value_range, source, names, index_test=te)


def default_budget() -> int:
    """The memory budget of ``in_memory="auto"`` when none is given: half of the memory available now."""
    from ..memory import available_bytes

    return available_bytes() // 2


def place(bundle: DataBundle, in_memory: str, budget_mib: int | None) -> tuple[DataBundle, bool, int]:
    """Decide where a run's examples live: ``(bundle, streamed, budget in bytes)``.

    ``always``: read into memory; ``never``: streamed (arrays given in memory are wrapped as
    :class:`Rows` and streamed from there); ``auto``: in memory when the float32 tensors of every
    split fit the budget (``budget_mib``, default: half the memory available), streamed otherwise.
    Formats that cannot be read on demand (``.npz``, CSV, named sets) are in memory already."""
    from .rows import ArrayRows

    budget = budget_mib * (1 << 20) if budget_mib is not None else default_budget()
    if in_memory not in ("auto", "always", "never"):
        raise DataError(f"in_memory {in_memory!r}: choose auto, always or never")
    if in_memory == "always" or (in_memory == "auto" and bundle.nbytes <= budget):
        return bundle.materialized(), False, budget
    if not bundle.lazy:
        import dataclasses

        bundle = dataclasses.replace(bundle, x_train=ArrayRows(bundle.x_train, bundle.source),
                                     x_test=ArrayRows(bundle.x_test, bundle.source))
    return bundle, True, budget
