"""Deprecated aliases of renamed public names, kept for one release with a ``FutureWarning``.

The user-facing word for a group of particles is *class* (RELION's ``rlnClassNumber``, the CLI,
the STAR files and the averages); the former *cluster* names (``n_clusters_``,
``min_cluster_size``, ...) still work through these helpers.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["renamed_argument", "renamed_property", "warn_renamed"]


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn (``FutureWarning``) that ``old`` is deprecated in favour of ``new``."""
    warnings.warn(f"{old} is deprecated; use {new}", FutureWarning, stacklevel=stacklevel)


def renamed_property(old: str, new: str) -> property:
    """A read-only property ``old`` that warns and returns the attribute ``new``."""

    def getter(self: Any) -> Any:
        warn_renamed(old, new)
        return getattr(self, new)

    return property(getter, doc=f"Deprecated alias of ``{new}`` (``FutureWarning``).")


def renamed_argument(old: str, new: str, old_value: Any, new_value: Any, *, default: Any = None,
                     stacklevel: int = 4) -> Any:  # fmt: skip
    """The value of argument ``new``, given the deprecated ``old`` (``None``: not passed).

    Passing ``old`` warns; passing both with different values raises ``TypeError``.
    """
    if old_value is None:
        return new_value
    warn_renamed(old, new, stacklevel=stacklevel)
    if new_value is not default and new_value != old_value:
        raise TypeError(f"got both {old}={old_value!r} and {new}={new_value!r}; pass only {new}")
    return old_value
