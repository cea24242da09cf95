"""Picks from a score map: the false-alarm cut-off and peak extraction with exclusion.

**The statistical cut-off** (as pytom-match-pick, Chaillet et al. 2023). Under the null
hypothesis a score at one position and rotation is Gaussian with mean 0 and the standard
deviation ``σ`` of all ``n_positions × n_rotations`` scores of the search. Taking the threshold

    t = √2 · σ · erfcinv(2 F / (n_positions · n_rotations))

makes ``P(score > t) = F / (n_positions · n_rotations)``, so ``F`` scores above ``t`` are expected
by chance in the whole search. Scores of neighbouring positions and rotations are correlated, so
the number of distinct chance *peaks* above ``t`` is usually smaller than ``F``
(``docs/matching.md`` gives the measured calibration).

**Peaks** are taken greedily from the highest score down; a candidate closer than the exclusion
radius to an accepted peak is dropped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erfcinv

from cryomine.errors import InputError

__all__ = ["Peaks", "extract_peaks", "false_alarm_threshold"]

logger = logging.getLogger(__name__)

#: Candidates above the threshold beyond which extraction warns (it keeps going).
_MANY_CANDIDATES = 5_000_000


@dataclass(frozen=True)
class Peaks:
    """Peaks of a score map.

    Attributes
    ----------
    positions_zyx
        ``(N, 3)`` int64 voxel indices, z, y, x, best first.
    scores
        ``(N,)`` float64 score at each peak.
    """

    positions_zyx: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def false_alarm_threshold(
    std: float, n_positions: int, n_rotations: int, n_false_alarms: float = 1.0
) -> float:
    """Score above which ``n_false_alarms`` chance scores are expected in the whole search.

    ``t = √2 σ erfcinv(2 F / (n_positions · n_rotations))``.

    Parameters
    ----------
    std
        Standard deviation ``σ`` of the scores over all positions and rotations.
    n_positions, n_rotations
        Size of the search.
    n_false_alarms
        ``F``, the expected number of chance scores above the threshold, ``> 0``.
    """
    if not (math.isfinite(std) and std > 0):
        raise InputError(f"std: expected a positive score standard deviation, got {std!r}")
    if n_positions < 1 or n_rotations < 1:
        raise InputError(
            f"n_positions, n_rotations: expected positive counts, got {n_positions}, {n_rotations}"
        )
    search_space = float(n_positions) * float(n_rotations)
    if not (math.isfinite(n_false_alarms) and 0 < n_false_alarms < search_space / 2):
        raise InputError(
            f"false alarms {n_false_alarms!r}: expected a number in (0, {search_space / 2:.3g})"
        )
    return float(math.sqrt(2.0) * std * erfcinv(2.0 * n_false_alarms / search_space))


def _candidates(
    scores: np.ndarray, threshold: float, border_px: int, slab: int
) -> tuple[np.ndarray, np.ndarray]:
    found_positions, found_values = [], []
    nz, ny, nx = scores.shape
    lo = border_px
    for z0 in range(lo, nz - lo, slab):
        z1 = min(z0 + slab, nz - lo)
        block = np.asarray(scores[z0:z1, lo : ny - lo, lo : nx - lo])
        where = np.argwhere(block > threshold)
        if len(where):
            found_values.append(block[tuple(where.T)].astype(np.float64))
            found_positions.append(where + np.array([z0, lo, lo]))
    if not found_positions:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0)
    return np.concatenate(found_positions).astype(np.int64), np.concatenate(found_values)


def extract_peaks(
    scores: np.ndarray,
    *,
    threshold: float,
    exclusion_radius_px: float,
    max_peaks: int | None = None,
    border_px: int = 0,
    mask: np.ndarray | None = None,
) -> Peaks:
    """Greedy peak extraction with an exclusion sphere around each accepted peak.

    Parameters
    ----------
    scores
        ``(Z, Y, X)`` score map (a memory map is read in slabs).
    threshold
        Only scores strictly above it become peaks.
    exclusion_radius_px
        No two peaks are closer than this, voxels (``>= 0``).
    max_peaks
        Keep at most this many, best first; ``None``: all.
    border_px
        Ignore positions closer than this to a face of the volume, voxels.
    mask
        ``(Z, Y, X)`` boolean; peaks only where it is true.

    Returns
    -------
    Peaks
        Best first; an empty ``(0, 3)`` result when nothing is above the threshold.
    """
    if scores.ndim != 3:
        raise InputError(f"scores: expected a (Z, Y, X) map, got shape {scores.shape}")
    if not (math.isfinite(exclusion_radius_px) and exclusion_radius_px >= 0):
        raise InputError(
            f"exclusion_radius_px: expected a non-negative radius, got {exclusion_radius_px!r}"
        )
    if max_peaks is not None and max_peaks < 1:
        raise InputError(f"max_peaks: expected a positive number, got {max_peaks!r}")
    if border_px < 0 or 2 * border_px >= min(scores.shape):
        raise InputError(f"border_px {border_px}: leaves nothing of a map of shape {scores.shape}")
    if mask is not None and mask.shape != scores.shape:
        raise InputError(f"mask: shape {mask.shape} differs from the score map {scores.shape}")
    slab = max(1, (64 << 20) // max(1, scores[0].nbytes))
    positions, values = _candidates(scores, threshold, int(border_px), slab)
    if mask is not None and len(positions):
        keep = np.asarray(mask)[tuple(positions.T)].astype(bool)
        positions, values = positions[keep], values[keep]
    if len(values) > _MANY_CANDIDATES:
        logger.warning(
            "%d scores above the threshold %.4g: extraction will be slow; raise the threshold",
            len(values),
            threshold,
        )
    order = np.argsort(-values, kind="stable")
    radius_sq = float(exclusion_radius_px) ** 2
    cell = max(float(exclusion_radius_px), 1.0)
    grid: dict[tuple[int, int, int], list[int]] = {}
    accepted: list[int] = []
    offsets = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
    for i in order:
        p = positions[i]
        key = tuple(int(v // cell) for v in p)
        clear = True
        for off in offsets:
            for j in grid.get((key[0] + off[0], key[1] + off[1], key[2] + off[2]), ()):
                if float(((positions[j] - p) ** 2).sum()) < radius_sq:
                    clear = False
                    break
            if not clear:
                break
        if not clear:
            continue
        accepted.append(int(i))
        grid.setdefault(key, []).append(int(i))  # type: ignore[arg-type]
        if max_peaks is not None and len(accepted) >= max_peaks:
            break
    chosen = np.array(accepted, dtype=np.int64)
    return Peaks(
        positions_zyx=positions[chosen].reshape(-1, 3).astype(np.int64),
        scores=values[chosen].reshape(-1),
    )
