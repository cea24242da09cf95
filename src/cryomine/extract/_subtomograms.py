"""Extract subtomograms at particle positions, binning on the fly.

Each subtomogram is centred on its particle: the particle position (z, y, x voxels of the
tomogram, fractional allowed) lands on the box's centre voxel ``box_size // 2``. With binning
``b`` the subtomogram's voxels are ``b`` times larger, obtained by band-limited (Fourier)
resampling of a region around the particle, so binning and sub-voxel centring happen in one step
without aliasing. Particles whose box would leave the tomogram are skipped and counted.
Subtomograms come out protein-bright and z-scored, the convention of particle sets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from cryomine.errors import InputError
from cryomine.geometry import fourier_resample
from cryomine.io import normalize_subtomograms

__all__ = ["ExtractedSubtomograms", "extract_subtomograms"]

logger = logging.getLogger(__name__)

#: Extra source voxels read around each box when resampling, so the edges of the region read
#: (a discontinuity for the Fourier interpolation) stay away from the box.
_MARGIN_PX = 4


@dataclass(frozen=True)
class ExtractedSubtomograms:
    """Which particles can be extracted, and an iterator over their subtomograms.

    Attributes
    ----------
    kept : ndarray of bool, shape (n_particles,)
        False for particles too close to the tomogram's faces for a whole box.
    voxel_size_a : float
        Voxel size of the subtomograms, Å (the tomogram's times the binning).
    """

    kept: np.ndarray
    voxel_size_a: float
    _batches: Callable[[], Iterator[np.ndarray]]

    @property
    def n_skipped(self) -> int:
        return int((~self.kept).sum())

    def batches(self) -> Iterator[np.ndarray]:
        """Yield the kept subtomograms in order, as float32 arrays (n, S, S, S)."""
        return self._batches()


def extract_subtomograms(
    tomogram: np.ndarray,
    positions_zyx: np.ndarray,
    *,
    voxel_size_a: float,
    box_size: int,
    bin_factor: int = 1,
    contrast: str = "dark",
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> ExtractedSubtomograms:
    """Cut out subtomograms centred on particle positions.

    Parameters
    ----------
    tomogram : ndarray, shape (z, y, x)
        The tomogram; memory-mapped arrays are read one particle region at a time.
    positions_zyx : ndarray, shape (n, 3)
        Particle centres in voxels of ``tomogram`` (z, y, x; voxel centres at integers).
    voxel_size_a
        The tomogram's voxel size, Å.
    box_size
        Edge of the cubic subtomograms, in their own (binned) voxels.
    bin_factor
        Subtomogram voxels are ``bin_factor`` tomogram voxels wide.
    contrast
        ``"dark"`` if protein is darker than background in ``tomogram`` (it is then inverted), or
        ``"bright"``.

    Returns
    -------
    ExtractedSubtomograms
        The mask of kept particles and a re-iterable source of batches of z-scored, protein-bright
        subtomograms ``(n, box_size, box_size, box_size)`` float32.
    """
    if tomogram.ndim != 3:
        raise InputError(f"tomogram has shape {tomogram.shape}; expected a 3-D (z, y, x) volume")
    if contrast not in ("dark", "bright"):
        raise InputError(f"contrast {contrast!r}: expected 'dark' or 'bright'")
    if box_size < 4:
        raise InputError(f"box size {box_size}: expected at least 4 voxels")
    if bin_factor < 1:
        raise InputError(f"binning {bin_factor}: expected a whole number ≥ 1")
    positions = np.asarray(positions_zyx, dtype=np.float64).reshape(-1, 3)
    shape = np.asarray(tomogram.shape)
    half_lo = (box_size // 2) * bin_factor
    half_hi = (box_size - 1 - box_size // 2) * bin_factor
    if np.any(half_lo + half_hi + 1 > shape):
        raise InputError(
            f"box of {box_size} voxels × binning {bin_factor} = {box_size * bin_factor} tomogram "
            f"voxels does not fit the tomogram of shape (z, y, x) {tuple(shape.tolist())}"
        )
    kept = np.all(positions - half_lo >= -0.5, axis=1) & np.all(
        positions + half_hi <= shape - 0.5, axis=1
    )
    sign = -1.0 if contrast == "dark" else 1.0
    out_voxel_a = voxel_size_a * bin_factor
    indices = np.flatnonzero(kept)
    logger.info(
        "extracting %d of %d particles (%d too close to an edge)",
        len(indices),
        len(positions),
        (~kept).sum(),
    )

    def cut(position: np.ndarray) -> np.ndarray:
        if bin_factor == 1 and np.allclose(position, np.round(position)):
            start = np.round(position).astype(int) - box_size // 2
            region = tomogram[tuple(slice(s, s + box_size) for s in start)]
            return np.asarray(region, dtype=np.float32)
        margin = _MARGIN_PX * bin_factor
        lo = np.maximum(np.floor(position - half_lo).astype(int) - margin, 0)
        hi = np.minimum(np.ceil(position + half_hi).astype(int) + margin + 1, shape)
        region = np.asarray(
            tomogram[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))], dtype=np.float64
        )
        # Subtract the region's mean so the zero padding of the resampler meets no step.
        region -= region.mean()
        out = fourier_resample(
            region,
            voxel_size_a=voxel_size_a,
            out_voxel_size_a=out_voxel_a,
            out_box=box_size,
            centre_zyx=position - lo,
        )
        return out.astype(np.float32)

    def batches() -> Iterator[np.ndarray]:
        n_batches = math.ceil(len(indices) / batch_size)
        for i_batch in range(n_batches):
            chunk = indices[i_batch * batch_size : (i_batch + 1) * batch_size]
            batch = np.stack([sign * cut(positions[i]) for i in chunk])
            if progress is not None:
                progress(i_batch + 1, n_batches)
            yield normalize_subtomograms(batch)

    return ExtractedSubtomograms(kept=kept, voxel_size_a=out_voxel_a, _batches=batches)
