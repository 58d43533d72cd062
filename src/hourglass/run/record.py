"""``config.json`` as dataclasses: the one place that reads and writes a run's record by key.

A run's record says which model it is (name, preset, config), how it was trained (:class:`TrainConfig`),
what its data were and how to read them again (:class:`DataRecord`: name, source, files, table transform,
image settings, split sizes, the fitted scaling) and which versions wrote it. :meth:`RunRecord.from_dict`
checks all of it once, when the record is read (a run directory's ``config.json`` or a pickled estimator):
the structure, every type and value used later, the model config through the model's own dataclass and
the scaling. Everything else reads the record's attributes, never ``config.json``'s keys.

Keys this version does not know are kept (``extra``) and written back, so saving a record never drops
what another version recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
import warnings
from typing import Any

import numpy as np

from ..config import build_config, config_to_dict
from ..data import Scaler
from ..errors import CheckpointError, ConfigError, HourglassError, HourglassWarning
from ..models import get_model_class
from ..options import DataOptions, TrainConfig
from ..training.checkpoint import FORMAT_VERSION

MAX_CONFIG_BYTES = 16 << 20  # config.json and metrics.json; a run's own are a few KB
TRAIN_KEYS_READ = ("seed", "val_fraction", "eval_batch_size")  # training options a run reads: never defaulted

_NONE = type(None)
# The data section: key -> (types, required). Written in this order (the report's Data table shows it so).
_DATA_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), True), "data_dir": ((str, _NONE), False), "source": ((str, _NONE), False),
    "fingerprint": ((str, _NONE), False), "kind": ((str,), True), "input_shape": ((list, _NONE), False),
    "test_fraction": ((int, float), False), "label_column": ((int, str, _NONE), False),
    "label_names": ((list, _NONE), False), "n_train": ((int, _NONE), False), "n_val": ((int, _NONE), False),
    "n_test": ((int, _NONE), False), "scaling": ((dict,), True), "exclude_class": ((int, _NONE), False),
    "keep_labels": ((int, _NONE), False), "options": ((dict, _NONE), False), "streamed": ((bool,), False),
    "memory_budget_bytes": ((int, _NONE), False), "transform": ((dict, _NONE), False),
    "image": ((dict, _NONE), False), "files": ((dict, _NONE), False), "verified": ((object,), False),
    "notes": ((list, _NONE), False),
}
_RUN_KEYS = ("format", "model", "preset", "config", "train", "data", "versions", "created")


@dataclasses.dataclass(kw_only=True)
class DataRecord:
    """The data a run was trained on: enough to read them again and to treat new data the same way."""

    name: str  # a named data set, a path as given, or "in-memory"
    kind: str  # "image" | "tabular"
    scaling: Scaler  # fitted on the training split
    data_dir: str | None = None
    source: str | None = None  # where the data were read from (a resolved path, or a description)
    fingerprint: str | None = None  # in-memory data: a checksum; the run then needs them passed again
    input_shape: list[int] | None = None
    test_fraction: float = 0.2
    label_column: int | str | None = None
    label_names: list[str] | None = None  # class names, when the labels were names
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    exclude_class: int | None = None  # left out of training (anomaly detection)
    keep_labels: int | None = None  # labels kept per class (semi-supervised)
    options: dict[str, Any] | None = None  # the DataOptions as given (see data_options())
    streamed: bool = False  # the data did not fit the memory budget and are read from disk
    memory_budget_bytes: int | None = None
    transform: dict[str, Any] | None = None  # the fitted table transform (hourglass.data.transform)
    image: dict[str, Any] | None = None  # image settings (channels, size)
    files: dict[str, Any] | None = None  # the files read, with sizes, times and checksums
    verified: Any = None
    notes: list[str] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, d: dict[str, Any], input_shape: Any) -> "DataRecord":
        """The ``data`` section, checked: every key the run reads, of the type it expects; the scaling
        fitted, finite and shaped for one example of ``input_shape``."""
        for key, (types, required) in _DATA_TYPES.items():
            if key not in d:
                if required:
                    raise ConfigError(f"key 'data.{key}' is missing")
                continue
            v = d[key]
            if types == (object,):
                continue
            if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
                raise ConfigError(f"key 'data.{key}': {_short(v)} is not a "
                                  f"{' or '.join(t.__name__ for t in types)}")
        if d["kind"] not in ("image", "tabular"):
            raise ConfigError(f"key 'data.kind': {_short(d['kind'])} is not 'image' or 'tabular'")
        if "test_fraction" in d and not 0 < d["test_fraction"] < 1:
            raise ConfigError(f"key 'data.test_fraction': {d['test_fraction']} is not between 0 and 1")
        if d.get("label_names") is not None and not all(isinstance(n, str) for n in d["label_names"]):
            raise ConfigError("key 'data.label_names': expected a list of names (strings)")
        values = {k: d[k] for k in _DATA_TYPES if k in d}
        values["scaling"] = _scaler_from_record(d["scaling"], input_shape)
        return cls(**values, extra={k: v for k, v in d.items() if k not in _DATA_TYPES})

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _DATA_TYPES}
        out["scaling"] = self.scaling.to_dict()
        return {**out, **self.extra}

    def data_options(self) -> DataOptions:
        """The run's :class:`DataOptions` (defaults for what an older run did not record)."""
        recorded = dict(self.options or {})
        recorded.setdefault("data_dir", self.data_dir)
        recorded.setdefault("test_fraction", self.test_fraction)
        recorded.setdefault("label_column", self.label_column)
        try:
            return build_config(DataOptions, recorded)
        except HourglassError as e:
            raise CheckpointError(f"config.json: data options: {e}") from None


