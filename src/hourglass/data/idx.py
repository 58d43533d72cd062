"""The IDX format of MNIST and its siblings (Fashion-MNIST, KMNIST), read and written with numpy.

Layout (big-endian): two zero bytes, a type code, the number of dimensions d, then d uint32 sizes,
then the values in C order. Files may be gzip-compressed (detected by the gzip magic, not by the
name). Every inconsistency is a :class:`DataError` that names the file and what was found.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

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


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: damaged gzip data ({e})") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (plain or gzip), in native byte order."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DataError(f"{path}: not an IDX file (magic number starts with {data[:2].hex()}, expected 0000)")
    if code not in IDX_TYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: 08, 09, 0B, 0C, 0D, 0E)")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions (expected 1 to {MAX_DIMS})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header ({len(data)} bytes, the dimensions need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow on absurd headers
    if expected > MAX_BYTES:
        raise DataError(f"{path}: header declares dimensions {dims}, too large to be real")
    found = len(data) - header
    if found != expected:
        raise DataError(
            f"{path}: payload has {found} bytes but dimensions {dims} of {dtype.name} need {expected}"
            + (" (file truncated?)" if found < expected else "")
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


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
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{labels}: labels must be 0..{num_classes - 1}, found {y.min()}..{y.max()}")
    return x[:, None], y.astype(np.int64)
