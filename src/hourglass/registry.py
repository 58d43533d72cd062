"""The model registry: ``@register_model`` and named presets, and nothing above them.

A model file imports this module and registers its own classes; this module imports no model (the
arrows point one way, as torchvision's ``register_model`` does). Looking a model up by name is
:mod:`hourglass.models`' job: it imports every file in its folder first, so adding a model is one
new file in ``hourglass/models/``. :func:`catalog` reads those files' source without importing them.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T", bound=type)

_MODELS: dict[str, type] = {}
_PRESETS: dict[str, "Preset"] = {}


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


def registered_models() -> dict[str, type]:
    """The models registered so far, by name (:func:`hourglass.models.list_models` imports them all first)."""
    return dict(_MODELS)


def registered_presets() -> dict[str, Preset]:
    """The presets registered so far, by name."""
    return dict(_PRESETS)


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
