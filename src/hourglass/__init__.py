"""hourglass: the autoencoder family on PyTorch, with one API, one trainer and one CLI.

    >>> import hourglass
    >>> run = hourglass.train("vae", "digits", epochs=10)     # or an array, (x, y), a DataFrame, a path
    >>> codes = run.encode(x)

The names below are loaded on first use, so ``import hourglass`` is quick and changes no global state
(torch, scikit-learn and matplotlib are imported when something needs them).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .errors import CheckpointError, ConfigError, DataError, HourglassError, PathError, TrainingError  # noqa: E402

# public name -> the module that defines it
_EXPORTS = {
    "Run": "run", "load": "run",
    "train": "run.fit", "resume": "run.fit",
    "create": "models", "list_models": "models", "list_presets": "models", "make_config": "models",
    "register_model": "registry", "register_preset": "registry",
    "load_data": "data", "list_datasets": "data", "as_bundle": "data", "register_dataset": "data",
    "register_format": "data",
    "TrainConfig": "options", "DataOptions": "options",
    "pca_subspace_angles": "evaluate.subspace",
}
_SUBMODULES = {"compare", "config", "data", "errors", "evaluate", "export", "io", "models", "options", "priors",
               "registry", "report", "run", "seeding", "sklearn", "threads", "training", "cli"}

__all__ = [  # noqa: F822 - the names in _EXPORTS are loaded on first use by __getattr__
    "CheckpointError", "ConfigError", "DataError", "DataOptions", "HourglassError", "PathError", "Run", "TrainConfig",
    "TrainingError", "__version__", "as_bundle", "create", "list_datasets", "list_models", "list_presets", "load",
    "load_data", "make_config", "pca_subspace_angles", "register_dataset", "register_format", "register_model",
    "register_preset", "resume", "train",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'hourglass' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
