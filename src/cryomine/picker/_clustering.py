"""The clustering workflow: find the kinds of object in a tomogram from its embeddings alone.

TomoTwin's de novo workflow (Rice et al. 2023), automated:

1. A sample of the embedding's cells, only those whose whole window lies inside the tomogram
   (cells near a face embed zero padding): seeded at random, or the cells of candidate
   positions (e.g. DoG picks, so that the sample is particles rather than mostly background).
2. UMAP (umap-learn) of the sample to 2-D, cosine metric, ``min_dist`` 0 (dense clumps).
3. HDBSCAN (scikit-learn) of the 2-D map, "leaf" cluster selection by default (the finest
   clusters of its hierarchy; "eom" tends to return one cluster holding most of a tomogram's
   background, docs/picker.md); points in no cluster get label -1.
4. Each cluster's target is its **medoid** under cosine similarity: the member ``m_i`` whose
   summed similarity to all members, ``m_i · Σ_j m_j``, is largest (exact, O(n) per cluster).

The targets are ordinary embeddings: :func:`locate_targets` picks each of them as
reference-based picking does (:func:`~cryomine.picker.find_similarity_peaks`), keeping a pick of
target ``t`` only where ``t`` is the most similar of all targets (exclusive assignment), so one
particle is not reported under two targets. Which cluster is which structure is for the user
to say (the figure shows each cluster's average window).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from cryomine.errors import InputError
from cryomine.picker._reference import EmbeddingPicks, find_similarity_peaks

__all__ = [
    "EmbeddingClusters",
    "cells_at",
    "cluster_embeddings",
    "inner_cells",
    "locate_targets",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingClusters:
    """Clusters of a sample of embeddings.

    Attributes
    ----------
    labels : ndarray, shape (n,), int64
        Cluster of each sampled embedding, 0-based; -1: in no cluster.
    coordinates : ndarray, shape (n, 2), float32
        The UMAP map.
    medoids : ndarray, shape (k,), int64
        Index (into the sample) of each cluster's medoid.
    targets : ndarray, shape (k, D), float32
        Each cluster's medoid embedding (unit norm).
    sizes : ndarray, shape (k,), int64
        Members per cluster.
    """

    labels: np.ndarray
    coordinates: np.ndarray
    medoids: np.ndarray
    targets: np.ndarray
    sizes: np.ndarray

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)


def inner_cells(
    grid_shape: tuple[int, int, int],
    *,
    stride: int,
    window: int,
    tomogram_shape: tuple[int, int, int],
) -> np.ndarray:
    """Cells ``(n, 3)`` (z, y, x indices of the embedding grid) whose window lies in the tomogram.

    Cell ``i`` is the window centred on voxel ``i · stride``; it lies inside when
    ``window // 2 <= i · stride <= size - 1 - (window - 1) // 2`` on every axis.
    """
    axes = []
    for n_cells, size in zip(grid_shape, tomogram_shape, strict=True):
        voxels = np.arange(n_cells) * stride
        axes.append(
            np.flatnonzero((voxels >= window // 2) & (voxels <= size - 1 - (window - 1) // 2))
        )
    if any(len(a) == 0 for a in axes):
        raise InputError(
            f"tomogram of shape {tuple(tomogram_shape)} voxels has no window of {window}³ voxels "
            "that lies wholly inside it"
        )
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def cells_at(positions_zyx: np.ndarray, inner: np.ndarray, *, stride: int) -> np.ndarray:
    """The distinct embedding cells ``(n, 3)`` nearest to ``positions_zyx`` (voxels, z y x) that
    are among the ``inner`` cells (:func:`inner_cells`); ``(0, 3)`` when none is."""
    cells = np.unique(np.rint(np.asarray(positions_zyx) / stride).astype(np.int64), axis=0)
    cells = cells.reshape(-1, 3)
    # the inner cells are a box of the grid (a product of one index range per axis)
    inside = np.all((cells >= inner.min(axis=0)) & (cells <= inner.max(axis=0)), axis=1)
    return cells[inside]


def cluster_embeddings(
    embeddings: np.ndarray,
    *,
    min_cluster_size: int,
    n_neighbors: int = 15,
    selection: str = "leaf",
    seed: int = 0,
) -> EmbeddingClusters:
    """UMAP + HDBSCAN of unit-norm embeddings ``(n, D)`` (module docstring, steps 2–4).

    Parameters
    ----------
    embeddings : ndarray, shape (n, D)
        Unit-norm embeddings (a sample of a tomogram's).
    min_cluster_size
        HDBSCAN's smallest cluster, in sampled embeddings.
    n_neighbors
        UMAP's neighbourhood size.
    selection
        HDBSCAN's ``cluster_selection_method``: ``"leaf"`` or ``"eom"``.
    seed
        UMAP's random state (with a seed UMAP runs single-threaded, and is reproducible).
    """
    from sklearn.cluster import HDBSCAN

    with warnings.catch_warnings():
        # umap-learn warns at import that its optional TensorFlow part is unavailable
        warnings.filterwarnings("ignore", message=".*Tensorflow not installed.*")
        import umap

    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) <= max(n_neighbors, min_cluster_size):
        raise InputError(
            f"{embeddings.shape[0] if embeddings.ndim == 2 else embeddings.shape} embeddings: "
            f"expected (n, D) with n above n_neighbors ({n_neighbors}) and the minimum cluster "
            f"size ({min_cluster_size}); sample more cells"
        )
    if selection not in ("leaf", "eom"):
        raise InputError(f"cluster selection {selection!r}: expected 'leaf' or 'eom'")
    if min_cluster_size < 2 or n_neighbors < 2:
        raise InputError(
            f"minimum cluster size {min_cluster_size} and neighbours {n_neighbors}: expected ≥ 2"
        )
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": seeded UMAP is serial
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        coordinates = umap.UMAP(
            n_components=2,
            n_neighbors=n_neighbors,
            min_dist=0.0,
            metric="cosine",
            random_state=seed,
        ).fit_transform(embeddings)
    labels = (
        HDBSCAN(min_cluster_size=min_cluster_size, cluster_selection_method=selection, copy=True)
        .fit_predict(coordinates)
        .astype(np.int64)
    )
    n_clusters = int(labels.max()) + 1
    medoids = np.empty(n_clusters, dtype=np.int64)
    for c in range(n_clusters):
        members = np.flatnonzero(labels == c)
        total = embeddings[members] @ embeddings[members].sum(axis=0)
        medoids[c] = members[int(np.argmax(total))]
    sizes = np.bincount(labels[labels >= 0], minlength=n_clusters).astype(np.int64)
    logger.info(
        "clusters: %d of %d embeddings (%.0f %% in none), sizes %s",
        n_clusters,
        len(labels),
        100.0 * np.mean(labels < 0),
        sizes.tolist(),
    )
    return EmbeddingClusters(
        labels=labels,
        coordinates=np.asarray(coordinates, dtype=np.float32),
        medoids=medoids,
        targets=embeddings[medoids].copy(),
        sizes=sizes,
    )


def locate_targets(
    embeddings: np.ndarray,
    targets: np.ndarray,
    *,
    stride: int,
    voxel_size_a: float,
    diameter_a: float,
    tomogram_shape: tuple[int, int, int],
    threshold: float | None = None,
    min_distance_a: float | None = None,
    border_a: float | None = None,
    exclusive: bool = True,
) -> list[EmbeddingPicks]:
    """Pick every target in a dense embedding; one :class:`EmbeddingPicks` per target.

    Parameters
    ----------
    embeddings : ndarray, shape (z, y, x, D)
        Dense embedding (:func:`~cryomine.picker.embed_tomogram`), cell ``i`` ↔ voxel ``i·stride``.
    targets : ndarray, shape (k, D)
        Target embeddings (e.g. :attr:`EmbeddingClusters.targets`).
    stride, voxel_size_a, diameter_a, tomogram_shape
        Sampling (voxels), voxel size and particle diameter (Å), tomogram shape (z, y, x).
    threshold
        Similarity threshold for every target; ``None``: each map's automatic threshold
        (:func:`~cryomine.picker.robust_threshold`).
    min_distance_a, border_a
        As for :func:`~cryomine.picker.pick_by_reference` (defaults 0.8 × and 0.5 × the diameter).
    exclusive
        Keep a pick of target ``t`` only where ``t`` is the most similar target.
    """
    targets = np.asarray(targets, dtype=np.float32)
    if targets.ndim != 2 or targets.shape[1] != embeddings.shape[-1] or len(targets) == 0:
        raise InputError(
            f"targets of shape {targets.shape}: expected (k, {embeddings.shape[-1]}) with k ≥ 1, "
            "the embedding's dimension"
        )
    if not diameter_a > 0:
        raise InputError(f"particle diameter {diameter_a} Å: expected a positive value")
    norms = np.linalg.norm(targets, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError("targets: a target of norm 0; expected unit-norm embeddings")
    targets = targets / norms
    similarity = np.tensordot(embeddings, targets, axes=([-1], [1]))  # (z, y, x, k)
    best = np.argmax(similarity, axis=-1) if exclusive else None
    picks = []
    for t in range(len(targets)):
        found = find_similarity_peaks(
            np.ascontiguousarray(similarity[..., t]),
            stride=stride,
            voxel_size_a=voxel_size_a,
            min_distance_a=0.8 * diameter_a if min_distance_a is None else min_distance_a,
            threshold=threshold,
            tomogram_shape=tomogram_shape,
            border_a=0.5 * diameter_a if border_a is None else border_a,
        )
        if best is not None and len(found):
            cells = np.rint(found.positions_zyx / stride).astype(np.intp)
            cells = np.minimum(cells, np.array(similarity.shape[:3]) - 1)
            keep = best[tuple(cells.T)] == t
            found = EmbeddingPicks(
                positions_zyx=found.positions_zyx[keep],
                scores=found.scores[keep],
                threshold=found.threshold,
                threshold_method=found.threshold_method,
            )
        picks.append(found)
    return picks
