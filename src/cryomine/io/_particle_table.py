"""The canonical particle table: column names, validation, and the position/rotation conversions.

A particle table is a :class:`pandas.DataFrame` with one row per particle, in RELION column names,
so that it can be written to a STAR file as it is. Its *canonical* form has

========================== ======= =========================================================
column                     dtype   meaning
========================== ======= =========================================================
``rlnTomoName``            str     tomogram the particle lies in
``rlnCoordinateX/Y/Z``     float   0-based voxel coordinates in that tomogram (x, y, z)
``rlnImagePixelSize``      float   Å per voxel of those coordinates
``rlnAngleRot/Tilt/Psi``   float   optional; RELION ZYZ Euler angles in degrees
``rlnClassNumber``         int     optional; class, 1-based
``rlnAutopickFigureOfMerit`` float optional; picking score
``cmParticleId``           int     stable particle id (1..N when a file has none)
``cmStructure``            str     optional truth: the structure simulated there
``cmTrueClass``            int     optional truth: 1-based true class
========================== ======= =========================================================

Any other column is kept untouched. The conversions between these columns and cryomine's internal
``(N, 3)`` z, y, x voxel arrays and :class:`~scipy.spatial.transform.Rotation` objects live here
and nowhere else (see ``docs/conventions.md``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError

__all__ = [
    "COLUMNS",
    "canonical_particles",
    "new_particle_table",
    "positions_zyx",
    "rescale_positions",
    "rotations_from_table",
    "set_positions_zyx",
    "set_rotations",
    "tomogram_name",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Columns:
    """Names of the particle-table columns; use ``COLUMNS.<name>`` rather than string literals."""

    tomo_name: str = "rlnTomoName"
    micrograph_name: str = "rlnMicrographName"
    xyz: tuple[str, str, str] = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
    centered_xyz_angst: tuple[str, str, str] = (
        "rlnCenteredCoordinateXAngst",
        "rlnCenteredCoordinateYAngst",
        "rlnCenteredCoordinateZAngst",
    )
    origin_xyz_angst: tuple[str, str, str] = (
        "rlnOriginXAngst",
        "rlnOriginYAngst",
        "rlnOriginZAngst",
    )
    pixel_size: str = "rlnImagePixelSize"
    angles: tuple[str, str, str] = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
    subtomogram_angles: tuple[str, str, str] = (
        "rlnTomoSubtomogramRot",
        "rlnTomoSubtomogramTilt",
        "rlnTomoSubtomogramPsi",
    )
    class_number: str = "rlnClassNumber"
    score: str = "rlnAutopickFigureOfMerit"
    particle_id: str = "cmParticleId"
    structure: str = "cmStructure"
    true_class: str = "cmTrueClass"
    sort_stage: str = "cmSortStage"  # 1-based stage of a multi-stage sort that found the class

    @property
    def required(self) -> tuple[str, ...]:
        """Columns every canonical table has."""
        return (self.tomo_name, *self.xyz, self.pixel_size)


#: The particle-table column names.
COLUMNS = _Columns()

_STR_COLUMNS = (COLUMNS.tomo_name, COLUMNS.structure)
_INT_COLUMNS = (COLUMNS.class_number, COLUMNS.particle_id, COLUMNS.true_class, COLUMNS.sort_stage)
_FLOAT_COLUMNS = (*COLUMNS.xyz, COLUMNS.pixel_size, *COLUMNS.angles, COLUMNS.score)


def canonical_particles(table: pd.DataFrame, *, source: str = "particle table") -> pd.DataFrame:
    """Return a copy of ``table`` in canonical form, or raise :class:`InputError`.

    Checks that the required columns are present and finite and that pixel sizes are positive,
    coerces the known columns to their dtypes, takes ``rlnTomoName`` from ``rlnMicrographName``
    when only that is present, and numbers the particles 1..N in ``cmParticleId`` if that column
    is missing. ``source`` names the file or table in error messages.
    """
    table = table.reset_index(drop=True).copy()
    if COLUMNS.tomo_name not in table.columns and COLUMNS.micrograph_name in table.columns:
        table[COLUMNS.tomo_name] = table[COLUMNS.micrograph_name]
    missing = [name for name in COLUMNS.required if name not in table.columns]
    if missing:
        raise InputError(f"{source}: missing particle column(s) {', '.join(missing)}")
    for name in _STR_COLUMNS:
        if name in table.columns:
            table[name] = table[name].astype(str)
    for name in _FLOAT_COLUMNS:
        if name in table.columns:
            table[name] = _as_float(table[name], name, source)
    for name in _INT_COLUMNS:
        if name in table.columns:
            table[name] = _as_int(table[name], name, source)
    for name in (*COLUMNS.xyz, COLUMNS.pixel_size, *COLUMNS.angles):
        if name in table.columns and not np.all(np.isfinite(table[name].to_numpy())):
            raise InputError(f"{source}: column {name} holds NaN or Inf; expected finite numbers")
    if len(table) and np.any(table[COLUMNS.pixel_size].to_numpy() <= 0):
        raise InputError(f"{source}: {COLUMNS.pixel_size} must be positive (Å per voxel)")
    if COLUMNS.particle_id not in table.columns:
        table[COLUMNS.particle_id] = np.arange(1, len(table) + 1, dtype=np.int64)
    return table


def _as_float(column: pd.Series, name: str, source: str) -> pd.Series:
    try:
        return pd.to_numeric(column, errors="raise").astype(np.float64)
    except (ValueError, TypeError) as error:
        raise InputError(f"{source}: column {name} must hold numbers ({error})") from error


def _as_int(column: pd.Series, name: str, source: str) -> pd.Series:
    values = _as_float(column, name, source).to_numpy()
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise InputError(f"{source}: column {name} must hold whole numbers")
    return pd.Series(values.astype(np.int64), index=column.index, name=name)


def new_particle_table(
    positions: np.ndarray,
    *,
    tomo_name: str | Sequence[str],
    pixel_size_a: float,
    rotations: Rotation | None = None,
    scores: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build a canonical particle table from internal arrays.

    Parameters
    ----------
    positions : ndarray, shape (N, 3)
        Particle centres in voxels of the tomogram, **z, y, x** order, 0-based.
    tomo_name
        One tomogram name for all rows, or one per row.
    pixel_size_a
        Å per voxel of ``positions``.
    rotations
        ``N`` active reference→particle rotations (x, y, z vectors); written as RELION angles.
    scores : ndarray, shape (N,), optional
        Written to ``COLUMNS.score``.

    Returns
    -------
    DataFrame
        Canonical table with ``cmParticleId`` 1..N.
    """
    zyx = _check_positions(positions)
    names = [tomo_name] * len(zyx) if isinstance(tomo_name, str) else [str(n) for n in tomo_name]
    if len(names) != len(zyx):
        raise InputError(f"tomo_name: {len(names)} names for {len(zyx)} positions")
    table = pd.DataFrame({COLUMNS.tomo_name: pd.Series(names, dtype=str)})
    for axis, name in enumerate(COLUMNS.xyz):
        table[name] = zyx[:, 2 - axis]
    table[COLUMNS.pixel_size] = float(pixel_size_a)
    if rotations is not None:
        set_rotations(table, rotations)
    if scores is not None:
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(values) != len(zyx):
            raise InputError(f"scores: {len(values)} values for {len(zyx)} positions")
        table[COLUMNS.score] = values
    return canonical_particles(table)


