"""Train and resume: what ``hourglass.train`` and ``hourglass train`` do, in order.

1. Sort the options into training options (:class:`~hourglass.options.TrainConfig`), data options
   (:class:`~hourglass.options.DataOptions`) and model config fields; a preset supplies defaults for
   the first and the last. An unknown option is a ``ConfigError`` that lists the three kinds.
2. Read the data (:func:`~hourglass.data.as_bundle`: a name, a path, an image folder, arrays, a
   DataFrame) and decide where it lives (:func:`~hourglass.data.bundle.place`): in memory as tensors
   when it fits the memory budget (or ``in_memory="always"``), else streamed from disk. Build the
   model's config from it (the input shape, the number of classes), fit the scaling and make the
   splits (:func:`~hourglass.data.splits.make_splits`).
3. Check the memory the model would need (:mod:`hourglass.memory`), build it through the registry,
   write ``config.json`` (so that an interrupted run can be resumed) and train with the generic trainer;
   callbacks write TensorBoard events after every epoch and a checkpoint (one transaction,
   :mod:`~hourglass.training.checkpoint`) every ``checkpoint_interval`` seconds and at the end, and
   SIGTERM or Ctrl-C stop training after the current step with a checkpoint
   (:class:`~hourglass.errors.TrainingInterrupted` says how to continue).
4. Evaluate through :meth:`Run.evaluate <hourglass.run.Run.evaluate>`, save, draw the figures and write
   the report.

With a run directory, the whole of it runs under the directory's lock (:mod:`hourglass.run.rundir`): the
directory is claimed before anything else (new or empty, or a run stopped before its first
checkpoint), and ``resume`` takes the lock, removes what an interrupted writer left, and continues from
the newest checkpoint after verifying it against its manifest; a run with no checkpoint yet starts
again from scratch, exactly as it first would have.

Both run inside ``torch.random.fork_rng``: training is seeded by its own ``seed`` and leaves the
caller's random streams as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import memory
from ..config import build_config, config_to_dict
from ..data import DataBundle, as_bundle
from ..data.bundle import place
from ..data.scaling import make_scaler
from ..data.sources import IN_MEMORY, fingerprint
from ..data.splits import make_splits
from ..errors import CheckpointError, ConfigError, DataError, TrainingInterrupted
from ..models import get_model_class, make_config, preset_for
from ..options import DataOptions, TrainConfig
from ..seeding import seeded
from ..training import checkpoint as ckpt
from ..training import distributed
from ..training.callbacks import Checkpoint, StopOnSignal, TensorBoard
from ..training.speed import keep_freed_memory
from ..training.trainer import Trainer
from . import rundir, store
from .record import RunRecord
from .run import Run

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
DATA_FIELDS = {f.name for f in dataclasses.fields(DataOptions)}


def split_options(model: str, options: dict[str, Any]) -> tuple[dict, dict, dict]:
    """``options`` -> (training options, data options, model config fields); unknown keys are errors."""
    model_fields = {f.name for f in dataclasses.fields(get_model_class(model).config_cls)}
    unknown = sorted(set(options) - TRAIN_FIELDS - DATA_FIELDS - model_fields)
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for model {model!r}; model config keys: {', '.join(sorted(model_fields))}; "
            f"training options: {', '.join(sorted(TRAIN_FIELDS))}; data options: {', '.join(sorted(DATA_FIELDS))}")
    if "input_shape" in options:
        raise ConfigError("option 'input_shape' is set from the data; it cannot be given")
    pick = lambda keys: {k: v for k, v in options.items() if k in keys}  # noqa: E731
    return pick(TRAIN_FIELDS), pick(DATA_FIELDS), pick(model_fields - TRAIN_FIELDS - DATA_FIELDS)


def train(model: str, data: Any = "digits", *, preset: str | None = None, out: str | Path | None = None,
          figures: bool = True, tensorboard: bool = False, config_from_strings: bool = False,
          evaluate: bool = True, **options: Any) -> Run:
    """Train model ``model`` on ``data`` and return the :class:`~hourglass.run.Run`.

    ``data``: a data set name (``hourglass.list_datasets()``), a file path, an array ``x``, a pair
    ``(x, y)`` or ``(x_train, x_test)``, ``((x_train, y_train), (x_test, y_test))`` or a pandas
    DataFrame (see :func:`hourglass.data.as_bundle`).

    ``options`` mixes training options (``epochs``, ``batch_size``, ``seed``, ``device``, ``threads``,
    ``val_fraction``, ``patience``, ``progress``, ...: ``hourglass.TrainConfig``), data options
    (``data_dir``, ``test_fraction``, ``label_column``, ``scaling``, ``anomaly_class``, ``keep_labels``:
    ``hourglass.DataOptions``) and model config fields (``latent_dim``, ``hidden``, ``beta``, ...:
    ``hourglass list --fields MODEL``). A preset supplies defaults for the training options and the
    model's config.

    With ``out``, the run directory is written as training goes (a checkpoint every ``checkpoint_interval``
    seconds, and after the last epoch) and
    ``hourglass.resume(out)`` can continue it. ``out`` must be a new or empty folder (or a run stopped
    before its first checkpoint, which starts again); it is locked while training runs, and SIGTERM or
    Ctrl-C stop training after the current step with a checkpoint (raising ``TrainingInterrupted``).
    ``anomaly_class`` leaves that class out of the training data and adds ``anomaly_auc`` to the metrics;
    ``keep_labels`` trains semi-supervised with that many training labels (for ``cvae`` with
    ``semi_supervised=True`` or ``aae`` with ``use_labels=True``).
    ``tensorboard`` logs losses and image grids to ``out/tensorboard`` (needs the tensorboard package).
    ``evaluate=False`` skips the metric pipeline: ``run.metrics`` then holds only the fit's time and epochs.
    """
    cls = get_model_class(model)
    train_opts, data_opts, model_opts = split_options(model, options)
    p = preset_for(model, preset)
    tcfg = build_config(TrainConfig, {**(p.train if p else {}), **train_opts}, from_string=config_from_strings)
    dopts = build_config(DataOptions, data_opts, from_string=config_from_strings)
    if tensorboard:
        _check_tensorboard(out)
    if not distributed.setup(tcfg.device).is_main:
        out, tensorboard, figures, evaluate = None, False, False, False  # only rank 0 writes and evaluates
    claim = rundir.claim_new(Path(out), rundir.command_line()) if out is not None else contextlib.nullcontext()
    with claim:
        bundle = as_bundle(data, data_dir=dopts.data_dir, test_fraction=dopts.test_fraction,
                           label_column=dopts.label_column, seed=tcfg.seed, options=dopts,
                           lazy=dopts.in_memory != "always")
        bundle, streamed, budget = place(bundle, dopts.in_memory, dopts.memory_budget)
        if cls.conditional and bundle.y_train is None:
            raise DataError(f"model {model!r} is conditional and needs labels; the data ({bundle.source}) have none")
        cfg_values = dict(model_opts)
        cfg_values["input_shape"] = tuple(bundle.input_shape)
        if "num_classes" in {f.name for f in dataclasses.fields(cls.config_cls)} and bundle.y_train is not None:
            labels = [y for y in (bundle.y_train, bundle.y_test) if y is not None and len(y)]
            cfg_values.setdefault("num_classes", int(max(y.max() for y in labels)) + 1)
        cfg = make_config(model, preset, from_string=config_from_strings, **cfg_values)
        scaler = make_scaler(dopts.scaling, bundle, cfg.recon_loss)
        splits = make_splits(bundle, scaler, val_fraction=tcfg.val_fraction, seed=tcfg.seed, fit=True,
                             exclude=dopts.anomaly_class, keep_labels=dopts.keep_labels)
        memory.check_model(cls, cfg, where="", batch=min(tcfg.batch_size, len(splits.x_train)), training=True)
        with seeded(tcfg.seed):
            net = cls(cfg)
            if net.conditional and bundle.y_train is None:  # a model conditional as configured (gan)
                raise DataError(f"model {model!r} with conditional=true needs labels; the data ({bundle.source}) "
                                "have none")
            if dopts.keep_labels is not None and not net.accepts_unknown_labels:
                raise ConfigError(f"keep_labels={dopts.keep_labels}: model {model!r} as configured cannot learn from "
                                  "partial labels; use cvae with semi_supervised=true, aae with use_labels=true, "
                                  "or gan with conditional=true")
            record = RunRecord.new(model, preset, cfg, tcfg, dopts, bundle, splits, scaler, streamed=streamed,
                                   budget=budget)
            run = Run(net, scaler, record, splits=splits)
            if out is not None:
                store.write_record(out, record)
                run.path = Path(out)
            return _fit(run, Trainer(net, tcfg), figures, tensorboard, evaluate)


def train_arrays(model: str, x: np.ndarray, y: np.ndarray | None = None, *, source: str = "arrays",
                 **options: Any) -> Run:
    """Train ``model`` on all of ``x`` (labels ``y``, class indices, or None), for callers that keep their
    own test data, such as the scikit-learn estimators (:mod:`hourglass.sklearn`).

    ``x`` holds examples in the layout the model takes, ``(N, D)`` or ``(N, C, H, W)``. As in :func:`train`,
    ``val_fraction`` of them are held out for validation (the validation loss, early stopping; the run's
    ``splits().x_val``) and the scaling is fitted on the rest; unlike it, nothing is set aside for a test
    split and nothing is evaluated. ``options`` are :func:`train`'s (no ``out``: nothing is written)."""
    x = np.asarray(x)
    if x.ndim not in (2, 4):
        raise DataError(f"expected examples of shape (N, D) or (N, C, H, W), found shape {x.shape}")
    kind = "image" if x.ndim == 4 else "tabular"
    bundle = DataBundle(IN_MEMORY, x, y, x[:0], None if y is None else y[:0], kind, None,
                        f"{IN_MEMORY} {source} {tuple(x.shape)} {x.dtype}")
    bundle.fingerprint = fingerprint(bundle)  # the run then asks for the data again, as any in-memory run
    return train(model, bundle, figures=False, evaluate=False, **options)


