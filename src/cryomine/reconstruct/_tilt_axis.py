"""The tilt axis of a measured tilt series, and its tilt range about the tomogram y axis.

Rotations are the ``(T, 3, 3)`` linear parts of the per-tilt projection matrices (active, on
x, y, z column vectors, tomogram frame); row 2 of each is that tilt's beam direction.
"""

from __future__ import annotations

import numpy as np

from cryomine.errors import InputError

__all__ = ["observed_tilt_range_deg", "tilt_axis_xyz"]


def tilt_axis_xyz(rotations: np.ndarray) -> np.ndarray:
    """Unit tilt axis (x, y, z, tomogram frame) of a single-axis series: ⟂ to every beam direction.

    Parameters
    ----------
    rotations : ndarray, shape (T, 3, 3)
        Per-tilt rotations; row 2 of each is that tilt's beam direction in the tomogram frame.

    Returns
    -------
    ndarray, shape (3,)
        The eigenvector of ``Σ_t z_t z_tᵀ`` with the smallest eigenvalue (sign: positive largest
        component).
    """
    beams = np.asarray(rotations, dtype=np.float64)[:, 2, :]
    _, vectors = np.linalg.eigh(beams.T @ beams)
    axis = vectors[:, 0]
    return axis * np.sign(axis[np.argmax(np.abs(axis))])


def observed_tilt_range_deg(rotations: np.ndarray) -> tuple[float, float]:
    """Tilt range about the tomogram y axis, as ``missing_wedge_mask`` takes it.

    Parameters
    ----------
    rotations : ndarray, shape (T, 3, 3)
        Per-tilt rotations (projection matrices' linear parts) of the tilts used.

    Returns
    -------
    (theta_min, theta_max) : tuple of float
        Degrees; tilt ``θ`` has its beam along ``(−sin θ, 0, cos θ)`` (x, y, z).

    Raises
    ------
    InputError
        If the tilt axis is more than 10° away from the y axis.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    axis = tilt_axis_xyz(rotations)
    if abs(axis[1]) < np.cos(np.radians(10.0)):
        raise InputError(
            f"tilt axis {np.round(axis, 3).tolist()} (x, y, z) is not within 10° of the y axis"
        )
    beams = rotations[:, 2, :]
    thetas = np.degrees(np.arctan2(-beams[:, 0], beams[:, 2]))
    return float(thetas.min()), float(thetas.max())
