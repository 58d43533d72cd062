"""A run's evaluation: the only path from a run to the metric pipeline (:mod:`hourglass.evaluate.metrics`),
so ``hourglass evaluate RUN`` reproduces ``metrics.json``.

The functions take a :class:`~hourglass.run.Run` (its model, record and splits) and import nothing of
``run.py``: the run calls them, never the other way round.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from typing import Any, Iterator

from ..config import build_config
from ..data.splits import Splits
from ..errors import ConfigError


def evaluate_run(run: Any, splits: Splits | None = None, *, anomaly_class: int | None = None,
                 iwae_samples: int | None = None, progress: bool | None = None) -> dict[str, Any]:
    """``{"train", "test"[, "anomaly"], "warnings"}`` metrics of ``run``'s model on ``splits`` (default: the
    run's own): exactly what ``metrics.json`` holds. ``anomaly_class`` asks for the anomaly ROC-AUC of that
    class (by default, of the class the run was trained without, if any); ``iwae_samples`` changes the number
    of importance samples of a VAE's NLL; ``progress`` shows each stage on stderr (default: as the run's
    training option ``progress``)."""
    from ..evaluate.metrics import evaluate_splits
    from ..training.callbacks import EvaluationProgress
    from ..training.precision import autocast_for

    s = splits if splits is not None else run.splits()
    d, t = run.record.data, run.record.train
    show = t.progress if progress is None else progress
    s, sizes = s.bounded(eval_bytes(run), seed=t.seed)
    # The loss metrics' passes (a VAE's IWAE bound: k decoder passes per example) in the run's training
    # precision where the device runs it natively, else float32; codes, samples and diagnostics in float32.
    precision = t.precision
    with _config_override(run, iwae_samples=iwae_samples):
        out = evaluate_splits(run.model, s, data_name=d.name, sample_identity=sample_identity(run),
                              exclude_class=d.exclude_class, anomaly_class=anomaly_class,
                              batch_size=t.eval_batch_size, seed=t.seed,
                              progress=EvaluationProgress() if show else None,
                              autocast=lambda: autocast_for(precision, run.model.device))
    if sizes:  # a streamed run is scored on seeded subsamples of its splits
        out.setdefault("subsample", {}).update({f"{k}_examples": v for k, v in sizes.items()})
    return out


def eval_bytes(run: Any) -> int | None:
    """Bytes each evaluation subsample of a streamed run may take: an eighth of its memory budget."""
    budget = run.record.data.memory_budget_bytes
    return budget // 8 if budget else None


@contextlib.contextmanager
def _config_override(run: Any, **values: Any) -> Iterator[None]:
    """Evaluation-time config values (``iwae_samples``), validated, for the duration of the block."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        yield
        return
    fields = {f.name for f in dataclasses.fields(run.model.config)}
    for key in values:
        if key not in fields:
            raise ConfigError(f"{key}: model {run.model_name!r} has no such setting")
    before = run.model.config
    run.model.config = build_config(type(before), values, base=dataclasses.replace(before))
    try:
        yield
    finally:
        run.model.config = before


def sample_identity(run: Any) -> str:
    """Which cached classifier scores this run's samples: one per data set and scaling."""
    d = run.record.data
    scaling = json.dumps(run.scaler.to_dict(), sort_keys=True, default=str)
    key = f"{d.name}|{d.data_dir}|{d.fingerprint}|{scaling}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]
