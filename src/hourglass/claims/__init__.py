"""The lecture notes' claims about autoencoders, each checked by an experiment: ``hourglass claims``.

Every claim is one module here (``c01_linear_pca.py`` ... ``c15_manifold.py``): a function decorated
with :func:`~hourglass.claims.base.claim` that trains what it needs through the public API, against a
control (the plain autoencoder, PCA, the same network without the ingredient the claim is about),
and returns a :class:`~hourglass.claims.base.Finding`: verdict, numbers, figure. Adding a claim is one
new file. :func:`run_claims` runs them in order and writes the page (:mod:`hourglass.claims.page`);
a claim whose experiment fails is on the page as failed, and the others still run.

The full run uses ``mnist`` (``--data-dir`` with its IDX files, else downloaded) and three seeds where
an effect is small; ``quick=True`` is a CI-sized run on the embedded ``digits`` (8x8) with small
budgets and one seed, whose verdicts are indicative only.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from .base import VERDICTS, Claim, Context, Finding, all_claims, claim, load_context, select

__all__ = ["VERDICTS", "Claim", "Context", "Finding", "all_claims", "claim", "run_claims"]


def run_claims(out: str | Path, *, quick: bool = False, data: str | None = None, data_dir: str | None = None,
               only: str | None = None, seeds: tuple[int, ...] | None = None, threads: int | None = None,
               command: str = "", log: Callable[[str], None] = print) -> dict[str, Any]:
    """Check the claims ``only`` names (default: all) and write the page into ``out``.

    ``data``: a labelled image data set (default: ``digits`` with ``quick``, else ``mnist``).
    Returns the ``claims.json`` record; its ``failed`` lists the claims whose experiment raised."""
    from threadpoolctl import threadpool_limits

    from ..report.figures import save_figure
    from ..run import versions
    from ..seeding import seeded

    out = Path(out)
    chosen = select(only)
    data = data or ("digits" if quick else "mnist")
    started = time.perf_counter()
    ctx = load_context(data, data_dir, quick, seeds, threads, log)
    entries: list[dict[str, Any]] = []
    for c in chosen:
        log(f"claim {c.number}: {c.title}")
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"number": c.number, "title": c.title, "statement": c.statement}
        try:
            # threads bounds scikit-learn's BLAS/OpenMP pools too: on a shared machine their spinning
            # threads made a k-NN take 20 times its CPU time
            with seeded(c.number), threadpool_limits(limits=threads), _torch_threads(threads):
                found = c.check(ctx)
        except Exception as e:  # noqa: BLE001 - on the page as failed; the run goes on and then says so
            traceback.print_exc(file=sys.stderr)
            entry.update(verdict="error", caveat="", experiment="", result="", numbers={}, table=[], seeds=[],
                         figure=None, error=f"{type(e).__name__}: {e}".splitlines()[0])
        else:
            figure = None
            if found.figure is not None:
                figure = f"figures/claim-{c.number:02d}.png"
                save_figure(found.figure, out / figure)
            entry.update(verdict=found.verdict, caveat=found.caveat, experiment=found.experiment,
                         result=found.result, numbers=_plain(found.numbers), table=_plain(found.table),
                         seeds=list(found.seeds), figure=figure, error=None)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        log(f"claim {c.number}: {entry['verdict']} ({entry['seconds']:.0f} s)")
        entries.append(entry)
    meta = {
        "command": command or f"hourglass claims --out {out}" + (" --quick" if quick else ""),
        "created": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "data": data, "n_train": len(ctx.x_train), "n_test": len(ctx.x_test), "quick": quick,
        "seeds": list(ctx.seeds), "judge_accuracy": ctx.judge_accuracy,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads "
                   f"{threads if threads is not None else 'automatic'}",
        "seconds": round(time.perf_counter() - started, 1),
        "versions": {**versions(), "scikit-learn": _sklearn_version()},
        "failed": [e["number"] for e in entries if e["verdict"] == "error"],
    }
    from .page import write_page

    write_page(out, entries, meta)
    return {"meta": meta, "claims": entries}


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's thread count held at ``threads`` (None: as it is) outside the trainer too: scoring,
    judging and decoding between fits spun a second thread on a shared machine."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _plain(value: Any) -> Any:
    """Numbers as Python scalars (numpy's float32 and friends do not go to JSON)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
