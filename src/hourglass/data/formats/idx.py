"""The IDX format of MNIST and its siblings (Fashion-MNIST, KMNIST), read and written with numpy.

Layout (big-endian): two zero bytes, a type code, the number of dimensions d, then d uint32 sizes,
then the values in C order. Files may be gzip-compressed (detected by the gzip magic, not by the
name). Every inconsistency is a :class:`DataError` that names the file and what was found.

As a format, IDX reads new examples for a run (``encode --input t10k-images-idx3-ubyte.gz``): the
files have no suffix of their own, so it is the fallback for files no other format claims. The named
MNIST-format data sets read their four files with :func:`read_image_label_pair`.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ...errors import DataError, PathError, path_access
from ...memory import ensure_fits, human_bytes
from ..rows import check_array, check_finite
from . import Format, register_format

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
MAX_DIMS = 8
MAX_BYTES = 1 << 34  # 16 GiB: a header claiming more is damaged, not data
TRAILING_CAP = 1 << 16  # bytes past the payload read to report how many there are
READ_PIECE = 1 << 20  # bytes decompressed at a time


class _Stream:
    """The bytes of an IDX file, plain or gzip (by its magic number), read in order and never more than
    asked: a gzip file is decompressed as a stream, so a header that claims 10^12 bytes costs nothing
    before it is refused."""

    def __init__(self, path: Path):
        self.path = path
        with path_access(path, "read"):
            self.file = open(path, "rb")
        self.size = os.fstat(self.file.fileno()).st_size
        self.gzip = self.file.read(2) == b"\x1f\x8b"
        self.file.seek(0)
        self.reader = gzip.GzipFile(fileobj=self.file, mode="rb") if self.gzip else self.file

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes. Read in pieces: a single ``read(n)`` would allocate ``n`` bytes up front, so
        a header's claim, not the file's content, would set the memory taken."""
        try:
            with path_access(self.path, "read"):
                if n <= READ_PIECE:
                    return self.reader.read(n)
                out = bytearray()
                while len(out) < n:
                    piece = self.reader.read(min(READ_PIECE, n - len(out)))
                    if not piece:
                        break
                    out += piece
                return out
        except (OSError, EOFError, zlib.error) as e:
            if isinstance(e, PathError):
                raise
            raise DataError(f"{self.path}: damaged gzip data ({e})") from None

    def close(self) -> None:
        if self.gzip:
            self.reader.close()
        self.file.close()


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (plain or gzip), in native byte order.

    The header is checked before the payload is read: the declared size must match the file (plain)
    or be no more than the memory available (gzip, whose decompressed size is known only at its end;
    the stream is read up to the declared size and one byte more). Floating-point payloads must be
    finite as float32."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    stream = _Stream(path)
    try:
        return _read(stream, path)
    finally:
        stream.close()


def _read(stream: _Stream, path: Path) -> np.ndarray:
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(head)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", head)
    if zero != 0:
        raise DataError(f"{path}: not an IDX file (magic number starts with {head[:2].hex()}, expected 0000)")
    if code not in IDX_TYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: 08, 09, 0B, 0C, 0D, 0E)")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions (expected 1 to {MAX_DIMS})")
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated header ({4 + len(raw_dims)} bytes, the dimensions need {4 + 4 * ndim})")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow on absurd headers
    if expected > MAX_BYTES:
        raise DataError(f"{path}: header declares dimensions {dims} ({human_bytes(expected)}), too large to be real")
    # an empty array whose other dimensions are absurd: numpy cannot even shape it ("array is too big")
    if math.prod(max(d, 1) for d in dims) * dtype.itemsize > MAX_BYTES:
        raise DataError(f"{path}: header declares dimensions {dims}, too large to be real")
    if not stream.gzip:
        found = stream.size - 4 - 4 * ndim
        if found != expected:
            raise DataError(f"{path}: payload has {found} bytes but dimensions {dims} of {dtype.name} need {expected}"
                            + (" (file truncated?)" if found < expected else ""))
    # The array and its float32 check copy (floats) sit side by side.
    ensure_fits(expected + (4 * math.prod(dims) if dtype.kind == "f" else 0), str(path))
    payload = stream.read(expected)
    if len(payload) < expected:
        raise DataError(f"{path}: payload has {len(payload)} bytes but dimensions {dims} of {dtype.name} need "
                        f"{expected} (file truncated?)")
    extra = stream.read(TRAILING_CAP)
    if extra:
        more = "" if len(extra) < TRAILING_CAP else " or more"
        raise DataError(f"{path}: payload has {expected + len(extra)}{more} bytes but dimensions {dims} of "
                        f"{dtype.name} need {expected}")
    array = np.frombuffer(payload, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))
    if dtype.kind == "f" and array.size:
        check_finite(array if ndim > 1 else array.reshape(-1, 1), str(path))
    return array


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as IDX (gzip-compressed when the name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise DataError(f"IDX cannot store dtype {array.dtype} (use uint8, int8, int16, int32, float32 or float64)")
    code = _CODES[native]
    payload = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.name.endswith(".gz") else payload)
    return path


def read_image_label_pair(images: str | Path, labels: str | Path,
                          num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, H, W)`` and int64 labels ``(N,)`` from an IDX image file and its label file."""
    x = read_idx(images)
    y = read_idx(labels)
    if x.ndim != 3:
        raise DataError(f"{images}: expected images of shape (N, H, W), found {x.shape}")
    if y.ndim != 1:
        raise DataError(f"{labels}: expected labels of shape (N,), found {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise DataError(f"{labels}: labels must be whole numbers, found {y[np.argmax(y != np.round(y))]}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{labels}: labels must be 0..{num_classes - 1}, found {y.min()}..{y.max()}")
    return x[:, None], y.astype(np.int64)


@register_format("idx", fallback=True)
class Idx(Format):
    """An IDX array; images ``(N, H, W)`` gain their channel axis."""

    def read(self, path, label_column=None):
        x = read_idx(path)
        if x.ndim == 3:
            x = x[:, None]
        return check_array(x, str(path)), None, None
