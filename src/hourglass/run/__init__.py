"""A trained run: the model, its scaling and its record, from training to the files in its folder.

``run.py`` holds :class:`Run` (inference: encode, decode, reconstruct, sample), ``record.py`` its
record (``config.json`` as dataclasses, checked once on load), ``store.py`` the one save and load (run
directories and the estimators' pickles), ``fit.py`` trains and resumes one, ``evaluation.py`` scores it,
``report.py`` and ``figures.py`` compute and write its report and figures, ``rundir.py`` owns its folder
(the lock and the claim). This layer sits above training, evaluation and the report, and imports them;
none of them imports it.
"""

from .record import DataRecord, RunRecord, versions
from .run import Run, load, write_comparison_report

__all__ = ["DataRecord", "Run", "RunRecord", "load", "versions", "write_comparison_report"]
