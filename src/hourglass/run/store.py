"""The one place a run is saved and loaded: a run directory, or the bytes a pickled estimator carries.

A saved run is its record (``config.json``, :mod:`hourglass.run.record`), its weights
(``model.safetensors``), its per-epoch history (``history.csv``) and its metrics (``metrics.json``).
Loading checks everything before it is used, whichever way the run travelled:

1. the record's format: another format is refused with a message that says which hourglass can read it;
   a run saved by another hourglass version of the same format loads, with a
   :class:`~hourglass.errors.HourglassWarning` naming both versions;
2. the record itself (:meth:`RunRecord.from_dict <hourglass.run.record.RunRecord.from_dict>`): its
   structure, every type and value, the model config through the model's own dataclass, the scaling;
3. the memory the model it describes would take (:mod:`hourglass.memory`), before it is built;
4. the weights' names and shapes (from the safetensors header, before any tensor is read), then their values.

No pickle is ever read: the scikit-learn estimators pickle a run as its record's JSON and its weights as
safetensors bytes (:func:`to_state`), and :func:`from_state` puts it back through the same checks.

The store hands back the parts of a run (:class:`Parts`) and :class:`~hourglass.run.Run` assembles
itself from them, so the store imports no module of the run it stores (no import cycle within run/).

Writing a run directory holds its lock and never writes through a symbolic link (:mod:`~hourglass.run.rundir`).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .. import io, memory
from ..errors import CheckpointError, ConfigError
from ..models import get_model_class
from ..seeding import seeded
from ..training import checkpoint as ckpt
from . import rundir
from .record import MAX_CONFIG_BYTES, RunRecord

MAX_STATE_JSON = 16 << 20  # each JSON part of a pickled run


class Parts(NamedTuple):
    """A run as the store reads it: ``Run(*parts)`` is the run."""

    model: Any
    scaler: Any
    record: RunRecord
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    path: Path | None


# -- the record ------------------------------------------------------------------------------------------
def read_record(path: str | Path, *, warn: bool = True) -> RunRecord:
    """``path/config.json``, checked (see the module docstring); a problem is a CheckpointError naming the
    file and the key. ``warn``: a HourglassWarning when another hourglass version saved it."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"run directory {path} not found" if not path.exists()
                              else f"{path} is not a run directory")
    cfg_path = path / "config.json"
    info = ckpt.read_json(cfg_path, finite=True, max_bytes=MAX_CONFIG_BYTES)
    return RunRecord.from_dict(info, str(cfg_path), warn=warn)


def write_record(path: str | Path, record: RunRecord) -> None:
    """Write ``path/config.json`` (atomically)."""
    ckpt.write_json(Path(path) / "config.json", record.to_dict())


# -- a run directory -------------------------------------------------------------------------------------------
def save(path: str | Path | None, own_path: Path | None, model: torch.nn.Module, record: RunRecord,
         history: list[dict[str, Any]], metrics: dict[str, Any]) -> Path:
    """Write a run directory to ``path`` (default: the run's own ``own_path``). Another directory must be new
    or empty (see :func:`hourglass.run.rundir.claim_new`); the directory is locked while it is written."""
    path = Path(path) if path is not None else own_path
    if path is None:
        raise ConfigError("the run has no directory yet: pass save(path)")
    own = own_path is not None and os.path.realpath(path) == os.path.realpath(own_path)
    if own:
        io.make_dir(path, chosen=True)
    with (rundir.locked(path, rundir.command_line()) if own else rundir.claim_new(path, rundir.command_line())):
        rundir.check_links(path)
        ckpt.save_tensors(path / "model.safetensors", model.state_dict())
        write_record(path, record)
        if history:
            ckpt.write_history(path / "history.csv", history)
        if metrics:
            ckpt.write_json(path / "metrics.json", metrics)
    return path


def load(path: str | Path, device: str = "cpu") -> Parts:
    """Read a run directory back: the model through the registry, weights from safetensors, everything
    checked before it is used (see the module docstring)."""
    path = Path(path)
    record = read_record(path)
    weights = path / "model.safetensors"
    if not weights.is_file() and not os.path.islink(weights):
        if ckpt.latest_checkpoint(path) is None:
            raise CheckpointError(f"{weights} not found: the run was stopped before its first checkpoint; "
                                  f"start it again with `hourglass train --resume {path}`")
        raise CheckpointError(f"{weights} not found; continue the run with `hourglass train --resume {path}`")
    return build(record, path, weights, device=device)


