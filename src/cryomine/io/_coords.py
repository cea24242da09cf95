"""Plain coordinate text files: one particle per line, ``x y z`` in voxels (TomoTwin ``.coords``).

Columns are separated by any whitespace (or commas); blank lines and lines starting with ``#`` are
skipped. Coordinates are read as 0-based voxel coordinates, like RELION 4's
(``docs/conventions.md``). Internally they are returned in **z, y, x** order.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from cryomine.errors import InputError
from cryomine.io._atomic import atomic_write_text, check_writable

__all__ = ["read_coords", "write_coords"]

logger = logging.getLogger(__name__)


def read_coords(path: Path | str) -> np.ndarray:
    """Read a ``.coords`` text file.

    Parameters
    ----------
    path
        Text file with ``x y z`` (voxels) per line; extra columns are refused.

    Returns
    -------
    ndarray, shape (N, 3), float64
        Positions in voxels, **z, y, x** order; ``(0, 3)`` for a file with no points.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a text file of coordinates ({error})") from error
    rows: list[list[float]] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.replace(",", " ").split()
        try:
            values = [float(field) for field in fields]
        except ValueError as error:
            raise InputError(
                f"{path}:{number}: expected three numbers x y z, got {text!r}"
            ) from error
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise InputError(f"{path}:{number}: expected three finite numbers x y z, got {text!r}")
        rows.append(values)
    xyz = np.array(rows, dtype=np.float64).reshape(-1, 3)
    logger.info("read %d coordinates from %s", len(xyz), path)
    return np.ascontiguousarray(xyz[:, ::-1])


def write_coords(path: Path | str, positions: np.ndarray, *, overwrite: bool = True) -> Path:
    """Write positions ``(N, 3)`` (voxels, z, y, x) as ``x y z`` lines, atomically.

    Values are written in full precision (they read back exactly).
    """
    path = Path(path)
    zyx = np.asarray(positions, dtype=np.float64)
    if zyx.ndim != 2 or zyx.shape[1] != 3:
        raise InputError(f"positions: expected shape (N, 3) in z, y, x order, got {zyx.shape}")
    if not np.all(np.isfinite(zyx)):
        raise InputError(f"positions for {path}: contain NaN or Inf")
    check_writable(path, overwrite=overwrite)
    text = "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in zyx[:, ::-1])
    atomic_write_text(path, text)
    return path
