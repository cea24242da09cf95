"""Per-image Fourier filters of a weighted back-projection of real tilt images.

Images are ``(T, S, S)`` arrays (tilt, image y = v, image x = u), in pixels of the stacks; the
filters are real/complex ``(T, n_pad, n_pad // 2 + 1)`` arrays in ``numpy.fft.rfft2`` layout for
images zero-padded to ``n_pad`` (twice their size), frequencies in cycles per pixel. The
reconstruction multiplies, per tilt, an R-weighting ramp (:func:`ramp_filters`), a CTF correction
(:func:`ctf_filters`) and, where the particle carries an origin shift, a phase ramp
(:func:`shift_phases`); see :mod:`cryomine.reconstruct._tiltstacks` for the whole recipe.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from cryomine.io import TiltSeriesGeometry
from cryomine.reconstruct._ctf import ctf_2d

__all__ = [
    "CTF_MODES",
    "CtfCorrection",
    "ctf_filters",
    "filtered_images",
    "fit_box",
    "ramp_filters",
    "shift_phases",
]

CtfCorrection = Literal["phase-flip", "wiener", "none"]
CTF_MODES = ("phase-flip", "wiener", "none")


def _frequencies(n_pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ky, kx)`` grids in cycles per pixel, rfft layout ``(n_pad, n_pad // 2 + 1)``."""
    ky = np.fft.fftfreq(n_pad)[:, None]
    kx = np.fft.rfftfreq(n_pad)[None, :]
    return np.broadcast_to(ky, (n_pad, kx.shape[1])), np.broadcast_to(kx, (n_pad, kx.shape[1]))


def ramp_filters(rotations: np.ndarray, axis_xyz: np.ndarray, n_pad: int) -> np.ndarray:
    """``(T, n_pad, n_pad // 2 + 1)`` ramps ``|k · n_t|`` across each image's projected tilt axis.

    Where the tilt axis is nearly along the beam (its image projection shorter than 0.5), the
    radial ramp ``|k|`` is used instead.
    """
    ky, kx = _frequencies(n_pad)
    filters = np.empty((len(rotations), *ky.shape), dtype=np.float64)
    for t, rotation in enumerate(rotations):
        along = rotation[:2] @ axis_xyz  # (u, v) = (x, y) direction of the axis in image t
        length = float(np.hypot(*along))
        if length < 0.5:
            filters[t] = np.hypot(kx, ky)
        else:
            normal = np.array([-along[1], along[0]]) / length
            filters[t] = np.abs(kx * normal[0] + ky * normal[1])
    return filters


def ctf_filters(
    geometry: TiltSeriesGeometry,
    tilts: np.ndarray,
    *,
    n_pad: int,
    pixel_size_a: float,
    mode: CtfCorrection,
    premultiplied: bool,
    wiener_constant: float,
) -> np.ndarray:
    """``(len(tilts), n_pad, n_pad // 2 + 1)`` multiplicative CTF corrections of ``tilts``.

    ``mode`` and ``premultiplied`` as in step 2 of :mod:`cryomine.reconstruct._tiltstacks`.
    """
    shape = (len(tilts), n_pad, n_pad // 2 + 1)
    if mode == "none" or (mode == "phase-flip" and premultiplied):
        return np.ones(shape)
    out = np.empty(shape)
    for i, t in enumerate(tilts):
        values = (
            ctf_2d(
                (n_pad, n_pad),
                pixel_size_a,
                defocus_um=float(geometry.defocus_um[t]),
                voltage_kv=geometry.voltage_kv,
                cs_mm=geometry.cs_mm,
                amplitude_contrast=geometry.amplitude_contrast,
                rfft=True,
            )
            .numpy()
            .astype(np.float64)
        )
        values = values * np.sign(values[0, 0] if values[0, 0] != 0 else 1.0)  # positive at k = 0
        if mode == "phase-flip":
            out[i] = np.where(values < 0, -1.0, 1.0)
        elif premultiplied:
            out[i] = 1.0 / (values**2 + wiener_constant)
        else:
            out[i] = values / (values**2 + wiener_constant)
    return out


def shift_phases(shifts_xy: np.ndarray, n_pad: int) -> np.ndarray:
    """``(T, n_pad, n_pad // 2 + 1)`` phase factors that move image content by ``shifts_xy`` px."""
    ky, kx = _frequencies(n_pad)
    return np.exp(
        -2j
        * np.pi
        * (kx[None] * shifts_xy[:, 0, None, None] + ky[None] * shifts_xy[:, 1, None, None])
    )


def filtered_images(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Apply rfft-layout ``filters`` to mean-free images zero-padded to ``n_pad``; crop back."""
    n_images, size, _ = images.shape
    n_pad = filters.shape[1]
    start = n_pad // 2 - size // 2
    padded = np.zeros((n_images, n_pad, n_pad))
    padded[:, start : start + size, start : start + size] = images - images.mean(
        axis=(1, 2), keepdims=True
    )
    spectrum = np.fft.rfft2(padded) * filters
    return np.fft.irfft2(spectrum, s=(n_pad, n_pad))[:, start : start + size, start : start + size]


def fit_box(images: np.ndarray, box_size: int) -> np.ndarray:
    """Crop/pad ``(T, S, S)`` images to ``(T, b, b)``; pixel ``S // 2`` goes to ``b // 2``."""
    size = images.shape[-1]
    if box_size == size:
        return images
    out = np.zeros((images.shape[0], box_size, box_size), dtype=images.dtype)
    src0, dst0 = max(0, size // 2 - box_size // 2), max(0, box_size // 2 - size // 2)
    n = min(size - src0, box_size - dst0)
    out[:, dst0 : dst0 + n, dst0 : dst0 + n] = images[:, src0 : src0 + n, src0 : src0 + n]
    return out
