"""File formats: one file per format in this folder, each registering itself with :func:`register_format`.

A format is a subclass of :class:`Format` registered under a name with the suffixes it reads (or
``folder=True``: it reads folders). It answers up to three questions about a path; only
:meth:`Format.read` is required, the other two are built on it unless the format knows better:

* :meth:`Format.read` - the whole file as numbers: ``(x, y or None, label names or None)``, ``x`` of
  shape ``(N, D)``, ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``;
* :meth:`Format.bundle` - a data set to train on: the :class:`~hourglass.data.bundle.DataBundle` of
  raw train and test examples, as :class:`~hourglass.data.rows.Rows` read on demand when the request
  is ``lazy``, and with what a run stored of its data (``request.stored``: the table transform, the
  image settings, the class names) applied instead of fitted anew;
* :meth:`Format.examples` - new examples for a trained run (``encode``, ``reconstruct``):
  :class:`Examples`, read on demand, in the run's feature space. ``stored`` is what the run recorded
  of its data: ``transform``, ``image``, ``label_names`` and ``label_column``.

The one dispatcher above this folder (:mod:`hourglass.data.sources`) finds a format with
:func:`format_for` and nothing else: a new format is a new file here (or a plugin module, see
:mod:`hourglass.plugins`), and nothing else in hourglass changes. The format modules and the plugins
are imported on the first lookup, as :mod:`hourglass.models` does for models.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, TypeVar

import numpy as np

from ... import plugins
from ...errors import DataError

T = TypeVar("T", bound=type)


@dataclass
class Request:
    """How a data set is wanted: the split, the label column, the table and image options
    (:class:`~hourglass.options.DataOptions` or None), on demand or not, and a run's stored record."""

    options: Any = None
    label_column: str | int | None = None
    test_fraction: float = 0.2
    seed: int = 0
    lazy: bool = False
    stored: dict[str, Any] | None = None

    def option(self, name: str, default: Any = None) -> Any:
        return getattr(self.options, name, default) if self.options is not None else default

    @property
    def record(self) -> dict[str, Any]:
        return self.stored or {}


class Examples(NamedTuple):
    """New examples for a run: ``rows`` (float32, in the run's feature space, read on demand), ``y``
    (the run's class indices, or None), ``values`` (the labels as the file holds them, written beside
    the codes, or None) and ``index`` (each example's row number in its input)."""

    rows: Any
    y: np.ndarray | None
    values: np.ndarray | None
    index: np.ndarray


