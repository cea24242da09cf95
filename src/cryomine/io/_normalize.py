"""Z-scoring of subtomograms (mean 0 and standard deviation 1 over each box) and the statistics
of a whole volume, read in slabs so that a memory-mapped tomogram is never loaded at once.

The one implementation cryomine uses wherever subtomograms are normalised: on writing a particle
set (:func:`cryomine.io.write_particle_set`), on extraction, on reconstruction of tilt stacks and
on reading data for sorting (``cryomine.sorting``'s subtomogram source).
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np

from cryomine.errors import InputError

__all__ = ["ConstantVolumes", "normalize_subtomograms", "volume_statistics"]

logger = logging.getLogger(__name__)

#: What :func:`normalize_subtomograms` does besides zeroing a constant subtomogram.
ConstantVolumes = Literal["warn", "ignore"]


def normalize_subtomograms(
    batch: np.ndarray, *, on_constant: ConstantVolumes = "warn"
) -> np.ndarray:
    """Z-score each subtomogram: mean 0 and standard deviation 1 over its box.

    Parameters
    ----------
    batch : ndarray, shape (..., S, S, S)
        One subtomogram (z, y, x) or a batch ``(n, z, y, x)``.
    on_constant
        A constant subtomogram (sd ≤ 1e-12 × max(1, |mean|)) always becomes all zeros;
        ``"warn"`` (default) also logs a warning with their number, ``"ignore"`` does not (for
        callers that z-score the same data again and again, such as sorting).

    Returns
    -------
    ndarray, same shape, float32
        Computed in float64.
    """
    if on_constant not in ("warn", "ignore"):
        raise ValueError(f"on_constant must be 'warn' or 'ignore', got {on_constant!r}")
    data = np.asarray(batch)
    if data.ndim < 3:
        raise InputError(f"subtomograms: expected shape (..., z, y, x), got {data.shape}")
    volumes = data.reshape(-1, *data.shape[-3:])
    out = np.empty(volumes.shape, dtype=np.float32)
    n_flat = 0
    for i, volume in enumerate(volumes):  # one at a time: float64 accuracy, little memory
        centred = volume.astype(np.float64)
        mean = centred.mean()
        centred -= mean
        sd = math.sqrt(float(np.mean(centred * centred)))
        if sd <= 1e-12 * max(1.0, abs(float(mean))):
            n_flat += 1
            out[i] = 0.0
        else:
            out[i] = centred / sd
    if n_flat and on_constant == "warn":
        logger.warning("%d constant subtomogram(s) set to zero when z-scoring", n_flat)
    return out.reshape(data.shape)


def volume_statistics(volume: np.ndarray, *, slab: int = 64) -> tuple[float, float]:
    """Mean and standard deviation over a whole ``(z, y, x)`` volume, read ``slab`` z-slices at a
    time (float64 sums), so that a memory-mapped tomogram is read once and never held whole."""
    if slab < 1:
        raise InputError(f"slab {slab}: expected a positive number of z-slices")
    total = 0.0
    total_sq = 0.0
    for start in range(0, volume.shape[0], slab):
        block = np.asarray(volume[start : start + slab], dtype=np.float64)
        total += float(block.sum())
        total_sq += float(np.square(block).sum())
    n = volume.size
    mean = total / n
    return mean, math.sqrt(max(total_sq / n - mean * mean, 0.0))
