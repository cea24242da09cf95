"""Mixtures of probabilistic principal component analysers (Tipping & Bishop 1999).

Each component is a Gaussian whose covariance is ``W Wᵀ + σ² I``: ``q`` factor directions (the
columns of ``W``, ``(d, q)``) carry the component's own shape and one isotropic variance ``σ²`` the
rest. It sits between scikit-learn's ``spherical`` model (``q = 0``) and ``full`` (``q = d - 1``):
``d + d q - q (q - 1) / 2 + 1`` free parameters per component instead of ``d (d + 3) / 2``, so BIC
charges an extra class far less than a full covariance while the class can still be elongated.

EM as in Tipping & Bishop (1999, Neural Computation 11:443), section 3: responsibilities from
the current components; weights and means from them; then each component's ``W`` and ``σ²`` are
the closed-form PPCA solution of its responsibility-weighted covariance (its leading ``q``
eigenvectors, eigenvalues less ``σ²``; ``σ²`` the mean of the remaining eigenvalues).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from cryomine.sorting._split import precisions_cholesky_full

__all__ = ["PPCAMixture", "ppca_parameter_count"]


def _logsumexp_rows(values: np.ndarray) -> np.ndarray:
    """``log Σ_k exp(values[n, k])`` per row, computed stably."""
    peak = values.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(values - peak).sum(axis=1, keepdims=True)))[:, 0]


def ppca_parameter_count(n_components: int, dim: int, n_factors: int) -> int:
    """Free parameters of a ``n_components``-mixture of PPCA with ``n_factors`` in ``dim``-d:
    per component a mean, ``W`` up to rotation and ``σ²``; plus ``K - 1`` weights."""
    q = int(n_factors)
    per_component = dim + dim * q - q * (q - 1) // 2 + 1
    return int(n_components) * per_component + int(n_components) - 1


class PPCAMixture:
    """A mixture of ``n_components`` PPCA components with ``n_factors`` factors each.

    After :meth:`fit` it carries scikit-learn's full-covariance attributes (``weights_``,
    ``means_``, ``covariances_``, ``precisions_cholesky_``), so that :meth:`as_gaussian_mixture`
    is a fitted :class:`~sklearn.mixture.GaussianMixture` that predicts the same posteriors.

    Parameters
    ----------
    n_components
        Number of components K.
    n_factors
        Factors ``q`` per component, ``0 <= q < d``.
    reg_covar
        Floor of ``σ²`` (and added to it), as scikit-learn's ``reg_covar``.
    max_iter, tol
        EM stops after ``max_iter`` iterations or when the mean log-likelihood per sample
        changes by less than ``tol`` (scikit-learn's rule).
    random_state
        Seed of the k-means start (ignored with ``labels_init``).
    labels_init
        ``(N,)`` 0-based labels to start from (a warm start), instead of k-means.
    """

    covariance_type = "full"

    def __init__(
        self,
        n_components: int,
        n_factors: int,
        *,
        reg_covar: float = 1e-5,
        max_iter: int = 200,
        tol: float = 1e-3,
        random_state: int | None = None,
        labels_init: np.ndarray | None = None,
    ) -> None:
        self.n_components = int(n_components)
        self.n_factors = int(n_factors)
        self.reg_covar = float(reg_covar)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.random_state = random_state
        self.labels_init = labels_init

    def fit(self, X: np.ndarray) -> PPCAMixture:
        """Fit to ``(N, d)`` samples by EM; returns ``self``."""
        X = np.asarray(X, dtype=np.float64)
        n, dim = X.shape
        if not 0 <= self.n_factors < dim:
            raise ValueError(f"n_factors {self.n_factors}: expected 0 <= q < d = {dim}")
        if self.labels_init is not None:
            labels = np.asarray(self.labels_init, dtype=int)
        else:
            labels = KMeans(
                self.n_components, n_init=1, random_state=self.random_state
            ).fit_predict(X)
        resp = np.zeros((n, self.n_components))
        resp[np.arange(n), labels] = 1.0
        previous = -np.inf
        self.converged_ = False
        for iteration in range(1, self.max_iter + 1):
            self._m_step(X, resp)
            log_joint = self._log_joint(X)
            log_norm = _logsumexp_rows(log_joint)
            resp = np.exp(log_joint - log_norm[:, None])
            mean_ll = float(log_norm.mean())
            self.n_iter_ = iteration
            if abs(mean_ll - previous) < self.tol:
                self.converged_ = True
                break
            previous = mean_ll
        self.lower_bound_ = mean_ll
        self._store_full_layout()
        return self

    def _m_step(self, X: np.ndarray, resp: np.ndarray) -> None:
        """Weights, means, and each component's covariance ``W Wᵀ + σ² I`` as its eigenvectors
        ``(K, d, d)`` and eigenvalues ``(K, d)``: the scatter's leading ``q`` eigenvalues (at
        least ``σ²``), then ``σ²`` = the mean of the other ``d − q`` (plus ``reg_covar``)."""
        n, dim = X.shape
        q = self.n_factors
        counts = resp.sum(axis=0) + 10 * np.finfo(float).eps
        self.weights_ = counts / n
        self.means_ = (resp.T @ X) / counts[:, None]
        centred = X[None, :, :] - self.means_[:, None, :]  # (K, N, d)
        weighted = resp.T[:, :, None] * centred
        scatter = np.matmul(weighted.transpose(0, 2, 1), centred) / counts[:, None, None]
        values, vectors = np.linalg.eigh(scatter)  # ascending, per component
        noise = np.maximum(values[:, : dim - q].mean(axis=1), 0.0) + self.reg_covar
        values = np.maximum(values, noise[:, None])
        values[:, : dim - q] = noise[:, None]
        self._eigenvalues, self._eigenvectors = values, vectors

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        """``(N, K)`` log of weight × component density."""
        dim = X.shape[1]
        centred = X[None, :, :] - self.means_[:, None, :]
        projected = np.matmul(centred, self._eigenvectors)  # (K, N, d)
        mahalanobis = np.matmul(projected**2, 1.0 / self._eigenvalues[:, :, None])[..., 0]
        log_det = np.log(self._eigenvalues).sum(axis=1)
        log_density = -0.5 * (mahalanobis + dim * np.log(2 * np.pi) + log_det[:, None])
        return log_density.T + np.log(self.weights_)

    def _store_full_layout(self) -> None:
        """scikit-learn's full-covariance attributes: ``covariances_`` and the upper factor
        ``precisions_cholesky_`` (precision = U Uᵀ) of each component."""
        vectors, values = self._eigenvectors, self._eigenvalues
        self.covariances_ = np.einsum("kij,kj,klj->kil", vectors, values, vectors)
        self.precisions_cholesky_ = precisions_cholesky_full(self.covariances_)

    def score(self, X: np.ndarray) -> float:
        """Mean log-likelihood per sample."""
        return float(_logsumexp_rows(self._log_joint(np.asarray(X, dtype=np.float64))).mean())

    def bic(self, X: np.ndarray) -> float:
        """Bayesian information criterion with the PPCA parameter count (lower is better)."""
        n, dim = np.shape(X)
        k = ppca_parameter_count(self.n_components, dim, self.n_factors)
        return -2.0 * self.score(X) * n + k * np.log(n)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        log_joint = self._log_joint(np.asarray(X, dtype=np.float64))
        return np.exp(log_joint - _logsumexp_rows(log_joint)[:, None])

    def as_gaussian_mixture(self) -> GaussianMixture:
        """The fitted mixture as scikit-learn's full-covariance :class:`GaussianMixture`."""
        model = GaussianMixture(self.n_components, covariance_type="full", reg_covar=self.reg_covar)
        model.weights_ = self.weights_
        model.means_ = self.means_
        model.covariances_ = self.covariances_
        model.precisions_cholesky_ = self.precisions_cholesky_
        model.precisions_ = self.precisions_cholesky_ @ np.swapaxes(self.precisions_cholesky_, 1, 2)
        model.converged_ = self.converged_
        model.n_iter_ = self.n_iter_
        model.lower_bound_ = self.lower_bound_
        model.n_features_in_ = self.means_.shape[1]
        return model
