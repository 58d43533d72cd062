"""The model registry: ``@register_model`` and named presets.

Everything that needs "the model called X" (the CLI, checkpoint loading, the scikit-learn wrapper,
the generic tests) goes through here, so adding a model is one new file in ``hourglass/models/``:
the package imports every module in that folder, and each module registers its own classes.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Any, Callable, TypeVar

from .config import build_config
from .errors import ConfigError

T = TypeVar("T", bound=type)

_MODELS: dict[str, type] = {}
_PRESETS: dict[str, "Preset"] = {}
_loaded = False


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named configuration: model config overrides plus training settings (epochs, batch size)."""

    name: str
    model: str
    description: str
    config: dict[str, Any]
    train: dict[str, Any]


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator: register a model under ``name`` (duplicates are refused)."""

    def deco(cls: T) -> T:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"a model named {name!r} is already registered ({_MODELS[name].__qualname__})")
        if not dataclasses.is_dataclass(getattr(cls, "config_cls", None)):
            raise TypeError(f"model {name!r} needs a dataclass `config_cls` attribute")
        cls.name = name  # type: ignore[attr-defined]
        _MODELS[name] = cls
        return cls

    return deco


def register_preset(name: str, model: str, description: str, train: dict[str, Any] | None = None, **config: Any):
    """Register a named preset for ``model`` (config overrides, plus trainer settings in ``train``)."""
    if name in _PRESETS:
        raise ValueError(f"a preset named {name!r} is already registered")
    _PRESETS[name] = Preset(name, model, description, dict(config), dict(train or {}))


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import models

    for info in pkgutil.iter_modules(models.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{models.__name__}.{info.name}")


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_all()
    return sorted(_MODELS)


def list_presets() -> dict[str, Preset]:
    _load_all()
    return dict(sorted(_PRESETS.items()))


def get_model_class(name: str) -> type:
    _load_all()
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def get_preset(name: str) -> Preset:
    _load_all()
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(sorted(_PRESETS))}")
    return _PRESETS[name]


def preset_for(model: str, preset: str | None) -> Preset | None:
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


def catalog() -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """``({model: summary}, {preset: (model, description)})`` read from the model files' source without
    importing them: ``hourglass list`` answers without loading torch. The registrations are literal
    (``@register_model("name")`` on a class with a ``summary = "..."``; ``register_preset("name",
    "model", "description", ...)``), and a test checks that this view equals the imported registry."""
    models: dict[str, str] = {}
    presets: dict[str, tuple[str, str]] = {}
    folder = Path(__file__).parent / "models"
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for deco in node.decorator_list:
                    if _call_name(deco) == "register_model":
                        models[_literal(deco.args[0])] = next(
                            (_literal(st.value) for st in node.body if isinstance(st, ast.Assign)
                             and any(isinstance(t, ast.Name) and t.id == "summary" for t in st.targets)), "")
            elif isinstance(node, ast.Call) and _call_name(node) == "register_preset":
                name, model, description = (_literal(a) for a in node.args[:3])
                presets[name] = (model, description)
    return dict(sorted(models.items())), dict(sorted(presets.items()))


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


def _literal(node: ast.AST) -> str:
    value = ast.literal_eval(node)
    if not isinstance(value, str):
        raise TypeError(f"registrations must use literal strings, got {value!r}")
    return value
