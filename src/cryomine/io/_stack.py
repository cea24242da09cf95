"""Checking a stack of subtomograms: one rule for every stage that takes them as an array."""

from __future__ import annotations

from typing import Any

import numpy as np

from cryomine.errors import InputError

__all__ = ["as_subtomogram_stack"]


def as_subtomogram_stack(
    values: Any,
    *,
    name: str = "subtomograms",
    minimum: int = 0,
    min_box: int = 1,
    dtype: type | None = np.float32,
) -> np.ndarray:
    """``values`` as a ``(N, S, S, S)`` array (axes particle, z, y, x) of ``dtype``, checked.

    Raises :class:`~cryomine.errors.InputError`, naming ``name``, unless the array is 4-D with
    cubic boxes of edge ``S >= min_box``, holds at least ``minimum`` subtomograms and every
    value is finite. ``dtype=None`` keeps the input's type; input already of ``dtype`` is not
    copied.
    """
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 4 or len(set(array.shape[1:])) != 1 or array.shape[1] < min_box:
        edge = f" with S >= {min_box}" if min_box > 1 else ""
        raise InputError(
            f"{name}: expected an (N, S, S, S) stack of cubic boxes{edge}, got shape {array.shape}"
        )
    if array.shape[0] < minimum:
        raise InputError(f"{name}: {array.shape[0]} given, expected at least {minimum}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: contain NaN or Inf")
    return array
