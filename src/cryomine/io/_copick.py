"""copick picks files (JSON): read into, and write from, canonical particle tables.

A copick picks file holds one object type in one run::

    {"pickable_object_name": ..., "user_id": ..., "session_id": ..., "run_name": ...,
     "voxel_spacing": 10.0, "unit": "angstrom", "trust_orientation": true,
     "points": [{"location": {"x": .., "y": .., "z": ..}, "transformation_": [[4 x 4]],
                 "instance_id": 0, "score": 1.0}, ...]}

``location`` is in Å from the tomogram origin (``x_px · voxel_size``). ``transformation_`` is a
4 x 4 affine matrix from object (reference) space to tomogram space, acting on x, y, z column
vectors: its 3 x 3 block is cryomine's active reference→particle rotation (the matrix of
``Rotation.from_euler("ZYZ", [rot, tilt, psi], degrees=True).inv()``), and its translation is a
shift in Å *added* to ``location`` (the particle centre is ``location + transformation_[:3, 3]``).
Written files have zero translation.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.io._atomic import atomic_write_text, check_writable
from cryomine.io._particle_table import (
    COLUMNS,
    canonical_particles,
    new_particle_table,
    positions_zyx,
    rotations_from_table,
)

__all__ = ["COPICK_INSTANCE_ID", "read_copick_picks", "write_copick_picks"]

logger = logging.getLogger(__name__)

#: Table column that keeps copick's ``instance_id``.
COPICK_INSTANCE_ID = "cmCopickInstanceId"

_HEADER = ("pickable_object_name", "user_id", "session_id", "run_name")


def _point_pose(path: Path, number: int, point: Any) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Location + shift (Å, x, y, z), rotation matrix, score and instance id of one point."""
    try:
        location = np.array([float(point["location"][axis]) for axis in "xyz"])
        matrix = np.array(point.get("transformation_", np.eye(4)), dtype=np.float64)
        score = float(point.get("score", 1.0) if point.get("score") is not None else 1.0)
        instance = int(point.get("instance_id", 0) or 0)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"{path}: point {number} is malformed ({error!r})") from error
    if (
        matrix.shape != (4, 4)
        or not np.all(np.isfinite(matrix))
        or not np.all(np.isfinite(location))
    ):
        raise InputError(
            f"{path}: point {number} needs a finite location and a 4 x 4 transformation_"
        )
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise InputError(f"{path}: point {number}: transformation_ bottom row must be 0 0 0 1")
    rotation = matrix[:3, :3]
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
        raise InputError(f"{path}: point {number}: transformation_ is not a rotation plus a shift")
    return location + matrix[:3, 3], rotation, score, instance


