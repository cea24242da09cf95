"""Fourier shell correlation between two maps and the resolution where it crosses a threshold."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from cryomine.errors import InputError
from cryomine.geometry import fourier_shells

__all__ = ["fourier_shell_correlation", "resolution_at"]


def _check_map(volume: np.ndarray, name: str) -> NDArray[np.float64]:
    array = np.asarray(volume, dtype=np.float64)
    if array.ndim != 3:
        raise InputError(f"{name}: expected a (z, y, x) volume, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: contains NaN or Inf")
    return array


def fourier_shell_correlation(
    map1: np.ndarray,
    map2: np.ndarray,
    *,
    voxel_size_a: float,
    mask: np.ndarray | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Correlation of two maps' Fourier coefficients in shells of equal frequency.

    ``FSC(i) = Re Σ F1 F2* / sqrt(Σ |F1|² Σ |F2|²)`` over the Fourier voxels of shell ``i``
    (:func:`cryomine.geometry.fourier_shells`: shells ``1 / N`` cycles per voxel wide, ``N`` the
    largest box edge), summed over the full (Hermitian) spectrum.

    Parameters
    ----------
    map1, map2
        ``(Z, Y, X)`` real volumes of the same shape (e.g. two independent half maps).
    voxel_size_a
        Å per voxel; sets the frequency unit.
    mask
        Optional real-space ``(Z, Y, X)`` weights (e.g. a soft sphere) applied to both maps
        before the transform.

    Returns
    -------
    frequencies_per_a : ndarray of float64, shape (N // 2 + 1,)
        Shell centres ``i / (N · voxel_size_a)`` in 1/Å, from 0 to Nyquist.
    fsc : ndarray of float64, shape (N // 2 + 1,)
        Correlation per shell in ``[-1, 1]``; NaN for a shell where either map has no power.
    """
    a = _check_map(map1, "map1")
    b = _check_map(map2, "map2")
    if a.shape != b.shape:
        raise InputError(f"map2: shape {b.shape} differs from map1's {a.shape}")
    if not (math.isfinite(voxel_size_a) and voxel_size_a > 0):
        raise InputError(f"voxel_size_a: expected a positive number of Å, got {voxel_size_a!r}")
    if mask is not None:
        weights = _check_map(mask, "mask")
        if weights.shape != a.shape:
            raise InputError(f"mask: shape {weights.shape} differs from the maps' {a.shape}")
        a = a * weights
        b = b * weights
    f1 = np.fft.rfftn(a)
    f2 = np.fft.rfftn(b)
    # Half-space voxels other than the x = 0 (and even-size Nyquist) planes stand for two.
    nx = a.shape[-1]
    hermitian = np.full(f1.shape[-1], 2.0)
    hermitian[0] = 1.0
    if nx % 2 == 0:
        hermitian[-1] = 1.0
    shells = fourier_shells(a.shape, rfft=True).ravel()
    n_max = max(a.shape)
    n_shells = n_max // 2 + 1
    keep = shells < n_shells
    w = np.broadcast_to(hermitian, f1.shape).ravel()[keep]
    index = shells[keep]
    cross = np.bincount(
        index, weights=w * (f1 * np.conj(f2)).real.ravel()[keep], minlength=n_shells
    )
    power1 = np.bincount(index, weights=w * (np.abs(f1) ** 2).ravel()[keep], minlength=n_shells)
    power2 = np.bincount(index, weights=w * (np.abs(f2) ** 2).ravel()[keep], minlength=n_shells)
    denominator = np.sqrt(power1 * power2)
    with np.errstate(divide="ignore", invalid="ignore"):
        fsc = np.where(denominator > 0, cross / denominator, np.nan)
    frequencies = np.arange(n_shells, dtype=np.float64) / (n_max * float(voxel_size_a))
    return frequencies, np.clip(fsc, -1.0, 1.0)


def resolution_at(
    frequencies_per_a: np.ndarray, fsc: np.ndarray, threshold: float = 0.143
) -> float:
    """Resolution (Å) where the FSC curve first falls below ``threshold``.

    The curve is scanned from the first non-zero frequency outwards; at the first shell whose
    FSC is below ``threshold`` the crossing frequency is interpolated linearly between it and
    the previous shell, and its inverse is returned. Shells with NaN FSC are skipped.

    Policy for curves without a crossing: if the FSC never falls below ``threshold`` the
    resolution is limited by the sampling and ``1 / frequencies_per_a[-1]`` (Nyquist, ``2 ·
    voxel size``) is returned; if it is already below at the first non-zero shell (nothing
    is resolved) ``math.inf`` is returned.

    Parameters
    ----------
    frequencies_per_a
        ``(n,)`` increasing shell frequencies in 1/Å, starting at 0.
    fsc
        ``(n,)`` FSC values.
    threshold
        FSC threshold, default 0.143 (gold-standard half maps).

    Returns
    -------
    float
        Resolution in Å (``inf`` when nothing is resolved).
    """
    freqs = np.asarray(frequencies_per_a, dtype=np.float64).reshape(-1)
    values = np.asarray(fsc, dtype=np.float64).reshape(-1)
    if freqs.shape != values.shape or freqs.size < 2:
        raise InputError(
            f"frequencies and fsc: expected two (n,) arrays with n >= 2, got {freqs.shape} "
            f"and {values.shape}"
        )
    if not math.isfinite(threshold):
        raise InputError(f"threshold: expected a finite number, got {threshold!r}")
    previous: tuple[float, float] | None = None
    for f, v in zip(freqs[1:], values[1:], strict=True):
        if not math.isfinite(v):
            continue
        if v < threshold:
            if previous is None:
                return math.inf
            f0, v0 = previous
            crossing = f0 + (f - f0) * (v0 - threshold) / (v0 - v) if v0 != v else f
            return 1.0 / crossing if crossing > 0 else math.inf
        previous = (float(f), float(v))
    if previous is None:
        return math.inf
    return 1.0 / float(freqs[-1])
