"""Runs: train a registered model on a data set, save it, load it back, use it.

``train()`` is what ``hourglass train`` calls: load and scale the data, build the model through the
registry, fit it with the generic trainer, evaluate it and (with ``out``) write the run directory.
``load()`` reads a run directory back through the registry; ``Run`` applies the stored scaling, so
``run.encode(raw_data)`` takes data in its original units.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ConfigError, build_config, config_to_dict
from .data import DataBundle, DataError, Scaler, load_data
from .data.scaling import default_scaling
from .evaluate.metrics import evaluate
from .registry import get_model_class, get_preset, make_config
from .train import checkpoint as ckpt
from .train.trainer import TrainConfig, Trainer

# Evaluating a VAE's NLL costs k decoder passes per example; on large training sets the train-split
# metrics use a fixed random subset of this many examples (metrics.json records "n").
MAX_TRAIN_EVAL = 5000
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


@dataclass
class Run:
    """A trained model with its scaling, history and metrics (and its directory, once saved)."""

    model: Any
    scaler: Scaler
    info: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def model_name(self) -> str:
        return self.info["model"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.config.input_shape)

    # -- data in original units <-> tensors ------------------------------------------------------
    def prepare(self, x: np.ndarray) -> torch.Tensor:
        """Raw examples -> scaled float tensor of shape ``(N, *input_shape)``; shape errors are DataErrors."""
        x = np.asarray(x)
        shape = self.input_shape
        if x.ndim == 0 or x.shape[0] == 0:
            raise DataError("no examples to process")
        if x.shape[1:] != shape:
            if int(np.prod(x.shape[1:])) == int(np.prod(shape)):
                x = x.reshape(len(x), *shape)
            else:
                raise DataError(f"expected examples of shape {shape}, found {tuple(x.shape[1:])}")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"expected numbers, found dtype {x.dtype}")
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(1)
        if bad.any():
            raise DataError(f"row {int(np.argmax(bad))} contains NaN or Inf")
        return torch.from_numpy(np.ascontiguousarray(self.scaler.transform(x), dtype=np.float32))

    def _labels(self, y, n: int) -> torch.Tensor | None:
        if y is None:
            if self.model.conditional:
                raise ValueError(f"model {self.model_name!r} is conditional: pass labels y")
            return None
        y = torch.as_tensor(np.asarray(y), dtype=torch.long)
        if y.shape != (n,):
            raise ValueError(f"expected {n} labels, got shape {tuple(y.shape)}")
        return y

    @torch.no_grad()
    def _batched(self, fn, x: torch.Tensor, y: torch.Tensor | None, batch_size: int) -> np.ndarray:
        self.model.eval()
        dev = self.model.device
        outs = []
        for s in range(0, len(x), batch_size):
            yb = y[s : s + batch_size].to(dev) if y is not None else None
            outs.append(fn(x[s : s + batch_size].to(dev), yb).cpu())
        return torch.cat(outs).numpy()

    def encode(self, x: np.ndarray, y=None, batch_size: int = 1024) -> np.ndarray:
        """Codes ``(N, latent_dim)`` of raw examples (scaled as in training)."""
        xt = self.prepare(x)
        return self._batched(self.model.encode, xt, self._labels(y, len(xt)), batch_size)

    def reconstruct(self, x: np.ndarray, y=None, batch_size: int = 1024) -> np.ndarray:
        """Reconstructions of raw examples, in the original units."""
        xt = self.prepare(x)
        out = self._batched(self.model.reconstruct, xt, self._labels(y, len(xt)), batch_size)
        return self.scaler.inverse_transform(out)

    def decode(self, z: np.ndarray, y=None, batch_size: int = 1024) -> np.ndarray:
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
        if zt.ndim != 2 or zt.shape[1] != self.model.latent_dim:
            raise ValueError(f"expected codes of shape (N, {self.model.latent_dim}), got {tuple(zt.shape)}")
        out = self._batched(self.model.decode, zt, self._labels(y, len(zt)), batch_size)
        return self.scaler.inverse_transform(out)

    def sample(self, n: int, y=None) -> np.ndarray:
        """``n`` new examples drawn from the model, in the original units (generative models)."""
        if not self.model.generative:
            raise ValueError(f"model {self.model_name!r} is not generative: it cannot sample")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        yt = self._labels(y, n) if y is not None or self.model.conditional else None
        self.model.eval()
        with torch.no_grad():
            out = self.model.sample(n, yt.to(self.model.device) if yt is not None else None).cpu().numpy()
        return self.scaler.inverse_transform(out)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        ckpt.save_tensors(path / "model.safetensors", self.model.state_dict())
        ckpt.write_json(path / "config.json", self.info)
        if self.history:
            write_history(path / "history.csv", self.history)
        if self.metrics:
            ckpt.write_json(path / "metrics.json", self.metrics)
        self.path = path
        return path


def write_history(path: Path, history: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for rec in history:
        keys += [k for k in rec if k not in keys]

    def w(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)

    ckpt._atomic(path, w)


def versions() -> dict[str, str]:
    from . import __version__

    return {
        "hourglass": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def load(path: str | Path, device: str = "cpu") -> Run:
    """Read a run directory back: the model through the registry, weights from safetensors."""
    path = Path(path)
    if not path.is_dir():
        raise ckpt.CheckpointError(f"run directory {path} not found")
    info = ckpt.read_json(path / "config.json")
    if info.get("format") != ckpt.FORMAT_VERSION:
        raise ckpt.CheckpointError(f"{path / 'config.json'}: unsupported format {info.get('format')!r}")
    cls = get_model_class(info["model"])
    cfg = build_config(cls.config_cls, info["config"])
    model = cls(cfg)
    ckpt.load_weights(model, path / "model.safetensors")
    model.to(torch.device(device)).eval()
    metrics = ckpt.read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {}
    history = _read_history(path / "history.csv")
    return Run(model, Scaler.from_dict(info["data"]["scaling"]), info, history, metrics, path)


def _read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rec: dict[str, Any] = {}
            for k, v in row.items():
                try:
                    rec[k] = int(v) if k == "epoch" else float(v)
                except (TypeError, ValueError):
                    rec[k] = v
            out.append(rec)
    return out


# -- training ---------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Scaled tensors for the train / validation / test splits."""

    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor | None


