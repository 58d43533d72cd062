"""The ``.npz`` format: features and labels as named arrays of one zip file.

The features are the member named ``x`` (or ``X``, ``data``, ``features``, ``images``; a file with one
member needs no name), the labels ``y`` (or ``labels``, ``label``, ``target``, ``targets``). Only
those members are read, each header checked as a ``.npy`` file's is (:mod:`~hourglass.data.formats.npy`)
before its values are; nothing is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError, path_access
from ..rows import check_array, labels_to_int
from . import Format, register_format
from .npy import check_payload, parse_npy_header

X_KEYS = ("x", "X", "data", "features", "images")
Y_KEYS = ("y", "labels", "label", "target", "targets")


def npz_member(zf, name: str, source: str) -> np.ndarray:
    info = zf.getinfo(name)
    with zf.open(info) as f:
        shape, dtype, fortran, offset = parse_npy_header(f.read, source)
        need = check_payload(source, shape, dtype, info.file_size - offset)
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
            x = check_array(npz_member(zf, members[xk], f"{path}[{xk}]"), f"{path}[{xk}]")
            y, names = (None, None)
            if yk is not None:
                y, names = labels_to_int(npz_member(zf, members[yk], f"{path}[{yk}]"), f"{path}[{yk}]")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise DataError(f"{path}: cannot read as an .npz file ({e})") from None
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: {len(x)} examples but {len(y)} labels")
    return x, y, names


@register_format("npz", (".npz",))
class Npz(Format):
    """Features and labels; read whole (a zip member cannot be read row by row)."""

    def read(self, path, label_column=None):
        return read_npz(path)
