"""The reference classifier: a small network trained on the real data that judges what models make.

A model cannot say whether its own samples look like digits. Two measures ask a classifier that never
saw a model's output, trained on the real training split only, in the data's scaled units:

* ``kind="mlp"`` (flatten -> 256 -> 64 -> K, ReLU; Adam 2e-3, batches of 256, 20 epochs): its 64-D
  penultimate features define ``fd_classifier`` (:mod:`hourglass.evaluate.samples`); the metric
  pipeline gets it from :func:`get_classifier`, once per data set (it works on tables as on images);
* ``kind="cnn"`` (conv 32 - pool - conv 64 - pool - dense 128 - K, ReLU, dropout 0.25 before the last
  layer; Adam 1e-3, batches of 64): the *judge* of ``benchmarks/examples.py`` and ``hourglass claims``,
  from :func:`train_judge`, whose accuracy on the real test split is the ceiling of every recognition
  rate it reports.

The two kinds are one definition (:class:`ReferenceClassifier`, a body and a head) with two bodies: the
judge needs convolutions to read 28x28 digits, the features must exist for tables too, and merging them
would move every ``fd_classifier`` and judged number hourglass has published. Both are trained by the
one training loop (:class:`~hourglass.training.trainer.Trainer`) through :class:`_Fitting`, which speaks
the trainer's protocol (``configure_optimizers``, ``training_step``); the trainer knows no classifier.

Both are cached the same way (:func:`reference_classifier`): ``STEM.safetensors`` (the weights) and
``STEM.json`` (version, kind, data set, shape, classes, epochs, seed, optimiser settings, the identity
of the data, train and test accuracy, and the SHA-256 of the weights file), each written atomically
(:func:`hourglass.io.atomic_write`), weights first. A cache whose JSON describes another classifier
(another version, kind, shape, data, epochs ...) is stale and retrained silently: that is what a cache
is for. A damaged one (JSON unreadable, weights missing, unreadable, or not the file the JSON hashed:
a write cut between the two files, or two writers interleaved) is retrained with a
:class:`~hourglass.errors.HourglassWarning` naming the file: hourglass can always rebuild it from the data
in hand, so stopping a run's evaluation for it would be worse, and saying nothing would hide a damaged
disk. A cache that cannot be written costs a retraining next time, and a warning says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import HourglassWarning
from ..io import atomic_write, write_text

VERSION = 2  # of the cache entry; 1 was the MLP's safetensors without a weights hash (the judge's was a pickle)
FEATURES = 64  # width of the MLP's penultimate layer: the features of fd_classifier
Kind = Literal["cnn", "mlp"]
# kind -> (learning rate, batch size) each kind was tuned with
SETTINGS: dict[str, tuple[float, int]] = {"cnn": (1e-3, 64), "mlp": (2e-3, 256)}


class ReferenceClassifier(nn.Module):
    """``head(body(x))``; ``features(x) = body(x)``. ``shape``: one example's shape ((C, H, W) for the
    cnn; anything for the mlp, which flattens it)."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, kind: Kind = "mlp"):
        super().__init__()
        if kind not in SETTINGS:
            raise ValueError(f"reference classifier kind {kind!r}: choose cnn or mlp")
        self.kind = kind
        if kind == "cnn":
            c, h, w = shape
            self.body = nn.Sequential(
                nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 128), nn.ReLU(), nn.Dropout(0.25))
            self.head = nn.Linear(128, num_classes)
        else:
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), 256), nn.ReLU(),
                                      nn.Linear(256, FEATURES), nn.ReLU())
            self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def probs(self, x) -> np.ndarray:
        """Class probabilities (N, K) of ``x`` (an array or tensor), in batches of 1000."""
        self.eval()
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        return torch.cat([torch.softmax(self(x[i:i + 1000]), 1) for i in range(0, len(x), 1000)]).numpy()