def resume(path: str | Path, epochs: int | None = None, *, progress: bool = True, figures: bool = True,
           tensorboard: bool = False, threads: int | None = None, checkpoint_interval: float | None = None) -> Run:
    """Continue the run in ``path`` from its newest checkpoint (to ``epochs`` in all, if given; ``threads``
    and ``checkpoint_interval`` may change too).

    The checkpoint is verified against its manifest and ``config.json`` first: a mismatch is a
    ``CheckpointError`` naming the files, never a silently different model. A run stopped before its
    first checkpoint starts again from scratch and ends as it would have. The directory is locked while
    the run goes on."""
    path = Path(path)
    if tensorboard:
        _check_tensorboard(path)
    # Read without the version warning: the record is read again, under the lock, and warned about there.
    record = store.read_record(path, warn=False)
    changes = {"progress": progress, "epochs": epochs, "threads": threads, "checkpoint_interval": checkpoint_interval}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not distributed.setup(record.train.device).is_main:
        # Another rank: rank 0 holds the lock and has cleaned the directory when it reaches the barrier;
        # this one then reads the same checkpoint, trains its part and writes nothing.
        distributed.barrier()
        run, tcfg, state = _reopen(path, store.read_record(path), changes)
        run.path = None
        return _continue(run, tcfg, state, False, False, evaluate=False)
    with rundir.locked(path, rundir.command_line()):
        rundir.check_links(path)
        rundir.clean_stray(path)
        record = store.read_record(path)  # again, now that no other process can change it
        distributed.barrier()
        run, tcfg, state = _reopen(path, record, changes)
        return _continue(run, tcfg, state, figures, tensorboard, evaluate=True)


