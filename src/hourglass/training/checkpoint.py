"""Save and load, in one place: tensors as safetensors, everything else as JSON. Nothing is pickled.

A run directory holds ``config.json`` (model name, config, training settings, data and scaling,
versions), ``model.safetensors`` (the weights) and ``history.csv``; while training can go on, it also
holds one **checkpoint**: everything that must agree for ``--resume`` to continue exactly where
training stopped, written as one transaction::

    RUN/checkpoints/epoch-000012/            after 12 epochs (epoch-000012-step-000040: stopped on a
        manifest.json                         signal after step 40 of epoch 13)
        model.safetensors                     the weights
        trainer_state.safetensors             optimizer moments, RNG states, best weights (tensors)
        trainer_state.json                    epoch, step, history, early stopping (the rest)
        history.csv                           the per-epoch history

The parts are written into a temporary folder (``checkpoints/.hourglass-tmp.epoch-000012.*``) and
fsynced, then ``manifest.json`` (format, epoch, step, model name and config, and each part's size and
SHA-256) is written and fsynced, and the folder is renamed into place in one step; only then are older
checkpoints removed and ``RUN/model.safetensors`` and ``RUN/history.csv`` pointed at the new parts
(hard links). A process killed at any moment leaves either the old checkpoint or the new one, complete.
:func:`open_checkpoint` verifies the newest one against its manifest and ``config.json`` before
``--resume`` trusts it, and refuses a mismatch naming the files.

Reads are bounded: JSON files larger than :data:`MAX_JSON_BYTES` are refused before they are read,
and weights are checked by name and shape against the model from the safetensors header before any
tensor is read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .. import io, memory
from ..errors import CheckpointError, path_access

CHECKPOINTS = "checkpoints"  # RUN/checkpoints/epoch-NNNNNN: one folder per checkpoint

FORMAT_VERSION = 1  # of config.json
CHECKPOINT_FORMAT = 2  # of a checkpoint folder (1: the loose files of hourglass 0.1's first releases)
MAX_JSON_BYTES = 64 << 20
MANIFEST = "manifest.json"
PARTS = ("model.safetensors", "trainer_state.safetensors", "trainer_state.json", "history.csv")
_NAME = re.compile(r"^epoch-(\d{6,})(?:-step-(\d{6,}))?$")
__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "FORMAT_VERSION", "checkpoint_name", "latest_checkpoint",
           "load_state", "load_tensors", "load_weights", "open_checkpoint", "read_history", "read_json",
           "save_checkpoint", "save_state", "save_tensors", "write_history", "write_json"]


def write_json(path: str | Path, obj: Any) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")

    io.atomic_write(path, w)


def _json_default(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows here")


def read_json(path: str | Path, *, finite: bool = False, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse ``path``; a missing, oversized, undecodable or too deeply nested file is a CheckpointError.
    ``finite`` refuses the NaN and Infinity literals Python's JSON accepts."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    with path_access(path, "read"):
        size = path.stat().st_size
        if size > max_bytes:
            raise CheckpointError(f"{path} is {size:,} bytes; a file of this kind is at most {max_bytes:,}")
        data = path.read_bytes()
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant if finite else None)
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{path} is not valid JSON: nested too deeply") from None


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    io.atomic_write(Path(path), lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of safetensors file ``path``; a file larger than the memory hourglass may use
    (:func:`hourglass.memory.memory_limit`) is refused before it is read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    limit, source = memory.memory_limit()
    if path.stat().st_size > limit:
        raise CheckpointError(f"{path} holds {memory.format_bytes(path.stat().st_size)} of tensors, more than "
                              f"{source} ({memory.format_bytes(limit)})")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from None


def check_weights(path: str | Path, expected: dict[str, tuple[int, ...]]) -> None:
    """Compare the names and shapes in the header of safetensors file ``path`` with ``expected`` (name ->
    shape), reading no tensor; a difference is a CheckpointError naming the tensor."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        with safe_open(str(path), "pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from None
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name in expected:  # in the model's order: the first layer that differs is named
        shape = shapes[name]
        if shape != tuple(expected[name]):
            raise CheckpointError(f"{path}: tensor {name!r} has shape {shape}, the model's config needs "
                                  f"{tuple(expected[name])}")


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model``; names and shapes are checked from the header before anything is read,
    then every value must be finite (the message names the tensor)."""
    check_weights(path, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    tensors = load_tensors(path)
    for name, t in tensors.items():
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


def _state_parts(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split(state, "s", tensors)
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return flat, {"format": CHECKPOINT_FORMAT, "state": skeleton}


def save_state(folder: str | Path, state: dict[str, Any]) -> None:
    """The trainer state alone, as ``trainer_state.safetensors`` + ``trainer_state.json`` in ``folder``."""
    folder = Path(folder)
    tensors, meta = _state_parts(state)
    io.atomic_write(folder / "trainer_state.safetensors", lambda tmp: save_file(tensors, tmp))
    write_json(folder / "trainer_state.json", meta)


def load_state(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    meta = read_json(folder / "trainer_state.json")
    tensors = load_tensors(folder / "trainer_state.safetensors")
    try:
        if not isinstance(meta, dict):
            raise TypeError(f"expected a JSON object, found {type(meta).__name__}")
        state = _join(meta["state"], tensors)
        if not isinstance(state, dict):
            raise TypeError(f"the state is a {type(state).__name__}, not an object")
        return state
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{folder / 'trainer_state.json'} is damaged: {type(e).__name__}: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{folder / 'trainer_state.json'} is damaged: nested too deeply") from None


# -- history ----------------------------------------------------------------------------------------------
def _write_history_file(path: str, history: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for rec in history:
        keys += [k for k in rec if k not in keys]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def write_history(path: str | Path, history: list[dict[str, Any]]) -> None:
    """The per-epoch history as CSV (one column per key that any epoch logged)."""
    io.atomic_write(Path(path), lambda tmp: _write_history_file(tmp, history))


def read_history(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    with path_access(path, "read"):
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path} is {path.stat().st_size:,} bytes; a history is at most {MAX_JSON_BYTES:,}")
        try:
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    rec: dict[str, Any] = {}
                    for k, v in row.items():
                        try:
                            rec[k] = int(v) if k == "epoch" else float(v)
                        except (TypeError, ValueError):
                            rec[k] = v
                    out.append(rec)
        except (csv.Error, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path} is not a readable history: {e}") from None
    return out


# -- the checkpoint: one folder, one rename ---------------------------------------------------------------
def checkpoint_name(epoch: int, step: int = 0) -> str:
    return f"epoch-{epoch:06d}" + (f"-step-{step:06d}" if step else "")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _write_part(folder: Path, name: str, write) -> dict[str, Any]:
    path = folder / name
    write(str(path))
    io.fsync_file(path)
    io.fault_point(f"checkpoint part {name}")
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def save_checkpoint(run_dir: str | Path, weights: dict[str, torch.Tensor], state: dict[str, Any],
                    identity: dict[str, Any] | None = None) -> Path:
    """Write one checkpoint of the run in ``run_dir`` (see the module docstring) and return its folder.
    ``identity`` (the model name and config from ``config.json``) is recorded in the manifest so that
    ``--resume`` can tell a checkpoint of another model apart."""
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS
    epoch, step = int(state["trainer"]["epoch"]), int(state["trainer"].get("step", 0))
    name = checkpoint_name(epoch, step)
    io.make_dir(root)
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}
    tensors, meta = _state_parts(state)
    with path_access(root, "write a checkpoint in"):
        tmp = Path(tempfile.mkdtemp(prefix=f"{io.TMP_PREFIX}.{name}.", dir=root))
        try:
            files = {
                "model.safetensors": _write_part(tmp, "model.safetensors", lambda p: save_file(flat, p)),
                "trainer_state.safetensors": _write_part(tmp, "trainer_state.safetensors",
                                                         lambda p: save_file(tensors, p)),
                "trainer_state.json": _write_part(tmp, "trainer_state.json", lambda p: _dump(p, meta, indent=None)),
                "history.csv": _write_part(tmp, "history.csv",
                                           lambda p: _write_history_file(p, state["trainer"]["history"])),
            }
            manifest = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "step": step, **(identity or {}), "files": files}
            _write_part(tmp, MANIFEST, lambda p: _dump(p, manifest))
            io.fsync_dir(tmp)
            final = root / name
            if final.exists():  # the same moment saved again (a resumed run stopped where it began)
                io.remove_tree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        io.fsync_dir(root)
    io.fault_point("checkpoint renamed")
    for other in _checkpoints(root):
        if other != final:
            io.remove_tree(other)
    io.fault_point("older checkpoints removed")
    for part in ("model.safetensors", "history.csv"):
        io.install_file(final / part, run_dir / part)
    return final


def _dump(path: str, obj: Any, indent: int | None = 2) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent, default=_json_default)
        f.write("\n")


def _checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders under ``root``, oldest first (by epoch, then step)."""
    if not root.is_dir():
        return []
    found = []
    for entry in os.scandir(root):
        m = _NAME.match(entry.name)
        if m and entry.is_dir(follow_symlinks=False):
            found.append(((int(m.group(1)), int(m.group(2) or 0)), Path(entry.path)))
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint folder of ``run_dir``, unverified (None if there is none)."""
    found = _checkpoints(Path(run_dir) / CHECKPOINTS)
    return found[-1] if found else None


def open_checkpoint(run_dir: str | Path, info: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``run_dir`` after checking it against its manifest and against ``info``
    (``config.json``): (its folder, the manifest). None when the run has no checkpoint yet. Anything
    that does not match is a CheckpointError naming the files: a checkpoint is used whole or not at all."""
    run_dir = Path(run_dir)
    folder = latest_checkpoint(run_dir)
    if folder is None:
        if (run_dir / "trainer_state.json").exists():
            raise CheckpointError(f"{run_dir} holds a checkpoint in the format of an earlier hourglass "
                                  "(trainer_state.json beside the weights), whose parts cannot be checked to "
                                  "agree; it cannot be resumed safely: train the run again")
        return None
    io.refuse_link(folder)
    manifest = read_json(folder / MANIFEST)
    where = folder / MANIFEST
    if not isinstance(manifest, dict) or manifest.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{where}: not a checkpoint manifest of format {CHECKPOINT_FORMAT}")
    m = _NAME.match(folder.name)
    epoch, step = int(m.group(1)), int(m.group(2) or 0)
    if manifest.get("epoch") != epoch or manifest.get("step", 0) != step:
        raise CheckpointError(f"{where} names epoch {manifest.get('epoch')!r}, step {manifest.get('step')!r}, "
                              f"but the folder is {folder.name}")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(PARTS):
        raise CheckpointError(f"{where} does not list the parts {', '.join(PARTS)}")
    bad = []
    for part in PARTS:
        path, rec = folder / part, files[part]
        if not isinstance(rec, dict):
            bad.append(f"{part} (no size and checksum in the manifest)")
        elif not path.is_file() or path.is_symlink():
            bad.append(f"{part} (missing)")
        elif path.stat().st_size != rec.get("bytes"):
            bad.append(f"{part} ({path.stat().st_size:,} bytes, the manifest says {rec.get('bytes')!r})")
        elif _sha256(path) != rec.get("sha256"):
            bad.append(f"{part} (checksum differs from the manifest)")
    if bad:
        raise CheckpointError(f"checkpoint {folder} does not match its manifest: {'; '.join(bad)}; it was changed or "
                              "damaged after it was written, and resuming from it could silently give a wrong model")
    for key in ("model", "config"):
        if key in manifest and manifest[key] != info.get(key):
            raise CheckpointError(f"checkpoint {folder} was written for another {key} than {run_dir / 'config.json'} "
                                  f"names ({_short(manifest[key])} vs {_short(info.get(key))}); it cannot be resumed")
    return folder, manifest


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def check_state_epoch(state: dict[str, Any], manifest: dict[str, Any], folder: Path) -> None:
    """The trainer state inside a checkpoint must be the epoch its manifest names."""
    t = state.get("trainer") if isinstance(state, dict) else None
    got = (t.get("epoch"), t.get("step", 0)) if isinstance(t, dict) else (None, None)
    if got != (manifest["epoch"], manifest.get("step", 0)):
        raise CheckpointError(f"{folder / 'trainer_state.json'} is at epoch {got[0]!r}, step {got[1]!r}, but "
                              f"{folder / MANIFEST} names epoch {manifest['epoch']}, step {manifest.get('step', 0)}")