class _Fitting(nn.Module):
    """A classifier as the trainer sees a model: one optimizer, cross-entropy as the loss."""

    def __init__(self, net: ReferenceClassifier, lr: float):
        super().__init__()
        self.net, self.lr = net, lr
        self.progress = 0.0  # the trainer sets it; nothing here is scheduled

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # Adam's plain kernel, as the classifiers were tuned (and their cached numbers measured) with
        return {"model": torch.optim.Adam(self.net.parameters(), lr=self.lr)}

    def on_fit_start(self, epochs: int) -> None:
        pass

    def active_phases(self, epoch: int) -> list[str] | None:
        return None

    def training_step(self, batch, phase: str = "model") -> dict[str, torch.Tensor]:
        x, y = batch
        return {"loss": nn.functional.cross_entropy(self.net(x), y)}

    def after_step(self, phase: str) -> None:
        pass


def fingerprint(*arrays) -> str:
    """Short hash of the data (examples as float32, labels as int64): a cache is reused only for the same."""
    h = hashlib.sha256()
    for i, a in enumerate(arrays):
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(np.ascontiguousarray(a, dtype=np.int64 if i % 2 else np.float32).tobytes())
    return h.hexdigest()[:16]


def accuracy(clf: ReferenceClassifier, x, y) -> float:
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    x = x.detach().cpu() if isinstance(x, torch.Tensor) else x
    return float((clf.probs(x).argmax(1) == y).mean())


def train(x_train, y_train, *, kind: Kind, epochs: int, seed: int = 0,
          threads: int | None = None) -> ReferenceClassifier:
    """A classifier of ``kind`` trained by the trainer on (x_train, y_train) (arrays or tensors), on the
    CPU; the caller's random state is left as it was. ``threads``: as the trainer's (None: automatic)."""
    from ..training import distributed
    from ..training.trainer import TrainConfig, Trainer

    lr, batch_size = SETTINGS[kind]
    x = torch.as_tensor(np.asarray(x_train, dtype=np.float32)) if not isinstance(x_train, torch.Tensor) \
        else x_train.detach().cpu().float()
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.long) if not isinstance(y_train, torch.Tensor) \
        else y_train.detach().cpu().long()
    # the classifiers were measured in NCHW, unfused, on the CPU: the trainer's faster layouts are not asked for
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, device="cpu", threads=threads,
                      val_fraction=0.0, progress=False, channels_last=False)
    # distributed.alone(): in a torchrun run only rank 0 evaluates, so its classifier trains as one process
    with torch.random.fork_rng(), torch.enable_grad(), distributed.alone():
        torch.manual_seed(seed)
        clf = ReferenceClassifier(tuple(x.shape[1:]), int(y.max()) + 1, kind)
        Trainer(_Fitting(clf, lr), cfg).fit(x, y)
    return clf.eval()


def reference_classifier(x_train, y_train, *, kind: Kind, epochs: int, seed: int = 0, cache: Path | None = None,
                         dataset: str = "", identity: str | None = None, x_test=None, y_test=None,
                         threads: int | None = None) -> tuple[ReferenceClassifier, dict[str, Any]]:
    """The classifier of ``kind`` trained on (x_train, y_train), and its record (the cache's JSON:
    ``train_accuracy``, ``test_accuracy`` when test data are given, ...).

    ``cache``: a path stem; ``STEM.safetensors`` + ``STEM.json`` are read when they describe this very
    classifier (same kind, shape, classes, epochs, seed and ``identity``: by default a hash of the
    training and test data), else it is trained and they are written (see the module doc)."""
    shape = tuple(int(s) for s in x_train.shape[1:])
    num_classes = int(y_train.max()) + 1
    lr, batch_size = SETTINGS[kind]
    if identity is None:
        identity = fingerprint(x_train, y_train, *((x_test, y_test) if x_test is not None else ()))
    want = {"version": VERSION, "kind": kind, "shape": "x".join(map(str, shape)), "num_classes": num_classes,
            "identity": identity, "epochs": epochs, "seed": seed, "lr": lr, "batch_size": batch_size}
    if cache is not None:
        found = _read(Path(cache), want, shape)
        if found is not None:
            return found
    clf = train(x_train, y_train, kind=kind, epochs=epochs, seed=seed, threads=threads)
    meta = {**want, "dataset": dataset, "n_train": len(x_train), "train_accuracy": accuracy(clf, x_train, y_train)}
    if x_test is not None:
        meta["test_accuracy"] = accuracy(clf, x_test, y_test)
    if cache is not None:
        _write(Path(cache), clf, meta)
    return clf, meta


