"""Preparing density maps: resolution, cleaning, centre of mass, molecular envelope.

Resampling to a voxel size is :func:`cryomine.geometry.fourier_resample`. Here: cleaning an experimental map (background, noise outside the molecule, extra copies),
its centre of mass and its molecular envelope. Arrays are ``(z, y, x)``; lengths in Å.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

__all__ = [
    "PROTEIN_DENSITY_DA_PER_A3",
    "centre_of_mass",
    "clean_map",
    "envelope_mask",
    "resolution_sigma_a",
]

logger = logging.getLogger(__name__)

#: Mean protein density, 1.35 g cm⁻³, in Da Å⁻³ (used to turn a mass into a molecular volume).
PROTEIN_DENSITY_DA_PER_A3 = 0.81

#: Real-space Gaussian σ per Å of resolution (as UCSF Chimera's ``molmap``: 1 / (π √2)); the
#: Gaussian's Fourier amplitude at 1 / resolution is then 1 / e.
SIGMA_PER_RESOLUTION = 1.0 / (math.pi * math.sqrt(2.0))

#: Level (fraction of the maximum of the map smoothed by one voxel) at which copies are split.
COMPONENT_FRACTION = 0.3


def resolution_sigma_a(resolution_a: float) -> float:
    """Real-space Gaussian σ (Å) of the low-pass that defines ``resolution_a`` (Å)."""
    return SIGMA_PER_RESOLUTION * resolution_a


def centre_of_mass(volume: np.ndarray) -> np.ndarray:
    """Centre of mass (z, y, x, in voxels) of the positive part of ``volume`` (z, y, x)."""
    weights = np.clip(np.asarray(volume, dtype=np.float64), 0.0, None)
    total = weights.sum()
    if total <= 0:
        return (np.asarray(volume.shape, dtype=np.float64) - 1) / 2
    grids = np.indices(volume.shape, sparse=True)
    return np.array([float((g * weights).sum() / total) for g in grids])


def envelope_mask(volume: np.ndarray, *, voxel_size_a: float, mass_kda: float) -> np.ndarray:
    """Molecular envelope: the voxels of highest density whose volume holds ``mass_kda``.

    The contour encloses ``mass / 0.81 Da Å⁻³`` (mean protein density), as one contours an EM map
    at the molecular volume.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x)
        Density, protein positive.
    voxel_size_a
        Voxel size, Å.
    mass_kda
        Mass of the molecule, kDa.

    Returns
    -------
    ndarray of bool, shape (z, y, x)
    """
    n_voxels = mass_kda * 1000.0 / PROTEIN_DENSITY_DA_PER_A3 / voxel_size_a**3
    n_voxels = int(np.clip(round(n_voxels), 1, volume.size))
    flat = np.asarray(volume, dtype=np.float64).ravel()
    level = np.partition(flat, flat.size - n_voxels)[flat.size - n_voxels]
    return np.asarray(volume >= level)


def clean_map(
    volume: np.ndarray,
    *,
    voxel_size_a: float,
    largest_component_only: bool = False,
    threshold_fraction: float = 0.05,
    margin_a: float = 20.0,
) -> np.ndarray:
    """Remove the background of an experimental or computed map.

    Subtracts the median of the box's outer faces (the solvent level), then keeps only the
    molecule: voxels where the map smoothed by one voxel exceeds ``threshold_fraction`` of its
    maximum, grown by ``margin_a`` Å, with a soft (Gaussian, σ = one voxel) edge. With
    ``largest_component_only`` the mask is instead the heaviest connected piece above 30 % of the
    maximum, grown by ``margin_a`` (for maps holding several copies, e.g. a crystal's asymmetric
    unit; density of a neighbour within the margin stays).

    Parameters
    ----------
    volume : ndarray, shape (z, y, x)
        Map with protein positive.
    voxel_size_a
        Voxel size, Å.

    Returns
    -------
    ndarray, shape (z, y, x), float64
        The cleaned map; zero far from the molecule.
    """
    data = np.asarray(volume, dtype=np.float64)
    faces = np.concatenate(
        [data[[0, -1]].ravel(), data[:, [0, -1]].ravel(), data[:, :, [0, -1]].ravel()]
    )
    data = np.clip(data - float(np.median(faces)), 0.0, None)
    smooth = ndimage.gaussian_filter(data, 1.0, mode="constant")
    peak = float(smooth.max())
    if peak <= 0:
        return data
    mask = smooth > threshold_fraction * peak
    if largest_component_only:
        # Split at a higher level, where touching copies come apart; keep the heaviest piece.
        labels, n_labels = ndimage.label(smooth > COMPONENT_FRACTION * peak)
        if n_labels > 1:
            weights = ndimage.sum_labels(smooth, labels, index=np.arange(1, n_labels + 1))
            mask = labels == (1 + int(np.argmax(weights)))
            logger.debug("kept the heaviest of %d pieces of the map", n_labels)
    radius = max(1, round(margin_a / voxel_size_a))
    ball = ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1), radius)
    mask = ndimage.binary_dilation(mask, structure=ball)
    soft = ndimage.gaussian_filter(mask.astype(np.float64), 1.0, mode="constant")
    return data * soft
