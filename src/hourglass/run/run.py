"""A run: one trained model with everything that belongs to it.

A :class:`Run` holds the model, the scaling fitted on its training data, its :attr:`~Run.record` (what
``config.json`` stores, as dataclasses: :mod:`hourglass.run.record`), the per-epoch history and the
metrics. It does inference itself (encode, decode, reconstruct, denoise, interpolate, sample) and turns
the run's data into its train / validation / test tensors (:meth:`Run.splits` reads the data again from
where the run recorded them and hands them to :func:`~hourglass.data.splits.make_splits` with the run's
stored scaling, so training, resuming, ``hourglass evaluate``, figures and the report all see the same
examples). The rest it delegates:

* saving and loading, with every check: :mod:`hourglass.run.store`;
* evaluation (the only path to the metric pipeline): :mod:`hourglass.run.evaluation`;
* figures and ``report.html``: :mod:`hourglass.run.report` (the report module draws what it is given).

Training itself (``hourglass.train``, ``hourglass.resume``) lives in :mod:`hourglass.run.fit`.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .. import memory
from ..data import DataBundle, Scaler, as_bundle, list_datasets
from ..data.splits import Splits, make_splits
from ..errors import ConfigError, DataError
from ..models.base import Autoencoder, Generator
from ..seeding import seeded
from . import store
from .record import RunRecord

# Memory per output value of encode/decode/sample/interpolate: the model's float32 output, its
# concatenation, and the float64 copies scaling back to the data's units make (4 + 4 + 8 + 8 + 4).
BYTES_PER_OUTPUT_VALUE = 28
SAMPLE_BATCH = 1024  # sample(n) draws in batches of this many: the network's activations stay bounded


class Run:
    """A trained model with its scaling, history and metrics (and its directory, once saved)."""

    def __init__(self, model: Generator, scaler: Scaler, record: RunRecord | dict[str, Any],
                 history: list[dict[str, Any]] | None = None, metrics: dict[str, Any] | None = None,
                 path: str | Path | None = None, splits: Splits | None = None):
        self.model = model
        self.scaler = scaler
        # A record given as config.json's dict (a caller building a run by hand) is checked as one read is.
        self.record = record if isinstance(record, RunRecord) else RunRecord.from_dict(record, "run info", warn=False)
        self.history = history or []
        self.metrics = metrics or {}
        self.path = Path(path) if path is not None else None
        self._splits = splits

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"Run(model={self.model_name!r}, data={self.record.data.name!r}{where})"

    @property
    def info(self) -> dict[str, Any]:
        """A read-only view of the record as ``config.json`` holds it (a fresh dict: changing it changes
        nothing; the run's record is :attr:`record`)."""
        return self.record.to_dict()

    @property
    def model_name(self) -> str:
        return self.record.model

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.config.input_shape)

    @property
    def label_names(self) -> list[str] | None:
        """Class names when the labels were names (strings) or the data set names its classes."""
        return self.record.data.label_names

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

        return table_features(x, self.record.data.transform)

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

    # -- persistence: through the one store (hourglass.run.store) ----------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        """Write the run directory (default: the run's own ``path``). Another directory must be new or
        empty (see :func:`hourglass.run.rundir.claim_new`); the directory is locked while it is written."""
        self.path = store.save(path, self.path, self.model, self.record, self.history, self.metrics)
        return self.path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Run":
        """Read a run directory back (see :func:`hourglass.run.store.load`): the model through the registry,
        weights from safetensors, everything checked before it is used."""
        return cls(*store.load(path, device))

    # -- the run's data ---------------------------------------------------------------------------
    @property
    def data_options(self):
        """The run's :class:`~hourglass.options.DataOptions` (defaults for what an older run did not record)."""
        return self.record.data.data_options()

    @property
    def streamed(self) -> bool:
        """Whether the run streams its data from disk (it did not fit its memory budget)."""
        return bool(self.record.data.streamed)

    def _stored(self) -> dict[str, Any]:
        d = self.record.data
        return {"transform": d.transform, "image": d.image, "label_names": d.label_names,
                "label_column": d.label_column}

    def bundle(self, data: Any = None) -> DataBundle:
        """The run's raw data, read again from where it recorded them (or ``data``, in any form
        ``hourglass.train`` takes, split as the run's own data were), with the run's table transform
        and image settings; kept on disk when the run streams."""
        import warnings

        from ..data.bundle import changed_since, place
        from ..errors import HourglassWarning

        d, t = self.record.data, self.record.train
        opts = self.data_options
        source = data if data is not None else self._source()
        if data is None:
            for rec in (d.files or {}).get("files", []):
                change = changed_since(rec)
                if change:
                    warnings.warn(f"{change}: the run's splits and metrics may differ", HourglassWarning, stacklevel=2)
        bundle = as_bundle(source, data_dir=d.data_dir if data is None else None,
                           test_fraction=d.test_fraction,
                           label_column=d.label_column if not _in_memory(source) else None,
                           seed=t.seed, options=opts, lazy=self.streamed, stored=self._stored())
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
        d, t = self.record.data, self.record.train
        s = make_splits(self.bundle(data), self.scaler, val_fraction=t.val_fraction, seed=t.seed, fit=False,
                        exclude=d.exclude_class, keep_labels=d.keep_labels)
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
        record = self.record.data.transform
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
        d = self.record.data
        if d.name in list_datasets():
            return d.name
        if d.fingerprint:
            raise DataError(f"the run was trained on in-memory data ({d.source}): pass the data again, "
                            "e.g. run.evaluate(run.splits(data)) or `hourglass evaluate RUN --data FILE`")
        return d.source or d.name
    # -- evaluation (hourglass.run.evaluation) -----------------------------------------------------------
    def evaluate(self, splits: Splits | None = None, *, anomaly_class: int | None = None,
                 iwae_samples: int | None = None, progress: bool | None = None) -> dict[str, Any]:
        """``{"train", "test"[, "anomaly"], "warnings"}`` metrics of the model on ``splits`` (default: the
        run's own): exactly what ``metrics.json`` holds (see :func:`hourglass.run.evaluation.evaluate_run`)."""
        from .evaluation import evaluate_run

        return evaluate_run(self, splits, anomaly_class=anomaly_class, iwae_samples=iwae_samples, progress=progress)

    # -- figures and report (hourglass.run.report) --------------------------------------------------------
    def write_figures(self, out_dir: str | Path | None = None, splits: Splits | None = None) -> list[str]:
        """The run's figures (losses, reconstructions, samples, codes, ...) as PNG files in ``out_dir``."""
        from .report import write_figures

        return write_figures(self, out_dir, splits)

    def report_page(self, fig_dir: Path, label: str | None = None):
        from .report import report_page

        return report_page(self, fig_dir, label)

    def write_report(self, output: str | Path | None = None, splits: Splits | None = None,
                     fig_dir: str | Path | None = None) -> Path:
        """``report.html`` (default: in the run directory). Figures are taken from ``fig_dir`` when given
        (the run's directory, right after training), else drawn afresh in a temporary folder."""
        from .report import write_report

        return write_report(self, output, splits, fig_dir)

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
    from .report import write_comparison_report as write

    return write(runs, output)
