"""The E-step of DISCA: PCA, Gaussian mixtures for every candidate K, BIC, stable class ids."""

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

from cryomine._deprecation import renamed_argument, renamed_property
from cryomine.errors import InputError
from cryomine.sorting._ppca import PPCAMixture
from cryomine.sorting._split import precisions_cholesky_full, split_classes

__all__ = [
    "COVARIANCE_TYPES",
    "PPCA_FAMILY",
    "PPCA_PREFIX",
    "REG_COVAR",
    "MixtureParams",
    "MixtureSelection",
    "PCAProjection",
    "candidate_ks",
    "check_covariance_types",
    "expand_covariance_types",
    "fit_pca",
    "match_labels",
    "ppca_factors",
    "select_mixture",
]

logger = logging.getLogger(__name__)

#: Added to every covariance's diagonal (the mixtures' ``reg_covar``; also DDBI's precisions).
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


#: Covariance models a mixture can use, as scikit-learn names them (mclust: VVV, VVI, EEE, VII).
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
#: Prefix of the mixture-of-PPCA models: ``"ppca4"`` has 4 factors per component
#: (:mod:`cryomine.sorting._ppca`); stored and predicted as a full covariance.
PPCA_PREFIX = "ppca"


#: The whole PPCA family as one name: spherical, ppca1 … ppca(d − 2) and full, i.e. every number
#: of factors from 0 to d − 1, chosen with K by BIC.
PPCA_FAMILY = "ppca"


def expand_covariance_types(covariance_types: Sequence[str], dim: int) -> tuple[str, ...]:
    """The covariance models to fit in ``dim`` dimensions: :data:`PPCA_FAMILY` expanded (order
    kept, duplicates dropped)."""
    expanded: list[str] = []
    for name in check_covariance_types(covariance_types):
        if name == PPCA_FAMILY:
            expanded += ["spherical", *(f"{PPCA_PREFIX}{q}" for q in range(1, dim - 1)), "full"]
        else:
            expanded.append(name)
    return tuple(dict.fromkeys(expanded))


def ppca_factors(covariance_type: str) -> int | None:
    """Factors ``q`` of a ``"ppcaQ"`` model name, ``None`` for scikit-learn's models."""
    name = str(covariance_type)
    if name.startswith(PPCA_PREFIX) and name[len(PPCA_PREFIX) :].isdigit():
        return int(name[len(PPCA_PREFIX) :])
    return None


def _precisions(covariance_type: str, precisions_cholesky: np.ndarray) -> np.ndarray:
    """Precisions from scikit-learn's Cholesky factors, in that covariance type's shape."""
    if covariance_type == "full":
        return precisions_cholesky @ np.swapaxes(precisions_cholesky, 1, 2)
    if covariance_type == "tied":
        return precisions_cholesky @ precisions_cholesky.T
    return precisions_cholesky**2


def candidate_ks(
    k_range: Sequence[int] = (2, 20), k_candidates: Sequence[int] | None = None
) -> list[int]:
    """Sorted candidate numbers of classes: ``k_candidates`` if given, else ``k_range``
    (min, max) inclusive; ``InputError`` for an empty, reversed or non-positive choice."""
    if k_candidates is not None:
        candidates = sorted({int(k) for k in k_candidates})
    else:
        k_range = tuple(k_range)
        if len(k_range) != 2 or int(k_range[0]) > int(k_range[1]):
            raise InputError(f"k_range {k_range!r}: expected (min, max) with min <= max")
        candidates = list(range(int(k_range[0]), int(k_range[1]) + 1))
    if not candidates or candidates[0] < 1:
        raise InputError(f"candidate K {candidates}: expected integers >= 1")
    return candidates


def check_covariance_types(covariance_types: Sequence[str]) -> tuple[str, ...]:
    """Validated, de-duplicated covariance types (order kept); ``InputError`` names a bad one."""
    types = tuple(dict.fromkeys(str(c) for c in covariance_types))
    known = (*COVARIANCE_TYPES, PPCA_FAMILY)
    bad = [c for c in types if c not in known and not ppca_factors(c)]
    if bad or not types:
        raise InputError(
            f"covariance types {list(covariance_types)!r}: expected one or more of "
            f"{', '.join(known)} (every number of factors) or {PPCA_PREFIX}Q (Q >= 1 "
            "factors, e.g. ppca4)"
        )
    return types