def _reopen(path: Path, record: RunRecord, changes: dict[str, Any]
            ) -> tuple[Run, TrainConfig, dict[str, Any] | None]:
    """The run in ``path`` at its newest checkpoint, its training options and its trainer state."""
    tcfg = build_config(TrainConfig, {**config_to_dict(record.train), **changes})
    found = ckpt.open_checkpoint(path, record.to_dict())
    if found is None:
        if (path / "model.safetensors").exists() or (path / "metrics.json").exists():
            raise CheckpointError(f"{path} has no checkpoint to resume from (it was saved, not trained "
                                  "there); train a new run")
        run = Run(*store.build(record, path, None, seed=tcfg.seed))  # initialised exactly as train() does
        state = None
    else:
        folder, manifest = found
        run = Run(*store.build(record, path, folder / "model.safetensors"))
        state = ckpt.load_state(folder)
        ckpt.check_state_epoch(state, manifest, folder)
    memory.check_model(type(run.model), run.model.config, where=f"{path / 'config.json'}: ",
                       batch=min(tcfg.batch_size, max(1, int(record.data.n_train or 1))), training=True)
    run.record = run.record.replace(train=tcfg)
    return run, tcfg, state


def _continue(run: Run, tcfg: TrainConfig, state: dict[str, Any] | None, figures: bool, tensorboard: bool,
              evaluate: bool) -> Run:
    with seeded(tcfg.seed):  # the trainer state brings back the random state it was saved with
        trainer = Trainer(run.model, tcfg)
        if state is not None:
            trainer.load_state_dict(state)
        if run.path is not None:  # the trainer state was good: the changed options are the run's now
            store.write_record(run.path, run.record)
        return _fit(run, trainer, figures, tensorboard, evaluate)


