"""An independent judge for generated and reconstructed digits: a small CNN trained on real data.

The examples benchmark (``benchmarks/examples.py``) and ``hourglass claims`` ask whether a model does
what it is for: are the CVAE's samples of class k recognised as k, are the GAN's samples readable
digits, are the main job's reconstructions still the digit they came from? The model cannot answer
that about itself, and the classifier hourglass uses for ``fd_classifier`` is an MLP trained inside
the metric pipeline; the judge is a separate convolutional network (conv 32 - pool - conv 64 - pool -
dense 128 - K, ReLU, dropout 0.25 before the last layer) trained here, on the real training split
only, in the data's scaled units ([0, 1]), and checked on the real test split (its accuracy is the
ceiling of every recognition rate).

``judge_samples`` is the recognition measure for samples drawn without a label: the share the judge
assigns to one class with probability >= 0.9 (``CONFIDENT``: a readable digit, not a blend of two),
and how those spread over the classes (each near 1/K for a model that draws every class; a class at 0
is a mode the model lost).

``within_class_spread`` is the variety measure: for each class, the mean Euclidean distance between
two different images of that class (pixel space, [0, 1] units), for generated images divided by the
same number for real test images of that class; averaged over classes. 1.0 means samples vary as much
as real digits of their class; near 0 means every sample of a class is the same image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Judge(nn.Module):
    def __init__(self, shape: tuple[int, int, int], num_classes: int = 10):
        super().__init__()
        c, h, w = shape
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 128), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def probs(self, x) -> np.ndarray:
        self.eval()
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        return torch.cat([torch.softmax(self(x[i:i + 1000]), 1) for i in range(0, len(x), 1000)]).numpy()


def train_judge(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                epochs: int = 10, seed: int = 0, cache: Path | None = None,
                threads: int | None = None) -> tuple[Judge, float]:
    """A judge trained on (x_train, y_train) ([0, 1] images (N, C, H, W)) and its test accuracy;
    ``cache``: a path stem whose ``.pt``/``.json`` hold a trained judge (read if present, else written);
    ``threads``: torch threads while it trains (default: as set)."""
    shape = tuple(x_train.shape[1:])
    judge = Judge(shape, int(y_train.max()) + 1)
    if cache is not None and cache.with_suffix(".pt").is_file():
        judge.load_state_dict(torch.load(cache.with_suffix(".pt"), weights_only=True))
        return judge.eval(), json.loads(cache.with_suffix(".json").read_text())["test_accuracy"]
    from ..threads import ThreadGovernor

    governor = ThreadGovernor(threads)
    governor.start()
    try:
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            judge = Judge(shape, int(y_train.max()) + 1)
            x = torch.as_tensor(x_train, dtype=torch.float32)
            y = torch.as_tensor(y_train, dtype=torch.long)
            opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
            for _ in range(epochs):
                judge.train()
                perm = torch.randperm(len(x), generator=g)
                for s in range(0, len(x), 64):
                    idx = perm[s:s + 64]
                    loss = nn.functional.cross_entropy(judge(x[idx]), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    governor.tick()
    finally:
        governor.stop()
    judge.eval()
    acc = float((judge.probs(x_test).argmax(1) == y_test).mean())
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(judge.state_dict(), cache.with_suffix(".pt"))
        cache.with_suffix(".json").write_text(json.dumps({"test_accuracy": acc, "epochs": epochs}))
    return judge, acc


CONFIDENT = 0.9  # the judge's probability for one class above which a sample counts as recognised


def judge_samples(judge: Judge, images: np.ndarray, confidence: float = CONFIDENT) -> dict[str, float | np.ndarray]:
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
