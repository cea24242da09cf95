"""The E-step of DISCA: PCA, Gaussian mixtures for every candidate K, BIC, stable cluster ids."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.errors import InputError

__all__ = [
    "MixtureParams",
    "MixtureSelection",
    "PCAProjection",
    "fit_pca",
    "match_labels",
    "select_mixture",
]

logger = logging.getLogger(__name__)

REG_COVAR = 1e-5


@dataclass(frozen=True)
class PCAProjection:
    """A fitted PCA: ``reduced = (features - mean) @ components.T``.

    Attributes
    ----------
    mean
        ``(D,)`` feature mean.
    components
        ``(d, D)`` orthonormal principal axes, strongest first.
    """

    mean: np.ndarray
    components: np.ndarray

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Project ``(N, D)`` features to ``(N, d)`` float64 components."""
        return (np.asarray(features, dtype=np.float64) - self.mean) @ self.components.T


def fit_pca(features: np.ndarray, n_components: int) -> PCAProjection:
    """Fit a PCA with ``n_components`` axes (at most ``min(N, D)``) to ``(N, D)`` features."""
    n_components = min(n_components, *features.shape)
    with threadpool_limits(1):
        pca = PCA(n_components=n_components, svd_solver="full").fit(
            np.asarray(features, np.float64)
        )
    return PCAProjection(mean=pca.mean_.copy(), components=pca.components_.copy())


@dataclass(frozen=True)
class MixtureParams:
    """A full-covariance Gaussian mixture in PCA space.

    Attributes
    ----------
    weights
        ``(K,)`` mixing weights, summing to 1.
    means
        ``(K, d)`` component means.
    covariances
        ``(K, d, d)`` component covariances.
    precisions_cholesky
        ``(K, d, d)`` Cholesky factors of the precisions, as scikit-learn stores them.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.weights.shape[0])

    @classmethod
    def from_sklearn(cls, model: GaussianMixture) -> MixtureParams:
        return cls(
            weights=model.weights_.copy(),
            means=model.means_.copy(),
            covariances=model.covariances_.copy(),
            precisions_cholesky=model.precisions_cholesky_.copy(),
        )

    def to_sklearn(self) -> GaussianMixture:
        """A fitted :class:`~sklearn.mixture.GaussianMixture` with these parameters."""
        model = GaussianMixture(
            n_components=self.n_clusters, covariance_type="full", reg_covar=REG_COVAR
        )
        model.weights_ = self.weights
        model.means_ = self.means
        model.covariances_ = self.covariances
        model.precisions_cholesky_ = self.precisions_cholesky
        model.precisions_ = self.precisions_cholesky @ np.swapaxes(self.precisions_cholesky, 1, 2)
        model.converged_ = True
        model.n_iter_ = 0
        model.lower_bound_ = -np.inf
        model.n_features_in_ = self.means.shape[1]
        return model

    def predict_proba(self, reduced: np.ndarray) -> np.ndarray:
        """Posterior ``(N, K)`` of each component for ``(N, d)`` PCA features."""
        with threadpool_limits(1):
            return self.to_sklearn().predict_proba(np.asarray(reduced, dtype=np.float64))

    def reordered(self, order: Sequence[int] | np.ndarray) -> MixtureParams:
        """Components ``order[0], order[1], …`` as components 0, 1, …; weights renormalised."""
        order = np.asarray(order, dtype=int)
        weights = self.weights[order]
        return MixtureParams(
            weights=weights / weights.sum(),
            means=self.means[order],
            covariances=self.covariances[order],
            precisions_cholesky=self.precisions_cholesky[order],
        )


@dataclass
class MixtureSelection:
    """The outcome of one E-step.

    Attributes
    ----------
    params
        The chosen mixture, empty components dropped, ids matched to the previous labels.
    labels
        ``(N,)`` 0-based cluster of each sample (argmax posterior).
    probabilities
        ``(N, K)`` posteriors.
    bic
        BIC of the best fit for each candidate K.
    warm_bic, fresh_bic
        BIC of the warm-started and the fresh fit at the previous K (``None`` without previous
        labels).
    warm_used
        Whether the warm-started fit was kept (``None`` without previous labels).
    rejected
        Candidate Ks whose best fit had a component with fewer than ``min_cluster_size``
        (soft) members, and so were not eligible (their BIC is still in ``bic``).
    """

    params: MixtureParams
    labels: np.ndarray
    probabilities: np.ndarray
    bic: dict[int, float] = field(default_factory=dict)
    warm_bic: float | None = None
    fresh_bic: float | None = None
    warm_used: bool | None = None
    rejected: list[int] = field(default_factory=list)

    @property
    def n_clusters(self) -> int:
        return self.params.n_clusters


def _fit(reduced: np.ndarray, n_clusters: int, **init: object) -> GaussianMixture:
    model = GaussianMixture(
        n_components=n_clusters, covariance_type="full", reg_covar=REG_COVAR, **init
    )
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(reduced)
    for warning in caught:
        logger.debug("mixture K=%d: %s", n_clusters, warning.message)
    return model


def _warm_init(reduced: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray] | None:
    """Weights n_j/N, means and precisions of the previous clusters (``None`` if < 2 usable)."""
    dim = reduced.shape[1]
    clusters = [c for c in np.unique(labels) if np.count_nonzero(labels == c) >= 2]
    if len(clusters) < 2:
        return None
    weights, means, precisions = [], [], []
    for cluster in clusters:
        members = reduced[labels == cluster]
        weights.append(len(members))
        means.append(members.mean(axis=0))
        covariance = np.cov(members, rowvar=False).reshape(dim, dim)
        precisions.append(np.linalg.inv(covariance + REG_COVAR * np.eye(dim)))
    weights_arr = np.asarray(weights, dtype=np.float64)
    return {
        "weights_init": weights_arr / weights_arr.sum(),
        "means_init": np.asarray(means),
        "precisions_init": np.asarray(precisions),
    }


def match_labels(previous: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Hungarian matching of new cluster ids to previous ones.

    Parameters
    ----------
    previous, labels
        ``(N,)`` previous and new 0-based labels, both with ``n_clusters`` clusters.

    Returns
    -------
    numpy.ndarray
        ``order`` of shape ``(n_clusters,)``: new cluster ``order[i]`` becomes cluster ``i``,
        chosen to maximise the number of samples that keep their id.
    """
    contingency = np.zeros((n_clusters, n_clusters), dtype=np.int64)
    np.add.at(contingency, (previous, labels), 1)
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    order = np.empty(n_clusters, dtype=int)
    order[rows] = cols
    return order


