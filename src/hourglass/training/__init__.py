"""Training: the generic trainer, its callbacks, loggers, checkpoints and distributed helpers.

Training a run (``hourglass.train``, ``hourglass.resume``) is :mod:`hourglass.run.fit`, one layer up;
nothing here imports :mod:`hourglass.run`. The package is ``training`` (not ``train``) so that
``hourglass.train`` is always the function.
"""
