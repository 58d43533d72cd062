"""Plugins: models, data formats and data sets registered from outside the package.

A module outside hourglass registers its additions with the same decorators the package's own files
use (``@register_model``, ``@register_format``, ``@register_dataset``). hourglass imports it before
the first lookup by name, found in one of two ways:

* an installed package declares it as an entry point of the group ``hourglass.plugins``
  (``[project.entry-points."hourglass.plugins"] myformat = "mypackage.myformat"`` in its
  ``pyproject.toml``): ``pip install`` it and every ``hourglass`` command sees it;
* ``HOURGLASS_PLUGINS=module[,module...]`` names modules on ``sys.path`` (a script beside your data,
  no packaging).

From Python, importing the module before calling hourglass is enough.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os

from .errors import ConfigError

GROUP = "hourglass.plugins"
ENV = "HOURGLASS_PLUGINS"
_loaded = False


def load_plugins() -> None:
    """Import every plugin module once (entry points first, then ``HOURGLASS_PLUGINS``)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in importlib.metadata.entry_points(group=GROUP):
        _import(ep.value.split(":")[0], f"entry point {ep.name!r} of {GROUP!r}")
    for name in os.environ.get(ENV, "").split(","):
        if name.strip():
            _import(name.strip(), f"{ENV}")


def _import(module: str, where: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"plugin module {module!r} (from {where}) cannot be imported: {e}") from e
