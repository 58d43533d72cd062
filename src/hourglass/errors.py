"""One error hierarchy for everything a user, a file or the machine can get wrong.

``HourglassError`` is the base of every error hourglass raises on purpose: bad configuration, bad
data, an unreadable run directory, training that cannot go on, and files or folders the library
cannot read or write. Its message names the offending key, value, column, row or path. The CLI
prints exactly these as one line (``hourglass: error: ...``, exit status 2); any other exception is
a bug in hourglass and is shown with its traceback.

The kinds also derive from the built-in exception a Python user would expect (``ValueError`` for
bad values, ``RuntimeError`` for a failed run), so ``except ValueError`` keeps working; scikit-learn
relies on that for invalid parameters.

This module imports nothing: every layer can raise these without import cycles.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


class HourglassError(Exception):
    """Base of every error hourglass raises on purpose; the message names what is at fault."""


class ConfigError(HourglassError, ValueError):
    """A configuration value or option that cannot be used; the message names the key and the value."""


class DataError(HourglassError, ValueError):
    """Data that cannot be used: the message names the file, row, column, shape or value at fault."""


class CheckpointError(HourglassError, ValueError):
    """A run directory or checkpoint that cannot be read or resumed; the message names the file."""


class TrainingError(HourglassError, RuntimeError):
    """Training cannot go on (a non-finite loss); the message names the epoch, step and loss."""


class TrainingInterrupted(TrainingError):
    """Training stopped on request (SIGTERM, Ctrl-C) after finishing its current step and writing a
    checkpoint; the message says how to continue. ``signum`` is the signal that asked, if any."""

    def __init__(self, message: str, signum: int | None = None):
        super().__init__(message)
        self.signum = signum


class PathError(HourglassError, OSError):
    """A file or folder the library cannot read or write (missing, not a directory, permission denied,
    disk full); the message names the path and the operating system's reason."""

    def __str__(self) -> str:  # OSError's own __str__ would print the args tuple
        return str(self.args[0]) if self.args else ""


class HourglassWarning(UserWarning):
    """Something a user should know that does not stop the work (unseen categories at encode time,
    files skipped with --skip-bad-files); the CLI prints it as one line."""


def describe_os_error(exc: OSError) -> str:
    """The operating system's words for ``exc`` ("Permission denied", "Not a directory", ...)."""
    return exc.strerror or str(exc) or type(exc).__name__


@contextlib.contextmanager
def path_access(path: str | os.PathLike, doing: str) -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a :class:`PathError` naming ``path``:
    ``cannot {doing} {path}: {reason}``. Errors that are already ``HourglassError`` pass through."""
    try:
        yield
    except HourglassError:
        raise
    except OSError as exc:
        where = exc.filename if exc.filename else path
        raise PathError(f"cannot {doing} {Path(where)}: {describe_os_error(exc)}") from exc


__all__ = [
    "CheckpointError", "ConfigError", "DataError", "HourglassError", "HourglassWarning", "PathError", "TrainingError",
    "TrainingInterrupted", "describe_os_error", "path_access",
]
