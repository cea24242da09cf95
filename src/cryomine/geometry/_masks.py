"""Real-space and Fourier-space masks: spheres, the missing wedge, frequency grids and shells.

Fourier-space arrays are ``fftshift``ed (zero frequency at index ``n // 2`` on every axis) unless
``rfft=True``, which gives the half-space layout of ``numpy.fft.rfftn`` / ``torch.fft.rfftn``:
unshifted ``fftfreq`` order on the leading axes and ``n // 2 + 1`` non-negative frequencies on
the last (x) axis. Frequencies are in cycles per voxel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cryomine.errors import InputError

__all__ = [
    "fourier_shells",
    "frequency_grids",
    "missing_wedge_mask",
    "radial_frequency_grid",
    "sphere_mask",
]

# Angles closer than this to the edge of the tilt range count as inside (rounding only).
_ANGLE_TOLERANCE_DEG = 1e-9


def _check_shape(shape: Sequence[int], name: str, ndim: int | None = None) -> tuple[int, ...]:
    try:
        dims = tuple(int(n) for n in shape)
    except (TypeError, ValueError) as error:
        raise InputError(f"{name}: expected a tuple of positive integers, got {shape!r}") from error
    if not dims or any(n < 1 for n in dims) or (ndim is not None and len(dims) != ndim):
        what = f"{ndim} positive integers" if ndim is not None else "positive integers"
        raise InputError(f"{name}: expected {what}, got {shape!r}")
    return dims


def frequency_grids(shape: Sequence[int], *, rfft: bool = False) -> list[NDArray[np.float64]]:
    """Per-axis frequency coordinates (cycles per voxel), broadcastable to the Fourier grid.

    Parameters
    ----------
    shape
        Real-space shape, e.g. ``(Z, Y, X)``.
    rfft
        ``False``: ``fftshift``ed layout, zero at ``n // 2``. ``True``: ``rfftn`` layout.

    Returns
    -------
    list of ndarray of float64
        One array per axis, in axis order; array ``i`` has size ``n_i`` (``n_last // 2 + 1``
        on the last axis for ``rfft``) along axis ``i`` and 1 elsewhere.
    """
    dims = _check_shape(shape, "shape")
    grids: list[NDArray[np.float64]] = []
    for axis, n in enumerate(dims):
        if rfft and axis == len(dims) - 1:
            freqs = np.fft.rfftfreq(n)
        elif rfft:
            freqs = np.fft.fftfreq(n)
        else:
            freqs = np.fft.fftshift(np.fft.fftfreq(n))
        view = [1] * len(dims)
        view[axis] = freqs.size
        grids.append(np.asarray(freqs, dtype=np.float64).reshape(view))
    return grids


def radial_frequency_grid(shape: Sequence[int], *, rfft: bool = False) -> NDArray[np.float32]:
    """Length of the frequency vector ``|k|`` of every Fourier voxel, cycles per voxel.

    Parameters
    ----------
    shape
        Real-space shape, e.g. ``(Z, Y, X)``.
    rfft
        ``False``: ``fftshift``ed layout; ``True``: ``rfftn`` layout.

    Returns
    -------
    ndarray of float32
        Shape ``shape`` (last axis ``n // 2 + 1`` for ``rfft``); 0 at the zero frequency,
        0.5 at Nyquist along an axis.
    """
    grids = frequency_grids(shape, rfft=rfft)
    squared = sum(g**2 for g in grids)
    return np.sqrt(np.broadcast_to(squared, np.broadcast_shapes(*(g.shape for g in grids)))).astype(
        np.float32
    )


def fourier_shells(shape: Sequence[int], *, rfft: bool = False) -> NDArray[np.int64]:
    """Shell index of every Fourier voxel, for FSC curves and radial filters.

    Shell ``i`` holds the frequencies with ``round(|k| · N) == i``, where ``|k|`` is in cycles per
    voxel and ``N = max(shape)``: shells are ``1 / N`` cycles per voxel wide and shell ``i`` is
    centred on resolution ``N · voxel_size / i``. For a cubic box of size ``N`` shell ``i`` is
    the set of integer frequency vectors with length ``i ± ½``; ``N // 2`` is the Nyquist shell
    (corners go beyond it).

    Returns
    -------
    ndarray of int64
        Shape ``shape`` (last axis ``n // 2 + 1`` for ``rfft``).
    """
    dims = _check_shape(shape, "shape")
    grids = frequency_grids(dims, rfft=rfft)
    n_max = max(dims)
    squared = sum((g * n_max) ** 2 for g in grids)
    squared = np.broadcast_to(squared, np.broadcast_shapes(*(g.shape for g in grids)))
    return np.rint(np.sqrt(squared)).astype(np.int64)


def sphere_mask(
    shape: Sequence[int],
    radius_px: float,
    *,
    soft_edge_px: float = 0.0,
    center_zyx: Sequence[float] | None = None,
) -> NDArray[np.float32]:
    """A (soft-edged) sphere: 1 inside ``radius_px``, cosine fall-off to 0 over ``soft_edge_px``.

    With ``r`` the distance of a voxel centre from ``center_zyx``, the mask is 1 for
    ``r ≤ radius_px``, ``½ (1 + cos(π (r - radius_px) / soft_edge_px))`` for
    ``radius_px < r < radius_px + soft_edge_px`` and 0 beyond.

    Parameters
    ----------
    shape
        Array shape, ``(Z, Y, X)`` (any number of axes works: a disc for 2-D).
    radius_px
        Radius of the fully-on region, voxels, ``≥ 0``.
    soft_edge_px
        Width of the cosine edge, voxels, ``≥ 0`` (0: hard edge).
    center_zyx
        Centre in voxel coordinates, same axis order as ``shape``; default ``n // 2`` per axis.

    Returns
    -------
    ndarray of float32, shape ``shape``
    """
    dims = _check_shape(shape, "shape")
    if not math.isfinite(radius_px) or radius_px < 0:
        raise InputError(f"radius_px: expected a non-negative radius in voxels, got {radius_px!r}")
    if not math.isfinite(soft_edge_px) or soft_edge_px < 0:
        raise InputError(
            f"soft_edge_px: expected a non-negative edge width in voxels, got {soft_edge_px!r}"
        )
    if center_zyx is None:
        centre = np.array([n // 2 for n in dims], dtype=np.float64)
    else:
        centre = np.asarray(center_zyx, dtype=np.float64)
        if centre.shape != (len(dims),) or not np.all(np.isfinite(centre)):
            raise InputError(
                f"center_zyx: expected {len(dims)} finite voxel coordinates, got {center_zyx!r}"
            )
    squared = sum(
        (np.arange(n, dtype=np.float64) - c).reshape(
            [-1 if a == i else 1 for a in range(len(dims))]
        )
        ** 2
        for i, (n, c) in enumerate(zip(dims, centre, strict=True))
    )
    r = np.sqrt(np.broadcast_to(squared, dims))
    if soft_edge_px == 0:
        return (r <= radius_px).astype(np.float32)
    ramp = np.clip((r - radius_px) / soft_edge_px, 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * ramp))).astype(np.float32)


def missing_wedge_mask(
    shape_zyx: Sequence[int],
    *,
    tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
    tilt_axis: Literal["y", "x"] = "y",
    rfft: bool = False,
) -> NDArray[np.float32]:
    """Fourier-space mask of the frequencies a single-axis tilt series observes.

    At tilt 0 the beam runs along z. The image taken at tilt ``θ`` observes the central plane
    that contains the tilt axis and the unit vector ``cos θ · e_u + sin θ · e_z`` in
    frequency space, with ``u`` the in-plane axis perpendicular to the tilt axis (``x`` for
    ``tilt_axis="y"``, ``y`` for ``tilt_axis="x"``); the beam is then along
    ``-sin θ · e_u + cos θ · e_z``. A Fourier voxel ``(k_z, k_y, k_x)`` (cycles per voxel) is
    therefore observed — mask value 1 — iff

        ``φ = arctan(k_z / k_u) ∈ [θ_min, θ_max]``,  with ``φ ∈ (-90°, 90°]``,

    or ``k_u = k_z = 0`` (the tilt axis, including the zero frequency, is on every plane). All
    other voxels (the wedge around ``k_z``) are 0. The angle uses frequencies in cycles per
    voxel, so it is the physical angle also for non-cubic boxes. For a symmetric range the sign
    convention of ``θ`` does not matter; for an asymmetric one, ``θ > 0`` tilts the observed
    plane towards ``+k_z`` for ``+k_u``.

    Parameters
    ----------
    shape_zyx
        Real-space shape ``(Z, Y, X)``.
    tilt_range_deg
        ``(θ_min, θ_max)`` in degrees, ``-90 ≤ θ_min ≤ θ_max ≤ 90``.
    tilt_axis
        ``"y"`` (default) or ``"x"``: the axis the specimen is tilted about.
    rfft
        ``False``: ``fftshift``ed, shape ``(Z, Y, X)`` with zero frequency at ``n // 2``;
        ``True``: ``rfftn`` half-space layout, shape ``(Z, Y, X // 2 + 1)``.

    Returns
    -------
    ndarray of float32
        1 where observed, 0 in the missing wedge.
    """
    dims = _check_shape(shape_zyx, "shape_zyx", ndim=3)
    try:
        low, high = (float(a) for a in tilt_range_deg)
    except (TypeError, ValueError) as error:
        raise InputError(
            f"tilt_range_deg: expected (min, max) in degrees, got {tilt_range_deg!r}"
        ) from error
    if not (math.isfinite(low) and math.isfinite(high) and -90.0 <= low <= high <= 90.0):
        raise InputError(
            f"tilt_range_deg: expected -90 <= min <= max <= 90 degrees, got {tilt_range_deg!r}"
        )
    if tilt_axis not in ("y", "x"):
        raise InputError(f"tilt_axis: expected 'y' or 'x', got {tilt_axis!r}")
    kz, ky, kx = frequency_grids(dims, rfft=rfft)
    ku = kx if tilt_axis == "y" else ky
    kz_b, ku_b = np.broadcast_arrays(kz, ku)
    on_axis = (kz_b == 0) & (ku_b == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.degrees(np.arctan(kz_b / ku_b))  # in [-90, 90]; ±90 where ku == 0
    alpha = np.where(alpha <= -90.0, 90.0, alpha)  # fold to (-90, 90]
    inside = (alpha >= low - _ANGLE_TOLERANCE_DEG) & (alpha <= high + _ANGLE_TOLERANCE_DEG)
    plane = (inside | on_axis).astype(np.float32)  # broadcast over the tilt axis
    out_shape = np.broadcast_shapes(kz.shape, ky.shape, kx.shape)
    return np.ascontiguousarray(np.broadcast_to(plane, out_shape))
