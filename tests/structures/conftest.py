"""Fixtures for the structure library tests: tiny synthetic atomic models written as PDB files."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cryomine.structures import structure_path


def _pdb_text(positions_xyz: np.ndarray, element: str = "C") -> str:
    lines = []
    for i, (x, y, z) in enumerate(positions_xyz, start=1):
        head = f"ATOM  {i:5d}  {element:<3} GLY A{i:4d}    "
        lines.append(f"{head}{x:8.3f}{y:8.3f}{z:8.3f}  1.00 20.00          {element:>2}")
    return "\n".join([*lines, "END", ""])


@pytest.fixture
def write_pdb(tmp_path: Path) -> Callable[[np.ndarray, str], Path]:
    """Write atoms (n, 3) at x, y, z Å as carbon atoms into ``tmp_path / name``."""

    def write(positions_xyz: np.ndarray, name: str = "model.pdb") -> Path:
        path = tmp_path / name
        path.write_text(_pdb_text(np.asarray(positions_xyz, dtype=float)))
        return path

    return write


@pytest.fixture
def rubisco_copies(tmp_path: Path) -> dict[str, Path]:
    """The shipped 1bxn model copied outside the package: gzipped and plain."""
    gz = tmp_path / "copy_1bxn.pdb.gz"
    shutil.copyfile(structure_path("1bxn"), gz)
    plain = tmp_path / "copy_1bxn.pdb"
    with gzip.open(gz, "rb") as source, plain.open("wb") as target:
        shutil.copyfileobj(source, target)
    return {"gz": gz, "plain": plain}
