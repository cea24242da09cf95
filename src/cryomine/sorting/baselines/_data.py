"""The baselines' reference maps as one checked stack (subtomograms: ``sorting._source``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cryomine.errors import InputError

__all__ = ["as_reference_stack"]


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
