"""Rotation-averaged features: YOPO features averaged over exact 90° rotations of the box.

The 24 proper rotations of a cube map the voxel grid onto itself (axis permutations and
flips), so rotating a subtomogram by one of them needs no interpolation and brings in no empty
corners. Averaging a network's features over several of them removes part of their dependence
on the particle's pose (the missing wedge turns with the particle, as it would in a rotated
copy used in training). A flip maps index ``i`` to ``n - 1 - i``, so these rotations turn the
box about ``(n - 1) / 2``, half a voxel from the ``n // 2`` centre of ``cryomine.geometry`` for
even ``n``; YOPO's global max pooling makes that shift irrelevant.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import torch

from cryomine.errors import InputError

__all__ = ["N_CUBE_ROTATIONS", "cube_rotations", "rotate_cube"]

N_CUBE_ROTATIONS = 24


@cache
def _all_cube_rotations() -> tuple[tuple[tuple[int, int, int], tuple[bool, bool, bool]], ...]:
    """The 24 proper cube rotations as (axis permutation, flips), farthest-first from identity.

    Each is a signed permutation matrix with determinant +1. The order is greedy farthest-point
    (largest smallest rotation angle to those already chosen), so any prefix is well spread.
    """
    elements = []
    for permutation in itertools.permutations(range(3)):
        for flips in itertools.product((False, True), repeat=3):
            matrix = np.zeros((3, 3))
            for row, (column, flip) in enumerate(zip(permutation, flips, strict=True)):
                matrix[row, column] = -1.0 if flip else 1.0
            if np.linalg.det(matrix) > 0:
                elements.append((permutation, flips, matrix))

    def angle(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.arccos(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0)))

    identity = next(e for e in elements if np.allclose(e[2], np.eye(3)))
    chosen = [identity]
    rest = [e for e in elements if e is not identity]
    while rest:
        distances = [min(angle(e[2], c[2]) for c in chosen) for e in rest]
        chosen.append(rest.pop(int(np.argmax(distances))))
    return tuple((tuple(p), tuple(f)) for p, f, _ in chosen)  # type: ignore[misc]


def cube_rotations(n: int) -> tuple[tuple[tuple[int, int, int], tuple[bool, bool, bool]], ...]:
    """The first ``n`` (1 … 24) proper cube rotations, identity first, well spread."""
    if not 1 <= int(n) <= N_CUBE_ROTATIONS:
        raise InputError(f"feature rotations {n!r}: expected an integer from 1 to 24")
    return _all_cube_rotations()[: int(n)]


def rotate_cube(
    volumes: torch.Tensor, rotation: tuple[tuple[int, int, int], tuple[bool, bool, bool]]
) -> torch.Tensor:
    """Rotate cubic ``(..., Z, Y, X)`` volumes by one of :func:`cube_rotations` (exact)."""
    permutation, flips = rotation
    lead = volumes.dim() - 3
    out = volumes.permute(*range(lead), *(lead + p for p in permutation))
    axes = [lead + axis for axis, flip in enumerate(flips) if flip]
    return out.flip(axes) if axes else out
