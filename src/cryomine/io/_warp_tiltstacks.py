"""Read Warp/RELION 5 particles exported as 2-D tilt-series stacks ("2D subtomograms").

WarpTools (``ts_export_particles --2d``) and RELION 5 can hand particles over as one small image
stack per particle: the particle cut out of every tilt image, centred on its projected position.
Three STAR files describe them:

* the **particle STAR** (``data_optics`` + ``data_particles``): per particle the tomogram
  (``rlnTomoName``), its position (``rlnCoordinateX/Y/Z`` in pixels of the optics group's
  ``rlnImagePixelSize``, or RELION 5 ``rlnCenteredCoordinateX/Y/ZAngst``), RELION ZYZ Euler angles,
  a 3-D origin shift (``rlnOriginX/Y/ZAngst``), the image stack (``rlnImageName``) and which tilt
  images show it (``rlnTomoVisibleFrames``, e.g. ``[0,1,1,...]``); ``rlnCtfDataAreCtfPremultiplied``
  in the optics table says whether the images were multiplied by their CTF on export;
* the **tomograms STAR**: ``data_global`` (tomogram size in tilt-series pixels, pixel size,
  voltage, Cs, amplitude contrast, ``rlnTomoHand``) and one loop per tomogram, one row per tilt,
  with the projection matrix as four rows ``rlnTomoProjX/Y/Z/W`` (``"[a,b,c,d]"``), the defocus
  ``rlnDefocusU/V`` (Å, underfocus positive), ``rlnCtfScalefactor`` and the dose before the tilt
  (``rlnMicrographPreExposure``, e⁻/Å²);
* optionally an **optimisation set** naming the other two (``rlnTomoParticlesFile``,
  ``rlnTomoTomogramsFile``).

Projection matrices (RELION 5): ``[u, v, w, 1]ᵀ = P · [x, y, z, 1]ᵀ`` maps a tomogram position
x, y, z to tilt-image pixel u, v (w is the depth along the beam). The upper-left 3×3 block is the
rotation ``R_t`` of tilt ``t``; the translation column only places the whole tomogram in the tilt
image and does not matter for stacks already centred on each particle (Warp writes zeros there).
In cryomine's terms (``cryomine.reconstruct.project``) stack image ``t`` is the projection along z
of the particle's tomogram-frame density rotated by ``R_t`` about the box centre. Verified on the
shipped M. pneumoniae data set: half-set averages agree only with this reading (see
``docs/real_data.md``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryomine.errors import InputError
from cryomine.io._mrc import read_mrc
from cryomine.io._particle_table import canonical_particles
from cryomine.io._star import read_star_blocks

__all__ = [
    "TiltSeriesGeometry",
    "WarpTiltStackSet",
    "origins_a",
    "output_table",
    "particle_positions_px",
    "read_tiltstack_images",
    "read_warp_tiltstacks",
]

logger = logging.getLogger(__name__)

_CENTERED = (
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
)
_PIXEL = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
_ORIGIN = ("rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst")
_ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
_KEEP = ("rlnTomoParticleName", "rlnTomoParticleId", "rlnClassNumber")
_PROJECTION_COLUMNS = ("rlnTomoProjX", "rlnTomoProjY", "rlnTomoProjZ", "rlnTomoProjW")
_ORTHONORMAL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class TiltSeriesGeometry:
    """Per-tilt geometry and optics of one tomogram's tilt series.

    Attributes
    ----------
    rotations : ndarray, shape (T, 3, 3)
        Linear part of each projection matrix: active rotation on x, y, z column vectors taking
        tomogram directions to (image u, image v, beam) directions.
    defocus_um : ndarray, shape (T,)
        Mean of ``rlnDefocusU`` and ``rlnDefocusV``, µm, underfocus positive.
    astigmatism_um : ndarray, shape (T,)
        ``(rlnDefocusU − rlnDefocusV) / 2``, µm (not used by the reconstruction).
    dose_e_per_a2 : ndarray, shape (T,)
        Dose before each tilt (``rlnMicrographPreExposure``), e⁻/Å²; zeros when absent.
    ctf_scale : ndarray, shape (T,)
        ``rlnCtfScalefactor`` (ones when absent).
    voltage_kv, cs_mm, amplitude_contrast
        Microscope optics.
    tilt_series_pixel_size_a
        Pixel size of the original tilt series, Å.
    size_xyz_px : tuple of float
        Tomogram size in tilt-series pixels (x, y, z), from ``data_global``.
    hand : float
        ``rlnTomoHand`` (slope of defocus over depth; ±1), 1.0 when absent.
    """

    rotations: np.ndarray
    defocus_um: np.ndarray
    astigmatism_um: np.ndarray
    dose_e_per_a2: np.ndarray
    ctf_scale: np.ndarray
    voltage_kv: float
    cs_mm: float
    amplitude_contrast: float
    tilt_series_pixel_size_a: float
    size_xyz_px: tuple[float, float, float]
    hand: float

    @property
    def n_tilts(self) -> int:
        """Number of tilt images ``T``."""
        return int(self.rotations.shape[0])


@dataclass(frozen=True)
class WarpTiltStackSet:
    """A parsed 2-D tilt-stack particle export.

    Attributes
    ----------
    particles : DataFrame
        The particle loop as read, plus ``rlnImagePixelSize``, ``rlnCtfDataAreCtfPremultiplied``
        from the optics table; one row per particle.
    image_paths : list of Path
        Resolved stack file of each particle.
    visible : list of ndarray of bool, each shape (T,)
        Which tilt images of each particle's stack to use.
    tomograms : dict of str to TiltSeriesGeometry
        Geometry per ``rlnTomoName``.
    image_pixel_size_a : float
        Pixel size of the stacks, Å (also the pixel size of ``rlnCoordinateX/Y/Z``).
    """

    particles: pd.DataFrame
    image_paths: list[Path]
    visible: list[np.ndarray]
    tomograms: dict[str, TiltSeriesGeometry]
    image_pixel_size_a: float


def _parse_vector(text: object, *, source: str, column: str) -> np.ndarray:
    """``"[a,b,c,d]"`` → float array; :class:`InputError` otherwise."""
    raw = str(text).strip()
    if not (raw.startswith("[") and raw.endswith("]")):
        raise InputError(f"{source}: {column} value {raw!r} is not a bracketed list like [a,b,c,d]")
    try:
        values = np.array(
            [float(item) for item in raw[1:-1].split(",") if item.strip()], dtype=np.float64
        )
    except ValueError as error:
        raise InputError(f"{source}: {column} value {raw!r} holds a non-number") from error
    if not np.all(np.isfinite(values)):
        raise InputError(f"{source}: {column} value {raw!r} holds NaN or Inf")
    return values


def _column(table: pd.DataFrame, name: str, source: str) -> np.ndarray:
    if name not in table.columns:
        raise InputError(f"{source}: missing column {name}")
    try:
        values = pd.to_numeric(table[name], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise InputError(f"{source}: column {name} must hold numbers") from error
    if not np.all(np.isfinite(values)):
        raise InputError(f"{source}: column {name} holds NaN or Inf")
    return values


def _optional(table: pd.DataFrame, name: str, default: float, source: str) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), default, dtype=np.float64)
    return _column(table, name, source)


def _tilt_rotations(table: pd.DataFrame, source: str) -> np.ndarray:
    """``(T, 3, 3)`` linear parts of the projection matrices, checked to be proper rotations."""
    missing = [name for name in _PROJECTION_COLUMNS[:3] if name not in table.columns]
    if missing:
        raise InputError(f"{source}: missing projection-matrix column(s) {', '.join(missing)}")
    rows = []
    for name in _PROJECTION_COLUMNS[:3]:
        vectors = [_parse_vector(value, source=source, column=name) for value in table[name]]
        if any(len(vector) != 4 for vector in vectors):
            raise InputError(f"{source}: {name} must hold 4 numbers per tilt, like [a,b,c,d]")
        rows.append(np.stack(vectors)[:, :3])
    rotations = np.stack(rows, axis=1)  # (T, row, column)
    gram = np.einsum("tij,tkj->tik", rotations, rotations)
    if not np.allclose(gram, np.eye(3), atol=_ORTHONORMAL_TOLERANCE):
        raise InputError(
            f"{source}: the 3×3 parts of rlnTomoProjX/Y/Z are not rotations "
            "(rows not orthonormal); "
            "expected projection matrices between tomogram and tilt images of the same pixel size"
        )
    if np.any(np.linalg.det(rotations) < 0):
        raise InputError(
            f"{source}: a projection matrix has determinant −1 (a mirror); expected rotations"
        )
    return rotations


def _tomogram_geometry(
    name: str, per_tilt: pd.DataFrame, global_row: pd.Series, source: str
) -> TiltSeriesGeometry:
    block = f"{source} (data_{name})"
    defocus_u = _column(per_tilt, "rlnDefocusU", block)
    defocus_v = _optional(per_tilt, "rlnDefocusV", np.nan, block)
    defocus_v = np.where(np.isnan(defocus_v), defocus_u, defocus_v)
    row = global_row.to_frame().T

    def scalar(column: str, default: float | None) -> float:
        if column not in row.columns:
            if default is None:
                raise InputError(f"{source}: data_global lacks {column} for tomogram {name}")
            return default
        return float(_column(row, column, f"{source} (data_global)")[0])

    return TiltSeriesGeometry(
        rotations=_tilt_rotations(per_tilt, block),
        defocus_um=(defocus_u + defocus_v) / 2.0 / 1e4,
        astigmatism_um=(defocus_u - defocus_v) / 2.0 / 1e4,
        dose_e_per_a2=_optional(per_tilt, "rlnMicrographPreExposure", 0.0, block),
        ctf_scale=_optional(per_tilt, "rlnCtfScalefactor", 1.0, block),
        voltage_kv=scalar("rlnVoltage", 300.0),
        cs_mm=scalar("rlnSphericalAberration", 2.7),
        amplitude_contrast=scalar("rlnAmplitudeContrast", 0.07),
        tilt_series_pixel_size_a=scalar("rlnTomoTiltSeriesPixelSize", None),
        size_xyz_px=(
            scalar("rlnTomoSizeX", 0.0),
            scalar("rlnTomoSizeY", 0.0),
            scalar("rlnTomoSizeZ", 0.0),
        ),
        hand=scalar("rlnTomoHand", 1.0),
    )


def _read_tomograms(path: Path) -> dict[str, TiltSeriesGeometry]:
    blocks = read_star_blocks(path)
    global_table = blocks.get("global")
    if not isinstance(global_table, pd.DataFrame) or "rlnTomoName" not in global_table.columns:
        raise InputError(
            f"{path}: no data_global loop with rlnTomoName; expected a RELION 5 tomograms STAR"
        )
    tomograms: dict[str, TiltSeriesGeometry] = {}
    for _, row in global_table.iterrows():
        name = str(row["rlnTomoName"])
        per_tilt = blocks.get(name)
        if not isinstance(per_tilt, pd.DataFrame):
            raise InputError(
                f"{path}: no data_{name} loop with the per-tilt projection matrices of {name}"
            )
        tomograms[name] = _tomogram_geometry(name, per_tilt, row, str(path))
    return tomograms


def _resolve_star_reference(value: object, star: Path, what: str) -> Path:
    """A file named in a STAR file: relative to that file's folder, else to the working folder."""
    name = Path(str(value).strip())
    for candidate in (name,) if name.is_absolute() else (star.parent / name, name):
        if candidate.is_file():
            return candidate
    raise InputError(
        f"{star}: {what} {name} not found (looked next to the STAR file and in the working folder)"
    )