def build(record: RunRecord, path: str | Path | None, weights: str | Path | None, *, device: str = "cpu",
          seed: int | None = None) -> Parts:
    """The run ``record`` describes: its model built after the memory it needs is checked, with the weights in
    ``weights`` (checked by name and shape before they are read), or freshly initialised under ``seed`` when
    ``weights`` is None (a run restarted from scratch). With ``path``, its history and metrics are read too."""
    where = Path(path) / "config.json" if path is not None else "config"
    model_cls = get_model_class(record.model)
    size = memory.check_model(model_cls, record.config, where=f"{where}: ")
    if weights is not None:
        ckpt.check_weights(weights, size.state_shapes)
    with seeded(seed) if seed is not None else contextlib.nullcontext():
        model = model_cls(record.config)
    if weights is not None:
        ckpt.load_weights(model, weights)
    _place(model, device)
    metrics, history = {}, []
    if path is not None:
        path = Path(path)
        if (path / "metrics.json").is_file():
            metrics = ckpt.read_json(path / "metrics.json", max_bytes=MAX_CONFIG_BYTES)
            if not isinstance(metrics, dict):
                raise CheckpointError(f"{path / 'metrics.json'}: expected a JSON object, found "
                                      f"{type(metrics).__name__}")
        history = ckpt.read_history(path / "history.csv")
    return Parts(model, record.scaler, record, history, metrics, path)


def _place(model, device: str) -> None:
    from ..training.trainer import resolve_device

    model.to(resolve_device(device)).eval()


# -- a pickled run (the scikit-learn estimators) -------------------------------------------------------------
def to_state(model: torch.nn.Module, record: RunRecord, history: list[dict[str, Any]],
             metrics: dict[str, Any]) -> dict[str, Any]:
    """What a pickled estimator carries of its run: the record as JSON, the weights as safetensors bytes, the
    history and metrics as JSON. Plain strings and bytes: unpickling it runs no hourglass code but
    :func:`from_state`."""
    from safetensors.torch import save as save_bytes

    weights = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return {"weights": save_bytes(weights), "info": json.dumps(record.to_dict()),
            "history": json.dumps(history), "metrics": json.dumps(metrics)}


def from_state(state: Any, device: str) -> Parts:
    """The run of a pickled estimator (see :func:`to_state`), checked as a run directory's is: the record, the
    memory the model takes, the weights' names and shapes (from the header) and values."""
    where = "the pickled estimator's run"
    if not isinstance(state, dict) or not all(isinstance(state.get(k), str) for k in ("info", "history", "metrics")) \
            or not isinstance(state.get("weights"), bytes):
        raise CheckpointError(f"{where} is damaged: expected its record, history and metrics as JSON and its weights "
                              "as safetensors bytes")
    parts = {k: _json(state[k], f"{where}: {k}") for k in ("info", "history", "metrics")}
    record = RunRecord.from_dict(parts["info"], f"{where}: config")
    if not isinstance(parts["history"], list) or not isinstance(parts["metrics"], dict):
        raise CheckpointError(f"{where} is damaged: its history is not a list or its metrics not an object")
    model_cls = get_model_class(record.model)
    size = memory.check_model(model_cls, record.config, where=f"{where}: config: ")
    model = model_cls(record.config)
    _load_weight_bytes(model, state["weights"], size.state_shapes, f"{where}: weights")
    _place(model, device)
    return Parts(model, record.scaler, record, parts["history"], parts["metrics"], None)


def _json(text: str, where: str) -> Any:
    if len(text) > MAX_STATE_JSON:
        raise CheckpointError(f"{where} is {len(text):,} characters; at most {MAX_STATE_JSON:,}")
    try:
        return json.loads(text, parse_constant=ckpt._refuse_constant)
    except ValueError as e:
        raise CheckpointError(f"{where} is not valid JSON: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{where} is not valid JSON: nested too deeply") from None


def _load_weight_bytes(model: torch.nn.Module, data: bytes, expected: dict[str, tuple[int, ...]], where: str) -> None:
    """Load safetensors ``data`` into ``model``: the names and shapes from the header first, then the values."""
    from safetensors.torch import load as load_bytes

    shapes = _header_shapes(data, where)
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{where} do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name in expected:  # in the model's order: the first layer that differs is named
        if shapes[name] != tuple(expected[name]):
            raise CheckpointError(f"{where}: tensor {name!r} has shape {shapes[name]}, the model's config needs "
                                  f"{tuple(expected[name])}")
    try:
        tensors = load_bytes(data)
    except Exception as e:  # safetensors raises its own error type (SafetensorError), not a common base
        raise CheckpointError(f"{where} are not readable safetensors bytes: {e}") from None
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{where}: tensor {name!r} holds NaN or Inf values")
    model.load_state_dict(tensors)


def _header_shapes(data: bytes, where: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header (8 bytes of little-endian length, then JSON)."""
    try:
        (n,) = struct.unpack("<Q", data[:8])
        if n > len(data) - 8:
            raise ValueError(f"a header of {n:,} bytes in {len(data):,}")
        header = json.loads(data[8:8 + n].decode("utf-8"))
        return {k: tuple(int(s) for s in v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (struct.error, ValueError, UnicodeDecodeError, TypeError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{where} are not readable safetensors bytes: {e}") from None