def _check_positions(positions: np.ndarray) -> np.ndarray:
    zyx = np.asarray(positions, dtype=np.float64)
    if zyx.ndim != 2 or zyx.shape[1] != 3:
        raise InputError(f"positions: expected shape (N, 3) in z, y, x order, got {zyx.shape}")
    if not np.all(np.isfinite(zyx)):
        raise InputError("positions: contain NaN or Inf")
    return zyx


def _origin_shift_px(table: pd.DataFrame) -> np.ndarray:
    """RELION origin shifts converted to voxels, x, y, z; (N, 3) zeros when absent."""
    if not set(COLUMNS.origin_xyz_angst) <= set(table.columns):
        return np.zeros((len(table), 3))
    origin_a = table[list(COLUMNS.origin_xyz_angst)].to_numpy(dtype=np.float64)
    if set(COLUMNS.subtomogram_angles) <= set(table.columns):
        origin_a = _subtomogram_rotations(table).apply(origin_a) if len(table) else origin_a
    return origin_a / table[COLUMNS.pixel_size].to_numpy(dtype=np.float64)[:, None]


def positions_zyx(table: pd.DataFrame) -> np.ndarray:
    """Particle centres as an ``(N, 3)`` float64 array in voxels, **z, y, x** order.

    The centre is RELION's: ``rlnCoordinate - rlnOrigin…Angst / rlnImagePixelSize`` (the origin
    shift rotated by the subtomogram orientation when ``rlnTomoSubtomogram…`` angles are present);
    without origin columns it is the coordinate itself.
    """
    xyz = table[list(COLUMNS.xyz)].to_numpy(dtype=np.float64) - _origin_shift_px(table)
    return np.ascontiguousarray(xyz[:, ::-1])