def read_copick_picks(path: Path | str, *, voxel_size_a: float | None = None) -> pd.DataFrame:
    """Read a copick picks JSON file into a canonical particle table.

    Parameters
    ----------
    path
        copick picks file (``unit`` must be ``"angstrom"`` if given).
    voxel_size_a
        Voxel size (Å) of the tomogram the returned coordinates refer to; defaults to the file's
        ``voxel_spacing`` (an :class:`InputError` if it has none).

    Returns
    -------
    DataFrame
        Canonical table: ``rlnTomoName`` = ``run_name``, coordinates = (location + shift) /
        voxel size, angles from ``transformation_``, score, ``cmCopickInstanceId``. The header
        fields are in ``table.attrs["copick"]``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a copick picks JSON file ({error})") from error
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: not a copick picks JSON file (expected an object at the top level)"
        )
    unit = data.get("unit", "angstrom")
    if unit != "angstrom":
        raise InputError(f"{path}: unit {unit!r}; expected 'angstrom'")
    voxel = voxel_size_a if voxel_size_a is not None else data.get("voxel_spacing")
    if voxel is None or not (math.isfinite(float(voxel)) and float(voxel) > 0):
        raise InputError(f"{path}: no usable voxel_spacing ({voxel!r}); pass the voxel size in Å")
    poses = [_point_pose(path, i, p) for i, p in enumerate(data.get("points") or [])]
    locations = np.array([p[0] for p in poses], dtype=np.float64).reshape(-1, 3)
    matrices = np.array([p[1] for p in poses], dtype=np.float64).reshape(-1, 3, 3)
    run_name = str(data.get("run_name") or path.stem)
    table = new_particle_table(
        locations[:, ::-1] / float(voxel),
        tomo_name=run_name,
        pixel_size_a=float(voxel),
        rotations=Rotation.from_matrix(matrices) if len(poses) else None,
        scores=np.array([p[2] for p in poses], dtype=np.float64),
    )
    table[COPICK_INSTANCE_ID] = np.array([p[3] for p in poses], dtype=np.int64)
    table.attrs["copick"] = {key: data.get(key) for key in (*_HEADER, "voxel_spacing")}
    logger.info("read %d copick picks from %s", len(table), path)
    return table


def write_copick_picks(
    path: Path | str,
    table: pd.DataFrame,
    *,
    object_name: str,
    user_id: str = "cryomine",
    session_id: str = "0",
    run_name: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a particle table as a copick picks JSON file, atomically.

    Parameters
    ----------
    path
        Output ``.json`` file (copick names it ``<user_id>_<session_id>_<object_name>.json``).
    table
        Canonical particle table of one tomogram (one ``rlnTomoName``) and one pixel size.
        Positions (:func:`positions_zyx`) become ``location`` in Å; rotations
        (:func:`rotations_from_table`) the 3 x 3 block of ``transformation_``; the score column
        ``score`` (1.0 when absent); ``cmCopickInstanceId`` ``instance_id`` (0 when absent).
    object_name, user_id, session_id
        copick header fields.
    run_name
        copick run; defaults to the table's single ``rlnTomoName``.
    overwrite
        Replace an existing file.
    """
    path = Path(path)
    check_writable(path, overwrite=overwrite)
    table = canonical_particles(table, source=str(path))
    names = table[COLUMNS.tomo_name].unique()
    if run_name is None:
        if len(names) != 1:
            raise InputError(
                f"{path}: a copick picks file holds one run; the table has {len(names)} tomograms"
            )
        run_name = str(names[0])
    pixel = np.unique(table[COLUMNS.pixel_size].to_numpy())
    if len(pixel) > 1:
        raise InputError(
            f"{path}: the table mixes pixel sizes {pixel.tolist()} Å; rescale it first"
        )
    voxel = float(pixel[0]) if len(pixel) else None
    locations = positions_zyx(table)[:, ::-1] * (voxel or 1.0)
    matrices = rotations_from_table(table).as_matrix().reshape(-1, 3, 3)
    scores = (
        table[COLUMNS.score].to_numpy(dtype=np.float64)
        if COLUMNS.score in table
        else np.ones(len(table))
    )
    instances = (
        table[COPICK_INSTANCE_ID].to_numpy()
        if COPICK_INSTANCE_ID in table
        else np.zeros(len(table))
    )
    points = []
    for location, matrix, score, instance in zip(
        locations, matrices, scores, instances, strict=True
    ):
        transformation = np.eye(4)
        transformation[:3, :3] = matrix
        points.append(
            {
                "location": dict(zip("xyz", (float(v) for v in location), strict=True)),
                "transformation_": transformation.tolist(),
                "instance_id": int(instance),
                "score": float(score),
            }
        )
    document = {
        "pickable_object_name": object_name,
        "user_id": user_id,
        "session_id": session_id,
        "run_name": run_name,
        "voxel_spacing": voxel,
        "unit": "angstrom",
        "trust_orientation": set(COLUMNS.angles) <= set(table.columns),
        "points": points,
    }
    atomic_write_text(path, json.dumps(document, indent=1) + "\n")
    return path
