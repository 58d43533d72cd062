"""Models: one file per algorithm, each registering itself with :func:`hourglass.registry.register_model`.

The lookups by name live here, not in the registry: they import every module of this folder first
(the package importing its own children), so a new file is a new model and the registry imports none.
The model files (and the plugins of :mod:`hourglass.plugins`) are imported on the first lookup, not
when this package is imported, so ``hourglass.models.base`` alone does not load the other nine.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .. import plugins, registry
from ..config import build_config
from ..errors import ConfigError

_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    plugins.load_plugins()  # models registered from outside the package (see hourglass.plugins)
    _loaded = True  # after the plugins: when one fails to import, the next lookup raises again


def _models() -> dict[str, type]:
    _load_all()
    return registry.registered_models()


def _presets() -> dict[str, registry.Preset]:
    _load_all()
    return registry.registered_presets()


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_models())


def list_presets() -> dict[str, registry.Preset]:
    return dict(sorted(_presets().items()))


def get_model_class(name: str) -> type:
    models = _models()
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(models))}")
    return models[name]


def get_preset(name: str) -> registry.Preset:
    presets = _presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(sorted(presets))}")
    return presets[name]


def preset_for(model: str, preset: str | None) -> registry.Preset | None:
    """Preset ``preset`` (None: none), refused when it belongs to another model."""
    if preset is None:
        return None
    p = get_preset(preset)
    if p.model != model:
        raise ConfigError(f"preset {preset!r} is for model {p.model!r}, not {model!r}")
    return p


def make_config(name: str, preset: str | None = None, *, from_string: bool = False, **values: Any) -> Any:
    """The config of model ``name``: defaults, then the preset's values, then ``values``."""
    cls = get_model_class(name).config_cls
    p = preset_for(name, preset)
    base = build_config(cls, dict(p.config)) if p is not None and p.config else None
    return build_config(cls, values, from_string=from_string, base=base)


def create(name: str, preset: str | None = None, **config: Any):
    """Build model ``name`` from its config (``input_shape`` is required).

    >>> model = create("vae", input_shape=(64,), latent_dim=2)
    """
    cfg = make_config(name, preset, **config)
    return get_model_class(name)(cfg)
