"""A run: one trained model with everything that belongs to it, and the one owner of its directory.

A :class:`Run` holds the model, the scaling fitted on its training data, ``info`` (what
``config.json`` stores: model name and config, training and data options, data description,
versions), the per-epoch history and the metrics. It is the only code that

* saves and loads a run directory (``model.safetensors``, ``config.json``, ``history.csv``,
  ``metrics.json``; the trainer's checkpoints go through the same :mod:`~hourglass.training.checkpoint`);
* turns the run's data into its train / validation / test tensors: :meth:`Run.splits` reads the data
  again from where the run recorded them and hands them to :func:`~hourglass.data.splits.make_splits`
  with the run's stored scaling, so training, resuming, ``hourglass evaluate``, figures and the report
  all see the same examples;
* evaluates: :meth:`Run.evaluate` is the only path to the metric pipeline, so ``hourglass evaluate
  RUN`` reproduces ``metrics.json``;
* writes figures and ``report.html`` (the report module draws what it is given and reads nothing).

Training itself (``hourglass.train``, ``hourglass.resume``) lives in :mod:`hourglass.training.fit`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import platform
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .config import build_config, config_to_dict
from .data import DataBundle, Scaler, as_bundle, list_datasets
from .data.splits import Splits, make_splits
from .errors import CheckpointError, ConfigError, DataError, HourglassError
from .models.base import Autoencoder, Generator
from .registry import get_model_class
from .seeding import seeded
from .training import checkpoint as ckpt

MAX_SAMPLES = 1_000_000  # sample(n): more than this in one call is a typo, not a request


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
        x = np.asarray(x)
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
        return torch.cat(outs).numpy()

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
        from .models.noise import corrupt, parse_noise_spec

        model = self._encoder()
        kind, level = parse_noise_spec(noise)
        clean = self.prepare(x)
        noisy = corrupt(clean, kind, level, torch.Generator().manual_seed(seed), clip=model.data_range)
        denoised = self._batched(model.reconstruct, noisy, self._labels(y, len(noisy)), 1024)
        return noisy.numpy(), denoised, clean.numpy()

    def interpolate(self, x, i: int, j: int, steps: int = 10, y=None) -> np.ndarray:
        """Decoded points (scaled) on the straight line from the code of ``x[i]`` to that of ``x[j]``."""
        from .evaluate.interpolate import interpolate

        model = self._encoder()
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
        if not self.model.generative:
            raise ConfigError(f"model {self.model_name!r} is not generative: it cannot sample; try a vae")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_SAMPLES:
            raise ConfigError(f"n must be a whole number from 1 to {MAX_SAMPLES:,}, got {n!r}")
        n = int(n)
        if y is not None and np.ndim(y) == 0:
            y = np.full(n, y)
        if y is not None and self.model.num_classes is None:
            raise ConfigError(f"model {self.model_name!r} takes no labels")
        yt = self._labels(y, n)
        if yt is not None and (int(yt.min()) < 0 or int(yt.max()) >= self.model.num_classes):
            raise DataError(f"labels must be in 0..{self.model.num_classes - 1}, got {int(yt.min())}..{int(yt.max())}")
        self.model.eval()
        with torch.no_grad(), (seeded(seed) if seed is not None else contextlib.nullcontext()):
            out = self.model.sample(n, yt.to(self.model.device) if yt is not None else None).cpu().numpy()
        return self.scaler.inverse_transform(out)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        """Write the run directory (default: the run's own ``path``)."""
        path = Path(path) if path is not None else self.path
        if path is None:
            raise ConfigError("the run has no directory yet: pass save(path)")
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
        """Read a run directory back: the model through the registry, weights from safetensors."""
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"run directory {path} not found" if not path.exists()
                                  else f"{path} is not a run directory")
        cfg_path = path / "config.json"
        info = ckpt.read_json(cfg_path)
        if not isinstance(info, dict):
            raise CheckpointError(f"{cfg_path}: expected a JSON object, found {type(info).__name__}")
        if info.get("format") != ckpt.FORMAT_VERSION:
            raise CheckpointError(f"{cfg_path}: unsupported format {info.get('format')!r}")
        for key, kind in (("model", str), ("config", dict), ("train", dict), ("data", dict)):
            if not isinstance(info.get(key), kind):
                raise CheckpointError(f"{cfg_path}: key {key!r} is missing or not a {kind.__name__}")
        try:
            model_cls = get_model_class(info["model"])
            cfg = build_config(model_cls.config_cls, info["config"])
            scaler = Scaler.from_dict(info["data"].get("scaling") or {})
        except HourglassError as e:
            raise CheckpointError(f"{cfg_path}: {e}") from None
        model = model_cls(cfg)
        ckpt.load_weights(model, path / "model.safetensors")
        from .training.trainer import resolve_device

        model.to(resolve_device(device)).eval()
        metrics = ckpt.read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {}
        history = ckpt.read_history(path / "history.csv")
        return cls(model, scaler, info, history, metrics, path)

    # -- the run's data ---------------------------------------------------------------------------
    def bundle(self, data: Any = None) -> DataBundle:
        """The run's raw data, read again from where it recorded them (or ``data``, in any form
        ``hourglass.train`` takes, split as the run's own data were)."""
        d, t = self.info["data"], self.info["train"]
        source = data if data is not None else self._source()
        bundle = as_bundle(source, data_dir=d.get("data_dir") if data is None else None,
                           test_fraction=d.get("test_fraction", 0.2),
                           label_column=d.get("label_column") if not _in_memory(source) else None,
                           seed=t["seed"])
        if bundle.input_shape != self.input_shape:
            raise DataError(f"the data have examples of shape {bundle.input_shape}, but run {self.model_name!r} "
                            f"was trained on {self.input_shape}")
        return bundle

    def splits(self, data: Any = None) -> Splits:
        """The run's scaled train / validation / test tensors, read again from the recorded source (or
        from ``data``) with the run's own split and scaling."""
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
        """Raw examples to feed the model, with labels for conditional models: the file ``path`` (a table,
        array or IDX file), or the run's own test data; at most ``limit`` of them."""
        if path is None:
            b = self.bundle()
            x, y = b.x_test, b.y_test
        else:
            from .data import read_examples

            x, y = read_examples(path)
        if limit is not None:
            x, y = x[:limit], (y[:limit] if y is not None else None)
        return x, (y if self.model.conditional else None)

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
        from .evaluate.metrics import evaluate_splits
        from .training.callbacks import EvaluationProgress

        show = t.get("progress", False) if progress is None else progress
        with self._config_override(iwae_samples=iwae_samples):
            return evaluate_splits(self.model, s, data_name=d["name"], sample_identity=self._sample_identity(),
                                   exclude_class=d.get("exclude_class"), anomaly_class=anomaly_class,
                                   batch_size=t["eval_batch_size"], seed=t["seed"],
                                   progress=EvaluationProgress() if show else None)

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
        from .report.run_figures import write_run_figures

        out = Path(out_dir) if out_dir is not None else self.path
        if out is None:
            raise ConfigError("the run has no directory yet: pass out_dir")
        return write_run_figures(out, self.model, splits if splits is not None else self.splits(),
                                 history=self.history, image=self.info["data"]["kind"] == "image",
                                 title=self.model_name, label_names=self.label_names)

    def report_page(self, fig_dir: Path, label: str | None = None):
        from .report.html import RunPage

        label = label or (f"{self.path.name} ({self.model_name})" if self.path else self.model_name)
        return RunPage(label, self.info, self.metrics, Path(fig_dir), dict(type(self.model).figure_captions),
                       self.path, history=self.history)

    def write_report(self, output: str | Path | None = None, splits: Splits | None = None,
                     fig_dir: str | Path | None = None) -> Path:
        """``report.html`` (default: in the run directory). Figures are taken from ``fig_dir`` when given
        (the run's directory, right after training), else drawn afresh in a temporary folder."""
        from .report.html import run_report_html, write_html

        if output is None:
            if self.path is None:
                raise ConfigError("the run has no directory: pass output=")
            output = self.path / "report.html"
        with tempfile.TemporaryDirectory() as tmp:
            if fig_dir is None:
                fig_dir = Path(tmp)
                self.write_figures(fig_dir, splits)
            page = run_report_html(self.report_page(Path(fig_dir)))
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


def _in_memory(data: Any) -> bool:
    return not isinstance(data, (str, Path))


def load(path: str | Path, device: str = "cpu") -> Run:
    """Read a run directory back (see :meth:`Run.load`)."""
    return Run.load(path, device)


def write_comparison_report(runs: Sequence[Run], output: str | Path) -> Path:
    """One page comparing several runs: metrics and configs side by side, then each run's figures."""
    from .report.html import comparison_html, write_html

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
    from . import __version__

    return {
        "hourglass": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def make_info(model: str, preset: str | None, config, train_config, data_options, bundle: DataBundle,
              splits: Splits, scaler: Scaler) -> dict[str, Any]:
    """What ``config.json`` records: enough to rebuild the model and read its data again."""
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
        },
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