@dataclasses.dataclass(kw_only=True)
class RunRecord:
    """What ``config.json`` records: the model, its training options, its data, the versions that wrote it."""

    model: str  # a registered model name
    config: Any  # the model's config dataclass
    train: TrainConfig
    data: DataRecord
    preset: str | None = None
    format: int = FORMAT_VERSION
    versions: dict[str, Any] = dataclasses.field(default_factory=dict)
    created: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys this version does not know

    @property
    def scaler(self) -> Scaler:
        return self.data.scaling

    @classmethod
    def new(cls, model: str, preset: str | None, config: Any, train_config: TrainConfig, data_options: DataOptions,
            bundle: Any, splits: Any, scaler: Scaler, streamed: bool = False, budget: int | None = None
            ) -> "RunRecord":
        """The record of a run about to be trained on ``bundle`` (split into ``splits``)."""
        d = data_options
        data = DataRecord(
            name=bundle.name, data_dir=d.data_dir, source=bundle.source, fingerprint=bundle.fingerprint,
            kind=bundle.kind, input_shape=list(bundle.input_shape), test_fraction=d.test_fraction,
            label_column=d.label_column, label_names=bundle.label_names, **splits.sizes(), scaling=scaler,
            exclude_class=d.anomaly_class, keep_labels=d.keep_labels, options=config_to_dict(d), streamed=streamed,
            memory_budget_bytes=budget, transform=bundle.transform, image=bundle.image, files=bundle.files,
            verified=getattr(bundle, "verified", None), notes=bundle.notes)
        return cls(model=model, preset=preset, config=config, train=train_config, data=data, versions=versions(),
                   created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, info: Any, where: str = "config.json", *, warn: bool = True) -> "RunRecord":
        """A record read back, checked once; a problem is a CheckpointError naming ``where`` and the key.
        A record of this format written by another hourglass version loads with a HourglassWarning."""
        if not isinstance(info, dict):
            raise CheckpointError(f"{where}: expected a JSON object, found {type(info).__name__}")
        fmt = info.get("format")
        if fmt != FORMAT_VERSION:
            raise CheckpointError(f"{where}: unsupported format {fmt!r}: {_format_advice(fmt, info.get('versions'))}")
        for key, kind in (("model", str), ("config", dict), ("train", dict), ("data", dict)):
            if not isinstance(info.get(key), kind):
                raise CheckpointError(f"{where}: key {key!r} is missing or not a {kind.__name__}")
        for key, types in (("preset", (str, _NONE)), ("versions", (dict,)), ("created", (str, _NONE))):
            if key in info and not isinstance(info[key], types):
                raise CheckpointError(f"{where}: key {key!r}: {_short(info[key])} is not a "
                                      f"{' or '.join(t.__name__ for t in types)}")
        try:
            model_cls = get_model_class(info["model"])
            config = build_config(model_cls.config_cls, info["config"])
            for key in TRAIN_KEYS_READ:
                if key not in info["train"]:
                    raise ConfigError(f"key 'train.{key}' is missing")
            train = build_config(TrainConfig, info["train"])
            data = DataRecord.from_dict(info["data"], info["config"].get("input_shape"))
        except HourglassError as e:
            raise CheckpointError(f"{where}: {e}") from None
        record = cls(model=info["model"], preset=info.get("preset"), config=config, train=train, data=data,
                     format=fmt, versions=dict(info.get("versions") or {}), created=info.get("created"),
                     extra={k: v for k, v in info.items() if k not in _RUN_KEYS})
        if warn:
            record.warn_if_other_version(where)
        return record

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``config.json`` holds (keys in the order hourglass has always written them)."""
        return {"format": self.format, "model": self.model, "preset": self.preset,
                "config": config_to_dict(self.config), "train": config_to_dict(self.train),
                "data": self.data.to_dict(), "versions": dict(self.versions), "created": self.created, **self.extra}

    def replace(self, **changes: Any) -> "RunRecord":
        return dataclasses.replace(self, **changes)

    def warn_if_other_version(self, where: str) -> None:
        """A run saved by another hourglass version: the format is the same, so it loads, but say so."""
        from .. import __version__

        saved = self.versions.get("hourglass")
        if isinstance(saved, str) and saved != __version__:
            warnings.warn(f"{where}: the run was saved by hourglass {saved} and is loaded by hourglass {__version__} "
                          f"(the same format, {self.format}); its metrics may differ slightly if evaluated again",
                          HourglassWarning, stacklevel=3)


def looks_like_record(obj: Any) -> bool:
    """Whether parsed JSON ``obj`` is a record hourglass wrote (an object naming a model and a format), of
    any version: a folder holding one is a run's, never overwritten as a new run's folder."""
    return isinstance(obj, dict) and isinstance(obj.get("model"), str) and "format" in obj


def _format_advice(fmt: Any, saved_versions: Any) -> str:
    """Why a record of another format is refused, and what to do."""
    from .. import __version__

    saved = saved_versions.get("hourglass") if isinstance(saved_versions, dict) else None
    if fmt is None:
        return "not a run record hourglass wrote (no format number)"
    by = f"hourglass {saved}" if isinstance(saved, str) else "another hourglass version"
    return (f"this hourglass ({__version__}) reads format {FORMAT_VERSION}; the run was saved by {by}: load it "
            "with that version, or train it again with this one")


def _scaler_from_record(record: Any, input_shape: Any) -> Scaler:
    """The stored scaling, checked: fitted, finite, and shaped for one example of ``input_shape``."""
    if not isinstance(record, dict):
        raise ConfigError("key 'data.scaling' is not an object")
    try:
        s = Scaler.from_dict(record)
    except (ValueError, OverflowError) as e:  # a ragged, non-numeric or out-of-range offset or scale
        raise ConfigError(f"key 'data.scaling': {str(e).splitlines()[0]}") from None
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if s.offset is None or s.scale is None:
        raise ConfigError("key 'data.scaling': the scaling was never fitted (no offset and scale)")
    for name, arr in (("offset", s.offset), ("scale", s.scale)):
        if arr.shape not in ((1,), shape) or not np.isfinite(arr).all():
            raise ConfigError(f"key 'data.scaling.{name}': expected finite numbers, one or one per value of "
                              f"an example {shape}, got shape {arr.shape}")
    if not (s.scale != 0).all():
        raise ConfigError("key 'data.scaling.scale': holds a zero")
    if s.shape is not None and s.shape != shape:
        raise ConfigError(f"key 'data.scaling.shape': {list(s.shape)} differs from the model's input shape {shape}")
    return s


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def versions() -> dict[str, str]:
    import torch

    from .. import __version__

    return {"hourglass": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
