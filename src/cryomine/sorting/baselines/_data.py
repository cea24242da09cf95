"""Bringing the baselines' inputs into memory: subtomogram stacks and reference maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryomine.errors import InputError

__all__ = ["as_reference_stack", "as_subtomogram_array"]


def as_subtomogram_array(data: Any, *, minimum: int = 1) -> np.ndarray:
    """All subtomograms as one float32 ``(N, S, S, S)`` array (axes particle, z, y, x).

    Parameters
    ----------
    data
        An ``(N, S, S, S)`` array, or a :class:`cryomine.io.ParticleSet` (anything with
        ``n_particles`` and ``read(indices)``), read whole.
    minimum
        Fewest subtomograms accepted.
    """
    if hasattr(data, "read") and hasattr(data, "n_particles"):
        array = np.asarray(data.read(np.arange(int(data.n_particles))), dtype=np.float32)
    else:
        array = np.asarray(data, dtype=np.float32)
    if array.ndim != 4 or not (array.shape[1] == array.shape[2] == array.shape[3]):
        raise InputError(
            f"subtomograms of shape {array.shape}: expected an (N, S, S, S) stack of cubes"
        )
    if array.shape[0] < minimum:
        raise InputError(f"{array.shape[0]} subtomograms: expected at least {minimum}")
    if not np.isfinite(array).all():
        raise InputError("subtomograms: contain NaN or infinite values")
    return array


def as_reference_stack(
    references: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray, box_size: int
) -> tuple[list[str], np.ndarray]:
    """Reference names and a float32 ``(K, S, S, S)`` stack.

    Parameters
    ----------
    references
        Mapping name → ``(S, S, S)`` map, a sequence of maps (named ``"1"``, ``"2"``, …) or a
        ``(K, S, S, S)`` array.
    box_size
        Edge ``S`` every map must have (the subtomograms' box), voxels.
    """
    if isinstance(references, Mapping):
        names = [str(name) for name in references]
        maps = [np.asarray(v, dtype=np.float32) for v in references.values()]
    else:
        maps = [np.asarray(v, dtype=np.float32) for v in references]
        names = [str(i + 1) for i in range(len(maps))]
    if not maps:
        raise InputError("references: give at least one reference map")
    for name, volume in zip(names, maps, strict=True):
        if volume.shape != (box_size,) * 3:
            raise InputError(
                f"reference {name!r}: shape {volume.shape}, expected {(box_size,) * 3} "
                "(the subtomograms' box)"
            )
        if not np.isfinite(volume).all() or float(volume.std()) == 0.0:
            raise InputError(f"reference {name!r}: empty, constant or not finite")
    return names, np.stack(maps)
