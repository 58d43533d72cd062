"""Save and load, in one place: tensors as safetensors, everything else as JSON. Nothing is pickled.

A run directory holds ``model.safetensors`` (the weights), ``config.json`` (model name, config,
training settings, data and scaling, versions) and, while training can still be resumed,
``trainer_state.safetensors`` + ``trainer_state.json`` (optimizer moments, RNG states, epoch,
history). Every file is written to a temporary name and renamed into place, so an interrupted
write never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError, path_access

FORMAT_VERSION = 1
__all__ = ["CheckpointError", "FORMAT_VERSION", "load_state", "load_tensors", "load_weights", "read_history",
           "read_json", "save_checkpoint", "save_state", "save_tensors", "write_history", "write_json"]


def _atomic(path: Path, write) -> None:
    with path_access(path, "write"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json(path: str | Path, obj: Any) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")

    _atomic(Path(path), w)


def _json_default(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        with path_access(path, "read"):
            text = path.read_text(encoding="utf-8")
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    _atomic(Path(path), lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from None


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model``; names, shapes and finiteness are checked first, naming the tensor."""
    tensors = load_tensors(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise CheckpointError(f"{path}: tensor {name!r} has shape {tuple(t.shape)}, the model's config "
                                  f"needs {tuple(expected[name].shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or Inf values")
    model.load_state_dict(tensors)


# -- trainer state: optimizer state dicts are nested; split tensors from the rest -------------------
def _split(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_split(k, f"{prefix}.k{i}", tensors), _split(v, f"{prefix}.{i}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        return {_join(k, tensors): _join(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def save_state(run_dir: str | Path, state: dict[str, Any]) -> None:
    run_dir = Path(run_dir)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split(state, "s", tensors)
    save_tensors(run_dir / "trainer_state.safetensors", tensors)
    write_json(run_dir / "trainer_state.json", {"format": FORMAT_VERSION, "state": skeleton})


def load_state(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    meta = read_json(run_dir / "trainer_state.json")
    tensors = load_tensors(run_dir / "trainer_state.safetensors")
    try:
        return _join(meta["state"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{run_dir / 'trainer_state.json'} is damaged: {e}") from None


# -- history and the per-epoch checkpoint -------------------------------------------------------------
def write_history(path: str | Path, history: list[dict[str, Any]]) -> None:
    """The per-epoch history as CSV (one column per key that any epoch logged)."""
    keys: list[str] = []
    for rec in history:
        keys += [k for k in rec if k not in keys]

    def w(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)

    _atomic(Path(path), w)


def read_history(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    with path_access(path, "read"), open(path, newline="") as f:
        for row in csv.DictReader(f):
            rec: dict[str, Any] = {}
            for k, v in row.items():
                try:
                    rec[k] = int(v) if k == "epoch" else float(v)
                except (TypeError, ValueError):
                    rec[k] = v
            out.append(rec)
    return out


def save_checkpoint(run_dir: str | Path, weights: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """What ``--resume`` needs after an epoch: the weights first, then the trainer state that says which
    epoch they belong to, then the history."""
    run_dir = Path(run_dir)
    save_tensors(run_dir / "model.safetensors", weights)
    save_state(run_dir, state)
    write_history(run_dir / "history.csv", state["trainer"]["history"])
