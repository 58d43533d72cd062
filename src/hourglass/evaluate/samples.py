"""Quality of generated samples, judged by the reference classifiers (:mod:`hourglass.evaluate.reference`).

There is no Inception FID here: the Inception network's weights would have to be downloaded, and
hourglass works offline, on data sets (8x8 digits, tables) Inception was never meant for. Instead
hourglass trains a small MLP classifier (flatten -> 256 -> 64 -> K, ReLU) on the real training data
once per data set and caches it (``$XDG_CACHE_HOME/hourglass/classifiers/<dataset>-<shape>.safetensors``
plus a ``.json`` with its accuracy and the identity of the data it was trained on; by default
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

The examples benchmark (``benchmarks/examples.py``) and ``hourglass claims`` ask the *judge* (the CNN
reference classifier, :func:`~hourglass.evaluate.reference.train_judge`) instead:

* ``judge_samples`` is the recognition measure for samples drawn without a label: the share the judge
  assigns to one class with probability >= 0.9 (``CONFIDENT``: a readable digit, not a blend of two),
  and how those spread over the classes (each near 1/K for a model that draws every class; a class at
  0 is a mode the model lost).
* ``within_class_spread`` is the variety measure: for each class, the mean Euclidean distance between
  two different images of that class (pixel space, [0, 1] units), for generated images divided by the
  same number for real test images of that class; averaged over classes. 1.0 means samples vary as
  much as real digits of their class; near 0 means every sample of a class is the same image.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..seeding import seeded
from .codes import labelled
from .reference import ReferenceClassifier, get_classifier


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
def classifier_scores(clf: ReferenceClassifier, samples: torch.Tensor, real: torch.Tensor,
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



CONFIDENT = 0.9  # the judge's probability for one class above which a sample counts as recognised


def judge_samples(judge: ReferenceClassifier, images: np.ndarray,
                  confidence: float = CONFIDENT) -> dict[str, float | np.ndarray]:
    """``confident``: the share of ``images`` ([0, 1], (N, C, H, W)) the judge gives one class with
    probability >= ``confidence``; ``class_shares`` (K,): the share of each class among those (zeros
    when none is); ``class_share_min`` / ``class_share_max``: their extremes; ``predicted`` (N,): the
    judge's class for each image."""
    probs = judge.probs(images)
    predicted = probs.argmax(1)
    sure = probs.max(1) >= confidence
    counts = np.bincount(predicted[sure], minlength=probs.shape[1])
    shares = counts / max(int(sure.sum()), 1)
    return {"confident": float(sure.mean()), "class_shares": shares, "class_share_min": float(shares.min()),
            "class_share_max": float(shares.max()), "predicted": predicted}


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance between two different rows of ``x`` (flattened); the diagnostics' own."""
    from .diagnostics import mean_pairwise_distance as distance

    return distance(torch.as_tensor(np.asarray(x, dtype=np.float32)))


def within_class_spread(samples: np.ndarray, asked: np.ndarray, real: np.ndarray, real_y: np.ndarray) -> float:
    """Mean over classes of (pairwise distance within the samples of class k) / (same for real class k)."""
    ratios = []
    for k in np.unique(asked):
        real_k = real[real_y == k][:200]
        ratios.append(mean_pairwise_distance(samples[asked == k]) / mean_pairwise_distance(real_k))
    return float(np.mean(ratios))
