"""The train / validation / test tensors of a run, made in one place.

``make_splits`` is the only code that turns a run's raw data into what its model sees, for training,
resuming, evaluation and figures alike:

1. leave the anomaly class out of the training data (``exclude_class``; the test data keep it);
2. hold out ``val_fraction`` of the training data for validation, by a permutation seeded with ``seed``;
3. fit the scaling on the training part (a new run) or apply the run's stored scaling (``fit=False``);
4. for semi-supervised runs (``keep_labels``), hide all but that many training labels (-1: unknown)
   and every validation label from the model; evaluation still uses the true labels.

A bundle in memory becomes tensors (the trainer's fast path); a bundle of examples read on demand
(:class:`~hourglass.data.rows.Rows`) becomes :class:`~hourglass.data.streaming.StreamSplit` objects,
the scaling fitted in one streaming pass. ``Splits.train_batches()`` and ``val_batches()`` hand the
trainer the matching batch source; ``Splits.bounded()`` gives seeded tensor subsamples of a stated
size, on which a streamed run is evaluated and drawn.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from .batches import Batches, TensorBatches
from .bundle import DataBundle
from .rows import Rows
from .scaling import Scaler
from .streaming import StreamSplit

# A streamed run is evaluated on seeded subsamples of at most this many examples per split, and of at
# most an eighth of its memory budget in bytes (metrics.json records the sizes).
EVAL_MAX_EXAMPLES = 10_000


@dataclass
class Splits:
    """Scaled tensors of one run's data. ``y_*`` are the true labels (for evaluation); ``y_train_seen``
    and ``y_val_seen`` are the labels the model trains on (the same, except in semi-supervised runs)."""

    x_train: torch.Tensor | StreamSplit
    y_train: torch.Tensor | None
    x_val: torch.Tensor | StreamSplit | None
    y_val: torch.Tensor | None
    x_test: torch.Tensor | StreamSplit
    y_test: torch.Tensor | None
    y_train_seen: torch.Tensor | None = None
    y_val_seen: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.y_train_seen is None:
            self.y_train_seen = self.y_train
        if self.y_val_seen is None:
            self.y_val_seen = self.y_val

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"n_train": len(self.x_train), "n_val": len(self.x_val) if self.x_val is not None else 0,
                "n_test": len(self.x_test)}

    @property
    def streamed(self) -> bool:
        return isinstance(self.x_train, StreamSplit)

    def train_batches(self, workers: int = 0, max_batch_bytes: int | None = None) -> Batches:
        """The trainer's source of training batches (with the labels the model may see); streamed passes
        in order cut their batches to ``max_batch_bytes``."""
        return _source(self.x_train, self.y_train_seen, workers, max_batch_bytes)

    def val_batches(self, workers: int = 0, max_batch_bytes: int | None = None) -> Batches | None:
        return _source(self.x_val, self.y_val_seen, workers, max_batch_bytes) if self.x_val is not None else None

    def bounded(self, max_bytes: int | None = None, seed: int = 0) -> tuple["Splits", dict[str, int]]:
        """Tensor splits for evaluation and figures, and the number of examples each holds: the splits
        themselves when in memory; for a streamed run, seeded random subsamples (in file order) of at most
        ``EVAL_MAX_EXAMPLES`` examples and ``max_bytes`` bytes each."""
        if not self.streamed:
            return self, {}
        per_example = 4 * int(np.prod(self.input_shape))
        limit = EVAL_MAX_EXAMPLES if max_bytes is None else max(2, min(EVAL_MAX_EXAMPLES, max_bytes // per_example))
        rng = np.random.default_rng(seed)
        sizes: dict[str, int] = {}

        def pick(name, x, *ys):
            if x is None:
                return (None, *ys)
            idx = np.arange(len(x)) if len(x) <= limit else np.sort(rng.choice(len(x), limit, replace=False))
            sizes[name] = len(idx)
            t = torch.from_numpy(idx)
            return (x.take(idx), *(y[t] if y is not None else None for y in ys))

        x_tr, y_tr, y_tr_seen = pick("train", self.x_train, self.y_train, self.y_train_seen)
        x_va, y_va, y_va_seen = pick("val", self.x_val, self.y_val, self.y_val_seen)
        x_te, y_te = pick("test", self.x_test, self.y_test)
        return Splits(x_tr, y_tr, x_va, y_va, x_te, y_te, y_tr_seen, y_va_seen), sizes


def _source(x, y, workers: int, max_batch_bytes: int | None) -> Batches:
    return x.batches(y, workers, max_batch_bytes) if isinstance(x, StreamSplit) else TensorBatches(x, y)


def exclude_class(bundle: DataBundle, c: int | None) -> DataBundle:
    """The bundle without class ``c`` in its training split (for anomaly detection)."""
    if c is None:
        return bundle
    if bundle.y_train is None:
        raise DataError(f"anomaly class {c}: data set {bundle.name!r} has no labels")
    keep = bundle.y_train != c
    if keep.all() or not keep.any():
        raise DataError(f"anomaly class {c}: the training data have {'no' if keep.all() else 'only'} examples of it")
    x = bundle.x_train.subset(np.flatnonzero(keep)) if isinstance(bundle.x_train, Rows) else bundle.x_train[keep]
    return dataclasses.replace(bundle, x_train=x, y_train=bundle.y_train[keep])


def make_splits(bundle: DataBundle, scaler: Scaler, *, val_fraction: float, seed: int, fit: bool,
                exclude: int | None = None, keep_labels: int | None = None) -> Splits:
    """The run's :class:`Splits` from its raw ``bundle`` (steps 1-4 of the module docstring)."""
    bundle = exclude_class(bundle, exclude)
    n = len(bundle.x_train)
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and (n_val < 1 or n - n_val < 1):
        raise DataError(f"val_fraction={val_fraction} leaves no validation or no training data (n={n})")
    tr, va = perm[n_val:], perm[:n_val]
    lazy = isinstance(bundle.x_train, Rows)
    if fit:
        scaler.fit(bundle.x_train.subset(tr) if lazy else bundle.x_train[tr])

    def tens(a):
        if isinstance(a, Rows):
            return StreamSplit(a, scaler)
        return torch.from_numpy(np.ascontiguousarray(scaler.transform(a), dtype=np.float32))

    def part(a, idx):
        return a.subset(idx) if lazy else a[idx]

    def lab(y: np.ndarray | None, idx=None) -> torch.Tensor | None:
        if y is None:
            return None
        return torch.from_numpy(np.asarray(y if idx is None else y[idx], dtype=np.int64))

    s = Splits(tens(part(bundle.x_train, tr)), lab(bundle.y_train, tr),
               tens(part(bundle.x_train, va)) if n_val else None, lab(bundle.y_train, va) if n_val else None,
               tens(bundle.x_test), lab(bundle.y_test))
    if keep_labels is not None:
        if s.y_train is None:
            raise DataError(f"keep_labels={keep_labels}: data set {bundle.name!r} has no labels")
        known = int((s.y_train >= 0).sum())
        if keep_labels > known:
            raise DataError(f"keep_labels={keep_labels}: the training split has only {known} labels")
        s.y_train_seen = hide_labels(s.y_train, keep_labels, seed)
        s.y_val_seen = torch.full_like(s.y_val, -1) if s.y_val is not None else None
    return s


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
