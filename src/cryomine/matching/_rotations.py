"""The rotations a search visits: a uniform SO(3) grid, reduced by the template's symmetry."""

from __future__ import annotations

import re

import numpy as np
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError

__all__ = ["parse_symmetry", "search_rotations"]


def parse_symmetry(symmetry: str) -> int:
    """Order ``n`` of a cyclic point group ``"C<n>"`` (case-insensitive), about the z axis."""
    match = re.fullmatch(r"[cC](\d+)", str(symmetry).strip())
    if match is None or int(match.group(1)) < 1:
        raise InputError(
            f"symmetry {symmetry!r}: expected a cyclic group C1, C2, ... (axis z of the template)"
        )
    return int(match.group(1))


def search_rotations(angular_step_deg: float, symmetry: str = "C1") -> Rotation:
    """Uniform rotations at ``angular_step_deg`` (:func:`cryomine.geometry.uniform_rotation_grid`),
    one per orbit of a ``C<n>`` template symmetry about its z axis.

    With symmetry operators ``S_k`` (rotations by ``360° k / n`` about z), the rotations ``R`` and
    ``R S_k`` place the template identically; a grid rotation is kept when it is the one of its
    orbit nearest the identity (the fundamental zone about the identity), so about ``1 / n`` of
    the grid is searched.

    Returns
    -------
    Rotation
        Active reference→particle rotations (x, y, z vectors), a stack.
    """
    from cryomine.geometry import uniform_rotation_grid

    order = parse_symmetry(symmetry)
    grid = uniform_rotation_grid(angular_step_deg)
    if order == 1:
        return grid
    angles = np.stack(
        [
            (grid * Rotation.from_euler("z", 360.0 * k / order, degrees=True)).magnitude()
            for k in range(order)
        ]
    )
    keep = np.argmin(angles, axis=0) == 0
    return grid[np.flatnonzero(keep)]
