"""RELION STAR particle tables (RELION 4 pixel and RELION 5 centred-Å flavours), via ``starfile``.

Reading returns the canonical particle table of :mod:`cryomine.io._particle_table`: coordinates in
0-based voxels (``rlnCoordinateX/Y/Z``) with their pixel size (``rlnImagePixelSize``) on every
row. RELION 5 centred coordinates are converted with RELION 5's own definition,
``x_angst = (x_px - size_x / 2) · pixel_size`` with ``size_x / 2`` a float.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
import pandas as pd
import starfile

from cryomine.errors import InputError
from cryomine.io._atomic import atomic_path
from cryomine.io._particle_table import COLUMNS, canonical_particles

__all__ = [
    "TomogramShapes",
    "read_particles",
    "read_sorted_particles",
    "read_star_blocks",
    "read_tomogram_sizes",
    "write_particles",
    "write_sorted_particles",
]

logger = logging.getLogger(__name__)

#: Sizes of tomograms, ``(z, y, x)`` in voxels, per ``rlnTomoName``. Floats are allowed: a
#: tomogram's size expressed in voxels of another pixel size need not be whole.
TomogramShapes = Mapping[str, tuple[float, float, float]]

_STRING_COLUMNS = [COLUMNS.tomo_name, COLUMNS.micrograph_name, COLUMNS.structure, "rlnImageName"]
_NAME_SUFFIXES = (".tomostar", ".mrc", ".rec", ".st", ".map", ".mrcs", ".ali", ".zarr")
_OPTICS_PIXEL_SIZES = ("rlnImagePixelSize", "rlnTomoTiltSeriesPixelSize", "rlnDetectorPixelSize")


def read_star_blocks(path: Path | str) -> dict[str, Any]:
    """Read every data block of a STAR file: loops as DataFrames, simple blocks as dicts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            # starfile 0.5 leaves its file handle to the garbage collector
            warnings.simplefilter("ignore", ResourceWarning)
            blocks = starfile.read(path, always_dict=True, parse_as_string=_STRING_COLUMNS)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        UnicodeDecodeError,
        pd.errors.ParserError,
    ) as error:
        raise InputError(f"{path}: not a readable STAR file ({error})") from error
    if not blocks:
        raise InputError(f"{path}: no data blocks; expected a STAR file with a particle table")
    return dict(blocks)


