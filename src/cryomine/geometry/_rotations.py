"""Rotations: uniform sampling of SO(3), RELION Euler angles, quaternions, z-y-x matrices.

A rotation is a :class:`scipy.spatial.transform.Rotation`, **active**, acting on **x, y, z column
vectors** and mapping the reference onto the particle (``docs/conventions.md``). This module is
the one place where these rotations are converted to RELION Euler angles and to the matrices
that act on ``(z, y, x)`` coordinate vectors.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError

__all__ = [
    "matrices_zyx",
    "quaternions_from_rotations",
    "random_rotations",
    "relion_euler_from_rotations",
    "rotation_angles_deg",
    "rotations_from_quaternions",
    "rotations_from_relion_euler",
    "uniform_rotation_grid",
    "uniform_rotation_grid_size",
]

logger = logging.getLogger(__name__)

# Super-Fibonacci spiral constants (Alexa, CVPR 2022): phi = sqrt(2) and psi, the real root of
# psi**4 = psi + 4.
_SF_PHI = math.sqrt(2.0)
_SF_PSI = 1.533751168755204288118041
# The largest grid uniform_rotation_grid builds (about 1.6 GB of float64 quaternions).
_MAX_GRID_SIZE = 50_000_000


def _as_rotation(rotations: Rotation, name: str = "rotations") -> Rotation:
    if not isinstance(rotations, Rotation):
        raise InputError(
            f"{name}: expected a scipy.spatial.transform.Rotation, got {type(rotations).__name__}"
        )
    return rotations


def _per_rotation(
    rotations: Rotation, row_shape: tuple[int, ...], values: Callable[[Rotation], ArrayLike]
) -> NDArray[np.float64]:
    """``values(rotations)`` as float64 of shape ``(N, *row_shape)``, one row per rotation.

    A single rotation counts as ``N = 1``; an empty stack gives zeros of shape
    ``(0, *row_shape)`` without calling ``values``.
    """
    rotations = _as_rotation(rotations)
    if not rotations.single and len(rotations) == 0:
        return np.zeros((0, *row_shape))
    return np.asarray(values(rotations), dtype=np.float64).reshape(-1, *row_shape)


def random_rotations(n: int, *, rng: np.random.Generator) -> Rotation:
    """Draw rotations uniformly (Haar measure) from SO(3).

    Parameters
    ----------
    n
        Number of rotations, ``n >= 0``.
    rng
        Source of randomness; the same generator state gives the same rotations.

    Returns
    -------
    Rotation
        ``n`` rotations (always a stack, also for ``n == 1``).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InputError(f"n: expected a non-negative integer number of rotations, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    return Rotation.random(int(n), random_state=rng)


def rotations_from_relion_euler(angles_deg: ArrayLike) -> Rotation:
    """Convert RELION Euler angles to active reference→particle rotations.

    RELION's ``rlnAngleRot, rlnAngleTilt, rlnAnglePsi`` are intrinsic ZYZ Euler angles of the
    passive rotation, so the active rotation acting on x, y, z vectors is
    ``Rotation.from_euler("ZYZ", [rot, tilt, psi], degrees=True).inv()``.

    Parameters
    ----------
    angles_deg
        ``(N, 3)`` or ``(3,)`` array of ``[rot, tilt, psi]`` in degrees.

    Returns
    -------
    Rotation
        ``N`` rotations for ``(N, 3)`` input, a single rotation for ``(3,)`` input.
    """
    angles = _rows_of(angles_deg, 3, "angles_deg", "of [rot, tilt, psi] in degrees")
    if not np.all(np.isfinite(angles)):
        raise InputError("angles_deg: contains NaN or infinite angles")
    if angles.ndim == 2 and angles.shape[0] == 0:
        return Rotation.from_quat(np.zeros((0, 4)))
    return Rotation.from_euler("ZYZ", angles, degrees=True).inv()


def relion_euler_from_rotations(rotations: Rotation) -> NDArray[np.float64]:
    """Convert active reference→particle rotations to RELION Euler angles.

    The inverse of :func:`rotations_from_relion_euler`: ``tilt`` lies in ``[0, 180]``, ``rot``
    and ``psi`` in ``[-180, 180]``. At ``tilt`` 0 or 180 only ``rot ± psi`` is defined; then
    ``psi`` is set to 0.

    Parameters
    ----------
    rotations
        ``N`` rotations (a single rotation counts as ``N = 1``).

    Returns
    -------
    ndarray of float64, shape (N, 3)
        ``[rot, tilt, psi]`` in degrees.
    """
    return _per_rotation(rotations, (3,), _relion_euler)


def _relion_euler(rotations: Rotation) -> NDArray[np.float64]:
    """RELION ``[rot, tilt, psi]`` (degrees) of ``rotations``, ``psi`` 0 at gimbal lock."""
    with warnings.catch_warnings():
        # scipy warns at gimbal lock (tilt 0 or 180) and then sets the third angle to zero,
        # which is the documented behaviour here.
        warnings.filterwarnings("ignore", message="Gimbal lock detected", category=UserWarning)
        return rotations.inv().as_euler("ZYZ", degrees=True)


def quaternions_from_rotations(rotations: Rotation) -> NDArray[np.float64]:
    """Unit quaternions of ``rotations``, **scalar-last** ``(qx, qy, qz, qw)`` as in scipy.

    The sign is made canonical (``qw >= 0``), so equal rotations give equal quaternions.

    Parameters
    ----------
    rotations
        ``N`` rotations (a single rotation counts as ``N = 1``).

    Returns
    -------
    ndarray of float64, shape (N, 4)
    """
    return _per_rotation(rotations, (4,), lambda r: r.as_quat(canonical=True))


def rotations_from_quaternions(quaternions: ArrayLike) -> Rotation:
    """Rotations from quaternions in **scalar-last** order ``(qx, qy, qz, qw)``.

    Parameters
    ----------
    quaternions
        ``(N, 4)`` or ``(4,)``; normalised here, must be non-zero.

    Returns
    -------
    Rotation
        ``N`` rotations for ``(N, 4)`` input, a single rotation for ``(4,)`` input.
    """
    quats = _rows_of(quaternions, 4, "quaternions", "in (qx, qy, qz, qw) order")
    norms = np.linalg.norm(quats, axis=-1)
    if not np.all(np.isfinite(quats)) or np.any(norms < 1e-12):
        raise InputError("quaternions: contains a zero, NaN or infinite quaternion")
    return Rotation.from_quat(quats)


def _rows_of(values: ArrayLike, width: int, name: str, meaning: str) -> NDArray[np.float64]:
    """``values`` as float64 of shape ``(N, width)`` or ``(width,)``, or an InputError."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[-1] != width:
        raise InputError(
            f"{name}: expected shape (N, {width}) or ({width},) {meaning}, got shape {array.shape}"
        )
    return array


def matrices_zyx(rotations: Rotation) -> NDArray[np.float64]:
    """Rotation matrices that act on **(z, y, x)** column vectors.

    ``R_zyx = R_xyz[::-1, ::-1]``: if ``R_xyz @ [x, y, z] = [x', y', z']`` then
    ``R_zyx @ [z, y, x] = [z', y', x']``.

    Parameters
    ----------
    rotations
        ``N`` rotations (a single rotation counts as ``N = 1``).

    Returns
    -------
    ndarray of float64, shape (N, 3, 3)
    """
    mats = _per_rotation(rotations, (3, 3), Rotation.as_matrix)
    return np.ascontiguousarray(mats[:, ::-1, ::-1])


def rotation_angles_deg(rotations: Rotation) -> NDArray[np.float64]:
    """Rotation angle of each rotation (the angle about its own axis), degrees in ``[0, 180]``.

    For Haar-uniform rotations the angle ``θ`` has the distribution ``(θ - sin θ) / π``.

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    rotations = _as_rotation(rotations)
    return np.degrees(np.asarray(rotations.magnitude(), dtype=np.float64)).reshape(-1)


def uniform_rotation_grid_size(angular_step_deg: float) -> int:
    """Number of rotations in :func:`uniform_rotation_grid` for an angular step.

    ``N = ceil(8 π² / δ³)`` with ``δ`` the step in radians: SO(3) has volume ``8 π²`` in the
    rotation-angle metric, and each grid rotation owns about a cube of side ``δ``. Examples:
    60° → 69, 30° → 551, 20° → 1857, 15° → 4401, 10° → 14 852, 7.5° → 35 203,
    5° → 118 809, 3° → 550 040 (RELION's HEALPix grid at 7.5° has 36 864).
    """
    step = float(angular_step_deg)
    if not math.isfinite(step) or not 0.0 < step <= 180.0:
        raise InputError(
            f"angular_step_deg: expected a step in degrees in (0, 180], got {angular_step_deg!r}"
        )
    return max(1, math.ceil(8.0 * math.pi**2 / math.radians(step) ** 3))


def uniform_rotation_grid(angular_step_deg: float) -> Rotation:
    """A deterministic, near-uniform grid of rotations with about the given spacing.

    The rotations are the points of the ``N``-point super-Fibonacci spiral on the unit
    quaternions, ``N = uniform_rotation_grid_size(angular_step_deg)`` (Alexa, "Super-Fibonacci
    spirals: fast, low-discrepancy sampling of SO(3)", CVPR 2022): for ``i = 0 … N-1``,
    ``s = i + ½``, ``t = s / N``, ``a = 2π s / √2``, ``b = 2π s / ψ`` (``ψ⁴ = ψ + 4``),
    ``q = (√t sin a, √t cos a, √(1-t) sin b, √(1-t) cos b)`` in scalar-last order.

    Measured for steps of 10° to 60° (``tests/geometry`` checks 15° and 30°): every rotation
    of SO(3) lies within 0.83-0.97 ``δ`` of a grid rotation (the covering radius of a cubic
    lattice of side ``δ`` is 0.87 ``δ``), the median angle between grid neighbours is
    0.7-0.9 ``δ``, and no two grid rotations are closer than about 0.55 ``δ``. Unlike a HEALPix
    grid it does not factor into view directions times in-plane angles.

    Parameters
    ----------
    angular_step_deg
        Target spacing ``δ`` in degrees, in ``(0, 180]``.

    Returns
    -------
    Rotation
        ``N`` rotations (a stack, also for ``N == 1``).
    """
    n = uniform_rotation_grid_size(angular_step_deg)
    if n > _MAX_GRID_SIZE:
        raise InputError(
            f"angular_step_deg: {angular_step_deg} deg gives {n} rotations, more than the "
            f"{_MAX_GRID_SIZE} supported; use a larger step"
        )
    s = np.arange(n, dtype=np.float64) + 0.5
    t = s / n
    inner = np.sqrt(t)
    outer = np.sqrt(1.0 - t)
    alpha = 2.0 * np.pi * s / _SF_PHI
    beta = 2.0 * np.pi * s / _SF_PSI
    quats = np.stack(
        [inner * np.sin(alpha), inner * np.cos(alpha), outer * np.sin(beta), outer * np.cos(beta)],
        axis=1,
    )
    logger.debug("uniform rotation grid: step %.3g deg, %d rotations", angular_step_deg, n)
    return Rotation.from_quat(quats)
