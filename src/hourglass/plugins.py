"""Plugins: models, data formats and data sets registered from outside the package.

A module outside hourglass registers its additions with the same decorators the package's own files
use (``@register_model``, ``@register_format``, ``@register_dataset``). hourglass imports it before
the first lookup by name, found in one of two ways:

* an installed package declares it as an entry point of the group ``hourglass.plugins``
  (``[project.entry-points."hourglass.plugins"] myformat = "mypackage.myformat"`` in its
  ``pyproject.toml``): ``pip install`` it and every ``hourglass`` command sees it;
* ``HOURGLASS_PLUGINS=module[,module...]`` names modules on ``sys.path`` (a script beside your data,
  no packaging: ``python -m hourglass`` has the current folder on its path, the ``hourglass`` command
  needs ``PYTHONPATH=.``).

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
    for ep in importlib.metadata.entry_points(group=GROUP):
        _import(ep.value.split(":")[0], f"entry point {ep.name!r} of {GROUP!r}")
    for name in os.environ.get(ENV, "").split(","):
        if name.strip():
            # The `hourglass` console script does not put the current folder on sys.path (python -m does):
            # a script beside the data is the usual reason for a missing module, so say so.
            _import(name.strip(), f"{ENV}", " (its folder must be on PYTHONPATH, or run python -m hourglass "
                                            "from that folder)")
    # Only now: a plugin that failed is tried (and fails) again at the next lookup, never skipped silently.
    # Modules imported already are not run twice (sys.modules), so a retry or a lookup made while a
    # plugin is being imported costs nothing.
    _loaded = True


def _import(module: str, where: str, hint: str = "") -> None:
    try:
        importlib.import_module(module)
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name == module.split(".")[0]
        raise ConfigError(f"plugin module {module!r} (from {where}) cannot be imported: {e}"
                          f"{hint if missing else ''}") from e
