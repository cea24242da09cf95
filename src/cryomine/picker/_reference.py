"""Reference-based picking: cosine similarity of every window's embedding to an example's.

1. The target is the normalised mean of the embeddings of one or more example windows (cut from
   a reference subvolume or around given coordinates).
2. The similarity map is the cosine similarity (dot product of unit vectors) of the dense
   embedding (:func:`~cryomine.picker.embed_tomogram`, sampled every ``stride`` voxels) with the
   target, in ``[-1, 1]``.
3. Peaks are taken best first, each excluding a sphere of radius ``min_distance_a`` around it
   (:func:`cryomine.matching.extract_peaks`, the peak extraction of template matching, on map
   cells), down to the threshold; each peak is refined below the map's sampling by a parabola
   through its neighbours along each axis (at most half a cell).
4. The automatic threshold is robust: ``median + k · 1.4826 · MAD`` of the similarity map, with
   ``k`` = :data:`AUTO_THRESHOLD_MADS` — the background (most of a tomogram) sets median and MAD,
   so the threshold sits ``k`` robust standard deviations above it whatever the similarity scale
   of the model or tomogram. ``k`` was chosen on tomograms of training structures only
   (``docs/picker.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.matching import extract_peaks
from cryomine.picker._network import PickerNet

__all__ = [
    "AUTO_THRESHOLD_MADS",
    "EmbeddingPicks",
    "find_similarity_peaks",
    "pick_by_reference",
    "robust_threshold",
    "similarity_map",
    "target_embedding",
]

logger = logging.getLogger(__name__)

#: ``k`` of the automatic threshold ``median + k · 1.4826 · MAD`` (docs/picker.md, "Threshold").
AUTO_THRESHOLD_MADS = 15.0


@dataclass(frozen=True)
class EmbeddingPicks:
    """Picks of reference-based picking in one tomogram.

    Attributes
    ----------
    positions_zyx : ndarray, shape (n, 3), float64
        Pick centres, voxels of the tomogram, z, y, x; sorted by descending score.
    scores : ndarray, shape (n,), float64
        Cosine similarity to the target at each pick.
    threshold
        Similarity threshold used.
    threshold_method
        ``"median + k·MAD (k = …)"`` or ``"given"``.
    """

    positions_zyx: np.ndarray
    scores: np.ndarray
    threshold: float
    threshold_method: str

    def __len__(self) -> int:
        return len(self.scores)


def target_embedding(embeddings: np.ndarray) -> np.ndarray:
    """Unit-norm mean ``(D,)`` of example embeddings ``(n, D)``."""
    embeddings = np.asarray(embeddings, dtype=np.float64).reshape(-1, embeddings.shape[-1])
    if len(embeddings) == 0:
        raise InputError("reference: no example windows to embed")
    mean = embeddings.mean(axis=0)
    norm = np.linalg.norm(mean)
    if norm == 0:
        raise InputError("reference: the example embeddings cancel out; give other examples")
    return (mean / norm).astype(np.float32)


def similarity_map(embeddings: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Cosine similarity ``(z, y, x)`` float32 of embeddings ``(z, y, x, D)`` to ``target (D,)``."""
    if embeddings.shape[-1] != target.shape[-1]:
        raise InputError(
            f"target of dimension {target.shape[-1]} for embeddings of dimension "
            f"{embeddings.shape[-1]}"
        )
    return np.tensordot(embeddings, target.astype(np.float32), axes=([-1], [0])).astype(np.float32)


def robust_threshold(similarity: np.ndarray, *, k: float = AUTO_THRESHOLD_MADS) -> float:
    """``median + k · 1.4826 · MAD`` of the similarity values (the automatic threshold)."""
    values = np.asarray(similarity, dtype=np.float64).ravel()
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return median + k * 1.4826 * mad