def set_positions_zyx(table: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """Write ``positions`` ``(N, 3)`` (voxels, z, y, x) into ``table`` in place and return it.

    Origin shift columns, if present, are set to 0 so that :func:`positions_zyx` returns
    ``positions`` exactly.
    """
    zyx = _check_positions(positions)
    if len(zyx) != len(table):
        raise InputError(f"positions: {len(zyx)} rows for a table of {len(table)} particles")
    for axis, name in enumerate(COLUMNS.xyz):
        table[name] = zyx[:, 2 - axis]
    for name in COLUMNS.origin_xyz_angst:
        if name in table.columns:
            table[name] = 0.0
    return table


def rescale_positions(table: pd.DataFrame, pixel_size_a: float) -> pd.DataFrame:
    """Return a copy whose coordinates refer to voxels of ``pixel_size_a`` Å (e.g. after binning).

    Physical positions are kept: ``x_new = x_old · old_pixel_size / pixel_size_a`` (voxel 0 stays at
    the origin).
    """
    if not (np.isfinite(pixel_size_a) and pixel_size_a > 0):
        raise InputError(f"pixel size {pixel_size_a!r} Å: expected a positive number")
    table = table.copy()
    factor = table[COLUMNS.pixel_size].to_numpy(dtype=np.float64) / float(pixel_size_a)
    for name in COLUMNS.xyz:
        table[name] = table[name].to_numpy(dtype=np.float64) * factor
    table[COLUMNS.pixel_size] = float(pixel_size_a)
    return table


def _euler_rotations(table: pd.DataFrame, names: tuple[str, str, str]) -> Rotation:
    angles = table[list(names)].to_numpy(dtype=np.float64).reshape(-1, 3)
    return Rotation.from_euler("ZYZ", angles, degrees=True).inv()


def _subtomogram_rotations(table: pd.DataFrame) -> Rotation:
    return _euler_rotations(table, COLUMNS.subtomogram_angles)


def rotations_from_table(table: pd.DataFrame) -> Rotation:
    """The particles' orientations as ``N`` active reference→particle rotations (x, y, z vectors).

    ``Rotation.from_euler("ZYZ", [rot, tilt, psi], degrees=True).inv()`` of RELION's
    ``rlnAngleRot/Tilt/Psi``; composed as ``A_subtomogram · A_particle`` with RELION 5's
    ``rlnTomoSubtomogramRot/Tilt/Psi`` when present. Identity rotations when the angle columns are
    absent. Always a stack (``len(result) == N``), also for one particle.
    """
    n = len(table)
    if not set(COLUMNS.angles) <= set(table.columns):
        return Rotation.identity(n) if n else Rotation.from_quat(np.empty((0, 4)))
    if n == 0:
        return Rotation.from_quat(np.empty((0, 4)))
    rotations = _euler_rotations(table, COLUMNS.angles)
    if set(COLUMNS.subtomogram_angles) <= set(table.columns):
        rotations = _subtomogram_rotations(table) * rotations
    return rotations


def set_rotations(table: pd.DataFrame, rotations: Rotation) -> pd.DataFrame:
    """Write ``rotations`` (active, reference→particle) as RELION angles in place; return ``table``.

    Angles are ZYZ in degrees, rot and psi in (-180, 180], tilt in [0, 180]. At tilt 0 or 180
    (gimbal lock) psi is set to 0 and rot carries the whole in-plane angle. ``rlnTomoSubtomogram…``
    angles, if present, are set to 0 so that :func:`rotations_from_table` returns ``rotations``.
    """
    if rotations.single:
        rotations = Rotation.concatenate([rotations])
    if len(rotations) != len(table):
        raise InputError(
            f"rotations: {len(rotations)} rotations for a table of {len(table)} particles"
        )
    if len(table):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Gimbal lock detected", category=UserWarning)
            angles = rotations.inv().as_euler("ZYZ", degrees=True)
    else:
        angles = np.empty((0, 3))
    for axis, name in enumerate(COLUMNS.angles):
        table[name] = angles[:, axis]
    for name in COLUMNS.subtomogram_angles:
        if name in table.columns:
            table[name] = 0.0
    return table


def tomogram_name(path: Path | str) -> str:
    """The ``rlnTomoName`` for a tomogram file: its name without suffixes and a ``rec_`` prefix.

    ``/data/rec_TS_01.mrc`` → ``TS_01``; ``TS_01.rec.gz`` → ``TS_01``. The same rule is used
    wherever cryomine names a tomogram, so tables written by different verbs match.
    """
    name = Path(path).name
    for suffix in (".gz", ".mrc", ".rec", ".st", ".map", ".ali"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.removeprefix("rec_")
