"""The split test: one class that is really two displaced copies of one Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture

from cryomine.sorting._mixture import MixtureParams, select_mixture
from cryomine.sorting._split import split_test


def _pair_and_two_others(separation: float) -> tuple[np.ndarray, np.ndarray]:
    """Four classes of 200 in 16-d sharing one anisotropic covariance: two ``separation``
    Mahalanobis units apart (a similar pair), two far from everything."""
    rng = np.random.default_rng(0)
    dim = 16
    factor = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    cholesky = np.linalg.cholesky(factor @ factor.T + 0.2 * np.eye(dim))
    centres = [
        np.zeros(dim),
        separation * cholesky[:, 0],
        30 * np.eye(dim)[1],
        -30 * np.eye(dim)[1],
    ]
    points = np.vstack([c + rng.normal(size=(200, dim)) @ cholesky.T for c in centres])
    return points, np.repeat(np.arange(4), 200)


def test_the_split_pays_for_two_displaced_copies_and_not_for_one_cloud() -> None:
    points, _ = _pair_and_two_others(separation=6.0)
    one = split_test(points[:200], len(points), seed=0, reg_covar=1e-5)
    two = split_test(points[:400], len(points), seed=0, reg_covar=1e-5)
    assert one.icl_gain < 0 < two.icl_gain
    assert two.gain > two.icl_gain  # ICL charges the assignment entropy on top of BIC
    assert np.all(np.abs(two.sizes - 200) < 20)


def test_select_mixture_splits_the_pair_full_bic_merges() -> None:
    points, truth = _pair_and_two_others(separation=6.0)
    options = {"k_candidates": range(2, 8), "covariance_types": ("full",), "n_init": 3}
    merged = select_mixture(points, rng=np.random.default_rng(1), **options)
    assert merged.n_classes == 3 and merged.split_tests == []  # 153 parameters a class: too dear
    split = select_mixture(points, rng=np.random.default_rng(1), split=True, **options)
    assert split.n_classes == 4
    assert homogeneity_score(truth, split.labels) > 0.95
    assert sum(t["split"] for t in split.split_tests) == 1
    assert all(t["icl_gain"] <= 0 for t in split.split_tests if t["round"] == 1)  # then it stops
    halves = [c for c in range(4) if np.all(np.isin(truth[split.labels == c], [0, 1]))]
    covariances = split.params.full_covariances()
    np.testing.assert_allclose(covariances[halves[0]], covariances[halves[1]])


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_every_layout_converts_to_full_covariances(covariance_type: str) -> None:
    points, _ = _pair_and_two_others(separation=6.0)
    fitted = GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(points)
    params = MixtureParams.from_sklearn(fitted)
    full = MixtureParams.from_full(params.weights, params.means, params.full_covariances())
    np.testing.assert_allclose(full.predict_proba(points), params.predict_proba(points), atol=1e-8)
