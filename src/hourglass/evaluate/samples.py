"""Quality of generated samples, judged by a small classifier trained on the real data.

There is no Inception FID here: the Inception network's weights would have to be downloaded, and
hourglass works offline, on data sets (8x8 digits, tables) Inception was never meant for. Instead
hourglass trains a small MLP classifier (flatten -> 256 -> 64 -> K, ReLU) on the real training data
once per data set and caches it (``$XDG_CACHE_HOME/hourglass/classifiers/<dataset>-<shape>.safetensors``
plus a ``.json`` with its accuracy and the fingerprint of the data it was trained on; by default
``~/.cache``). With it:

* ``fd_classifier``: the Frechet distance between Gaussians fitted to the classifier's penultimate
  (64-D) features of real test data and of samples (Heusel et al. 2017, with this classifier in place
  of Inception):  ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2})``. Lower is better;
  ``fd_classifier_real`` is the same distance between real training and real test features, the
  floor to compare against. Numbers are comparable only between runs on the same data set and
  scaling (the same cached classifier), never with published FIDs.
* ``sample_confidence``: the classifier's mean max-softmax probability on the samples (do they look
  like some class?).
* ``sample_class_balance``: entropy of the histogram of predicted classes / log K (1 = every class
  equally often; low = mode collapse).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..seeding import seeded
from .codes import labelled

FEATURES = 64
CLASSIFIER_VERSION = 1


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hourglass" / "classifiers"


class FeatureClassifier(nn.Module):
    """The MLP whose penultimate features define ``fd_classifier``."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 256, features: int = FEATURES):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(),
                                  nn.Linear(hidden, features), nn.ReLU())
        self.head = nn.Linear(features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """Short hash of the (scaled) training data: a cached classifier is reused only for the same data."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(y.detach().cpu().numpy(), dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def get_classifier(dataset: str, x_train: torch.Tensor, y_train: torch.Tensor, *, identity: str | None = None,
                   epochs: int = 20, seed: int = 0, cache: bool = True) -> FeatureClassifier:
    """The cached classifier of this data set, or a new one trained (and cached) on ``x_train``.

    A cached classifier is reused when its ``identity`` matches (default: a hash of the training data;
    runs pass a hash of the data set's scaling, so every run on the same data shares one classifier
    and their ``fd_classifier`` numbers are comparable whatever their split or seed)."""
    from safetensors.torch import load_file, save_file

    shape = "x".join(str(s) for s in x_train.shape[1:])
    stem = f"{_safe(dataset)}-{shape}"
    root = cache_root()
    wpath, jpath = root / f"{stem}.safetensors", root / f"{stem}.json"
    num_classes = int(y_train.max()) + 1
    fp = identity or fingerprint(x_train, y_train)
    in_dim = int(np.prod(x_train.shape[1:]))
    if cache and wpath.is_file() and jpath.is_file():
        try:
            meta = json.loads(jpath.read_text())
            if (meta.get("fingerprint") == fp and meta.get("num_classes") == num_classes
                    and meta.get("version") == CLASSIFIER_VERSION):
                clf = FeatureClassifier(in_dim, num_classes)
                clf.load_state_dict(load_file(str(wpath)))
                return clf.eval()
        except (OSError, ValueError, RuntimeError):
            pass  # a damaged cache entry is retrained below
    clf, acc = _train(x_train, y_train, in_dim, num_classes, epochs, seed)
    if cache:
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = wpath.with_suffix(f".tmp{os.getpid()}")
            save_file({k: v.contiguous() for k, v in clf.state_dict().items()}, str(tmp))
            os.replace(tmp, wpath)
            jpath.write_text(json.dumps({"version": CLASSIFIER_VERSION, "dataset": dataset, "shape": shape,
                                         "num_classes": num_classes, "fingerprint": fp, "n_train": len(x_train),
                                         "train_accuracy": acc, "epochs": epochs}, indent=2))
        except OSError:
            pass  # a read-only cache only costs a retraining next time
    return clf


@torch.enable_grad()
def _train(x, y, in_dim, num_classes, epochs, seed) -> tuple[FeatureClassifier, float]:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        clf = FeatureClassifier(in_dim, num_classes)
    x = x.detach().cpu().float()
    y = y.detach().cpu().long()
    opt = torch.optim.Adam(clf.parameters(), lr=2e-3)
    bs = 256
    clf.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), bs):
            idx = perm[s : s + bs]
            loss = nn.functional.cross_entropy(clf(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    clf.eval()
    with torch.no_grad():
        acc = float((clf(x).argmax(1) == y).float().mean())
    return clf, acc


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) between Gaussians fitted to two feature sets."""
    from scipy import linalg

    f1 = np.asarray(f1, dtype=np.float64)
    f2 = np.asarray(f2, dtype=np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    # Dead ReLU units give singular covariances; a tiny ridge keeps sqrtm well defined (as in pytorch-fid).
    eps = 1e-6 * np.eye(len(s1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = np.real(linalg.sqrtm((s1 + eps) @ (s2 + eps)))
    return float(max(0.0, ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)))


@torch.no_grad()
def classifier_scores(clf: FeatureClassifier, samples: torch.Tensor, real: torch.Tensor,
                      real_train: torch.Tensor | None = None) -> dict[str, float]:
    """``fd_classifier`` (+ ``fd_classifier_real``), ``sample_confidence`` and ``sample_class_balance``."""
    clf.eval()
    samples = samples.detach().cpu().float()
    fs, fr = clf.features(samples), clf.features(real.detach().cpu().float())
    probs = torch.softmax(clf.head(fs), 1)
    k = probs.shape[1]
    hist = torch.bincount(probs.argmax(1), minlength=k).double()
    p = hist / hist.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    out = {"fd_classifier": frechet_distance(fs.numpy(), fr.numpy()),
           "sample_confidence": float(probs.max(1).values.mean()),
           "sample_class_balance": abs(entropy) / float(np.log(k)) if k > 1 else 1.0}
    if real_train is not None:
        out["fd_classifier_real"] = frechet_distance(clf.features(real_train.detach().cpu().float()).numpy(),
                                                     fr.numpy())
    return out


@torch.no_grad()
def sample_metrics(model, dataset: str, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                   n: int = 1000, seed: int = 0, identity: str | None = None) -> dict[str, float]:
    """Sample-quality metrics of a generative model (empty for other models or unlabelled data)."""
    if not model.generative or y_train is None:
        return {}
    x_train, y_train = labelled(x_train, y_train)  # the classifier learns from labelled examples only
    if len(torch.unique(y_train)) < 2:
        return {}
    clf = get_classifier(dataset, x_train, y_train, identity=identity, seed=seed)
    n = min(n, max(len(x_test), 2))
    model.eval()
    with seeded(seed):
        ys = None
        if model.conditional:
            ys = (torch.arange(n) % model.num_classes).to(model.device)
        samples = model.sample(n, ys).cpu()
    g = torch.Generator().manual_seed(seed)
    ref_train = x_train[torch.randperm(len(x_train), generator=g)[: len(x_test)]]
    return classifier_scores(clf, samples, x_test, ref_train)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(str(name)).name)
