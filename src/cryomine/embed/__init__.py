"""Deprecated: the former name of :mod:`cryomine.place` (kept for one release).

*Embed* now means the picker's feature embeddings (``cryomine picker embed``); placing class
averages into a tomogram is :mod:`cryomine.place`. Each old name warns (``FutureWarning``) and
returns the new one: ``embed_averages`` → ``place_averages``, ``embed_run`` → ``place_run``,
``write_embedding`` → ``write_placement``; ``resample_average`` is unchanged.
"""

from __future__ import annotations

from typing import Any

from cryomine import place
from cryomine._deprecation import warn_renamed

_RENAMED = {
    "embed_averages": "place_averages",
    "embed_run": "place_run",
    "write_embedding": "write_placement",
    "resample_average": "resample_average",
}

__all__ = list(_RENAMED)


def __getattr__(name: str) -> Any:
    if name not in _RENAMED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    new = _RENAMED[name]
    warn_renamed(f"cryomine.embed.{name}", f"cryomine.place.{new}")
    return getattr(place, new)