def _check_tensorboard(out: str | Path | None) -> None:
    """Before anything is written: TensorBoard logging needs a run directory and the package."""
    if out is None:
        raise ConfigError("tensorboard=True needs a run directory to log into (out=...)")
    from ..training.loggers import summary_writer_class

    summary_writer_class()


def _fit(run: Run, trainer: Trainer, figures: bool, tensorboard: bool, evaluate: bool) -> Run:
    """Train, evaluate (if asked) and (with a run directory) save, draw and report."""
    splits, out = run.splits(), run.path
    logger = None
    stop = StopOnSignal()
    if trainer.config.reuse_memory and trainer.device.type == "cpu" and not splits.streamed:
        keep_freed_memory()  # a streamed run keeps to its memory budget instead
    if out is not None:
        manifest = {"model": run.record.model, "config": config_to_dict(run.record.config)}
        trainer.callbacks.append(Checkpoint(out, manifest, trainer.config.checkpoint_interval))
    if out is not None or trainer.dist.active:  # every rank stops at the step they agree on
        trainer.callbacks.append(stop)
    if tensorboard and out is not None:
        from ..training.loggers import TensorBoardLogger

        logger = TensorBoardLogger(out / "tensorboard", run.model, splits, run.record.data.kind == "image")
        trainer.callbacks.append(TensorBoard(logger))
    already = sum(rec.get("seconds", 0.0) for rec in trainer.state.history)
    t0 = time.perf_counter()
    try:
        workers = run.data_options.workers
        budget = run.record.data.memory_budget_bytes
        cap = budget // 16 if budget and splits.streamed else None  # a validation batch: 1/16 of the budget
        try:
            run.history = trainer.fit(splits.train_batches(workers, cap), None, splits.val_batches(workers, cap))
        except TrainingInterrupted as e:
            if out is None:
                raise
            raise TrainingInterrupted(f"{e}; a checkpoint of it is in {out}: continue with `hourglass train --resume "
                                      f"{out}` (Python: hourglass.resume({str(out)!r}))", e.signum or stop.received
                                      ) from None
        fit_seconds = time.perf_counter() - t0
        run.metrics = {
            "fit_seconds": round(already + fit_seconds, 3),
            "epochs": trainer.state.epoch,
            "stopped_early": trainer.state.stopped_early,
            "device": str(trainer.device),
            **({"world_size": trainer.dist.world_size} if trainer.dist.active else {}),
            **(run.evaluate(splits) if evaluate else {}),
        }
        if logger is not None:
            logger.log_metrics(run.metrics, trainer.state.epoch)
    finally:
        if logger is not None:
            logger.close()
    if out is not None:
        run.save(out)
        if figures:
            run.write_figures(out, splits)
            run.write_report(fig_dir=out)
    return run