class Format:
    """One file format (see the module docstring). ``name``, ``suffixes`` and ``folder`` are set by
    :func:`register_format`."""

    name: str = ""
    suffixes: tuple[str, ...] = ()
    folder: bool = False

    def read(self, path: Path, label_column: str | int | None = None
             ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
        """The whole of ``path`` as numbers: ``(x, y or None, label names or None)``."""
        raise DataError(f"{path}: the {self.name} format cannot be read as one array")

    def checked_read(self, path: Path, label_column: str | int | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
        """:meth:`read`, its result checked as every reader's is, whatever the format: numbers only, no NaN
        or Inf, nothing empty (:func:`~hourglass.data.rows.check_array`), one label per example."""
        from ..rows import check_array, labels_to_int

        x, y, names = self.read(path, label_column)
        x = check_array(x, str(path))
        if y is not None:
            y, found = labels_to_int(y, f"{path} labels")
            names = names or found
            if len(y) != len(x):
                raise DataError(f"{path}: {len(x)} examples but {len(y)} labels")
        return x, y, names

    def bundle(self, path: Path, request: Request):
        """``path`` as a :class:`~hourglass.data.bundle.DataBundle` split into train and test by the request."""
        from ..bundle import file_record, split_arrays
        from ..rows import as_examples, value_range

        x, y, names = self.checked_read(path, request.label_column)
        x, kind = as_examples(x, str(path))
        bundle = split_arrays(str(path), x, y, names, request.test_fraction, request.seed, source=str(path.resolve()),
                              kind=kind, value_range=value_range(x, kind))
        bundle.files = {"files": [file_record(path)]}
        return bundle

    def examples(self, path: Path, stored: dict[str, Any]) -> Examples:
        """New examples for a run that stored ``stored`` of its data (see :class:`Examples`)."""
        from ..rows import ArrayRows

        x, y, _ = self.checked_read(path, stored.get("label_column"))  # the labels where the run's data had them
        return Examples(ArrayRows(np.asarray(x), str(path)), y, y, np.arange(len(x)))


_FORMATS: dict[str, Format] = {}
_FALLBACK: list[Format] = []
_loaded = False


def register_format(name: str, suffixes: tuple[str, ...] = (), *, folder: bool = False,
                    fallback: bool = False) -> Callable[[T], T]:
    """Register a :class:`Format` subclass under ``name`` for files ending in ``suffixes`` (matched
    without regard to case), or for folders (``folder=True``). ``fallback`` formats read the files no
    other format claims when a run reads new examples (IDX files carry no suffix of their own).
    A name or suffix registered twice is refused."""
    suffixes = tuple(s.lower() for s in suffixes)

    def deco(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Format)):
            raise TypeError(f"format {name!r}: register a subclass of hourglass.data.formats.Format")
        if name in _FORMATS:
            raise ValueError(f"a format named {name!r} is already registered")
        for s in suffixes:
            if not s.startswith("."):
                raise ValueError(f"format {name!r}: suffix {s!r} must start with a dot")
            owner = next((f.name for f in _FORMATS.values() if s in f.suffixes), None)
            if owner is not None:
                raise ValueError(f"format {name!r}: the suffix {s!r} is already read by format {owner!r}")
        if folder and any(f.folder for f in _FORMATS.values()):
            raise ValueError(f"format {name!r}: folders are already read by format "
                             f"{next(f.name for f in _FORMATS.values() if f.folder)!r}")
        cls.name, cls.suffixes, cls.folder = name, suffixes, folder
        fmt = cls()
        _FORMATS[name] = fmt
        if fallback:
            _FALLBACK.append(fmt)
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    plugins.load_plugins()  # formats registered from outside the package (see hourglass.plugins)


def registered_formats() -> dict[str, Format]:
    """Every registered format by name (the package's and the plugins')."""
    _load_all()
    return dict(_FORMATS)


def suffixes() -> tuple[str, ...]:
    """Every suffix a registered format reads."""
    return tuple(s for f in registered_formats().values() for s in f.suffixes)


def describe() -> str:
    """What ``--data`` takes, for error messages: ``a folder of images, .csv, ... or .npz``."""
    formats = registered_formats().values()
    items = [f"a folder of {f.name}" for f in formats if f.folder] + [s for f in formats for s in f.suffixes]
    return ", ".join(items[:-1]) + (f" or {items[-1]}" if len(items) > 1 else "".join(items))


def format_for(path: str | Path, *, new_examples: bool = False) -> Format | None:
    """The format that reads ``path``: the folder format for a folder, else the one registered for its
    suffix; with ``new_examples``, a fallback format for any other file. None when no format reads it."""
    path = Path(path)
    formats = registered_formats()
    if path.is_dir():
        return next((f for f in formats.values() if f.folder), None)
    suffix = path.suffix.lower()
    for f in formats.values():
        if suffix in f.suffixes:
            return f
    if new_examples and _FALLBACK:
        return _FALLBACK[0]
    return None


def load_path(path: str | Path, request: Request):
    """The data set at ``path`` (a file or a folder) read by its format (see :meth:`Format.bundle`)."""
    path = Path(path)
    fmt = format_for(path)
    if fmt is None or not fmt.folder:
        if not path.exists():
            raise DataError(f"{path}: file not found")
        if fmt is None:
            raise DataError(f"{path}: unsupported file type {path.suffix.lower()!r} (use {describe()})")
    return fmt.bundle(path, request)