def select_mixture(
    reduced: np.ndarray,
    *,
    k_candidates: Sequence[int],
    previous_labels: np.ndarray | None = None,
    rng: np.random.Generator,
    min_cluster_size: int | None = None,
) -> MixtureSelection:
    """Fit a Gaussian mixture for every candidate K and keep the one with the lowest BIC.

    Only fits whose every component holds at least ``min_cluster_size`` samples (soft count
    ``weight · N``) are eligible: a full ``d × d`` covariance estimated from ``d`` or fewer
    samples is singular, its likelihood is bounded only by ``reg_covar`` and BIC then rewards
    ever more tiny clusters (measured in ``docs/disca.md``). If no candidate is eligible, the
    lowest BIC of all wins.

    Parameters
    ----------
    reduced
        ``(N, d)`` PCA features.
    k_candidates
        Numbers of components to try (those above N are skipped).
    previous_labels
        ``(N,)`` 0-based labels of the previous iteration, ids ``0 … K_prev - 1``. At K_prev a
        fit warm-started from these clusters competes with a fresh one (the better BIC wins;
        K_prev is tried even if not a candidate), and when K_prev is chosen again the new ids are
        matched to the previous ones with the Hungarian algorithm.
    rng
        Source of the random starts.
    min_cluster_size
        Smallest eligible component (samples); ``None``: ``d + 1``.

    Returns
    -------
    MixtureSelection
    """
    reduced = np.asarray(reduced, dtype=np.float64)
    n_samples, dim = reduced.shape
    smallest = dim + 1 if min_cluster_size is None else int(min_cluster_size)
    candidates = sorted({int(k) for k in k_candidates if 1 <= int(k) <= n_samples})
    previous_k = None
    warm = None
    if previous_labels is not None:
        previous_labels = np.asarray(previous_labels)
        previous_k = int(previous_labels.max()) + 1
        warm = _warm_init(reduced, previous_labels)
        if warm is not None:
            candidates = sorted({*candidates, len(warm["weights_init"])})
    if not candidates:
        raise InputError(
            f"k candidates {list(k_candidates)}: none is between 1 and N = {n_samples}"
        )

    best: GaussianMixture | None = None
    best_any: GaussianMixture | None = None
    rejected: list[int] = []
    bic: dict[int, float] = {}
    warm_bic = fresh_bic = None
    warm_used = None
    for n_clusters in candidates:
        model = _fit(reduced, n_clusters, random_state=int(rng.integers(2**31 - 1)))
        score = float(model.bic(reduced))
        if warm is not None and n_clusters == len(warm["weights_init"]):
            warm_model = _fit(reduced, n_clusters, **warm)
            warm_score = float(warm_model.bic(reduced))
            warm_bic, fresh_bic = warm_score, score
            warm_used = warm_score <= score
            if warm_used:
                model, score = warm_model, warm_score
        bic[n_clusters] = score
        if best_any is None or score < bic[best_any.n_components]:
            best_any = model
        if float(model.weights_.min()) * n_samples < smallest:
            rejected.append(n_clusters)
        elif best is None or score < bic[best.n_components]:
            best = model
    if best is None:
        logger.warning(
            "no mixture has all components of >= %d samples; taking the lowest BIC", smallest
        )
        best = best_any
    assert best is not None

    params = MixtureParams.from_sklearn(best)
    labels = params.predict_proba(reduced).argmax(axis=1)
    params = params.reordered(np.unique(labels))  # drop empty components
    labels = params.predict_proba(reduced).argmax(axis=1)
    if previous_labels is not None and params.n_clusters == previous_k:
        params = params.reordered(match_labels(previous_labels, labels, previous_k))
    probabilities = params.predict_proba(reduced)
    return MixtureSelection(
        params=params,
        labels=probabilities.argmax(axis=1),
        probabilities=probabilities,
        bic=bic,
        warm_bic=warm_bic,
        fresh_bic=fresh_bic,
        warm_used=warm_used,
        rejected=rejected,
    )
