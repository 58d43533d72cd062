"""Training: the generic trainer, its callbacks, checkpoints, and train/resume orchestration (``fit``).

The package is ``training`` (not ``train``) so that ``hourglass.train`` is always the function.
"""
