"""The split test of the E-step: is one class really two, displaced copies of one Gaussian?

BIC charges a full-covariance class ``d(d + 3)/2 + 1`` parameters (153 in 16-d), so two similar
structures whose features form two displaced clouds of the same shape stay merged in one
elongated component: at N = 1200 the split must gain ~540 nats to be chosen. Their own model is
cheaper: two Gaussians that share one covariance differ from one Gaussian by a mean and a weight,
``d + 1`` parameters. This module tests each class of a chosen mixture against that model by
ICL (BIC plus twice the entropy of the members' assignment to the halves, Biernacki et al.
2000), and splits the classes for which it pays (docs/disca.md, "The split test").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

__all__ = ["SplitTest", "precisions_cholesky_full", "split_classes", "split_test"]


def precisions_cholesky_full(covariances: np.ndarray) -> np.ndarray:
    """scikit-learn's ``precisions_cholesky_`` of ``(K, d, d)`` covariances: the upper factor
    ``U`` of each precision, ``precision = U Uᵀ``."""
    eye = np.eye(covariances.shape[-1])
    return np.stack(
        [solve_triangular(c, eye, lower=True).T for c in np.linalg.cholesky(covariances)]
    )


def _gaussian_log_likelihood(members: np.ndarray, reg_covar: float) -> float:
    """Total log-likelihood of ``(n, d)`` points under their own maximum-likelihood Gaussian."""
    covariance = np.cov(members, rowvar=False, bias=True) + reg_covar * np.eye(members.shape[1])
    return float(multivariate_normal(members.mean(axis=0), covariance).logpdf(members).sum())


@dataclass(frozen=True)
class SplitTest:
    """One class tested against two Gaussians with a shared covariance.

    Attributes
    ----------
    gain
        BIC of the class as one full Gaussian minus BIC of the shared-covariance pair, both
        on the whole data's N: ``2 (LL₂ − LL₁) − (d + 1) ln N`` (positive: the split pays).
    entropy
        Entropy (nats) of the members' assignment to the halves, summed over the members:
        ICL (Biernacki et al. 2000) charges ``2 · entropy`` on top of BIC, so that a split
        through the middle of one cloud, whose members are half on either side, does not pay.
    weights
        ``(2,)`` the halves' share of the class.
    means
        ``(2, d)`` the halves' means.
    covariance
        ``(d, d)`` their shared covariance.
    sizes
        ``(2,)`` soft member counts of the halves.
    """

    gain: float
    entropy: float
    weights: np.ndarray
    means: np.ndarray
    covariance: np.ndarray
    sizes: np.ndarray

    @property
    def icl_gain(self) -> float:
        """The gain by ICL: ``gain − 2 · entropy`` (positive: the split pays)."""
        return self.gain - 2.0 * self.entropy


def split_test(
    members: np.ndarray, n_total: int, *, seed: int, n_init: int = 3, reg_covar: float
) -> SplitTest:
    """Test the ``(n, d)`` members of one class (PCA features) against a shared-covariance pair.

    ``n_total`` is the N of the whole mixture's BIC; ``n_init`` k-means starts of the pair.
    """
    members = np.asarray(members, dtype=np.float64)
    n, dim = members.shape
    pair = GaussianMixture(
        2, covariance_type="tied", n_init=n_init, random_state=seed, reg_covar=reg_covar
    )
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pair.fit(members)
    log_likelihood_pair = float(pair.score(members)) * n
    gain = 2.0 * (log_likelihood_pair - _gaussian_log_likelihood(members, reg_covar))
    gain -= (dim + 1) * np.log(n_total)
    posterior = np.clip(pair.predict_proba(members), 1e-300, 1.0)
    entropy = float(-np.sum(posterior * np.log(posterior)))
    return SplitTest(
        gain=float(gain),
        entropy=entropy,
        weights=pair.weights_.copy(),
        means=pair.means_.copy(),
        covariance=pair.covariances_.copy(),
        sizes=pair.weights_ * n,
    )


def split_classes(
    reduced: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    *,
    min_class_size: int,
    max_classes: int,
    reg_covar: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, object]]]:
    """Split classes of a full-covariance mixture while the split test pays by ICL.

    Each round tests every class (its hard members) with :func:`split_test` and splits the one
    of largest positive ICL gain (``gain − 2 · entropy``) whose halves both hold
    ``min_class_size`` members, into the two halves with their shared covariance; it stops when
    no split pays or at ``max_classes``. The pairs' k-means seeds are fixed (round and class),
    so the test draws nothing from the caller's random stream: a fit with and without it
    differs only by the splits.

    Parameters
    ----------
    reduced
        ``(N, d)`` PCA features.
    weights, means, covariances
        The mixture: ``(K,)``, ``(K, d)``, ``(K, d, d)``.
    min_class_size
        Smallest half a split may make (samples); classes under twice this are not tested.
    max_classes
        Largest K a split may reach.
    reg_covar
        Added to every covariance's diagonal.

    Returns
    -------
    weights, means, covariances, tests
        The mixture after the splits, and every test made (JSON-ready: ``round``, ``class``,
        ``n``, ``bic_gain``, ``icl_gain``, ``sizes``, ``split``).
    """
    reduced = np.asarray(reduced, dtype=np.float64)
    n_total = len(reduced)
    tests: list[dict[str, object]] = []
    for round_ in range(max(0, max_classes - len(weights))):
        labels = _posterior(reduced, weights, means, covariances).argmax(axis=1)
        results: dict[int, SplitTest] = {}
        for cls in range(len(weights)):
            members = reduced[labels == cls]
            if len(members) < 2 * min_class_size:
                continue
            result = split_test(
                members, n_total, seed=round_ * max_classes + cls, reg_covar=reg_covar
            )
            results[cls] = result
            tests.append({
                "round": round_, "class": cls, "n": len(members), "bic_gain": result.gain,
                "icl_gain": result.icl_gain, "sizes": [float(s) for s in result.sizes],
                "split": False,
            })  # fmt: skip
        payable = [
            c for c, r in results.items() if r.icl_gain > 0 and r.sizes.min() >= min_class_size
        ]
        if not payable:
            break
        chosen = max(payable, key=lambda c: results[c].icl_gain)
        for entry in tests[-len(results) :]:
            entry["split"] = entry["class"] == chosen
        weights, means, covariances = _replace(weights, means, covariances, chosen, results[chosen])
    return weights, means, covariances, tests


def _replace(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, cls: int, halves: SplitTest
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mixture with class ``cls`` replaced by ``halves`` (at positions ``cls`` and last)."""
    n_classes = len(weights)
    index = [*range(cls), n_classes, *range(cls + 1, n_classes), n_classes + 1]
    new_weights = np.append(weights, weights[cls] * halves.weights)
    new_means = np.vstack([means, halves.means])
    new_covariances = np.concatenate([covariances, np.stack([halves.covariance] * 2)])
    return new_weights[index], new_means[index], new_covariances[index]


def _posterior(
    reduced: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
) -> np.ndarray:
    """``(N, K)`` posteriors of a full-covariance mixture."""
    model = GaussianMixture(len(weights), covariance_type="full")
    model.weights_, model.means_, model.covariances_ = weights, means, covariances
    model.precisions_cholesky_ = precisions_cholesky_full(covariances)
    with threadpool_limits(1):
        return model.predict_proba(reduced)
