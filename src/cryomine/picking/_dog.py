"""Template-free particle picking by difference of Gaussians (DoG), in chunks with a halo.

A particle of diameter ``d`` is a blob; the DoG band-pass with ``σ₁ = d / (2·√3·√k)`` and
``σ₂ = k·σ₁`` (``k = 1.6``, Marr–Hildreth's approximation of the Laplacian of Gaussian tuned to a
sphere of radius ``d/2``) responds most strongly at blob centres. Local maxima of the response
that are the largest within ``min_distance`` are the picks; their response, in units of the
tomogram's standard deviation, is the score.

The tomogram is processed in blocks with a halo wide enough for the filters and the maximum
filter, so results do not depend on the block size and memory stays bounded for tomograms far
larger than memory (pass a memory-mapped array).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cryomine.errors import InputError
from cryomine.io import volume_statistics

__all__ = ["DogPicks", "dog_sigmas_px", "pick_particles"]

logger = logging.getLogger(__name__)

_K = 1.6  # ratio of the two Gaussians


@dataclass(frozen=True)
class DogPicks:
    """Picks found in one tomogram.

    Attributes
    ----------
    positions_zyx : ndarray, shape (n, 3), float64
        Pick centres in voxels of the tomogram, z, y, x order (voxel centres at integers).
    scores : ndarray, shape (n,), float64
        DoG response at each pick in units of the tomogram's standard deviation; sorted
        descending.
    """

    positions_zyx: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def dog_sigmas_px(diameter_a: float, voxel_size_a: float) -> tuple[float, float]:
    """Return ``(σ₁, σ₂)`` in voxels of the DoG tuned to a particle of ``diameter_a`` Å."""
    radius_px = 0.5 * diameter_a / voxel_size_a
    sigma_1 = radius_px / (math.sqrt(3.0) * math.sqrt(_K))
    return sigma_1, _K * sigma_1


def _block_starts(size: int, block: int) -> range:
    return range(0, size, block)


def pick_particles(
    tomogram: np.ndarray,
    *,
    voxel_size_a: float,
    diameter_a: float,
    contrast: str = "dark",
    min_distance_a: float | None = None,
    min_score: float | None = None,
    max_picks: int | None = None,
    border_a: float | None = None,
    mask: np.ndarray | None = None,
    block_size: int = 128,
    progress: Callable[[int, int], None] | None = None,
) -> DogPicks:
    """Pick particles in a tomogram without templates.

    Parameters
    ----------
    tomogram : ndarray, shape (z, y, x)
        The tomogram; a memory-mapped array is read block by block.
    voxel_size_a
        Voxel size in Å.
    diameter_a
        Expected particle diameter in Å; sets the DoG scale.
    contrast
        ``"dark"`` (protein darker than the background, as in reconstructions from IMOD, AreTomo,
        Warp) or ``"bright"``.
    min_distance_a
        Minimum distance between picks in Å (default ``0.8 · diameter_a``).
    min_score
        Keep picks whose score (DoG response / tomogram standard deviation) is at least this.
    max_picks
        Keep at most this many picks, the highest scores first.
    border_a
        Exclude picks closer than this to any face of the tomogram (Å; default: the particle radius).
    mask : ndarray of bool, shape (z, y, x), optional
        Picks are kept only where the mask is true.
    block_size
        Edge of the cubic blocks processed at a time, in voxels (memory ∝ (block + 2·halo)³).

    Returns
    -------
    DogPicks
        Positions (z, y, x voxels) and scores, sorted by descending score; empty arrays of shape
        (0, 3) and (0,) when nothing is found.
    """
    if tomogram.ndim != 3:
        raise InputError(f"tomogram has shape {tomogram.shape}; expected a 3-D (z, y, x) volume")
    if contrast not in ("dark", "bright"):
        raise InputError(f"contrast {contrast!r}: expected 'dark' or 'bright'")
    if not (voxel_size_a > 0 and diameter_a > 0):
        raise InputError(
            f"voxel size {voxel_size_a} Å and particle diameter {diameter_a} Å must be positive"
        )
    if diameter_a < 2 * voxel_size_a:
        raise InputError(
            f"particle diameter {diameter_a} Å is under two voxels of {voxel_size_a} Å; "
            "bin the tomogram less or check --particle-diameter"
        )
    if mask is not None and mask.shape != tomogram.shape:
        raise InputError(f"mask shape {mask.shape} differs from the tomogram's {tomogram.shape}")

    sigma_1, sigma_2 = dog_sigmas_px(diameter_a, voxel_size_a)
    min_distance_px = max(1, round((min_distance_a or 0.8 * diameter_a) / voxel_size_a))
    border_px = round((border_a if border_a is not None else 0.5 * diameter_a) / voxel_size_a)
    halo = math.ceil(4.0 * sigma_2) + min_distance_px + 1
    sign = -1.0 if contrast == "dark" else 1.0
    logger.info(
        "DoG picking: sigma %.2f/%.2f px, min distance %d px, border %d px, halo %d px",
        sigma_1,
        sigma_2,
        min_distance_px,
        border_px,
        halo,
    )

    mean, std = volume_statistics(tomogram, slab=max(1, block_size // 2))
    if std == 0:
        raise InputError("tomogram is constant; nothing can be picked")

    shape = tomogram.shape
    starts = list(itertools.product(*(_block_starts(n, block_size) for n in shape)))
    positions: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for i_block, start in enumerate(starts):
        stop = [min(s + block_size, n) for s, n in zip(start, shape, strict=True)]
        lo = [max(s - halo, 0) for s in start]
        hi = [min(e + halo, n) for e, n in zip(stop, shape, strict=True)]
        block = np.asarray(tomogram[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], dtype=np.float32)
        block = sign * (block - np.float32(mean)) / np.float32(std)
        # mode="nearest" only matters at the true tomogram faces, which the border excludes.
        response = ndimage.gaussian_filter(block, sigma_1, mode="nearest")
        response -= ndimage.gaussian_filter(block, sigma_2, mode="nearest")
        is_peak = response == ndimage.maximum_filter(
            response, size=2 * min_distance_px + 1, mode="nearest"
        )
        core = tuple(slice(s - low, e - low) for s, e, low in zip(start, stop, lo, strict=True))
        peak_idx = np.argwhere(is_peak[core])
        peak_scores = response[core][tuple(peak_idx.T)]
        peak_idx = peak_idx + np.asarray(start)
        positions.append(peak_idx)
        scores.append(peak_scores.astype(np.float64))
        if progress is not None:
            progress(i_block + 1, len(starts))

    all_pos = np.concatenate(positions).astype(np.float64) if positions else np.zeros((0, 3))
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    keep = np.all(all_pos >= border_px, axis=1) & np.all(
        all_pos <= np.asarray(shape) - 1 - border_px, axis=1
    )
    keep &= all_scores > 0  # a maximum of a flat or inverted region is not a blob
    if min_score is not None:
        keep &= all_scores >= min_score
    if mask is not None and keep.any():
        idx = all_pos[keep].astype(np.intp)
        keep[np.flatnonzero(keep)] = np.asarray(mask[tuple(idx.T)], dtype=bool)
    all_pos, all_scores = all_pos[keep], all_scores[keep]
    order = np.argsort(-all_scores, kind="stable")
    if max_picks is not None:
        order = order[:max_picks]
    logger.info("DoG picking: %d picks", len(order))
    return DogPicks(positions_zyx=all_pos[order].reshape(-1, 3), scores=all_scores[order])
