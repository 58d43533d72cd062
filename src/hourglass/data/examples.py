"""Arrays of examples in the layout hourglass uses, and the value range an image's scaling assumes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from .tabular import check_array


def _is_dataframe(obj: Any) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "dtypes")


def _array(obj: Any, what: str) -> np.ndarray:
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        obj = obj.detach().cpu().numpy()
    if _is_dataframe(obj):
        obj = obj.to_numpy()
    try:
        return np.asarray(obj)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: cannot be read as an array ({e})") from None


def as_examples(x: Any, what: str = "x") -> tuple[np.ndarray, str]:
    """Examples as an array ``(N, ...)`` in the layout hourglass uses, and their kind ("image" or
    "tabular"): ``(N, H, W)`` gains a channel axis and channels-last images are moved to channels-first."""
    x = _array(x, what)
    if x.ndim == 2:
        return check_array(x, what), "tabular"
    if x.ndim == 3:
        return check_array(x[:, None], what), "image"
    if x.ndim == 4:
        if x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
        return check_array(x, what), "image"
    raise DataError(f"{what}: expected examples of shape (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C); "
                    f"found shape {x.shape}")


def value_range(x: np.ndarray, kind: str) -> tuple[float, float] | None:
    """Images: bytes are 0..255; other images keep their own global range (per-pixel scaling would blow up
    the noise in near-constant border pixels). Tables: None (scaled per feature)."""
    if kind != "image":
        return None
    if x.dtype == np.uint8:
        return (0.0, 255.0)
    return _range_rule(float(x.min()), float(x.max()))


def rows_value_range(rows, kind: str) -> tuple[float, float] | None:
    """:func:`value_range` of examples read on demand: one streaming pass for the global min and max."""
    if kind != "image":
        return None
    if rows.raw_dtype == np.uint8:
        return (0.0, 255.0)
    lo, hi = np.inf, -np.inf
    for chunk in rows.chunks():
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    return _range_rule(lo, hi)


def _range_rule(lo: float, hi: float) -> tuple[float, float]:
    if lo >= 0.0 and hi <= 1.0:
        return (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