def _optimisation_set(path: Path) -> tuple[Path, Path] | None:
    """The particle and tomogram STAR files an optimisation set names; None if it is none."""
    blocks = read_star_blocks(path)
    for block in blocks.values():
        if isinstance(block, dict) and "rlnTomoParticlesFile" in block:
            particles = _resolve_star_reference(
                block["rlnTomoParticlesFile"], path, "particles file"
            )
            if "rlnTomoTomogramsFile" not in block:
                raise InputError(f"{path}: optimisation set without rlnTomoTomogramsFile")
            tomograms = _resolve_star_reference(
                block["rlnTomoTomogramsFile"], path, "tomograms file"
            )
            return particles, tomograms
    return None


def _visible_frames(value: object, n_tilts: int, source: str) -> np.ndarray:
    flags = _parse_vector(value, source=source, column="rlnTomoVisibleFrames")
    if len(flags) != n_tilts or not np.all(np.isin(flags, (0.0, 1.0))):
        raise InputError(
            f"{source}: rlnTomoVisibleFrames {value!s} must hold {n_tilts} zeros and ones "
            "(one per tilt)"
        )
    return flags.astype(bool)


def _optics_columns(
    particles: pd.DataFrame, optics: pd.DataFrame | None, source: str
) -> pd.DataFrame:
    """Copy the optics group's image pixel size and premultiplication flag onto each particle."""
    particles = particles.copy()
    if optics is None or "rlnImagePixelSize" not in optics.columns:
        raise InputError(
            f"{source}: no data_optics loop with rlnImagePixelSize (Å per pixel of the stacks)"
        )
    table = optics.set_index("rlnOpticsGroup") if "rlnOpticsGroup" in optics.columns else None
    if table is None or "rlnOpticsGroup" not in particles.columns:
        if len(optics) != 1:
            raise InputError(
                f"{source}: several optics groups but no rlnOpticsGroup column to match them"
            )
        groups = pd.Series(np.zeros(len(particles), dtype=int))
        table = optics.reset_index(drop=True)
    else:
        groups = particles["rlnOpticsGroup"]
        unknown = set(groups) - set(table.index)
        if unknown:
            raise InputError(
                f"{source}: particles refer to unknown optics group(s) {sorted(unknown)}"
            )
    for name, default in (("rlnImagePixelSize", None), ("rlnCtfDataAreCtfPremultiplied", 0.0)):
        if name in table.columns:
            particles[name] = table.loc[groups.to_numpy(), name].to_numpy(dtype=np.float64)
        else:
            particles[name] = default
    return particles


