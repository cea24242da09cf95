"""The E-step: BIC model choice, warm vs fresh starts, dropping empty clusters, stable ids."""

from __future__ import annotations

import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.sorting import fit_pca, match_labels, select_mixture


def _blobs(
    rng: np.random.Generator, centres: np.ndarray, n: int, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([rng.normal(c, scale, (n, centres.shape[1])) for c in centres])
    return x, np.repeat(np.arange(len(centres)), n)


def test_bic_picks_the_true_number_of_clusters() -> None:
    rng = np.random.default_rng(0)
    x, truth = _blobs(rng, np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]]), 60)
    selection = select_mixture(x, k_candidates=range(2, 8), rng=np.random.default_rng(1))
    assert selection.n_classes == 4
    assert set(selection.bic) == set(range(2, 8))
    assert min(selection.bic, key=selection.bic.get) == 4
    assert selection.warm_used is None  # no previous labels, no warm start
    # labels agree with the truth up to renaming
    contingency = np.zeros((4, 4), int)
    np.add.at(contingency, (truth, selection.labels), 1)
    assert (contingency.max(axis=1) == 60).all()
    assert selection.probabilities.shape == (240, 4)
    np.testing.assert_allclose(selection.probabilities.sum(axis=1), 1.0)


def test_warm_start_is_kept_when_it_is_better() -> None:
    # two long parallel clusters: a fresh (k-means) start splits them across their long axis and
    # stays there; a start from the right labels keeps the right answer with a much better BIC
    rng = np.random.default_rng(0)
    a = np.c_[rng.normal(0, 10, 200), rng.normal(0, 0.3, 200)]
    b = np.c_[rng.normal(0, 10, 200), rng.normal(2, 0.3, 200)]
    x, truth = np.r_[a, b], np.repeat([0, 1], 200)
    selection = select_mixture(
        x, k_candidates=[2], previous_labels=truth, rng=np.random.default_rng(0)
    )
    assert selection.warm_bic < selection.fresh_bic - 100
    assert selection.warm_used is True
    assert selection.bic[2] == selection.warm_bic
    np.testing.assert_array_equal(selection.labels, truth)


def test_fresh_start_is_kept_when_the_warm_one_is_stuck() -> None:
    # previous labels split blob 0 in two and merge blobs 1 and 2: EM from there stays in that
    # local optimum, the fresh start finds the three blobs
    rng = np.random.default_rng(0)
    x, truth = _blobs(rng, np.array([[0, 0], [10, 0], [0, 10]]), 100)
    stuck = np.where(truth == 0, (x[:, 0] > 0).astype(int), 2)
    selection = select_mixture(
        x, k_candidates=[3], previous_labels=stuck, rng=np.random.default_rng(0)
    )
    assert selection.fresh_bic < selection.warm_bic - 100
    assert selection.warm_used is False
    assert selection.bic[3] == selection.fresh_bic
    contingency = np.zeros((3, 3), int)
    np.add.at(contingency, (truth, selection.labels), 1)
    assert (contingency.max(axis=1) == 100).all()


def test_hungarian_matching_keeps_ids_stable_under_a_permutation() -> None:
    rng = np.random.default_rng(2)
    x, truth = _blobs(rng, np.array([[0, 0], [9, 0], [0, 9], [9, 9]]), 50)
    for permutation in ([2, 0, 3, 1], [3, 2, 1, 0], [1, 0, 2, 3]):
        previous = np.asarray(permutation)[truth]
        selection = select_mixture(
            x, k_candidates=[4], previous_labels=previous, rng=np.random.default_rng(5)
        )
        np.testing.assert_array_equal(selection.labels, previous)
        # the mixture's components follow the ids: component j's mean is at cluster j's centre
        for j in range(4):
            np.testing.assert_allclose(
                selection.params.means[j], x[previous == j].mean(axis=0), atol=0.05
            )


