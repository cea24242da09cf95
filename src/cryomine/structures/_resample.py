"""Band-limited resampling of density maps: any voxel size, any box, sub-voxel centring.

A map sampled on a grid of spacing ``h`` is, after zero padding, one period of a trigonometric
polynomial. Evaluating that polynomial, with its frequencies truncated at the target Nyquist
frequency and weighted by a Gaussian low-pass, on a new grid of spacing ``v`` is Fourier
cropping/padding generalised to any ratio ``v / h`` and to a sub-voxel shift. Where ``v / h`` is
an integer and the shift is whole voxels it *is* Fourier cropping. The evaluation is separable
(one small DFT matrix per axis), so it costs little more than the FFT of the source.

Also here: cleaning an experimental map (background, noise outside the molecule, extra copies),
its centre of mass and its molecular envelope. Arrays are ``(z, y, x)``; lengths in Å.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.fft
from scipy import ndimage

__all__ = [
    "PROTEIN_DENSITY_DA_PER_A3",
    "centre_of_mass",
    "clean_map",
    "envelope_mask",
    "fourier_resample",
    "resolution_sigma_a",
]

logger = logging.getLogger(__name__)

#: Mean protein density, 1.35 g cm⁻³, in Da Å⁻³ (used to turn a mass into a molecular volume).
PROTEIN_DENSITY_DA_PER_A3 = 0.81

#: Real-space Gaussian σ per Å of resolution (as UCSF Chimera's ``molmap``: 1 / (π √2)); the
#: Gaussian's Fourier amplitude at 1 / resolution is then 1 / e.
SIGMA_PER_RESOLUTION = 1.0 / (math.pi * math.sqrt(2.0))

#: Fraction of the Nyquist frequency where the anti-ringing roll-off of resampling starts.
TAPER_START = 0.8

#: Level (fraction of the maximum of the map smoothed by one voxel) at which copies are split.
COMPONENT_FRACTION = 0.3


def resolution_sigma_a(resolution_a: float) -> float:
    """Real-space Gaussian σ (Å) of the low-pass that defines ``resolution_a`` (Å)."""
    return SIGMA_PER_RESOLUTION * resolution_a


def fourier_resample(
    volume: np.ndarray,
    *,
    voxel_size_a: float,
    out_voxel_size_a: float,
    out_box: int,
    centre_zyx: np.ndarray | tuple[float, float, float],
    sigma_a: float = 0.0,
) -> np.ndarray:
    """Resample a map to another voxel size and box by band-limited (Fourier) interpolation.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x)
        Source map; zero (or constant) at its borders, since it is treated as periodic after
        zero padding.
    voxel_size_a
        Source voxel size, Å.
    out_voxel_size_a
        Voxel size of the result, Å.
    out_box
        Edge of the cubic result, voxels.
    centre_zyx : (3,) float
        Point of the source, in source voxels (z, y, x; voxel ``i`` centred at ``i``), that lands
        on the centre voxel ``out_box // 2`` of the result. May be fractional.
    sigma_a
        σ (Å) of a Gaussian low-pass applied on the way (0: none). Frequencies above the result's
        Nyquist frequency ``1 / (2 out_voxel_size_a)`` are always removed, with a raised-cosine
        roll-off from 0.8 × Nyquist so that the cut does not ring.

    Returns
    -------
    ndarray, shape (out_box, out_box, out_box), float64
        The resampled map in the units of ``volume``: values are resampled, not integrals, so
        ``sum × voxel volume`` is preserved, not ``sum``.
    """
    source = np.asarray(volume, dtype=np.float64)
    h = float(voxel_size_a)
    v = float(out_voxel_size_a)
    centre = np.asarray(centre_zyx, dtype=np.float64)
    # Zero-pad so that the periodic images of the source never reach the result's box: the box
    # spans [lo, hi] (source voxels) and the image of voxel n - 1 lies at n - 1 - n_padded.
    lo = centre - (out_box // 2) * v / h
    hi = centre + (out_box - 1 - out_box // 2) * v / h
    padded_shape = tuple(
        scipy.fft.next_fast_len(max(n, math.ceil(max(hi[a], n - 1 - lo[a])) + 2), real=True)
        for a, n in enumerate(source.shape)
    )
    spectrum = scipy.fft.rfftn(source, s=padded_shape)
    nyquist = 0.5 / v
    offsets = (np.arange(out_box) - out_box // 2) * v  # Å from the centre
    matrices = []
    for axis, n in enumerate(padded_shape):
        last = axis == len(padded_shape) - 1
        freqs = scipy.fft.rfftfreq(n, d=h) if last else scipy.fft.fftfreq(n, d=h)  # cycles / Å
        keep = np.flatnonzero(np.abs(freqs) < nyquist * (1.0 - 1e-9))
        spectrum = np.take(spectrum, keep, axis=axis)
        f = freqs[keep]
        weight = np.exp(-2.0 * (math.pi * sigma_a * f) ** 2) if sigma_a > 0 else np.ones_like(f)
        weight = weight * _nyquist_taper(np.abs(f) / nyquist)
        positions = centre[axis] * h + offsets
        matrix = np.exp(2j * math.pi * np.outer(positions, f)) * weight
        if last:
            # Half spectrum: each frequency other than 0 and the source's own Nyquist frequency
            # stands for itself and its conjugate.
            doubled = (keep > 0) & ~((n % 2 == 0) & (keep == n // 2))
            matrix = matrix * np.where(doubled, 2.0, 1.0)
        matrices.append(matrix)
    mz, my, mx = matrices
    out = np.einsum("ak,bl,cm,klm->abc", mz, my, mx, spectrum, optimize=True).real
    return out / float(np.prod(padded_shape))


def _nyquist_taper(fraction: np.ndarray) -> np.ndarray:
    """Raised-cosine roll-off from 1 at ``TAPER_START`` × Nyquist to 0 at Nyquist (less ringing)."""
    ramp = np.clip((fraction - TAPER_START) / (1.0 - TAPER_START), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(math.pi * ramp))


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