def read_warp_tiltstacks(
    particles_star: Path | str, tomograms_star: Path | str | None = None
) -> WarpTiltStackSet:
    """Parse a Warp/RELION 5 2-D tilt-stack particle export (see the module docstring).

    Parameters
    ----------
    particles_star
        The particle STAR file, or an optimisation-set STAR naming both files.
    tomograms_star
        The tomograms STAR with per-tilt projection matrices; required unless ``particles_star``
        is an optimisation set.

    Returns
    -------
    WarpTiltStackSet

    Raises
    ------
    InputError
        Missing files or columns, malformed matrices or visible-frame lists, particles in an
        unknown tomogram, stacks of the wrong shape or mixed pixel sizes.
    """
    particles_star = Path(particles_star)
    named = _optimisation_set(particles_star)
    if named is not None:
        particles_star = named[0]
        tomograms_star = named[1] if tomograms_star is None else tomograms_star
    if tomograms_star is None:
        raise InputError(
            f"{particles_star}: not an optimisation set, so the tomograms STAR must be given"
        )
    tomograms = _read_tomograms(Path(tomograms_star))
    blocks = read_star_blocks(particles_star)
    particles = blocks.get("particles")
    optics = blocks.get("optics")
    if not isinstance(particles, pd.DataFrame) or len(particles) == 0:
        raise InputError(f"{particles_star}: no data_particles loop with particles")
    source = str(particles_star)
    for name in ("rlnTomoName", "rlnImageName"):
        if name not in particles.columns:
            raise InputError(f"{source}: missing column {name}")
    particles = _optics_columns(
        particles.reset_index(drop=True),
        optics if isinstance(optics, pd.DataFrame) else None,
        source,
    )
    pixel_sizes = np.unique(particles["rlnImagePixelSize"].to_numpy())
    if len(pixel_sizes) != 1 or not pixel_sizes[0] > 0:
        raise InputError(
            f"{source}: stacks must share one positive rlnImagePixelSize, "
            f"got {pixel_sizes.tolist()}"
        )
    unknown = sorted(set(particles["rlnTomoName"].astype(str)) - set(tomograms))
    if unknown:
        raise InputError(f"{source}: tomogram(s) {', '.join(unknown)} are not in {tomograms_star}")
    paths, visible = [], []
    for index, row in particles.iterrows():
        geometry = tomograms[str(row["rlnTomoName"])]
        image = str(row["rlnImageName"])
        if "@" in image:
            raise InputError(
                f"{source}: rlnImageName {image} names one image; "
                "expected a whole tilt stack per particle"
            )
        paths.append(_resolve_star_reference(image, particles_star, f"particle {index + 1} stack"))
        if "rlnTomoVisibleFrames" in particles.columns:
            visible.append(
                _visible_frames(
                    row["rlnTomoVisibleFrames"], geometry.n_tilts, f"{source} row {index + 1}"
                )
            )
        else:
            visible.append(np.ones(geometry.n_tilts, dtype=bool))
    logger.info(
        "read %d tilt-stack particles in %d tomograms from %s",
        len(particles),
        len(tomograms),
        source,
    )
    return WarpTiltStackSet(
        particles=particles,
        image_paths=paths,
        visible=visible,
        tomograms=tomograms,
        image_pixel_size_a=float(pixel_sizes[0]),
    )


