"""evaluate.intrinsic: TwoNN finds a known dimension, PCA's error curve matches fitting PCA per k, the knee."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from hourglass.errors import DataError
from hourglass.evaluate.intrinsic import components_for, knee, pca_error_curve, twonn_dimension


def test_twonn_finds_the_dimension_of_a_flat_patch_embedded_in_more():
    rng = np.random.default_rng(0)
    flat = rng.uniform(size=(3000, 3))
    embedded = flat @ rng.standard_normal((3, 20))  # a 3-D patch in 20 dimensions
    assert twonn_dimension(embedded) == pytest.approx(3.0, rel=0.1)


def test_twonn_leaves_duplicates_out_and_refuses_too_few_points():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(500, 2))
    with_copies = np.concatenate([x, x[:50]])
    assert np.isfinite(twonn_dimension(with_copies))
    with pytest.raises(DataError, match="2 points"):
        twonn_dimension(x[:2])


def test_the_pca_error_curve_is_the_error_of_pca_fitted_with_k_components():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    fit, test = x[:200], x[200:]
    curve = pca_error_curve(fit, test)
    assert len(curve) == 7
    assert curve[0] == pytest.approx(((test - fit.mean(0)) ** 2).mean())
    for k in (1, 3, 6):
        p = PCA(k, svd_solver="full").fit(fit)
        assert curve[k] == pytest.approx(((p.inverse_transform(p.transform(test)) - test) ** 2).mean(), rel=1e-6)
    assert curve[-1] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataError, match="6 values, tested on 5"):
        pca_error_curve(fit, test[:, :5])


def test_components_for_and_the_knee():
    curve = np.array([1.0, 0.5, 0.2, 0.1, 0.05])
    assert components_for(curve, 0.2) == 2
    assert components_for(curve, 0.01) is None
    # from 1.0 at d=0 to 0.1 at d=8: 90% of the reduction is reached at 0.19 or less
    assert knee((1, 2, 4, 8), [0.6, 0.3, 0.15, 0.1], 1.0) == 4
    assert knee((1, 2, 4, 8), [0.6, 0.3, 0.15, 0.1], 1.0, fraction=0.5) == 2
    with pytest.raises(DataError, match="above the error at 0"):
        knee((1, 2), [2.5, 2.0], 1.0)