def _paths(stem: Path) -> tuple[Path, Path]:
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read(stem: Path, want: dict[str, Any], shape) -> tuple[ReferenceClassifier, dict[str, Any]] | None:
    """The cached classifier that ``want`` describes, or None (absent, stale, or damaged: warned)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wpath, jpath = _paths(stem)
    if not jpath.is_file():
        return None
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"a JSON {type(meta).__name__}, not an object")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return _damaged(jpath, f"its JSON is unreadable ({e})")
    if any(meta.get(k) != v for k, v in want.items()):
        return None  # another classifier's (an older hourglass, other data or settings): trained again
    if not wpath.is_file():
        return _damaged(wpath, "the weights its JSON describes are missing")
    try:
        if _sha256(wpath) != meta.get("weights_sha256"):
            return _damaged(wpath, "the weights are not the file its JSON describes (a write was cut short?)")
        clf = ReferenceClassifier(shape, want["num_classes"], want["kind"])
        clf.load_state_dict(load_file(str(wpath)))
    except (OSError, SafetensorError, RuntimeError) as e:
        return _damaged(wpath, f"the weights are unreadable ({e})")
    return clf.eval(), meta


def _damaged(path: Path, why: str) -> None:
    warnings.warn(f"reference classifier cache {path}: {why}; training it again", HourglassWarning, stacklevel=4)
    return None


def _write(stem: Path, clf: ReferenceClassifier, meta: dict[str, Any]) -> None:
    """Weights, then the JSON naming their hash: a reader never takes a torn pair for a whole one."""
    from safetensors.torch import save_file

    wpath, jpath = _paths(stem)
    digest: dict[str, str] = {}

    def weights(tmp: str) -> None:
        save_file({k: v.detach().contiguous() for k, v in clf.state_dict().items()}, tmp)
        digest["sha"] = _sha256(tmp)

    try:
        atomic_write(wpath, weights)
        write_text(jpath, json.dumps({**meta, "weights_sha256": digest["sha"]}, indent=2))
    except OSError as e:  # a PathError too: a read-only or full cache folder
        warnings.warn(f"reference classifier cache {stem}: not written ({e}); it is trained again next time",
                      HourglassWarning, stacklevel=3)


# -- the two uses -------------------------------------------------------------------------------------
def cache_root() -> Path:
    """Where the metric pipeline's classifiers live: ``$XDG_CACHE_HOME/hourglass/classifiers`` (default
    ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hourglass" / "classifiers"


def get_classifier(dataset: str, x_train: torch.Tensor, y_train: torch.Tensor, *, identity: str | None = None,
                   epochs: int = 20, seed: int = 0, cache: bool = True) -> ReferenceClassifier:
    """The mlp of ``fd_classifier`` for this data set: cached as ``cache_root()/<dataset>-<shape>``.

    It is reused when its ``identity`` matches (default: a hash of the training data; runs pass a hash
    of the data set's scaling, so every run on the same data shares one classifier and their
    ``fd_classifier`` numbers are comparable whatever their split or seed). It trains with the threads
    torch has now (the run's), as it always did."""
    shape = "x".join(str(s) for s in x_train.shape[1:])
    stem = cache_root() / f"{_safe(dataset)}-{shape}" if cache else None
    clf, _ = reference_classifier(x_train, y_train, kind="mlp", epochs=epochs, seed=seed, cache=stem,
                                  dataset=dataset, identity=identity or fingerprint(x_train, y_train),
                                  threads=torch.get_num_threads())
    return clf


def train_judge(x_train, y_train, x_test, y_test, *, epochs: int = 10, seed: int = 0, cache: Path | None = None,
                threads: int | None = None) -> tuple[ReferenceClassifier, float]:
    """The cnn judge trained on (x_train, y_train) ([0, 1] images (N, C, H, W)) and its accuracy on
    (x_test, y_test); ``cache``: a path stem (``STEM.safetensors`` / ``STEM.json``, reused for the same
    data and settings); ``threads``: torch threads while it trains (None: automatic)."""
    clf, meta = reference_classifier(x_train, y_train, kind="cnn", epochs=epochs, seed=seed, cache=cache,
                                     dataset=Path(cache).name if cache is not None else "", x_test=x_test,
                                     y_test=y_test, threads=threads)
    return clf, float(meta["test_accuracy"])


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(str(name)).name)
