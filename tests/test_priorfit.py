"""How close codes are to a prior: the classifier two-sample test and the Gaussian KL to N(0, I)."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.errors import DataError
from hourglass.evaluate.priorfit import gaussian_kl_to_standard, two_sample_accuracy
from hourglass.evaluate.samples import judge_samples

pytestmark = pytest.mark.usefixtures("one_thread")


def test_two_samples_of_one_distribution_are_told_apart_at_chance_and_different_ones_are_not():
    rng = np.random.default_rng(0)
    same = two_sample_accuracy(rng.standard_normal((1000, 2)), rng.standard_normal((1500, 2)))
    assert 0.44 < same < 0.56
    # a ring with the Gaussian's mean and variance: moments alike, shapes not
    angle = rng.uniform(0, 2 * np.pi, 1000)
    ring = np.c_[np.cos(angle), np.sin(angle)] * np.sqrt(2)
    assert two_sample_accuracy(ring, rng.standard_normal((1000, 2))) > 0.75
    assert two_sample_accuracy(rng.standard_normal((500, 2)) + 10, rng.standard_normal((500, 2))) == 1.0


def test_two_sample_test_refuses_what_it_cannot_compare():
    z = np.zeros((100, 2))
    with pytest.raises(DataError, match="differ in dimension"):
        two_sample_accuracy(z, np.zeros((100, 3)))
    with pytest.raises(DataError, match="at least 50 points"):
        two_sample_accuracy(z[:10], z[:10])
    with pytest.raises(DataError, match="NaN or Inf"):
        two_sample_accuracy(np.full((100, 2), np.nan), z)


def test_gaussian_kl_is_zero_for_the_standard_normal_and_exact_for_a_shifted_scaled_one():
    rng = np.random.default_rng(0)
    assert gaussian_kl_to_standard(rng.standard_normal((200_000, 3))) < 1e-3
    # N(m, s^2 I) in d dims: 0.5 (d s^2 + |m|^2 - d - 2 d log s)
    d, m, s = 3, 2.0, 3.0
    z = m + s * rng.standard_normal((200_000, d))
    exact = 0.5 * (d * s**2 + d * m**2 - d - 2 * d * np.log(s))
    assert gaussian_kl_to_standard(z) == pytest.approx(exact, rel=0.01)
    assert gaussian_kl_to_standard(np.c_[z[:, :1], z[:, :1]]) == float("inf")  # codes on a line


class _Judge:
    """Probabilities given, as the judge's ``probs`` would return them."""

    def __init__(self, probs):
        self._p = np.asarray(probs, dtype=np.float32)

    def probs(self, images):
        return self._p[: len(images)]


def test_judged_samples_count_the_confident_ones_and_how_they_spread_over_classes():
    probs = [[0.95, 0.05, 0.0], [0.0, 0.99, 0.01], [0.0, 0.92, 0.08], [0.5, 0.4, 0.1]]
    judged = judge_samples(_Judge(probs), np.zeros((4, 1, 2, 2)))
    assert judged["confident"] == 0.75  # the last is a blend
    assert judged["class_shares"].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert judged["class_share_min"] == 0.0 and judged["class_share_max"] == pytest.approx(2 / 3)
    assert judge_samples(_Judge(probs), np.zeros((4, 1, 2, 2)), confidence=0.4)["confident"] == 1.0