@dataclass(frozen=True)
class MixtureParams:
    """A Gaussian mixture in PCA space, arrays in scikit-learn's layout for its covariance type.

    Attributes
    ----------
    weights
        ``(K,)`` mixing weights, summing to 1.
    means
        ``(K, d)`` component means.
    covariances
        ``(K, d, d)`` (full), ``(d, d)`` (tied), ``(K, d)`` (diag) or ``(K,)`` (spherical).
    precisions_cholesky
        Cholesky factors of the precisions, same shape as ``covariances``, as scikit-learn
        stores them.
    covariance_type
        One of :data:`COVARIANCE_TYPES`.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str = "full"

    @property
    def n_classes(self) -> int:
        """Number of components K."""
        return int(self.weights.shape[0])

    n_clusters = renamed_property("n_clusters", "n_classes")

    @classmethod
    def from_sklearn(cls, model: GaussianMixture) -> MixtureParams:
        return cls(
            weights=model.weights_.copy(),
            means=model.means_.copy(),
            covariances=model.covariances_.copy(),
            precisions_cholesky=model.precisions_cholesky_.copy(),
            covariance_type=str(model.covariance_type),
        )

    def to_sklearn(self) -> GaussianMixture:
        """A fitted :class:`~sklearn.mixture.GaussianMixture` with these parameters."""
        model = GaussianMixture(
            n_components=self.n_classes,
            covariance_type=self.covariance_type,
            reg_covar=REG_COVAR,
        )
        model.weights_ = self.weights
        model.means_ = self.means
        model.covariances_ = self.covariances
        model.precisions_cholesky_ = self.precisions_cholesky
        model.precisions_ = _precisions(self.covariance_type, self.precisions_cholesky)
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
        shared = self.covariance_type == "tied"  # one covariance for all components
        return MixtureParams(
            weights=weights / weights.sum(),
            means=self.means[order],
            covariances=self.covariances if shared else self.covariances[order],
            precisions_cholesky=(
                self.precisions_cholesky if shared else self.precisions_cholesky[order]
            ),
            covariance_type=self.covariance_type,
        )

    def full_covariances(self) -> np.ndarray:
        """``(K, d, d)`` covariance of every component, whatever the stored layout."""
        n_classes, dim = self.means.shape
        if self.covariance_type == "full":
            return self.covariances
        if self.covariance_type == "tied":
            return np.broadcast_to(self.covariances, (n_classes, dim, dim)).copy()
        if self.covariance_type == "diag":
            return np.einsum("kd,de->kde", self.covariances, np.eye(dim))
        return self.covariances[:, None, None] * np.eye(dim)

    @classmethod
    def from_full(
        cls, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
    ) -> MixtureParams:
        """A full-covariance mixture from its ``(K,)`` weights, ``(K, d)`` means, ``(K, d, d)``
        covariances."""
        return cls(
            weights=weights, means=means, covariances=covariances,
            precisions_cholesky=precisions_cholesky_full(covariances), covariance_type="full",
        )  # fmt: skip


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
        For each candidate K, the lowest BIC of any fit (any covariance type or start).
    warm_bic, fresh_bic
        At the previous K and covariance type: BIC of the warm-started fit and of the best fresh
        fit (``None`` without previous labels).
    warm_used
        Whether the chosen fit is the warm-started one (``None`` without previous labels).
    rejected
        Candidate Ks for which no fit (of any covariance type or start) was eligible: each had
        a component with fewer than ``min_class_size`` (soft) members.
    candidates
        Every fit made, JSON-ready: ``k``, ``covariance``, ``start`` (``"warm"`` or
        ``"fresh"``), ``bic``, ``smallest`` (soft size of the smallest component) and
        ``eligible``.
    covariance_model
        Name of the chosen fit's covariance model (a :data:`COVARIANCE_TYPES` name or
        ``"ppcaQ"``; ``params`` stores a PPCA fit in the full layout).
    split_tests
        Every split test made after the choice (``split_classes``), JSON-ready (see
        :func:`cryomine.sorting._split.split_classes`); empty when none ran.
    """

    params: MixtureParams
    labels: np.ndarray
    probabilities: np.ndarray
    bic: dict[int, float] = field(default_factory=dict)
    warm_bic: float | None = None
    fresh_bic: float | None = None
    warm_used: bool | None = None
    rejected: list[int] = field(default_factory=list)
    candidates: list[dict[str, object]] = field(default_factory=list)
    covariance_model: str | None = None
    split_tests: list[dict[str, object]] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        """Number of classes K of the chosen mixture."""
        return self.params.n_classes

    n_clusters = renamed_property("n_clusters", "n_classes")

    @property
    def covariance_type(self) -> str:
        """The chosen covariance model's name (``covariance_model``)."""
        return self.covariance_model or self.params.covariance_type


