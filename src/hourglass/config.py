"""Typed configuration dataclasses: validation, JSON round trips and ``--set key=value`` parsing.

Every model's config is a dataclass whose fields carry type hints. This module turns user input
(keyword arguments, JSON, command-line strings) into those types and refuses anything it cannot
convert, naming the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Literal, get_args, get_origin

from .errors import ConfigError


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def describe_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        inner = describe_type(args[0]) if args else "value"
        return f"comma-separated {inner}s"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(tp))
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any, from_string: bool) -> Any:
    """Convert ``value`` to type ``tp`` or raise ConfigError naming ``key``."""

    def fail() -> typing.NoReturn:
        raise ConfigError(f"config key {key!r}: {value!r} is not a valid {describe_type(tp)}")

    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and (value is None or (from_string and str(value).lower() in ("none", "null", ""))):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg, from_string)
            except ConfigError:
                continue
        fail()
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        raise ConfigError(f"config key {key!r}: {value!r} is not one of {', '.join(repr(c) for c in choices)}")
    if origin is tuple:
        args = get_args(tp)
        item_tp = args[0] if args else Any
        if from_string and isinstance(value, str):
            text = value.strip().strip("()[]")
            items = [s.strip() for s in text.split(",") if s.strip()] if text else []
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            fail()
        return tuple(_coerce(key, item, item_tp, from_string) for item in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_string and isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
        fail()
    if tp is int:
        if isinstance(value, bool):
            fail()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer() and not from_string:
            return int(value)
        if from_string and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                fail()
        fail()
    if tp is float:
        if isinstance(value, bool):
            fail()
        if isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:  # an integer beyond any float
                fail()
        if from_string and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                fail()
        fail()
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        fail()
    if tp is Any:
        return value
    fail()


def build_config(cls: type, values: dict[str, Any], *, from_string: bool = False, base: Any = None) -> Any:
    """Make a ``cls`` instance from ``values`` (over ``base`` or the defaults), type-checked.

    Unknown keys and values of the wrong type raise :class:`ConfigError` naming the key.
    ``from_string`` accepts command-line text ("0.1", "true", "256,128").
    """
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ConfigError(
            f"unknown config key {unknown[0]!r} for {cls.__name__}; known keys: {', '.join(sorted(types_))}"
        )
    converted = {k: _coerce(k, v, types_[k], from_string) for k, v in values.items()}
    cfg = dataclasses.replace(base, **converted) if base is not None else cls(**converted)
    # Fields that follow from others (e.g. a conv feature-map code's size) are filled in here,
    # unless the caller set them: then validate() checks that they agree.
    derive = getattr(cfg, "derive", None)
    if callable(derive):
        derive(set(values))
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def parse_set_options(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x,y"]`` -> ``{"a": "1", "b": "x,y"}``; a malformed item raises ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(cfg, f.name), tuple) else v for f in dataclasses.fields(cfg)
    }


def option(default: Any, help: str) -> Any:
    """A dataclass field with a one-line help text (shown by ``hourglass list --fields``)."""
    return dataclasses.field(default=default, metadata={"help": help})


def config_help(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type description, default, help) for each field."""
    types_ = field_types(cls)
    return [
        (f.name, describe_type(types_[f.name]), f.default, f.metadata.get("help", ""))
        for f in dataclasses.fields(cls)
    ]