def test_match_labels_inverts_a_renaming() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2, 1, 0])
    renamed = np.array([2, 0, 1])[labels]
    order = match_labels(labels, renamed, 3)
    np.testing.assert_array_equal(np.argsort(order)[renamed], labels)


def test_empty_components_are_dropped() -> None:
    rng = np.random.default_rng(4)
    x, _ = _blobs(rng, np.array([[0, 0], [10, 10]]), 40)
    # a candidate K of 6 on 2 blobs: whatever is chosen, every reported cluster has members
    selection = select_mixture(x, k_candidates=[6], rng=np.random.default_rng(0))
    counts = np.bincount(selection.labels, minlength=selection.n_classes)
    assert (counts > 0).all()
    assert (
        selection.probabilities.shape[1] == selection.n_classes == selection.params.means.shape[0]
    )
    np.testing.assert_allclose(selection.params.weights.sum(), 1.0)


def test_pca_projection_and_bad_candidates() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 30)) @ rng.normal(size=(30, 30))
    pca = fit_pca(features, 16)
    reduced = pca.transform(features)
    assert reduced.shape == (50, 16)
    np.testing.assert_allclose(reduced.mean(axis=0), 0.0, atol=1e-8)
    variances = reduced.var(axis=0)
    assert (np.diff(variances) <= 1e-9).all()  # strongest first
    with pytest.raises(InputError, match="candidates"):
        select_mixture(reduced, k_candidates=[100], rng=rng)


def test_former_cluster_names_warn_and_map_onto_the_class_names() -> None:
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(0, 1, (40, 2)), rng.normal(8, 1, (40, 2))])
    new = select_mixture(data, k_candidates=[2], rng=np.random.default_rng(1), min_class_size=3)
    with pytest.warns(FutureWarning, match="min_cluster_size is deprecated; use min_class_size"):
        old = select_mixture(
            data, k_candidates=[2], rng=np.random.default_rng(1), min_cluster_size=3
        )
    np.testing.assert_array_equal(old.labels, new.labels)
    with pytest.warns(FutureWarning, match="n_clusters is deprecated; use n_classes"):
        assert new.n_clusters == new.n_classes == 2
    with pytest.warns(FutureWarning, match="n_clusters is deprecated; use n_classes"):
        assert new.params.n_clusters == new.params.n_classes == 2
    labels = np.array([0, 0, 1, 1, 2])
    with pytest.warns(FutureWarning, match="n_clusters is deprecated"):
        order = match_labels(labels, (labels + 1) % 3, n_clusters=3)
    np.testing.assert_array_equal(order, match_labels(labels, (labels + 1) % 3, 3))


def test_when_no_fit_is_eligible_the_least_degenerate_one_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 150 + 12 samples in 16-d and three tight clumps of 8: every fit leaves a component under
    # d + 1 = 17, so none is eligible. The lowest BIC gives the clumps components of their own
    # (degenerate covariances, bounded only by reg_covar); the answer is the fit closest to the
    # rule, whose smallest component is the 12
    rng = np.random.default_rng(0)
    far = np.zeros(16)
    far[0] = 12.0
    clumps = [np.eye(16)[1 + j] * 20.0 + 1e-3 * rng.normal(size=(8, 16)) for j in range(3)]
    x = np.concatenate([rng.normal(0.0, 1.0, (150, 16)), rng.normal(far, 1.0, (12, 16)), *clumps])
    with caplog.at_level("WARNING", logger="cryomine.sorting._mixture"):
        selection = select_mixture(
            x, k_candidates=range(2, 10), rng=np.random.default_rng(1), n_init=2
        )
    assert not any(r["eligible"] for r in selection.candidates)
    lowest_bic = min(selection.candidates, key=lambda r: r["bic"])
    assert round(lowest_bic["smallest"]) < 12  # what the former fallback returned
    assert round(min(np.bincount(selection.labels))) >= 12
    rare = selection.labels[150:162]
    assert len(set(rare.tolist())) == 1 and np.sum(selection.labels == rare[0]) >= 12
    assert "closest to it" in caplog.text
