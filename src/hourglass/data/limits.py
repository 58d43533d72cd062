"""How much memory a read may take, checked before anything is allocated.

Every reader computes the bytes an array will need from its file's header (an IDX header's
dimensions, a ``.npy`` header's shape and dtype, an image's size) and calls :func:`ensure_fits`
before it allocates: a damaged or hostile header that claims terabytes is a :class:`DataError`
naming the file and the memory it would need, not a ``MemoryError`` (or the kernel's OOM killer)
half-way through.

The limit is the memory the machine has available now (``MemAvailable`` in ``/proc/meminfo``, the
kernel's estimate of what can be allocated without swapping), or ``HOURGLASS_MAX_READ_BYTES`` when
the environment sets it (tests set it to show the check without a machine that small).
"""

from __future__ import annotations

import os

from ..errors import DataError

MIB = 1 << 20


def human_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``; binary units, one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def available_bytes() -> int:
    """Memory available for new allocations now (``MemAvailable``; the physical size where
    ``/proc/meminfo`` is absent), or ``$HOURGLASS_MAX_READ_BYTES`` when set."""
    env = os.environ.get("HOURGLASS_MAX_READ_BYTES")
    if env:
        try:
            return int(env)
        except ValueError:
            raise DataError(f"HOURGLASS_MAX_READ_BYTES={env!r} is not a whole number of bytes") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux nor macOS
        return 1 << 34


def ensure_fits(nbytes: int, source: str, what: str = "reading it") -> None:
    """Raise a :class:`DataError` naming ``source`` when ``nbytes`` exceed the available memory."""
    limit = available_bytes()
    if nbytes > limit:
        raise DataError(f"{source}: {what} needs {human_bytes(nbytes)} of memory, more than the "
                        f"{human_bytes(limit)} available (a damaged header, or data to stream: --in-memory never)")
