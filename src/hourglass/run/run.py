"""A run: one trained model with everything that belongs to it, and the one owner of its directory.

A :class:`Run` holds the model, the scaling fitted on its training data, ``info`` (what
``config.json`` stores: model name and config, training and data options, data description,
versions), the per-epoch history and the metrics. It is the only code that

* saves and loads a run directory (``model.safetensors``, ``config.json``, ``history.csv``,
  ``metrics.json``; the trainer's checkpoints go through the same :mod:`~hourglass.training.checkpoint`),
  holding the directory's lock while it writes, never writing through a symbolic link
  (:mod:`~hourglass.run.rundir`), and checking everything ``config.json`` says before it is used: its
  structure and types, and the memory the model it describes would take (:mod:`~hourglass.memory`);
* turns the run's data into its train / validation / test tensors: :meth:`Run.splits` reads the data
  again from where the run recorded them and hands them to :func:`~hourglass.data.splits.make_splits`
  with the run's stored scaling, so training, resuming, ``hourglass evaluate``, figures and the report
  all see the same examples;
* evaluates: :meth:`Run.evaluate` is the only path to the metric pipeline, so ``hourglass evaluate
  RUN`` reproduces ``metrics.json``;
* writes figures and ``report.html`` (the report module draws what it is given and reads nothing).

Training itself (``hourglass.train``, ``hourglass.resume``) lives in :mod:`hourglass.run.fit`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .. import io, memory
from ..config import build_config, config_to_dict
from ..data import DataBundle, Scaler, as_bundle, list_datasets
from ..data.splits import Splits, make_splits
from ..errors import CheckpointError, ConfigError, DataError, HourglassError
from ..models import get_model_class
from ..models.base import Autoencoder, Generator
from ..options import TrainConfig
from ..seeding import seeded
from ..training import checkpoint as ckpt
from . import rundir

MAX_CONFIG_BYTES = 16 << 20  # config.json and metrics.json; a run's own are a few KB
# Memory per output value of encode/decode/sample/interpolate: the model's float32 output, its
# concatenation, and the float64 copies scaling back to the data's units make (4 + 4 + 8 + 8 + 4).
BYTES_PER_OUTPUT_VALUE = 28
TRAIN_KEYS_READ = ("seed", "val_fraction", "eval_batch_size")  # config.json's training options a run reads
SAMPLE_BATCH = 1024  # sample(n) draws in batches of this many: the network's activations stay bounded


class Run:
    """A trained model with its scaling, history and metrics (and its directory, once saved)."""

    def __init__(self, model: Generator, scaler: Scaler, info: dict[str, Any],
                 history: list[dict[str, Any]] | None = None, metrics: dict[str, Any] | None = None,
                 path: str | Path | None = None, splits: Splits | None = None):
        self.model = model
        self.scaler = scaler
        self.info = info
        self.history = history or []
        self.metrics = metrics or {}
        self.path = Path(path) if path is not None else None
        self._splits = splits

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"Run(model={self.model_name!r}, data={self.info['data'].get('name')!r}{where})"

    @property
    def model_name(self) -> str:
        return self.info["model"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.config.input_shape)

    @property
    def label_names(self) -> list[str] | None:
        """Class names when the labels were names (strings) or the data set names its classes."""
        return self.info["data"].get("label_names")

    # -- data in original units <-> tensors ------------------------------------------------------
    def prepare(self, x) -> torch.Tensor:
        """Raw examples -> scaled float tensor ``(N, *input_shape)``. Images may come channels-last or
        without a channel axis, and any example with the right number of values is reshaped."""
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        x = np.asarray(self._table_features(x))
        shape = self.input_shape
        if x.ndim == 0 or x.shape[0] == 0:
            raise DataError("no examples to process")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise DataError(f"expected numbers, found dtype {x.dtype}")
        if x.shape[1:] != shape:
            if len(shape) == 3 and x.ndim == 4 and x.shape[1:] == (shape[1], shape[2], shape[0]):
                x = x.transpose(0, 3, 1, 2)  # channels-last images
            elif int(np.prod(x.shape[1:])) == int(np.prod(shape)):
                x = x.reshape(len(x), *shape)
            else:
                raise DataError(f"expected examples of shape {shape}, found {tuple(x.shape[1:])}")
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(1)
        if bad.any():
            raise DataError(f"row {int(np.argmax(bad))} contains NaN or Inf")
        return torch.from_numpy(np.ascontiguousarray(self.scaler.transform(x), dtype=np.float32))

    def _table_features(self, x):
        """Raw table rows -> the run's features, by its stored table transform: a DataFrame, or an array
        with one column per feature column of the table (text columns as strings). Anything else is
        taken to be features already."""
        from ..data.sources import table_features

        return table_features(x, self.info["data"].get("transform"))

    def _labels(self, y, n: int) -> torch.Tensor | None:
        if y is None:
            if self.model.conditional:
                raise DataError(f"model {self.model_name!r} is conditional: pass labels y")
            return None
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer):
            names = self.label_names
            if names is None or not all(str(v) in names for v in y.ravel()):
                raise DataError(f"labels must be class indices{' or names ' + str(names) if names else ''}; "
                                f"got dtype {y.dtype}")
            y = np.asarray([names.index(str(v)) for v in y.ravel()]).reshape(y.shape)
        yt = torch.as_tensor(y, dtype=torch.long)
        if yt.shape != (n,):
            raise DataError(f"expected {n} labels, got shape {tuple(yt.shape)}")
        return yt

    @torch.no_grad()
    def _batched(self, fn, x: torch.Tensor, y: torch.Tensor | None, batch_size: int) -> np.ndarray:
        self.model.eval()
        dev = self.model.device
        outs = []
        for s in range(0, len(x), batch_size):
            yb = y[s : s + batch_size].to(dev) if y is not None else None
            outs.append(fn(x[s : s + batch_size].to(dev), yb).cpu())
        return self._finite(torch.cat(outs).numpy())

    def _finite(self, out: np.ndarray) -> np.ndarray:
        """Outputs must be numbers: NaN or Inf from the model is an error, never a silent result."""
        bad = ~np.isfinite(out.reshape(len(out), -1)).all(1)
        if bad.any():
            raise DataError(f"model {self.model_name!r} produced NaN or Inf for example {int(np.argmax(bad))} "
                            f"({int(bad.sum())} of {len(out)}); its weights or these inputs are out of range")
        return out

    def _check_outputs(self, name: str, n: Any, activations: bool = False, low: int = 1) -> int:
        """``n`` examples out of the model (``-n``, ``--steps``) must fit in memory: their values, and with
        ``activations`` (all in one forward pass) the network's values for each."""
        each = math.prod(self.input_shape) * BYTES_PER_OUTPUT_VALUE
        if activations:
            each += memory.model_size(type(self.model), self.model.config).activation_bytes
        return memory.check_count(name, n, each, low)

    def _encoder(self) -> Autoencoder:
        if not isinstance(self.model, Autoencoder):
            raise ConfigError(f"model {self.model_name!r} has no encoder: it cannot encode, reconstruct or denoise")
        return self.model

    def encode(self, x, y=None, batch_size: int = 1024) -> np.ndarray:
        """Codes ``(N, latent_dim)`` of raw examples (scaled as in training; the posterior mean for VAEs)."""
        model = self._encoder()
        xt = self.prepare(x)
        return self._batched(model.encode, xt, self._labels(y, len(xt)), batch_size)

    def reconstruct(self, x, y=None, batch_size: int = 1024) -> np.ndarray:
        """Reconstructions of raw examples, in the original units."""
        model = self._encoder()
        xt = self.prepare(x)
        out = self._batched(model.reconstruct, xt, self._labels(y, len(xt)), batch_size)
        return self.scaler.inverse_transform(out)

    def decode(self, z, y=None, batch_size: int = 1024) -> np.ndarray:
        """Data, in the original units, decoded from codes ``(N, latent_dim)``."""
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
        if zt.ndim != 2 or zt.shape[1] != self.model.latent_dim:
            raise DataError(f"expected codes of shape (N, {self.model.latent_dim}), got {tuple(zt.shape)}")
        out = self._batched(self.model.decode, zt, self._labels(y, len(zt)), batch_size)
        return self.scaler.inverse_transform(out)

    def denoise(self, x, y=None, noise: str = "gaussian:0.5",
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Corrupt raw examples with ``noise`` ("KIND:LEVEL", as the DAE's), reconstruct them, and return
        (noisy, denoised, clean), all scaled as the model sees them. Corruption happens in the model's
        space and respects its data range, as in the DAE's training."""
        from ..models.noise import corrupt, parse_noise_spec

        model = self._encoder()
        kind, level = parse_noise_spec(noise)
        clean = self.prepare(x)
        noisy = corrupt(clean, kind, level, torch.Generator().manual_seed(seed), clip=model.data_range)
        denoised = self._batched(model.reconstruct, noisy, self._labels(y, len(noisy)), 1024)
        return noisy.numpy(), denoised, clean.numpy()

    def interpolate(self, x, i: int, j: int, steps: int = 10, y=None) -> np.ndarray:
        """Decoded points (scaled) on the straight line from the code of ``x[i]`` to that of ``x[j]``."""
        from ..evaluate.interpolate import interpolate

        model = self._encoder()
        self._check_outputs("steps", steps, activations=True, low=2)
        for name, idx in (("from", i), ("to", j)):
            if not 0 <= idx < len(x):
                raise ConfigError(f"{name} index {idx}: the input has examples 0..{len(x) - 1}")
        xs = self.prepare(np.asarray(x)[[i, j]])
        ya = int(y[i]) if y is not None else None
        yb = int(y[j]) if y is not None else None
        return interpolate(model, xs[0], xs[1], steps, ya, yb).cpu().numpy()

    def sample(self, n: int, y=None, seed: int | None = None) -> np.ndarray:
        """``n`` new examples drawn from the model, in the original units (generative models). ``y``: one
        label per sample, or one label for all, for models that take labels. ``seed`` makes the draw
        repeatable without touching the global random stream."""
        n = self.check_sample_count(n)
        if y is not None and np.ndim(y) == 0:
            y = np.full(n, y)
        if y is not None and self.model.num_classes is None:
            raise ConfigError(f"model {self.model_name!r} takes no labels")
        yt = self._labels(y, n)
        if yt is not None and (int(yt.min()) < 0 or int(yt.max()) >= self.model.num_classes):
            raise DataError(f"labels must be in 0..{self.model.num_classes - 1}, got {int(yt.min())}..{int(yt.max())}")
        self.model.eval()
        dev = self.model.device
        parts = []
        with torch.no_grad(), (seeded(seed) if seed is not None else contextlib.nullcontext()):
            for s in range(0, n, SAMPLE_BATCH):
                yb = yt[s : s + SAMPLE_BATCH].to(dev) if yt is not None else None
                parts.append(self.model.sample(min(SAMPLE_BATCH, n - s), yb).cpu())
        return self.scaler.inverse_transform(self._finite(torch.cat(parts).numpy()))

    def check_sample_count(self, n: Any) -> int:
        """``n`` for :meth:`sample`: a generative model, a whole number >= 1 whose samples fit in memory."""
        if not self.model.generative:
            raise ConfigError(f"model {self.model_name!r} is not generative: it cannot sample; try a vae")
        return self._check_outputs("n", n)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        """Write the run directory (default: the run's own ``path``). Another directory must be new or
        empty (see :func:`hourglass.run.rundir.claim_new`); the directory is locked while it is written."""
        path = Path(path) if path is not None else self.path
        if path is None:
            raise ConfigError("the run has no directory yet: pass save(path)")
        own = self.path is not None and os.path.realpath(path) == os.path.realpath(self.path)
        if own:
            io.make_dir(path, chosen=True)
        with (rundir.locked(path, rundir.command_line()) if own else rundir.claim_new(path, rundir.command_line())):
            rundir.check_links(path)
            ckpt.save_tensors(path / "model.safetensors", self.model.state_dict())
            ckpt.write_json(path / "config.json", self.info)
            if self.history:
                ckpt.write_history(path / "history.csv", self.history)
            if self.metrics:
                ckpt.write_json(path / "metrics.json", self.metrics)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Run":
        """Read a run directory back: the model through the registry, weights from safetensors. Everything
        is checked before it is used: ``config.json`` (:meth:`read_info`), the memory the model needs, the
        weights' names and shapes (from the file's header, before any tensor is read) and their values."""
        path = Path(path)
        info = cls.read_info(path)
        weights = path / "model.safetensors"
        if not weights.is_file() and not os.path.islink(weights):
            if ckpt.latest_checkpoint(path) is None:
                raise CheckpointError(f"{weights} not found: the run was stopped before its first checkpoint; "
                                      f"start it again with `hourglass train --resume {path}`")
            raise CheckpointError(f"{weights} not found; continue the run with `hourglass train --resume {path}`")
        return cls.from_info(info, path, weights, device=device)

    @staticmethod
    def read_info(path: str | Path) -> dict[str, Any]:
        """``path/config.json``, checked: its structure, every type and value the run uses later, the model
        config (through the model's own dataclass) and the scaling. A problem is a CheckpointError naming
        the file and the key."""
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"run directory {path} not found" if not path.exists()
                                  else f"{path} is not a run directory")
        cfg_path = path / "config.json"
        info = ckpt.read_json(cfg_path, finite=True, max_bytes=MAX_CONFIG_BYTES)
        if not isinstance(info, dict):
            raise CheckpointError(f"{cfg_path}: expected a JSON object, found {type(info).__name__}")
        if info.get("format") != ckpt.FORMAT_VERSION:
            raise CheckpointError(f"{cfg_path}: unsupported format {info.get('format')!r}")
        for key, kind in (("model", str), ("config", dict), ("train", dict), ("data", dict)):
            if not isinstance(info.get(key), kind):
                raise CheckpointError(f"{cfg_path}: key {key!r} is missing or not a {kind.__name__}")
        try:
            model_cls = get_model_class(info["model"])
            build_config(model_cls.config_cls, info["config"])
            for key in TRAIN_KEYS_READ:
                if key not in info["train"]:
                    raise ConfigError(f"key 'train.{key}' is missing")
            info["train"] = config_to_dict(build_config(TrainConfig, info["train"]))
            _check_data_record(info["data"])
            _scaler_from_record(info["data"]["scaling"], info["config"].get("input_shape"))
        except HourglassError as e:
            raise CheckpointError(f"{cfg_path}: {e}") from None
        return info

    @classmethod
    def from_info(cls, info: dict[str, Any], path: str | Path | None, weights: str | Path | None, *,
                  device: str = "cpu", seed: int | None = None) -> "Run":
        """The run ``info`` (checked by :meth:`read_info`) describes: its model built after the memory it
        needs is checked, with the weights in ``weights`` (checked by name and shape before they are read),
        or freshly initialised under ``seed`` when ``weights`` is None (a run restarted from scratch)."""
        where = Path(path) / "config.json" if path is not None else "config"
        model_cls = get_model_class(info["model"])
        cfg = build_config(model_cls.config_cls, info["config"])
        scaler = _scaler_from_record(info["data"]["scaling"], info["config"].get("input_shape"))
        size = memory.check_model(model_cls, cfg, where=f"{where}: ")
        if weights is not None:
            ckpt.check_weights(weights, size.state_shapes)
        with seeded(seed) if seed is not None else contextlib.nullcontext():
            model = model_cls(cfg)
        if weights is not None:
            ckpt.load_weights(model, weights)
        from ..training.trainer import resolve_device

        model.to(resolve_device(device)).eval()
        metrics, history = {}, []
        if path is not None:
            path = Path(path)
            if (path / "metrics.json").is_file():
                metrics = ckpt.read_json(path / "metrics.json", max_bytes=MAX_CONFIG_BYTES)
                if not isinstance(metrics, dict):
                    raise CheckpointError(f"{path / 'metrics.json'}: expected a JSON object, found "
                                          f"{type(metrics).__name__}")
            history = ckpt.read_history(path / "history.csv")
        return cls(model, scaler, info, history, metrics, path)

    # -- the run's data ---------------------------------------------------------------------------
    @property
    def data_options(self):
        """The run's :class:`~hourglass.options.DataOptions` (defaults for what an older run did not record)."""
        from ..options import DataOptions

        d = self.info["data"]
        recorded = dict(d.get("options") or {})
        recorded.setdefault("data_dir", d.get("data_dir"))
        recorded.setdefault("test_fraction", d.get("test_fraction", 0.2))
        recorded.setdefault("label_column", d.get("label_column"))
        try:
            return build_config(DataOptions, recorded)
        except HourglassError as e:
            raise CheckpointError(f"config.json: data options: {e}") from None

    @property
    def streamed(self) -> bool:
        """Whether the run streams its data from disk (it did not fit its memory budget)."""
        return bool(self.info["data"].get("streamed"))

    def _stored(self) -> dict[str, Any]:
        d = self.info["data"]
        return {k: d.get(k) for k in ("transform", "image", "label_names", "label_column")}

    def bundle(self, data: Any = None) -> DataBundle:
        """The run's raw data, read again from where it recorded them (or ``data``, in any form
        ``hourglass.train`` takes, split as the run's own data were), with the run's table transform
        and image settings; kept on disk when the run streams."""
        import warnings

        from ..data.bundle import changed_since, place
        from ..errors import HourglassWarning

        d, t = self.info["data"], self.info["train"]
        opts = self.data_options
        source = data if data is not None else self._source()
        if data is None:
            for rec in (d.get("files") or {}).get("files", []):
                change = changed_since(rec)
                if change:
                    warnings.warn(f"{change}: the run's splits and metrics may differ", HourglassWarning, stacklevel=2)
        bundle = as_bundle(source, data_dir=d.get("data_dir") if data is None else None,
                           test_fraction=d.get("test_fraction", 0.2),
                           label_column=d.get("label_column") if not _in_memory(source) else None,
                           seed=t["seed"], options=opts, lazy=self.streamed, stored=self._stored())
        bundle, _, _ = place(bundle, "never" if self.streamed else "always", None)
        if bundle.input_shape != self.input_shape:
            raise DataError(f"the data have examples of shape {bundle.input_shape}, but run {self.model_name!r} "
                            f"was trained on {self.input_shape}")
        return bundle

    def splits(self, data: Any = None) -> Splits:
        """The run's scaled train / validation / test tensors (streamed splits for a streamed run), read
        again from the recorded source (or from ``data``) with the run's own split and scaling."""
        if data is None and self._splits is not None:
            return self._splits
        d, t = self.info["data"], self.info["train"]
        s = make_splits(self.bundle(data), self.scaler, val_fraction=t["val_fraction"], seed=t["seed"], fit=False,
                        exclude=d.get("exclude_class"), keep_labels=d.get("keep_labels"))
        if data is None:
            self._splits = s
        return s

    def examples(self, path: str | Path | None = None,
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw examples to feed the model, with labels for conditional models: the file or image folder
        ``path`` (read with the run's table transform or image settings), or the run's own test data;
        at most ``limit`` of them."""
        if path is None:
            b = self.bundle()
            n = len(b.x_test) if limit is None else min(limit, len(b.x_test))
            x = b.x_test[:n] if isinstance(b.x_test, np.ndarray) else b.x_test.take(np.arange(n))
            y = b.y_test[:n] if b.y_test is not None else None
        else:
            rows, y, _, _ = self.open_input(path)
            n = len(rows) if limit is None else min(limit, len(rows))
            x, y = rows.take(np.arange(n)), (y[:n] if y is not None else None)
        return x, (y if self.model.conditional else None)

    def open_input(self, path: str | Path):
        """New examples read on demand: ``(rows, class indices or None, label values or None, row numbers)``
        (see :func:`hourglass.data.sources.open_input`)."""
        from ..data.sources import open_input

        return open_input(path, self._stored())

    def stream(self, what: str, path: str | Path | None = None, limit: int | None = None,
               batch_size: int = 1024) -> tuple[int, bool, Iterator[tuple[np.ndarray, Any, np.ndarray]]]:
        """``(n, has labels, chunks)``: the chunks are ``(row numbers, label values or None, outputs)``, for
        ``what`` = ``"encode"`` (codes) or ``"reconstruct"`` (reconstructions in original units) of the file
        or image folder ``path``, or of the run's test data. Memory: one chunk of ``batch_size`` examples,
        whatever the size of the input."""
        from ..data.rows import ArrayRows, Rows

        if path is None:
            b = self.bundle()
            rows = b.x_test if isinstance(b.x_test, Rows) else ArrayRows(b.x_test, b.source)
            y = values = b.y_test
            if values is not None and self.label_names:
                values = np.asarray(self.label_names, dtype=object)[values]
            index = b.index_test if b.index_test is not None else np.arange(len(rows))
        else:
            rows, y, values, index = self.open_input(path)
        n = len(rows) if limit is None else min(limit, len(rows))
        fn = self.encode if what == "encode" else self.reconstruct

        def chunks():
            import warnings

            from ..data.transform import TableRows
            from ..errors import HourglassWarning

            for s in range(0, n, batch_size):
                idx = np.arange(s, min(s + batch_size, n))
                yc = y[idx] if (y is not None and self.model.conditional) else None
                yield index[idx], (values[idx] if values is not None else None), fn(rows.take(idx), yc, batch_size)
            if isinstance(rows, TableRows) and rows.unseen:
                warnings.warn(f"{rows.source}: {rows.unseen} value(s) of categories the run was not trained on "
                              "were encoded as all zeros", HourglassWarning, stacklevel=2)

        return n, values is not None, chunks()

    def output_names(self, what: str) -> list[str]:
        """Column names of written codes (``z0``, ...) or reconstructions (a table's features, or ``x0``, ...)."""
        if what == "encode":
            return [f"z{i}" for i in range(self.model.latent_dim)]
        record = self.info["data"].get("transform")
        if record:
            return list(record["features"])
        return [f"x{i}" for i in range(int(np.prod(self.input_shape)))]

    def class_index(self, label: str | int) -> int:
        """A class given by index or by name, checked against the classes the model takes."""
        k = self.model.num_classes
        if k is None:
            raise ConfigError(f"model {self.model_name!r} takes no labels")
        names = self.label_names or []
        if isinstance(label, str) and label in names:
            return names.index(label)
        try:
            index = int(label)
        except (TypeError, ValueError):
            raise ConfigError(f"class {label!r}: not a class index"
                              + (f" or one of {names}" if names else "")) from None
        if not 0 <= index < k:
            raise ConfigError(f"class {label!r}: classes are 0..{k - 1}")
        return index

    def _source(self) -> str:
        d = self.info["data"]
        if d.get("name") in list_datasets():
            return d["name"]
        if d.get("fingerprint"):
            raise DataError(f"the run was trained on in-memory data ({d.get('source')}): pass the data again, "
                            "e.g. run.evaluate(run.splits(data)) or `hourglass evaluate RUN --data FILE`")
        return d.get("source") or d["name"]

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, splits: Splits | None = None, *, anomaly_class: int | None = None,
                 iwae_samples: int | None = None, progress: bool | None = None) -> dict[str, Any]:
        """``{"train", "test"[, "anomaly"], "warnings"}`` metrics of the model on ``splits`` (default: the
        run's own): exactly what ``metrics.json`` holds. ``anomaly_class`` asks for the anomaly ROC-AUC of
        that class (by default, of the class the run was trained without, if any); ``iwae_samples``
        changes the number of importance samples of a VAE's NLL; ``progress`` shows each stage on stderr
        (default: as the run's training option ``progress``)."""
        s = splits if splits is not None else self.splits()
        d, t = self.info["data"], self.info["train"]
        from ..evaluate.metrics import evaluate_splits
        from ..training.callbacks import EvaluationProgress
        from ..training.precision import autocast_for

        show = t.get("progress", False) if progress is None else progress
        s, sizes = s.bounded(self._eval_bytes(), seed=t["seed"])
        # The loss metrics' passes (a VAE's IWAE bound: k decoder passes per example) in the run's training
        # precision where the device runs it natively, else float32; codes, samples and diagnostics in float32.
        precision = t.get("precision", "fp32")
        with self._config_override(iwae_samples=iwae_samples):
            out = evaluate_splits(self.model, s, data_name=d["name"], sample_identity=self._sample_identity(),
                                  exclude_class=d.get("exclude_class"), anomaly_class=anomaly_class,
                                  batch_size=t["eval_batch_size"], seed=t["seed"],
                                  progress=EvaluationProgress() if show else None,
                                  autocast=lambda: autocast_for(precision, self.model.device))
        if sizes:  # a streamed run is scored on seeded subsamples of its splits
            out.setdefault("subsample", {}).update({f"{k}_examples": v for k, v in sizes.items()})
        return out

    def _eval_bytes(self) -> int | None:
        """Bytes each evaluation subsample of a streamed run may take: an eighth of its memory budget."""
        budget = self.info["data"].get("memory_budget_bytes")
        return budget // 8 if budget else None

    @contextlib.contextmanager
    def _config_override(self, **values: Any) -> Iterator[None]:
        """Evaluation-time config values (``iwae_samples``), validated, for the duration of the block."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            yield
            return
        fields = {f.name for f in dataclasses.fields(self.model.config)}
        for key in values:
            if key not in fields:
                raise ConfigError(f"{key}: model {self.model_name!r} has no such setting")
        before = self.model.config
        self.model.config = build_config(type(before), values, base=dataclasses.replace(before))
        try:
            yield
        finally:
            self.model.config = before

    def _sample_identity(self) -> str:
        """Which cached classifier scores this run's samples: one per data set and scaling."""
        d = self.info["data"]
        scaling = json.dumps(self.scaler.to_dict(), sort_keys=True, default=str)
        key = f"{d['name']}|{d.get('data_dir')}|{d.get('fingerprint')}|{scaling}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    # -- figures and report --------------------------------------------------------------------------
    def write_figures(self, out_dir: str | Path | None = None, splits: Splits | None = None) -> list[str]:
        """The run's figures (losses, reconstructions, samples, codes, ...) as PNG files in ``out_dir``."""
        from .figures import write_run_figures

        out = Path(out_dir) if out_dir is not None else self.path
        if out is None:
            raise ConfigError("the run has no directory yet: pass out_dir")
        shown, _ = (splits if splits is not None else self.splits()).bounded(self._eval_bytes(),
                                                                              seed=self.info["train"]["seed"])
        io.make_dir(out, chosen=True)
        # Drawn into a temporary folder beside their place, then each renamed into it: a figure is never
        # half-written, and a link planted where a figure goes is refused, never written through.
        with self._writing(out), tempfile.TemporaryDirectory(prefix=io.TMP_PREFIX, dir=out) as tmp:
            drawn = write_run_figures(Path(tmp), self.model, shown, history=self.history,
                                      image=self.info["data"]["kind"] == "image", title=self.model_name,
                                      label_names=self.label_names)
            written = []
            for p in drawn:
                io.move_into(Path(p), out / Path(p).name)
                written.append(type(p)(out / Path(p).name))
        return written

    @contextlib.contextmanager
    def _writing(self, folder: Path) -> Iterator[None]:
        """Hold the run directory's lock while writing into it (``folder`` is the run's own directory)."""
        if self.path is not None and os.path.realpath(folder) == os.path.realpath(self.path):
            with rundir.locked(folder, rundir.command_line()):
                yield
        else:
            yield

    def report_page(self, fig_dir: Path, label: str | None = None):
        from ..report.html import RunPage

        label = label or (f"{self.path.name} ({self.model_name})" if self.path else self.model_name)
        return RunPage(label, self.info, self.metrics, Path(fig_dir), dict(type(self.model).figure_captions),
                       self.path, history=self.history)

    def write_report(self, output: str | Path | None = None, splits: Splits | None = None,
                     fig_dir: str | Path | None = None) -> Path:
        """``report.html`` (default: in the run directory). Figures are taken from ``fig_dir`` when given
        (the run's directory, right after training), else drawn afresh in a temporary folder."""
        from ..report.html import run_report_html, write_html

        if output is None:
            if self.path is None:
                raise ConfigError("the run has no directory: pass output=")
            output = self.path / "report.html"
        output = Path(output)
        with tempfile.TemporaryDirectory() as tmp:
            if fig_dir is None:
                fig_dir = Path(tmp)
                self.write_figures(fig_dir, splits)
            page = run_report_html(self.report_page(Path(fig_dir)))
        if self.path is not None and os.path.realpath(output.parent) == os.path.realpath(self.path):
            with self._writing(self.path):  # in the run directory: locked, atomic, never through a link
                return io.write_text(output, page)
        return write_html(output, page)

    # The run's headline numbers, in this order, where the model reports them (test split).
    HEADLINE = ("recon_bce", "recon_mse", "neg_elbo", "nll", "active_units", "knn_acc", "classifier_accuracy",
                "fd_classifier", "sample_confidence", "sample_class_balance", "anomaly_auc")

    def summary(self) -> str:
        """One short line of the run's headline numbers: epochs and fit time, then the test metrics that
        say most about this kind of model (reconstruction, bound, codes, samples)."""
        m = self.metrics
        head = f"epochs {m.get('epochs')}, fit {m.get('fit_seconds')} s"
        test = m.get("test", {})
        parts = []
        for k in self.HEADLINE:
            if k == "active_units" and k in test:
                parts.append(f"{test[k]} of {self.model.latent_dim} code units active")
            elif k in test:
                real = test.get("fd_classifier_real") if k == "fd_classifier" else None
                parts.append(f"{k} {test[k]:.4g}" + (f" (real data {real:.3g})" if real is not None else ""))
        return f"{head}; test {', '.join(parts)}" if parts else head


_DATA_RECORD: dict[str, tuple[tuple[type, ...], bool]] = {  # key -> (types, required)
    "name": ((str,), True), "kind": ((str,), True), "scaling": ((dict,), True),
    "data_dir": ((str, type(None)), False), "source": ((str, type(None)), False),
    "fingerprint": ((str, type(None)), False), "input_shape": ((list,), False),
    "test_fraction": ((int, float), False), "label_column": ((int, str, type(None)), False),
    "label_names": ((list, type(None)), False), "exclude_class": ((int, type(None)), False),
    "keep_labels": ((int, type(None)), False),
}


def _check_data_record(d: dict[str, Any]) -> None:
    """The ``data`` section of config.json: every key the run reads, of the type it expects."""
    for key, (types, required) in _DATA_RECORD.items():
        if key not in d:
            if required:
                raise ConfigError(f"key 'data.{key}' is missing")
            continue
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, types):
            raise ConfigError(f"key 'data.{key}': {_short(v)} is not a {' or '.join(t.__name__ for t in types)}")
    if d["kind"] not in ("image", "tabular"):
        raise ConfigError(f"key 'data.kind': {_short(d['kind'])} is not 'image' or 'tabular'")
    if "test_fraction" in d and not 0 < d["test_fraction"] < 1:
        raise ConfigError(f"key 'data.test_fraction': {d['test_fraction']} is not between 0 and 1")
    if d.get("label_names") is not None and not all(isinstance(n, str) for n in d["label_names"]):
        raise ConfigError("key 'data.label_names': expected a list of names (strings)")


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


def _in_memory(data: Any) -> bool:
    return not isinstance(data, (str, Path))


def load(path: str | Path, device: str = "cpu") -> Run:
    """Read a run directory back (see :meth:`Run.load`)."""
    return Run.load(path, device)


def write_comparison_report(runs: Sequence[Run], output: str | Path) -> Path:
    """One page comparing several runs: metrics and configs side by side, then each run's figures."""
    from ..report.html import comparison_html, write_html

    with tempfile.TemporaryDirectory() as tmp:
        pages = []
        for i, run in enumerate(runs):
            fig_dir = Path(tmp) / str(i)
            run.write_figures(fig_dir)
            pages.append(run.report_page(fig_dir, label=f"{run.path.name if run.path else f'run {i}'} "
                                                        f"({run.model_name})"))
        page = comparison_html(pages)
    return write_html(output, page)


def versions() -> dict[str, str]:
    from .. import __version__

    return {
        "hourglass": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def make_info(model: str, preset: str | None, config, train_config, data_options, bundle: DataBundle,
              splits: Splits, scaler: Scaler, streamed: bool = False, budget: int | None = None) -> dict[str, Any]:
    """What ``config.json`` records: enough to rebuild the model, read its data again (the files and their
    sizes, times and checksums; the table transform; the image settings) and treat new data the same way."""
    d = data_options
    return {
        "format": ckpt.FORMAT_VERSION,
        "model": model,
        "preset": preset,
        "config": config_to_dict(config),
        "train": config_to_dict(train_config),
        "data": {
            "name": bundle.name,
            "data_dir": d.data_dir,
            "source": bundle.source,
            "fingerprint": bundle.fingerprint,
            "kind": bundle.kind,
            "input_shape": list(bundle.input_shape),
            "test_fraction": d.test_fraction,
            "label_column": d.label_column,
            "label_names": bundle.label_names,
            **splits.sizes(),
            "scaling": scaler.to_dict(),
            "exclude_class": d.anomaly_class,
            "keep_labels": d.keep_labels,
            "options": config_to_dict(d),
            "streamed": streamed,
            "memory_budget_bytes": budget,
            "transform": bundle.transform,
            "image": bundle.image,
            "files": bundle.files,
            "verified": getattr(bundle, "verified", None),
            "notes": bundle.notes,
        },
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
