"""DDBI: the distortion-based Davies-Bouldin index DISCA uses to pick its best iteration."""

from __future__ import annotations

import numpy as np

from cryomine.errors import InputError
from cryomine.sorting._mixture import REG_COVAR

__all__ = ["ddbi"]


def ddbi(features: np.ndarray, labels: np.ndarray) -> float:
    """Distortion-based Davies-Bouldin index of a clustering (lower is better).

    Parameters
    ----------
    features
        ``(N, D)`` feature vectors (DISCA: the 16 PCA components).
    labels
        ``(N,)`` integer cluster labels; any values, each distinct value is one cluster.

    Returns
    -------
    float
        ``(1/K) Σ_l max_{k≠l} R_kl`` with ``R_kl = (T_k + T_l) / (D_kl + D_lk)``, where for each
        cluster ``k`` with mean ``μ_k`` and ``P_k = (Σ_k + r I)⁻¹`` (``Σ_k`` the sample
        covariance, ``ddof = 1``; zero for a one-member cluster; ``r`` = the mixtures'
        ``REG_COVAR``, 1e-5), ``T_k`` is the mean of
        ``(x - μ_k)ᵀ P_k (x - μ_k)`` over the members and
        ``D_kl = (μ_l - μ_k)ᵀ P_k (μ_l - μ_k)``. ``inf`` when there are fewer than two clusters.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise InputError(
            f"ddbi: features {features.shape} and labels {labels.shape}: expected (N, D) and (N,)"
        )
    clusters = np.unique(labels)
    n_clusters = clusters.size
    if n_clusters < 2:
        return float("inf")
    dim = features.shape[1]
    means = np.empty((n_clusters, dim))
    precisions = np.empty((n_clusters, dim, dim))
    spread = np.empty(n_clusters)
    for k, cluster in enumerate(clusters):
        members = features[labels == cluster]
        means[k] = members.mean(axis=0)
        centred = members - means[k]
        covariance = (
            centred.T @ centred / (len(members) - 1) if len(members) > 1 else np.zeros((dim, dim))
        )
        precisions[k] = np.linalg.inv(covariance + REG_COVAR * np.eye(dim))
        spread[k] = np.einsum("ni,ij,nj->n", centred, precisions[k], centred).mean()
    # separation[k, l] = (μ_l - μ_k)ᵀ P_k (μ_l - μ_k)
    diff = means[None, :, :] - means[:, None, :]
    separation = np.einsum("kli,kij,klj->kl", diff, precisions, diff)
    ratio = (spread[:, None] + spread[None, :]) / (separation + separation.T + np.eye(n_clusters))
    np.fill_diagonal(ratio, -np.inf)
    return float(ratio.max(axis=0).mean())