def read_tiltstack_images(path: Path, *, n_tilts: int, pixel_size_a: float) -> np.ndarray:
    """One particle's tilt stack, float32 ``(T, y, x)``; :class:`InputError` if its shape is off."""
    data, _ = read_mrc(path, voxel_size_a=pixel_size_a, mmap=False)
    images = np.asarray(data, dtype=np.float32)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[0] != n_tilts or images.shape[1] != images.shape[2]:
        raise InputError(
            f"{path}: expected a stack of {n_tilts} square tilt images "
            "(one per tilt of its tomogram), "
            f"got shape {images.shape}"
        )
    return images


def particle_positions_px(
    particles: pd.DataFrame,
    tomograms: dict[str, TiltSeriesGeometry],
    pixel_size_a: float,
    source: str,
) -> np.ndarray:
    """Particle centres ``(N, 3)``, **x, y, z**, pixels of ``pixel_size_a``, origins applied.

    ``rlnCoordinateX/Y/Z`` are taken to be in pixels of the stacks (``pixel_size_a``), as
    WarpTools writes them; RELION 5 ``rlnCenteredCoordinate…Angst`` are converted with the
    tomogram's size (``rlnTomoSizeX/Y/Z`` × ``rlnTomoTiltSeriesPixelSize`` / 2, in Å). The particle
    centre is ``coordinate − rlnOrigin…Angst / pixel_size_a``.
    """
    if set(_PIXEL) <= set(particles.columns):
        xyz = particles[list(_PIXEL)].to_numpy(dtype=np.float64)
    elif set(_CENTERED) <= set(particles.columns):
        centred = particles[list(_CENTERED)].to_numpy(dtype=np.float64)
        half = np.array(
            [
                np.array(tomograms[str(name)].size_xyz_px)
                * tomograms[str(name)].tilt_series_pixel_size_a
                / 2.0
                for name in particles["rlnTomoName"]
            ]
        )
        xyz = (centred + half) / pixel_size_a
    else:
        raise InputError(
            f"{source}: particles need rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst"
        )
    return xyz - origins_a(particles) / pixel_size_a


