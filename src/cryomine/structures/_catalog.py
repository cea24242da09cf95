"""The catalogue of built-in structures (``data/catalog.json``) and name lookup."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from cryomine.errors import InputError

__all__ = ["StructureInfo", "data_directory", "list_structures", "structure_info", "structure_path"]


@dataclass(frozen=True)
class StructureInfo:
    """One built-in structure.

    Attributes
    ----------
    name
        Lower-case name used to ask for it (``structure_density("1bxn", ...)``).
    description
        The molecule, in words.
    mass_kda
        Mass in kDa: of the atoms for atomic models; for maps, the mass their density is scaled
        to (``mass_source`` says where it comes from).
    diameter_a
        Largest extent (Å) of the molecular envelope (the contour holding ``mass / 0.81 Da Å⁻³``)
        of the map at 10 Å/voxel, 20 Å resolution.
    kind
        ``"atomic"`` (PDB/mmCIF model, density computed here) or ``"map"`` (density map).
    source
        Database and accession the data come from, e.g. ``"PDB 1BXN"``.
    license
        Licence of the shipped file.
    aliases
        Other accepted names (case-insensitive).
    file
        File name under ``cryomine/structures/data/``.
    mass_source
        How ``mass_kda`` was obtained.
    resolution_a
        Resolution (Å) of a shipped map; ``None`` for atomic models.
    provenance
        Where the file comes from and what was done to it.
    """

    name: str
    description: str
    mass_kda: float
    diameter_a: float
    kind: Literal["atomic", "map"]
    source: str
    license: str
    aliases: tuple[str, ...] = ()
    file: str = ""
    mass_source: str = ""
    resolution_a: float | None = None
    provenance: str = ""
    largest_component_only: bool = False


def data_directory() -> Path:
    """Folder holding the shipped structure files and ``catalog.json``."""
    return Path(str(resources.files("cryomine.structures").joinpath("data")))


@functools.cache
def _catalog() -> dict[str, StructureInfo]:
    raw: dict[str, Any] = json.loads(
        (data_directory() / "catalog.json").read_text(encoding="utf-8")
    )
    entries: dict[str, StructureInfo] = {}
    for item in raw["structures"]:
        info = StructureInfo(
            name=item["name"],
            description=item["description"],
            mass_kda=float(item["mass_kda"]),
            diameter_a=float(item["diameter_a"]),
            kind=item["kind"],
            source=item["source"],
            license=item["license"],
            aliases=tuple(item.get("aliases", ())),
            file=item["file"],
            mass_source=item.get("mass_source", ""),
            resolution_a=item.get("resolution_a"),
            provenance=item.get("provenance", ""),
            largest_component_only=bool(item.get("largest_component_only", False)),
        )
        entries[info.name] = info
    return entries


@functools.cache
def _lookup_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for info in _catalog().values():
        for key in (info.name, *info.aliases):
            table[key.lower()] = info.name
    return table


def list_structures() -> list[StructureInfo]:
    """All built-in structures, in catalogue order."""
    return list(_catalog().values())


def structure_info(name: str) -> StructureInfo:
    """The built-in structure called ``name`` (or one of its aliases), case-insensitive.

    Raises :class:`InputError` listing the available names when there is none.
    """
    key = _lookup_table().get(str(name).strip().lower())
    if key is None:
        available = ", ".join(info.name for info in _catalog().values())
        raise InputError(
            f"unknown structure {name!r}: expected one of {available} "
            "(or a path to a .pdb/.cif/.mmcif or .mrc/.map file)"
        )
    return _catalog()[key]


def structure_path(name: str) -> Path:
    """Path of the shipped file of the built-in structure ``name``."""
    return data_directory() / structure_info(name).file