def _particle_block(path: Path, blocks: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Pick the particle loop (``data_particles`` or the only loop) and the optics loop, if any."""
    loops = {name: block for name, block in blocks.items() if isinstance(block, pd.DataFrame)}
    optics = loops.get("optics")
    if "particles" in loops:
        return loops["particles"], optics
    candidates = [block for name, block in loops.items() if name != "optics"]
    if len(candidates) == 1:
        return candidates[0], optics
    raise InputError(
        f"{path}: cannot tell which table holds the particles "
        f"(blocks: {', '.join(blocks) or 'none'}); expected data_particles or a single loop"
    )


def _pixel_size_from_optics(
    path: Path, particles: pd.DataFrame, optics: pd.DataFrame
) -> np.ndarray | None:
    column = next((c for c in _OPTICS_PIXEL_SIZES if c in optics.columns), None)
    if column is None:
        return None
    if "rlnOpticsGroup" in particles.columns and "rlnOpticsGroup" in optics.columns:
        lookup = dict(zip(optics["rlnOpticsGroup"], optics[column], strict=True))
        groups = particles["rlnOpticsGroup"].tolist()
        unknown = sorted({g for g in groups if g not in lookup})
        if unknown:
            raise InputError(
                f"{path}: optics group(s) {unknown} of the particles are not in data_optics"
            )
        return np.array([float(lookup[g]) for g in groups])
    if len(optics) == 1:
        return np.full(len(particles), float(optics[column].iloc[0]))
    raise InputError(
        f"{path}: several optics groups but the particles have no rlnOpticsGroup column"
    )


def _shape_key(name: str) -> str:
    base = PurePath(str(name)).name
    for suffix in _NAME_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _sizes_xyz(
    path: Path | str, names: pd.Series, tomogram_shapes: TomogramShapes | None
) -> np.ndarray:
    """Per-row tomogram sizes ``(N, 3)`` in x, y, z order, looked up by name (exact, then stem)."""
    if tomogram_shapes is None:
        raise InputError(
            f"{path}: RELION 5 centred coordinates need the tomogram sizes; pass tomogram_shapes "
            "(z, y, x voxels per rlnTomoName), e.g. from read_tomogram_sizes(<tomograms.star>)"
        )
    by_key = {_shape_key(k): v for k, v in tomogram_shapes.items()}
    rows: dict[str, tuple[float, float, float]] = {}
    missing = []
    for name in names.unique():
        shape = tomogram_shapes.get(name, by_key.get(_shape_key(name)))
        if shape is None:
            missing.append(name)
        elif len(shape) != 3 or not all(math.isfinite(float(s)) and float(s) > 0 for s in shape):
            raise InputError(
                f"tomogram_shapes[{name!r}] = {shape!r}: expected three positive sizes (z, y, x)"
            )
        else:
            rows[name] = shape
    if missing:
        raise InputError(
            f"{path}: no tomogram shape given for rlnTomoName {', '.join(map(str, missing))}"
        )
    return np.array(
        [[float(s) for s in rows[name][::-1]] for name in names], dtype=np.float64
    ).reshape(-1, 3)


def read_particles(
    path: Path | str,
    *,
    tomogram_shapes: TomogramShapes | None = None,
    pixel_size_a: float | None = None,
) -> pd.DataFrame:
    """Read a RELION particle STAR file into a canonical particle table.

    Parameters
    ----------
    path
        A bare particle loop, or the RELION 3.1+/5 form with ``data_optics`` and
        ``data_particles``. Coordinates are either RELION 4 ``rlnCoordinateX/Y/Z`` (voxels) or
        RELION 5 ``rlnCenteredCoordinateX/Y/ZAngst`` (Å from the tomogram centre).
    tomogram_shapes
        ``{rlnTomoName: (z, y, x)}`` tomogram sizes in voxels of ``pixel_size_a``; needed only for
        RELION 5 centred coordinates. Names also match without directory and suffix
        (``Unt_083.tomostar`` ↔ ``Unt_083``).
    pixel_size_a
        Å per voxel of the coordinates. For RELION 4 coordinates it overrides the pixel size the
        file states (``rlnImagePixelSize`` in the rows, else in ``data_optics``, then
        ``rlnTomoTiltSeriesPixelSize``, ``rlnDetectorPixelSize``); required when the file states
        none. For RELION 5 it is the voxel size the Å coordinates are converted into (that of
        ``tomogram_shapes``), defaulting to the file's. WarpTools writes ``rlnCoordinateX/Y/Z``
        in voxels of the optics ``rlnImagePixelSize``; RELION 4.0's own files use unbinned
        tilt-series pixels, so for those pass ``rlnTomoTiltSeriesPixelSize`` here when the optics
        group also states a (binned) ``rlnImagePixelSize``.

    Returns
    -------
    DataFrame
        Canonical table (see :mod:`cryomine.io._particle_table`); RELION 5 centred columns are
        replaced by ``rlnCoordinateX/Y/Z``; ``cmParticleId`` is 1..N if the file has none.
    """
    path = Path(path)
    if pixel_size_a is not None and not (math.isfinite(pixel_size_a) and pixel_size_a > 0):
        raise InputError(f"pixel size {pixel_size_a!r} Å: expected a positive number")
    particles, optics = _particle_block(path, read_star_blocks(path))
    table = particles.reset_index(drop=True).copy()
    file_pixel_size: np.ndarray | None = None
    if COLUMNS.pixel_size in table.columns:
        file_pixel_size = pd.to_numeric(table[COLUMNS.pixel_size], errors="coerce").to_numpy(
            dtype=np.float64
        )
    elif optics is not None:
        file_pixel_size = _pixel_size_from_optics(path, table, optics)
    if pixel_size_a is not None:
        if file_pixel_size is not None and not np.allclose(
            file_pixel_size, pixel_size_a, rtol=1e-4
        ):
            logger.warning("%s: using pixel size %.4g Å instead of the file's", path, pixel_size_a)
        pixel = np.full(len(table), float(pixel_size_a))
    elif file_pixel_size is not None:
        pixel = file_pixel_size
    else:
        raise InputError(
            f"{path}: the file states no pixel size (rlnImagePixelSize); "
            "pass the pixel size of its coordinates"
        )
    has_px = set(COLUMNS.xyz) <= set(table.columns)
    has_centred = set(COLUMNS.centered_xyz_angst) <= set(table.columns)
    if not has_px and has_centred:
        if COLUMNS.tomo_name not in table.columns:
            raise InputError(f"{path}: missing particle column(s) {COLUMNS.tomo_name}")
        names = table[COLUMNS.tomo_name].astype(str)
        sizes_xyz = _sizes_xyz(path, names, tomogram_shapes)
        centred = table[list(COLUMNS.centered_xyz_angst)].to_numpy(dtype=np.float64)
        xyz = centred / pixel[:, None] + sizes_xyz / 2.0
        position = table.columns.get_loc(COLUMNS.centered_xyz_angst[0])
        table = table.drop(columns=list(COLUMNS.centered_xyz_angst))
        for axis, name in enumerate(COLUMNS.xyz):
            table.insert(int(position) + axis, name, xyz[:, axis])
    elif has_px and has_centred:
        table = table.drop(columns=list(COLUMNS.centered_xyz_angst))
    table[COLUMNS.pixel_size] = pixel
    table = canonical_particles(table, source=str(path))
    logger.info("read %d particles from %s", len(table), path)
    return table


def read_tomogram_sizes(
    path: Path | str, *, pixel_size_a: float
) -> dict[str, tuple[float, float, float]]:
    """Tomogram sizes ``{rlnTomoName: (z, y, x)}`` from a RELION 5 / WarpTools tomograms STAR file.

    ``rlnTomoSizeX/Y/Z`` are in tilt-series pixels of ``rlnTomoTiltSeriesPixelSize``; they are
    returned in voxels of ``pixel_size_a`` (not rounded), ready for ``tomogram_shapes``.
    """
    path = Path(path)
    blocks = read_star_blocks(path)
    table = blocks.get("global")
    if not isinstance(table, pd.DataFrame):
        table = next((b for b in blocks.values() if isinstance(b, pd.DataFrame)), None)
    needed = [
        COLUMNS.tomo_name,
        "rlnTomoSizeX",
        "rlnTomoSizeY",
        "rlnTomoSizeZ",
        "rlnTomoTiltSeriesPixelSize",
    ]
    missing = [c for c in needed if table is None or c not in table.columns]
    if table is None or missing:
        raise InputError(
            f"{path}: not a RELION 5 tomograms table; missing column(s) {', '.join(missing)}"
        )
    scale = table["rlnTomoTiltSeriesPixelSize"].to_numpy(dtype=np.float64) / float(pixel_size_a)
    sizes = (
        table[["rlnTomoSizeZ", "rlnTomoSizeY", "rlnTomoSizeX"]].to_numpy(dtype=np.float64)
        * scale[:, None]
    )
    return {
        str(name): (float(z), float(y), float(x))
        for name, (z, y, x) in zip(table[COLUMNS.tomo_name].astype(str), sizes, strict=True)
    }


def _format_float(value: float) -> str:
    """Shortest text that reads back as the same float, always with a '.' or exponent."""
    return repr(float(value))


def write_particles(
    path: Path | str,
    table: pd.DataFrame,
    *,
    flavour: Literal["relion4", "relion5"] = "relion4",
    tomogram_shapes: TomogramShapes | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a particle table as a STAR file (``data_particles``), atomically.

    Parameters
    ----------
    path
        Output ``.star`` file.
    table
        Particle table; validated and written in canonical form with all its other columns.
    flavour
        ``"relion4"``: ``rlnCoordinateX/Y/Z`` in voxels (what Warp and RELION 4 read).
        ``"relion5"``: ``rlnCenteredCoordinateX/Y/ZAngst`` = ``(x - size_x / 2) · pixel_size``
        instead of the voxel coordinates; needs ``tomogram_shapes``.
    tomogram_shapes
        ``{rlnTomoName: (z, y, x)}`` sizes in voxels of the table's coordinates (relion5 only).
    overwrite
        Replace an existing file (after the new one is complete).
    """
    path = Path(path)
    if flavour not in ("relion4", "relion5"):
        raise InputError(f"STAR flavour {flavour!r}: expected 'relion4' or 'relion5'")
    table = canonical_particles(table, source=str(path))
    if flavour == "relion5":
        sizes_xyz = _sizes_xyz(path, table[COLUMNS.tomo_name], tomogram_shapes)
        xyz = table[list(COLUMNS.xyz)].to_numpy(dtype=np.float64)
        pixel = table[COLUMNS.pixel_size].to_numpy(dtype=np.float64)[:, None]
        centred = (xyz - sizes_xyz / 2.0) * pixel
        position = int(table.columns.get_loc(COLUMNS.xyz[0]))
        table = table.drop(columns=list(COLUMNS.xyz))
        for axis, name in enumerate(COLUMNS.centered_xyz_angst):
            table.insert(position + axis, name, centred[:, axis])
    with atomic_path(path, overwrite=overwrite) as tmp:
        starfile.write({"particles": table}, tmp, float_format=_format_float, na_rep="nan")
    logger.info("wrote %d particles to %s (%s)", len(table), path, flavour)
    return path


def write_sorted_particles(
    path: Path | str, table: pd.DataFrame, labels: Any, probabilities: Any
) -> Path:
    """Write ``table`` with ``rlnClassNumber`` (``labels`` + 1: 1-based) and
    ``rlnMaxValueProbDistribution`` (the row maxima of ``probabilities``, ``(N, K)``)."""
    out = table.copy()
    out[COLUMNS.class_number] = np.asarray(labels, dtype=np.int64) + 1
    out["rlnMaxValueProbDistribution"] = np.asarray(probabilities).max(axis=1)
    return write_particles(path, out)


def read_sorted_particles(run_dir: Path | str) -> pd.DataFrame:
    """The particle table of a sort run directory (``RUN_DIR/particles.star``), checked to carry
    ``rlnClassNumber``; ``InputError`` names the directory or file that is not a sort run."""
    run_dir = Path(run_dir)
    star = run_dir / "particles.star"
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: run directory not found")
    if not star.is_file():
        raise InputError(f"{run_dir}: no particles.star; expected a cryomine sort run directory")
    table = read_particles(star)
    if COLUMNS.class_number not in table.columns:
        raise InputError(f"{star}: no {COLUMNS.class_number} column; expected a sort run")
    return table