def split_and_scale(bundle: DataBundle, scaler: Scaler, val_fraction: float, seed: int, fit: bool) -> Prepared:
    n = len(bundle.x_train)
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and (n_val < 1 or n - n_val < 1):
        raise ValueError(f"val_fraction={val_fraction} leaves no validation or no training data (n={n})")
    tr, va = perm[n_val:], perm[:n_val]
    if fit:
        scaler.fit(bundle.x_train[tr])

    def tens(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(scaler.transform(a), dtype=np.float32))

    def lab(y: np.ndarray | None, idx=None) -> torch.Tensor | None:
        if y is None:
            return None
        return torch.from_numpy(np.asarray(y if idx is None else y[idx], dtype=np.int64))

    return Prepared(
        tens(bundle.x_train[tr]),
        lab(bundle.y_train, tr),
        tens(bundle.x_train[va]) if n_val else None,
        lab(bundle.y_train, va) if n_val else None,
        tens(bundle.x_test),
        lab(bundle.y_test),
    )


def train(
    model: str,
    data: str = "digits",
    *,
    data_dir: str | None = None,
    preset: str | None = None,
    out: str | Path | None = None,
    scaling: str = "auto",
    test_fraction: float = 0.2,
    label_column: str | int | None = None,
    figures: bool = True,
    config_from_strings: bool = False,
    exclude_class: int | None = None,
    keep_labels: int | None = None,
    tensorboard: bool = False,
    **options: Any,
) -> Run:
    """Train model ``model`` on data set ``data`` (a name from ``list_datasets()`` or a file path).

    ``options`` mixes training settings (``epochs``, ``batch_size``, ``seed``, ``device``,
    ``val_fraction``, ``patience``, ``grad_clip``, ``progress``, ...; see ``TrainConfig``) and model
    config fields (``latent_dim``, ``hidden``, ``beta``, ...; see ``hourglass list --fields``).
    A preset supplies defaults for both. With ``out``, the run directory is written as training goes
    (checkpoint every epoch) and ``hourglass train --resume`` can continue it. ``exclude_class`` drops
    that class from the training data (not the test data) and adds ``anomaly_auc`` to the metrics.
    ``keep_labels`` trains semi-supervised: only that many training labels are kept (as many per
    class as can be), the others are given to the model as unknown (-1); evaluation still uses the
    true labels. It needs a model that takes unknown labels (``cvae`` with ``semi_supervised=True``,
    ``aae`` with ``use_labels=True``).
    ``tensorboard`` logs losses and image grids to ``out/tensorboard`` as training goes (needs ``out``
    and the tensorboard package).
    """
    cls = get_model_class(model)
    model_fields = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(options) - TRAIN_FIELDS - model_fields)
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for model {model!r}; model config keys: {', '.join(sorted(model_fields))}; "
            f"training options: {', '.join(sorted(TRAIN_FIELDS))}"
        )
    if "input_shape" in options:
        raise ConfigError("option 'input_shape' is set from the data; it cannot be given")
    if tensorboard:
        _check_tensorboard(out)
    train_opts = {k: v for k, v in options.items() if k in TRAIN_FIELDS}
    model_opts = {k: v for k, v in options.items() if k not in TRAIN_FIELDS}
    preset_train = get_preset(preset).train if preset else {}
    if preset and get_preset(preset).model != model:
        raise ConfigError(f"preset {preset!r} is for model {get_preset(preset).model!r}, not {model!r}")
    tcfg = build_config(TrainConfig, {**preset_train, **train_opts}, from_string=config_from_strings)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")

    bundle = load_data(data, data_dir, test_fraction=test_fraction, label_column=label_column, seed=tcfg.seed)
    bundle = _exclude_class(bundle, exclude_class)
    if cls.conditional and bundle.y_train is None:
        raise DataError(f"model {model!r} is conditional and needs labels; data set {data!r} has none")
    cfg_values = dict(model_opts)
    cfg_values["input_shape"] = tuple(bundle.input_shape)
    if "num_classes" in {f.name for f in dataclasses.fields(cls.config_cls)} and bundle.y_train is not None:
        cfg_values.setdefault("num_classes", int(max(bundle.y_train.max(), bundle.y_test.max())) + 1)
    cfg = make_config(model, preset, from_string=config_from_strings, **cfg_values)
    scaler = _make_scaler(scaling, bundle, cfg.recon_loss)
    prepared = split_and_scale(bundle, scaler, tcfg.val_fraction, tcfg.seed, fit=True)

    info = {
        "format": ckpt.FORMAT_VERSION,
        "model": model,
        "preset": preset,
        "config": config_to_dict(cfg),
        "train": config_to_dict(tcfg),
        "data": {
            "name": bundle.name,
            "data_dir": str(data_dir) if data_dir else None,
            "source": bundle.source,
            "kind": bundle.kind,
            "input_shape": list(bundle.input_shape),
            "test_fraction": test_fraction,
            "label_column": label_column,
            "label_names": bundle.label_names,
            "n_train": int(prepared.x_train.shape[0]),
            "n_val": int(prepared.x_val.shape[0]) if prepared.x_val is not None else 0,
            "n_test": int(prepared.x_test.shape[0]),
            "scaling": scaler.to_dict(),
            "exclude_class": exclude_class,
            "keep_labels": keep_labels,
        },
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    torch.manual_seed(tcfg.seed)
    net = cls(cfg)
    if keep_labels is not None:
        _check_keep_labels(keep_labels, model, net, prepared.y_train, bundle.name)
    run = Run(net, scaler, info)
    trainer = Trainer(net, tcfg)
    if out is not None:
        out = Path(out)
        if (out / "config.json").exists():
            raise ValueError(f"{out} already holds a run; choose another --out or continue it with --resume {out}")
        ckpt.write_json(out / "config.json", info)
    return _fit_and_finish(run, trainer, prepared, bundle, out, figures, tensorboard)


def resume(path: str | Path, epochs: int | None = None, progress: bool = True, figures: bool = True,
           tensorboard: bool = False) -> Run:
    """Continue the run in ``path`` from its last completed epoch (to ``epochs`` in all, if given)."""
    path = Path(path)
    if tensorboard:
        _check_tensorboard(path)
    run = load(path)
    info = run.info
    if not (path / "trainer_state.json").is_file():
        raise ckpt.CheckpointError(f"{path} has no trainer state to resume from (trainer_state.json)")
    tvals = dict(info["train"])
    tvals["progress"] = progress
    if epochs is not None:
        tvals["epochs"] = epochs
    tcfg = build_config(TrainConfig, tvals)
    d = info["data"]
    bundle = load_data(d["name"], d["data_dir"], test_fraction=d["test_fraction"], label_column=d["label_column"],
                       seed=info["train"]["seed"])
    bundle = _exclude_class(bundle, d.get("exclude_class"))
    prepared = split_and_scale(bundle, run.scaler, tcfg.val_fraction, tcfg.seed, fit=False)
    trainer = Trainer(run.model, tcfg)
    trainer.load_state_dict(ckpt.load_state(path))
    info["train"] = config_to_dict(tcfg)
    return _fit_and_finish(run, trainer, prepared, bundle, path, figures, tensorboard)


def _check_tensorboard(out: str | Path | None) -> None:
    """Before anything is written: TensorBoard logging needs a run directory and the package."""
    if out is None:
        raise ValueError("tensorboard=True needs a run directory to log into (out=...)")
    from .report.tensorboard import summary_writer_class

    summary_writer_class()


def _check_keep_labels(keep: int, name: str, model, y_train: torch.Tensor | None, data: str) -> None:
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep_labels must be a positive number of labels, got {keep!r}")
    if y_train is None:
        raise DataError(f"keep_labels={keep}: data set {data!r} has no labels")
    if not model.accepts_unknown_labels:
        raise ValueError(f"keep_labels={keep}: model {name!r} as configured cannot learn from partial labels; "
                         "use cvae with semi_supervised=true, or aae with use_labels=true")
    known = int((y_train >= 0).sum())
    if keep > known:
        raise ValueError(f"keep_labels={keep}: the training split has only {known} labels")


def hide_labels(y: torch.Tensor, keep: int, seed: int) -> torch.Tensor:
    """A copy of ``y`` in which all but ``keep`` labels are -1 (unknown). The kept ones are drawn at
    random and balanced over the classes: taken one per class in turn, so each class keeps
    ``keep // K`` or one more, and a class with fewer known labels gives all it has."""
    y = y.clone()
    known = torch.nonzero(y >= 0).squeeze(1)
    order = known[torch.randperm(len(known), generator=torch.Generator().manual_seed(seed))]
    pools = [order[y[order] == c] for c in torch.unique(y[known]).tolist()]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(keep, len(known)):
        chosen += [int(pool[depth]) for pool in pools if depth < len(pool)][: keep - len(chosen)]
        depth += 1
    mask = torch.zeros(len(y), dtype=torch.bool)
    mask[chosen] = True
    y[~mask] = -1
    return y


def _exclude_class(bundle: DataBundle, c: int | None) -> DataBundle:
    """The bundle without class ``c`` in its training split (for anomaly detection)."""
    if c is None:
        return bundle
    if bundle.y_train is None:
        raise DataError(f"--anomaly-class {c}: data set {bundle.name!r} has no labels")
    keep = bundle.y_train != c
    if keep.all() or not keep.any():
        raise DataError(f"anomaly class {c}: the training data have {'no' if keep.all() else 'only'} examples of it")
    return dataclasses.replace(bundle, x_train=bundle.x_train[keep], y_train=bundle.y_train[keep])


def _make_scaler(scaling: str, bundle: DataBundle, recon_loss: str) -> Scaler:
    if scaling == "auto":
        return default_scaling(bundle, recon_loss)
    if scaling == "range":
        if bundle.value_range is None:
            raise ConfigError(f"scaling 'range' needs a known value range; data set {bundle.name!r} has none")
        return Scaler("range", lo=bundle.value_range[0], hi=bundle.value_range[1])
    if scaling in ("none", "minmax", "standard"):
        return Scaler(scaling)
    raise ConfigError(f"scaling {scaling!r}: choose auto, range, minmax, standard or none")


def _fit_and_finish(run: Run, trainer: Trainer, p: Prepared, bundle: DataBundle, out: Path | None,
                    figures: bool, tensorboard: bool = False) -> Run:
    tb = None
    if tensorboard and out is not None:
        from .report.tensorboard import TensorBoardLogger

        tb = TensorBoardLogger(out / "tensorboard", run, p)

    def on_epoch_end(t: Trainer) -> None:
        if out is not None:
            # Weights first, then the state that says which epoch they belong to.
            ckpt.save_tensors(out / "model.safetensors", run.model.state_dict())
            ckpt.save_state(out, t.state_dict())
            write_history(out / "history.csv", t.state.history)
        if tb is not None:
            tb.log_epoch(t.state.history[-1])

    # Semi-supervised runs: the model sees keep_labels training labels and no validation labels;
    # evaluation below uses the true ones.
    y_fit, y_val_fit = p.y_train, p.y_val
    keep = run.info["data"].get("keep_labels")
    if keep is not None and p.y_train is not None:
        y_fit = hide_labels(p.y_train, keep, trainer.config.seed)
        y_val_fit = torch.full_like(p.y_val, -1) if p.y_val is not None else None
    already = sum(rec.get("seconds", 0.0) for rec in trainer.state.history)
    t0 = time.perf_counter()
    try:
        history = trainer.fit(p.x_train, y_fit, p.x_val, y_val_fit, on_epoch_end=on_epoch_end)
    except BaseException:
        if tb is not None:
            tb.close()
        raise
    fit_seconds = time.perf_counter() - t0
    run.history = history
    bs = trainer.config.eval_batch_size
    seed = trainer.config.seed
    run.metrics = {
        "fit_seconds": round(already + fit_seconds, 3),
        "epochs": trainer.state.epoch,
        "stopped_early": trainer.state.stopped_early,
        "device": str(trainer.device),
        "train": evaluate(run.model, p.x_train, p.y_train, bs, max_examples=MAX_TRAIN_EVAL, seed=seed),
        "test": evaluate(run.model, p.x_test, p.y_test, bs, seed=seed),
    }
    from .evaluate.codes import model_code_metrics
    from .evaluate.samples import run_sample_metrics

    run.metrics["test"].update(model_code_metrics(run.model, p.x_train, p.y_train, p.x_test, p.y_test, seed=seed))
    run.metrics["test"].update(run_sample_metrics(run, p, seed=seed))
    d = run.info["data"]
    if d.get("exclude_class") is not None and run.model.has_encoder:
        from .evaluate.anomaly import anomaly_report

        run.metrics["anomaly"] = anomaly_report(run.model, p.x_test, p.y_test, d["exclude_class"], bs, seed)
        run.metrics["test"]["anomaly_auc"] = run.metrics["anomaly"]["auc"]
    if tb is not None:
        tb.log_metrics(run.metrics, trainer.state.epoch)
        tb.close()
    if out is not None:
        run.save(out)
        if figures:
            from .report.html import write_report
            from .report.run_figures import write_run_figures

            write_run_figures(run, p)
            write_report(run, p, fig_dir=out)
    return run


def metrics_text(metrics: dict[str, Any]) -> str:
    """One short human summary of metrics.json."""
    parts = [f"epochs {metrics.get('epochs')}", f"fit {metrics.get('fit_seconds')} s"]
    test = metrics.get("test", {})
    for k in ("recon_bce", "recon_mse", "neg_elbo", "nll", "classifier_accuracy", "anomaly_auc"):
        if k in test:
            parts.append(f"test {k} {test[k]:.4g}")
    return ", ".join(parts)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2)
