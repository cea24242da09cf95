"""Geometry: uniform SO(3) sampling, RELION Euler angles, rotating/shifting volumes, masks.

Rotations are active ``scipy.spatial.transform.Rotation`` objects acting on x, y, z vectors and
mapping the reference onto the particle; volumes are ``(z, y, x)`` arrays (``(B, Z, Y, X)``
tensors for batches) rotated about the box centre ``n // 2``; Fourier-space masks are
``fftshift``ed unless ``rfft=True``. See ``docs/conventions.md`` and ``docs/geometry.md``.
"""

from cryomine.geometry._masks import (
    fourier_shells,
    frequency_grids,
    missing_wedge_mask,
    radial_frequency_grid,
    sphere_mask,
)
from cryomine.geometry._resample import fourier_resample
from cryomine.geometry._rotations import (
    matrices_zyx,
    quaternions_from_rotations,
    random_rotations,
    relion_euler_from_rotations,
    rotation_angles_deg,
    rotations_from_quaternions,
    rotations_from_relion_euler,
    uniform_rotation_grid,
    uniform_rotation_grid_size,
)
from cryomine.geometry._transform import shift_volumes, transform_volumes

__all__ = [
    "fourier_resample",
    "fourier_shells",
    "frequency_grids",
    "matrices_zyx",
    "missing_wedge_mask",
    "quaternions_from_rotations",
    "radial_frequency_grid",
    "random_rotations",
    "relion_euler_from_rotations",
    "rotation_angles_deg",
    "rotations_from_quaternions",
    "rotations_from_relion_euler",
    "shift_volumes",
    "sphere_mask",
    "transform_volumes",
    "uniform_rotation_grid",
    "uniform_rotation_grid_size",
]