def _parabolic_offsets(similarity: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Sub-cell offsets ``(n, 3)`` in ``[-0.5, 0.5]`` of peaks at integer ``cells``."""
    offsets = np.zeros(cells.shape, dtype=np.float64)
    shape = np.asarray(similarity.shape)
    for axis in range(3):
        step = np.zeros(3, dtype=np.intp)
        step[axis] = 1
        inside = (cells[:, axis] > 0) & (cells[:, axis] < shape[axis] - 1)
        if not inside.any():
            continue
        c = cells[inside]
        f0 = similarity[tuple(c.T)].astype(np.float64)
        fm = similarity[tuple((c - step).T)].astype(np.float64)
        fp = similarity[tuple((c + step).T)].astype(np.float64)
        curvature = fm - 2.0 * f0 + fp
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(curvature < 0, 0.5 * (fm - fp) / curvature, 0.0)
        offsets[inside, axis] = np.clip(delta, -0.5, 0.5)
    return offsets


def find_similarity_peaks(
    similarity: np.ndarray,
    *,
    stride: int,
    voxel_size_a: float,
    min_distance_a: float,
    threshold: float | None = None,
    tomogram_shape: tuple[int, int, int] | None = None,
    border_a: float = 0.0,
    mask: np.ndarray | None = None,
    max_picks: int | None = None,
) -> EmbeddingPicks:
    """Peaks of a similarity map (module docstring, steps 3–4).

    Parameters
    ----------
    similarity : ndarray, shape (z, y, x)
        Map sampled every ``stride`` voxels of the tomogram (cell ``i`` ↔ voxel ``i · stride``).
    stride, voxel_size_a
        Sampling of the map (voxels) and the tomogram's voxel size (Å).
    min_distance_a
        Minimum distance between picks, Å.
    threshold
        Similarity threshold; ``None``: :func:`robust_threshold`.
    tomogram_shape
        Shape of the tomogram (z, y, x voxels), for ``border_a``; default ``stride`` × map shape.
    border_a
        Drop picks closer than this to a face of the tomogram, Å.
    mask : ndarray of bool, shape (z, y, x) of the tomogram, optional
        Keep picks whose nearest voxel is true.
    max_picks
        Keep at most this many, best first.

    Returns
    -------
    EmbeddingPicks
        Empty ``(0, 3)`` / ``(0,)`` arrays when nothing passes.
    """
    if similarity.ndim != 3:
        raise InputError(f"similarity map of shape {similarity.shape}: expected (z, y, x)")
    if not (voxel_size_a > 0 and min_distance_a >= 0 and stride >= 1):
        raise InputError(
            f"voxel size {voxel_size_a} Å, minimum distance {min_distance_a} Å and stride "
            f"{stride}: expected positive values"
        )
    method = "given"
    if threshold is None:
        threshold = robust_threshold(similarity)
        method = f"median + k·1.4826·MAD (k = {AUTO_THRESHOLD_MADS:g})"
    # peaks at or above the threshold (extract_peaks keeps those strictly above its argument)
    peaks = extract_peaks(
        similarity, threshold=float(np.nextafter(threshold, -np.inf)),
        exclusion_radius_px=max(1.0, min_distance_a / (voxel_size_a * stride)),
    )  # fmt: skip
    cells, scores = peaks.positions_zyx, peaks.scores
    positions = (cells + _parabolic_offsets(similarity, cells)) * stride
    shape = np.asarray(tomogram_shape if tomogram_shape is not None else similarity.shape) * (
        1 if tomogram_shape is not None else stride
    )
    positions = np.clip(positions, 0, shape - 1)
    border = border_a / voxel_size_a
    keep = np.all(positions >= border, axis=1) & np.all(positions <= shape - 1 - border, axis=1)
    if mask is not None:
        if tuple(mask.shape) != tuple(shape):
            raise InputError(f"mask shape {mask.shape} differs from the tomogram's {tuple(shape)}")
        voxels = np.rint(positions[keep]).astype(np.intp)
        keep[np.flatnonzero(keep)] = np.asarray(mask[tuple(voxels.T)], dtype=bool)
    positions, scores = positions[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")[:max_picks]
    logger.info("similarity peaks: %d above %.4f (%s)", len(order), threshold, method)
    return EmbeddingPicks(
        positions_zyx=positions[order].reshape(-1, 3),
        scores=scores[order],
        threshold=float(threshold),
        threshold_method=method,
    )


def pick_by_reference(
    model: PickerNet,
    tomogram: np.ndarray,
    reference_windows: np.ndarray,
    *,
    voxel_size_a: float,
    diameter_a: float,
    stride: int = 4,
    threshold: float | None = None,
    min_distance_a: float | None = None,
    border_a: float | None = None,
    mask: np.ndarray | None = None,
    max_picks: int | None = None,
    tile_size: int = 32,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[EmbeddingPicks, np.ndarray]:
    """Pick the particles that look like the examples (module docstring).

    Parameters
    ----------
    model
        Picker network.
    tomogram : ndarray, shape (z, y, x)
        Normalised tomogram (:func:`~cryomine.picker.normalize_tomogram`).
    reference_windows : ndarray, shape (n, window, window, window)
        Example windows, normalised the same way (e.g. :func:`~cryomine.picker.cut_windows`).
    voxel_size_a, diameter_a
        Voxel size and particle diameter, Å.
    stride
        Sampling of the similarity map, voxels (1, 2, 4 or 4·k).
    threshold
        Similarity threshold; ``None``: automatic (:func:`robust_threshold`).
    min_distance_a, border_a
        Minimum distance between picks (default ``0.8 · diameter_a``) and from the tomogram's
        faces (default the particle radius), Å.
    mask : ndarray of bool, shape (z, y, x), optional
        Keep picks where it is true.
    max_picks
        Keep at most this many picks.
    tile_size, device, progress
        See :func:`~cryomine.picker.embed_tomogram`.

    Returns
    -------
    picks : EmbeddingPicks
    similarity : ndarray, shape (ceil(z / stride), ceil(y / stride), ceil(x / stride)), float32
    """
    from cryomine.picker._embedding import embed_tomogram, embed_windows

    if not (voxel_size_a > 0 and diameter_a > 0):
        raise InputError(
            f"voxel size {voxel_size_a} Å and particle diameter {diameter_a} Å must be positive"
        )
    target = target_embedding(embed_windows(model, reference_windows, device=device))
    embeddings = embed_tomogram(
        model, tomogram, stride=stride, tile_size=tile_size, device=device, progress=progress
    )
    similarity = similarity_map(embeddings, target)
    picks = find_similarity_peaks(
        similarity,
        stride=stride,
        voxel_size_a=voxel_size_a,
        min_distance_a=0.8 * diameter_a if min_distance_a is None else min_distance_a,
        threshold=threshold,
        tomogram_shape=tomogram.shape,
        border_a=0.5 * diameter_a if border_a is None else border_a,
        mask=mask,
        max_picks=max_picks,
    )
    return picks, similarity
