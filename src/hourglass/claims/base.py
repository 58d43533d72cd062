"""What a claim is, what checking one finds, and what every experiment is given.

A claim module (``cNN_name.py`` in this package) defines one function decorated with
:func:`claim`; it receives a :class:`Context` (the data, the seeds, an independent judge, a way to
train) and returns a :class:`Finding`: the verdict, the numbers, the figure and what they mean.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError

VERDICTS = ("holds", "holds with a caveat", "does not hold here")


@dataclasses.dataclass
class Finding:
    """What an experiment found.

    ``verdict``: one of :data:`VERDICTS`; ``caveat`` says which caveat (required with "holds with a
    caveat", allowed with the others). ``experiment``: what was trained and measured, and the control.
    ``result``: the numbers in a sentence or two. ``numbers``: the headline numbers (name -> value),
    which go to ``claims.json`` and the page's summary. ``table``: rows (dicts with the same keys) of
    the full result, e.g. one per method or seed. ``figure``: a matplotlib Figure (from
    :func:`hourglass.report.figures.new_figure`). ``seeds``: the seeds used."""

    verdict: str
    experiment: str
    result: str
    figure: Any
    seeds: tuple[int, ...]
    numbers: dict[str, Any] = dataclasses.field(default_factory=dict)
    table: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    caveat: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r}: one of {', '.join(VERDICTS)}")
        if self.verdict == "holds with a caveat" and not self.caveat:
            raise ValueError("a verdict 'holds with a caveat' says which caveat")
        self.seeds = tuple(int(s) for s in self.seeds)


@dataclasses.dataclass(frozen=True)
class Claim:
    number: int
    title: str
    statement: str  # the claim as the notes make it, paraphrased
    check: Callable[["Context"], Finding]


_CLAIMS: dict[int, Claim] = {}


def claim(number: int, title: str, statement: str) -> Callable:
    """Register the decorated function as the experiment that checks claim ``number``."""

    def deco(fn: Callable[["Context"], Finding]) -> Callable[["Context"], Finding]:
        if number in _CLAIMS and _CLAIMS[number].check.__module__ != fn.__module__:
            raise RuntimeError(f"claim {number} is registered twice ({_CLAIMS[number].check.__module__}, "
                               f"{fn.__module__})")
        _CLAIMS[number] = Claim(number, title, " ".join(statement.split()), fn)
        return fn

    return deco


def all_claims() -> dict[int, Claim]:
    """Every claim, by number: the package imports each ``cNN_*`` module, which registers its own."""
    here = Path(__file__).parent
    for m in pkgutil.iter_modules([str(here)]):
        if re.fullmatch(r"c\d\d_\w+", m.name):
            importlib.import_module(f"{__package__}.{m.name}")
    return dict(sorted(_CLAIMS.items()))


def select(only: str | None) -> list[Claim]:
    """The claims ``only`` names ("1,3,7-9"; None: all), in order."""
    claims = all_claims()
    if only is None:
        return list(claims.values())
    chosen: list[int] = []
    for part in only.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError(f"claims {only!r}: {part!r} is not a claim number or range (e.g. 1,3,7-9)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        for n in range(lo, hi + 1):
            if n not in claims:
                raise ConfigError(f"claims {only!r}: there is no claim {n} (claims {min(claims)}-{max(claims)})")
            if n not in chosen:
                chosen.append(n)
    return [claims[n] for n in sorted(chosen)]


@dataclasses.dataclass
class Context:
    """What every experiment is given.

    ``x_train``/``x_test``: images ``(N, C, H, W)``, float32 in [0, 1]; ``y_train``/``y_test``: class
    indices. ``quick``: a CI-sized run (small budgets, one seed). ``seeds``: the seeds for effects that
    need a spread. ``threads``: torch threads for every fit."""

    data_name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    quick: bool
    seeds: tuple[int, ...]
    threads: int | None
    log: Callable[[str], None] = print
    _judge: Any = None
    _judge_accuracy: float | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def pick(self, full: Any, quick: Any) -> Any:
        """``full`` for the full run, ``quick`` for ``--quick``."""
        return quick if self.quick else full

    def subset(self, n: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """A seeded random ``n`` examples (all, if fewer) of the training or test split, with labels."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        if n >= len(x):
            return x, y
        idx = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
        return x[idx], y[idx]

    def train(self, model: str, x: np.ndarray | None = None, y: np.ndarray | None = None, *, seed: int = 0,
              flat: bool = False, **options: Any):
        """A :class:`hourglass.Run` of ``model`` trained on ``x`` (default: the training split), labels
        ``y`` (default: none, unless ``x`` is None and the model is conditional), in [0, 1] units as
        given (no scaling). ``flat`` trains on the flattened pixels. Options are ``hourglass.train``'s."""
        from ..models import get_model_class
        from ..run.fit import train_arrays

        if x is None:
            x = self.x_train
            if y is None and get_model_class(model).conditional:
                y = self.y_train
        if flat:
            x = x.reshape(len(x), -1)
        opts = dict(progress=False, threads=self.threads, scaling="none", seed=seed)
        return train_arrays(model, x, y, source=self.data_name, **{**opts, **options})

    def judge(self):
        """The independent judge (a small CNN trained on the real training split, once per run) and its
        accuracy on the real test split."""
        if self._judge is None:
            from ..evaluate.reference import train_judge

            started = time.perf_counter()
            self._judge, self._judge_accuracy = train_judge(self.x_train, self.y_train, self.x_test, self.y_test,
                                                            epochs=self.pick(8, 15), threads=self.threads)
            self.log(f"judge: {self._judge_accuracy:.1%} on the real test digits "
                     f"({time.perf_counter() - started:.0f} s)")
        return self._judge

    @property
    def judge_accuracy(self) -> float | None:
        return self._judge_accuracy


def load_context(data: str, data_dir: str | None, quick: bool, seeds: tuple[int, ...] | None,
                 threads: int | None, log: Callable[[str], None] = print) -> Context:
    """The data set ``data`` as [0, 1] images, with the seeds and budgets of a full or quick run."""
    from ..data.datasets import load_data

    bundle = load_data(data, data_dir)
    if bundle.kind != "image" or bundle.y_train is None or bundle.value_range is None:
        raise ConfigError(f"claims: data {data!r} are not labelled images of a known range "
                          "(use mnist, fashion-mnist, kmnist or digits)")
    lo, hi = bundle.value_range

    def unit(x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - lo) / (hi - lo)).astype(np.float32)

    seeds = seeds if seeds is not None else ((0,) if quick else (0, 1, 2))
    return Context(data, unit(bundle.x_train), np.asarray(bundle.y_train, dtype=np.int64), unit(bundle.x_test),
                   np.asarray(bundle.y_test, dtype=np.int64), quick, tuple(seeds), threads, log)