def _fit(
    reduced: np.ndarray, n_classes: int, covariance_type: str, **init: object
) -> GaussianMixture | PPCAMixture:
    factors = ppca_factors(covariance_type)
    if factors is not None:
        if factors >= reduced.shape[1]:
            raise InputError(
                f"covariance type {covariance_type!r}: {factors} factors need more than "
                f"{reduced.shape[1]} PCA components"
            )
        with threadpool_limits(1):
            return PPCAMixture(n_classes, factors, reg_covar=REG_COVAR, **init).fit(reduced)  # type: ignore[arg-type]
    model = GaussianMixture(
        n_components=n_classes, covariance_type=covariance_type, reg_covar=REG_COVAR, **init
    )
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(reduced)
    for warning in caught:
        logger.debug("mixture K=%d %s: %s", n_classes, covariance_type, warning.message)
    return model


def _warm_init(
    reduced: np.ndarray, labels: np.ndarray, covariance_type: str
) -> dict[str, np.ndarray] | None:
    """Weights n_j/N, means and precisions of the previous clusters (``None`` if < 2 usable).

    Precisions are in ``covariance_type``'s layout: per-cluster inverse covariances (full),
    the inverse of the pooled within-cluster covariance (tied), inverse per-axis variances
    (diag) or the inverse mean variance (spherical). A PPCA model starts from the labels
    themselves (``labels_init``), when every previous cluster is usable.
    """
    dim = reduced.shape[1]
    clusters = [c for c in np.unique(labels) if np.count_nonzero(labels == c) >= 2]
    if len(clusters) < 2:
        return None
    if ppca_factors(covariance_type) is not None:
        if len(clusters) != int(labels.max()) + 1:
            return None
        return {"labels_init": np.asarray(labels, dtype=int)}
    weights, means, covariances = [], [], []
    for cluster in clusters:
        members = reduced[labels == cluster]
        weights.append(len(members))
        means.append(members.mean(axis=0))
        covariances.append(np.cov(members, rowvar=False).reshape(dim, dim))
    weights_arr = np.asarray(weights, dtype=np.float64)
    cov = np.asarray(covariances)
    eye = np.eye(dim)
    if covariance_type == "full":
        precisions = np.linalg.inv(cov + REG_COVAR * eye)
    elif covariance_type == "tied":
        pooled = np.einsum("k,kij->ij", weights_arr - 1, cov) / (weights_arr.sum() - len(cov))
        precisions = np.linalg.inv(pooled + REG_COVAR * eye)
    elif covariance_type == "diag":
        precisions = 1.0 / (np.diagonal(cov, axis1=1, axis2=2) + REG_COVAR)
    else:
        precisions = 1.0 / (np.diagonal(cov, axis1=1, axis2=2).mean(axis=1) + REG_COVAR)
    return {
        "weights_init": weights_arr / weights_arr.sum(),
        "means_init": np.asarray(means),
        "precisions_init": precisions,
    }


