"""A run's figures and ``report.html``: what the report shows is gathered here from the run (its model,
record, splits, history and metrics), and :mod:`hourglass.report` draws it (that layer reads nothing).

The functions take a :class:`~hourglass.run.Run` and import nothing of ``run.py``: the run calls them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from .. import io
from ..data.splits import Splits
from ..errors import ConfigError
from . import rundir
from .evaluation import eval_bytes


def write_figures(run: Any, out_dir: str | Path | None = None, splits: Splits | None = None) -> list[str]:
    """The run's figures (losses, reconstructions, samples, codes, ...) as PNG files in ``out_dir``
    (default: the run's directory)."""
    from .figures import write_run_figures

    out = Path(out_dir) if out_dir is not None else run.path
    if out is None:
        raise ConfigError("the run has no directory yet: pass out_dir")
    shown, _ = (splits if splits is not None else run.splits()).bounded(eval_bytes(run), seed=run.record.train.seed)
    io.make_dir(out, chosen=True)
    # Drawn into a temporary folder beside their place, then each renamed into it: a figure is never
    # half-written, and a link planted where a figure goes is refused, never written through.
    with _writing(run, out), tempfile.TemporaryDirectory(prefix=io.TMP_PREFIX, dir=out) as tmp:
        drawn = write_run_figures(Path(tmp), run.model, shown, history=run.history,
                                  image=run.record.data.kind == "image", title=run.model_name,
                                  label_names=run.label_names)
        written = []
        for p in drawn:
            io.move_into(Path(p), out / Path(p).name)
            written.append(type(p)(out / Path(p).name))
    return written


@contextlib.contextmanager
def _writing(run: Any, folder: Path) -> Iterator[None]:
    """Hold the run directory's lock while writing into it (``folder`` is the run's own directory)."""
    if run.path is not None and os.path.realpath(folder) == os.path.realpath(run.path):
        with rundir.locked(folder, rundir.command_line()):
            yield
    else:
        yield


def report_page(run: Any, fig_dir: Path, label: str | None = None):
    """What one run's section of a report shows: its label, the facts of its summary line, its settings (as
    config.json holds them), metrics, figures and history."""
    from ..report.html import RunFacts, RunPage

    label = label or (f"{run.path.name} ({run.model_name})" if run.path else run.model_name)
    r = run.record
    d = r.data
    facts = RunFacts(model=r.model, data_name=d.name, preset=r.preset, latent_dim=getattr(r.config, "latent_dim", None),
                     n_train=d.n_train, n_val=d.n_val, n_test=d.n_test, input_shape=d.input_shape,
                     exclude_class=d.exclude_class, created=r.created)
    table = r.to_dict()  # the settings tables show what config.json holds, in its order
    return RunPage(label, facts, {k: table[k] for k in ("config", "train", "data")}, run.metrics, Path(fig_dir),
                   dict(type(run.model).figure_captions), run.path, history=run.history,
                   run_fields={"preset": r.preset, "versions": r.versions, "created": r.created})


def write_report(run: Any, output: str | Path | None = None, splits: Splits | None = None,
                 fig_dir: str | Path | None = None) -> Path:
    """``report.html`` (default: in the run directory). Figures are taken from ``fig_dir`` when given
    (the run's directory, right after training), else drawn afresh in a temporary folder."""
    from ..report.html import run_report_html, write_html

    if output is None:
        if run.path is None:
            raise ConfigError("the run has no directory: pass output=")
        output = run.path / "report.html"
    output = Path(output)
    with tempfile.TemporaryDirectory() as tmp:
        if fig_dir is None:
            fig_dir = Path(tmp)
            write_figures(run, fig_dir, splits)
        page = run_report_html(report_page(run, Path(fig_dir)))
    if run.path is not None and os.path.realpath(output.parent) == os.path.realpath(run.path):
        with _writing(run, run.path):  # in the run directory: locked, atomic, never through a link
            return io.write_text(output, page)
    return write_html(output, page)


def write_comparison_report(runs: Sequence[Any], output: str | Path) -> Path:
    """One page comparing several runs: metrics and configs side by side, then each run's figures."""
    from ..report.html import comparison_html, write_html

    with tempfile.TemporaryDirectory() as tmp:
        pages = []
        for i, run in enumerate(runs):
            fig_dir = Path(tmp) / str(i)
            write_figures(run, fig_dir)
            pages.append(report_page(run, fig_dir, label=f"{run.path.name if run.path else f'run {i}'} "
                                                         f"({run.model_name})"))
        page = comparison_html(pages)
    return write_html(output, page)
