"""DDBI against hand-computed values and a direct transcription of the definition."""

from __future__ import annotations

import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.sorting import ddbi


def test_two_clusters_in_one_dimension_by_hand() -> None:
    # A = {0, 2}: mean 1, sample variance 2; B = {9, 11}: mean 10, variance 2.
    # T_A = T_B = p with p = 1 / (2 + 1e-5); D_AB = D_BA = 81 p; R = 2p / 162p = 1/81.
    features = np.array([[0.0], [2.0], [9.0], [11.0]])
    labels = np.array([0, 0, 1, 1])
    assert ddbi(features, labels) == pytest.approx(1 / 81, rel=1e-12)


def test_unequal_spreads_by_hand() -> None:
    # A = {0, 2} (variance 2), B = {10, 14} (variance 8), 1-D.
    # p_A = 1/(2 + r), p_B = 1/(8 + r); T_A = 1·p_A, T_B = 4·p_B; D_AB = 121 p_A, D_BA = 121 p_B.
    r = 1e-5
    p_a, p_b = 1 / (2 + r), 1 / (8 + r)
    expected = (p_a + 4 * p_b) / (121 * p_a + 121 * p_b)  # R_AB = R_BA, both rows take it
    features = np.array([[0.0], [2.0], [10.0], [14.0]])
    assert ddbi(features, np.array([5, 5, 7, 7])) == pytest.approx(expected, rel=1e-12)


def _ddbi_by_definition(x: np.ndarray, labels: np.ndarray) -> float:
    clusters = sorted(set(labels.tolist()))
    mu, prec, spread = {}, {}, {}
    for k in clusters:
        members = x[labels == k]
        mu[k] = members.mean(axis=0)
        prec[k] = np.linalg.inv(np.cov(members, rowvar=False) + 1e-5 * np.eye(x.shape[1]))
        spread[k] = np.mean([(m - mu[k]) @ prec[k] @ (m - mu[k]) for m in members])
    total = 0.0
    for l_ in clusters:
        ratios = []
        for k in clusters:
            if k == l_:
                continue
            d_kl = (mu[l_] - mu[k]) @ prec[k] @ (mu[l_] - mu[k])
            d_lk = (mu[k] - mu[l_]) @ prec[l_] @ (mu[k] - mu[l_])
            ratios.append((spread[k] + spread[l_]) / (d_kl + d_lk))
        total += max(ratios)
    return total / len(clusters)


def test_matches_the_definition_on_random_clusters() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [rng.normal(loc=c, scale=s, size=(40, 4)) for c, s in ((0, 1), (3, 0.5), (-2, 2))]
    )
    labels = np.repeat([2, 0, 1], 40)
    assert ddbi(x, labels) == pytest.approx(_ddbi_by_definition(x, labels), rel=1e-9)
    # better-separated clusters score lower
    assert ddbi(x + 20.0 * labels[:, None], labels) < ddbi(x, labels)


def test_invariant_to_renaming_clusters() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)) + np.repeat(np.eye(3) * 4, 20, axis=0)
    labels = np.repeat([0, 1, 2], 20)
    assert ddbi(x, labels) == pytest.approx(ddbi(x, np.array([7, 3, 5])[labels]), rel=1e-12)


def test_single_cluster_is_infinite_and_bad_shapes_raise() -> None:
    assert ddbi(np.zeros((5, 2)), np.zeros(5, dtype=int)) == float("inf")
    with pytest.raises(InputError, match="features"):
        ddbi(np.zeros((5, 2)), np.zeros(4, dtype=int))