def match_labels(
    previous: np.ndarray,
    labels: np.ndarray,
    n_classes: int | None = None,
    *,
    n_clusters: int | None = None,
) -> np.ndarray:
    """Hungarian matching of new class ids to previous ones.

    Parameters
    ----------
    previous, labels
        ``(N,)`` previous and new 0-based labels, both with ``n_classes`` classes.
    n_classes
        Number of classes (``n_clusters=``: its deprecated former name).

    Returns
    -------
    numpy.ndarray
        ``order`` of shape ``(n_classes,)``: new class ``order[i]`` becomes class ``i``,
        chosen to maximise the number of samples that keep their id.
    """
    n_classes = renamed_argument("n_clusters", "n_classes", n_clusters, n_classes)
    if n_classes is None:
        raise TypeError("match_labels needs n_classes")
    contingency = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(contingency, (previous, labels), 1)
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    order = np.empty(n_classes, dtype=int)
    order[rows] = cols
    return order


def select_mixture(
    reduced: np.ndarray,
    *,
    k_candidates: Sequence[int],
    previous_labels: np.ndarray | None = None,
    previous_covariance_type: str | None = None,
    rng: np.random.Generator,
    min_class_size: int | None = None,
    covariance_types: Sequence[str] = ("full",),
    n_init: int = 1,
    split: bool = False,
    min_cluster_size: int | None = None,
) -> MixtureSelection:
    """Fit Gaussian mixtures for every candidate K and covariance type; keep the lowest BIC.

    The covariance model is chosen together with K by BIC, as mclust does. Only fits whose
    every component holds at least ``min_class_size`` samples (soft count ``weight · N``) are
    eligible: a ``d``-dimensional component estimated from ``d`` or fewer samples is degenerate
    (its likelihood is bounded only by ``reg_covar``) and BIC then rewards ever more tiny
    clusters (measured in ``docs/disca_measurements.md``). For each (K, covariance type) the best *eligible*
    start is kept, so an eligible warm fit never loses to an ineligible fresh one. If no fit is
    eligible, the fit that comes closest to the rule wins (its smallest component, in whole
    samples, the largest of all fits; ties by BIC; with a warning): the least degenerate mixture, not the one whose tiny
    components BIC rewards most.

    Parameters
    ----------
    reduced
        ``(N, d)`` PCA features.
    k_candidates
        Numbers of components to try (those above N are skipped).
    previous_labels
        ``(N,)`` 0-based labels of the previous iteration, ids ``0 … K_prev - 1``. At K_prev,
        for each covariance type, a fit warm-started from these clusters competes with the fresh
        ones (K_prev is tried even if not a candidate), and when K_prev is chosen again the new
        ids are matched to the previous ones with the Hungarian algorithm.
    previous_covariance_type
        Covariance type of the previous iteration's answer: ``warm_bic`` / ``fresh_bic`` are
        reported at it (default: the first of ``covariance_types``).
    rng
        Source of the random starts.
    min_class_size
        Smallest eligible component (samples); ``None``: ``d + 1``.
    covariance_types
        Covariance models to try: :data:`COVARIANCE_TYPES`, ``"ppcaQ"`` (a mixture of PPCA with
        ``Q`` factors per component) or :data:`PPCA_FAMILY` (every ``Q``); DISCA's
        specification uses full.
    n_init
        Fresh (k-means initialised) starts per K and covariance type, each with its own seed.
    split
        After the choice, split every class whose members are better described, by ICL, as
        two Gaussians sharing one covariance (:func:`cryomine.sorting._split.split_classes`;
        up to the largest candidate K). A split mixture is stored in the full layout.
    min_cluster_size
        Deprecated former name of ``min_class_size`` (``FutureWarning``).

    Returns
    -------
    MixtureSelection
    """
    reduced = np.asarray(reduced, dtype=np.float64)
    n_samples, dim = reduced.shape
    min_class_size = renamed_argument(
        "min_cluster_size", "min_class_size", min_cluster_size, min_class_size
    )
    smallest = dim + 1 if min_class_size is None else int(min_class_size)
    types = expand_covariance_types(covariance_types, dim)
    if int(n_init) < 1:
        raise InputError(f"n_init {n_init!r}: expected a positive number of starts")
    candidates = sorted({int(k) for k in k_candidates if 1 <= int(k) <= n_samples})
    previous_k = None
    warm_k = None
    if previous_labels is not None:
        previous_labels = np.asarray(previous_labels)
        previous_k = int(previous_labels.max()) + 1
        usable = [c for c in np.unique(previous_labels) if np.sum(previous_labels == c) >= 2]
        if len(usable) >= 2:
            warm_k = len(usable)
            candidates = sorted({*candidates, warm_k})
    if not candidates:
        raise InputError(
            f"k candidates {list(k_candidates)}: none is between 1 and N = {n_samples}"
        )
    reported_type = previous_covariance_type if previous_covariance_type in types else types[0]

    records: list[dict[str, object]] = []
    models: list[GaussianMixture] = []
    for covariance_type in types:
        warm = (
            _warm_init(reduced, previous_labels, covariance_type)
            if warm_k is not None and previous_labels is not None
            else None
        )
        for n_classes in candidates:
            starts: list[tuple[str, dict[str, object]]] = [
                ("fresh", {"random_state": int(rng.integers(2**31 - 1))}) for _ in range(n_init)
            ]
            if warm is not None and n_classes == warm_k:
                starts.append(("warm", dict(warm)))
            for start, init in starts:
                model = _fit(reduced, n_classes, covariance_type, **init)
                size = float(model.weights_.min()) * n_samples
                records.append({
                    "k": n_classes, "covariance": covariance_type, "start": start,
                    "bic": float(model.bic(reduced)), "smallest": size,
                    "eligible": size >= smallest,
                })  # fmt: skip
                models.append(model)

    def lowest(rows: list[int]) -> int | None:
        return min(rows, key=lambda i: float(records[i]["bic"]))  # type: ignore[arg-type]

    everything = list(range(len(records)))
    eligible = [i for i in everything if records[i]["eligible"]]
    chosen = lowest(eligible) if eligible else None
    if chosen is None:
        # in whole samples, so that soft counts of 11.98 and 12.0 tie and BIC decides
        whole = [round(float(r["smallest"])) for r in records]  # type: ignore[arg-type]
        largest_smallest = max(whole)
        chosen = lowest([i for i in everything if whole[i] == largest_smallest])
        logger.warning(
            "no mixture has all components of >= %d samples; taking the one closest to it "
            "(K = %d, smallest component %d samples)",
            smallest,
            records[chosen]["k"],  # type: ignore[index]
            largest_smallest,
        )
    assert chosen is not None
    bic = {
        k: min(float(r["bic"]) for r in records if r["k"] == k)  # type: ignore[arg-type]
        for k in candidates
    }
    rejected = [k for k in candidates if not any(r["eligible"] for r in records if r["k"] == k)]
    warm_bic = fresh_bic = None
    warm_used = None
    if warm_k is not None:
        at_previous = [r for r in records if r["k"] == warm_k and r["covariance"] == reported_type]
        warm_rows = [float(r["bic"]) for r in at_previous if r["start"] == "warm"]  # type: ignore[arg-type]
        fresh_rows = [float(r["bic"]) for r in at_previous if r["start"] == "fresh"]  # type: ignore[arg-type]
        warm_bic = warm_rows[0] if warm_rows else None
        fresh_bic = min(fresh_rows) if fresh_rows else None
        warm_used = records[chosen]["start"] == "warm"

    params = MixtureParams.from_sklearn(models[chosen])
    split_tests: list[dict[str, object]] = []
    if split:
        weights, means, covariances, split_tests = split_classes(
            reduced, params.weights, params.means, params.full_covariances(),
            min_class_size=smallest, max_classes=max(candidates), reg_covar=REG_COVAR,
        )  # fmt: skip
        if len(weights) > params.n_classes:
            params = MixtureParams.from_full(weights, means, covariances)
    labels = params.predict_proba(reduced).argmax(axis=1)
    params = params.reordered(np.unique(labels))  # drop empty components
    labels = params.predict_proba(reduced).argmax(axis=1)
    if previous_labels is not None and params.n_classes == previous_k:
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
        candidates=records,
        covariance_model=str(records[chosen]["covariance"]),
        split_tests=split_tests,
    )
