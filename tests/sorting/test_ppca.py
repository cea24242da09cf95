"""Mixtures of PPCA: the model's limits, its parameter count, and why DISCA's E-step offers it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture

from cryomine.errors import InputError
from cryomine.sorting import select_mixture
from cryomine.sorting._mixture import (
    check_covariance_types,
    expand_covariance_types,
    ppca_factors,
)
from cryomine.sorting._ppca import PPCAMixture, ppca_parameter_count

PPCA_FAMILY = ("spherical", *(f"ppca{q}" for q in range(1, 15)), "full")


def _elongated_classes(seed: int, dim: int = 16, per_class: int = 60) -> tuple[np.ndarray, list]:
    """Three classes, each stretched along its own random plane (two factors) plus noise."""
    rng = np.random.default_rng(seed)
    parts, truth = [], []
    for label in range(3):
        plane, _ = np.linalg.qr(rng.normal(size=(dim, 2)))
        factors = rng.normal(size=(per_class, 2)) * [4.0, 2.0]
        noise = rng.normal(size=(per_class, dim)) * 0.7
        parts.append(factors @ plane.T + noise + rng.normal(size=dim) * 1.2)
        truth += [label] * per_class
    return np.concatenate(parts), truth


def test_zero_and_all_but_one_factors_are_the_spherical_and_full_models() -> None:
    x, _ = _elongated_classes(0)
    dim = x.shape[1]
    for factors, sklearn_type in ((0, "spherical"), (dim - 1, "full")):
        ppca = PPCAMixture(3, factors, random_state=0).fit(x)
        reference = GaussianMixture(3, covariance_type=sklearn_type, random_state=0).fit(x)
        assert ppca.n_iter_ >= 2
        assert ppca.bic(x) == pytest.approx(reference.bic(x), rel=1e-4)
    assert ppca_parameter_count(3, dim, dim - 1) == reference._n_parameters()


def test_the_fit_predicts_as_a_full_covariance_gaussian_mixture() -> None:
    x, _ = _elongated_classes(1)
    ppca = PPCAMixture(3, 2, random_state=0).fit(x)
    np.testing.assert_allclose(ppca.as_gaussian_mixture().predict_proba(x), ppca.predict_proba(x))
    # each component's covariance is rank-2 plus an isotropic floor
    values = np.linalg.eigvalsh(ppca.covariances_[0])
    np.testing.assert_allclose(values[:-2], values[0], rtol=1e-6)
    assert values[-2] > 5 * values[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppca_family_finds_elongated_classes_that_full_merges_and_the_rest_over_split(
    seed: int,
) -> None:
    """The small-N failure DISCA's E-step had on features: 16-d full covariances cost so much
    BIC that distinct classes merge; diagonal/tied/spherical split each elongated class. A
    mixture of PPCA models the elongation with few parameters and finds the three."""
    x, truth = _elongated_classes(seed)

    def choose(family: tuple[str, ...]):
        rng = np.random.default_rng(0)
        return select_mixture(
            x, k_candidates=range(1, 7), rng=rng, covariance_types=family, n_init=3
        )

    assert choose(("full",)).n_classes < 3
    assert choose(("full", "diag", "tied", "spherical")).n_classes > 3
    selection = choose(("ppca",))
    assert selection.n_classes == 3
    assert selection.covariance_type == "ppca2"  # the true number of factors
    assert homogeneity_score(truth, selection.labels) >= 0.95
    assert {row["covariance"] for row in selection.candidates} == set(PPCA_FAMILY)


def test_a_warm_start_continues_from_the_previous_labels() -> None:
    x, truth = _elongated_classes(0)
    rng = np.random.default_rng(0)
    selection = select_mixture(
        x, k_candidates=[2, 4], previous_labels=np.asarray(truth), rng=rng,
        covariance_types=("ppca2",),
    )  # fmt: skip
    warm = [row for row in selection.candidates if row["start"] == "warm"]
    assert [row["k"] for row in warm] == [3]
    assert selection.n_classes == 3
    # started at the true classes, EM reaches the optimum the best fresh start reaches
    assert warm[0]["bic"] == pytest.approx(selection.bic[3], rel=1e-3)


def test_model_names_are_checked() -> None:
    assert ppca_factors("ppca4") == 4 and ppca_factors("full") is None
    assert check_covariance_types(["ppca3", "full"]) == ("ppca3", "full")
    with pytest.raises(InputError, match="ppcaQ"):
        check_covariance_types(["ppca0"])
    assert expand_covariance_types(["ppca", "diag", "full"], 5) == (
        "spherical",
        "ppca1",
        "ppca2",
        "ppca3",
        "full",
        "diag",
    )
    with pytest.raises(InputError, match="factors need more"):
        select_mixture(
            np.random.default_rng(0).normal(size=(50, 4)), k_candidates=[2],
            rng=np.random.default_rng(0), covariance_types=("ppca4",),
        )  # fmt: skip
