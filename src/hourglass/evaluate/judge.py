"""Where ``hourglass claims`` still imports the judge's names from (claims/ is being moved by its own
change): the judge is now the cnn reference classifier of :mod:`hourglass.evaluate.reference`, and its
measures live in :mod:`hourglass.evaluate.samples`. New code imports from those two; this file goes
once claims/ does."""

from .reference import ReferenceClassifier as Judge
from .reference import train_judge
from .samples import CONFIDENT, judge_samples, mean_pairwise_distance, within_class_spread

__all__ = ["CONFIDENT", "Judge", "judge_samples", "mean_pairwise_distance", "train_judge", "within_class_spread"]
