"""Band-limited (Fourier) resampling of volumes: any voxel size, any box, sub-voxel centring.

A volume sampled on a grid of spacing ``h`` is, after zero padding, one period of a trigonometric
polynomial. Evaluating that polynomial, with its frequencies truncated at the target Nyquist
frequency and weighted by a Gaussian low-pass, on a new grid of spacing ``v`` is Fourier
cropping/padding generalised to any ratio ``v / h`` and to a sub-voxel shift. Where ``v / h`` is
an integer and the shift is whole voxels it *is* Fourier cropping. The evaluation is separable
(one small DFT matrix per axis), so it costs little more than the FFT of the source. Used to
bring structures to a voxel size and to bin subtomograms on extraction. Arrays are ``(z, y, x)``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

__all__ = ["fourier_resample"]

#: Fraction of the Nyquist frequency where the anti-ringing roll-off of resampling starts.
TAPER_START = 0.8


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
