"""A trained run: the model, its scaling and its record, from training to the files in its folder.

``run.py`` holds :class:`Run` (inference: encode, decode, reconstruct, sample), ``fit.py`` trains
and resumes one, ``figures.py`` computes and writes its figures, ``rundir.py`` owns its folder (the
lock and the claim). This layer sits above training, evaluation and the report, and imports them;
none of them imports it.
"""

from .run import Run, load, make_info, versions, write_comparison_report

__all__ = ["Run", "load", "make_info", "versions", "write_comparison_report"]