def origins_a(particles: pd.DataFrame) -> np.ndarray:
    """``rlnOriginX/Y/ZAngst`` as ``(N, 3)`` x, y, z in Å (zeros when absent)."""
    if not set(_ORIGIN) <= set(particles.columns):
        return np.zeros((len(particles), 3))
    return particles[list(_ORIGIN)].to_numpy(dtype=np.float64)


def output_table(
    particles: pd.DataFrame, positions_xyz: np.ndarray, pixel_size_a: float, source: str
) -> pd.DataFrame:
    """Canonical particle table of the import: names, ``positions_xyz`` (px), pixel size, angles.

    Keeps ``rlnTomoParticleName``, ``rlnTomoParticleId`` and ``rlnClassNumber`` when present and
    numbers the particles 1..N in ``cmParticleId``.
    """
    table = pd.DataFrame({"rlnTomoName": particles["rlnTomoName"].astype(str).to_numpy()})
    for axis, name in enumerate(_PIXEL):
        table[name] = positions_xyz[:, axis]
    table["rlnImagePixelSize"] = float(pixel_size_a)
    for name in (*_ANGLES, *_KEEP):
        if name in particles.columns:
            table[name] = particles[name].to_numpy()
    table["cmParticleId"] = np.arange(1, len(table) + 1, dtype=np.int64)
    return canonical_particles(table, source=source)
