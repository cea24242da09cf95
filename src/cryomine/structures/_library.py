"""``structure_density``: a built-in name or a model/map file → density at a voxel size.

Every map comes out the same way, whatever its source:

* ``(z, y, x)`` float32, protein positive, in **Da Å⁻³** (mass per volume): the voxel values times
  ``voxel_size_a³`` sum to the molecule's mass in Da (inside the box), so structures of different
  sources have comparable contrast and their peaks approach the protein density, 0.81 Da Å⁻³;
* low-passed by a Gaussian whose Fourier amplitude is 1/e at ``1 / resolution_a`` (σ =
  0.225 × resolution, as Chimera's ``molmap``), and free of frequencies beyond Nyquist;
* centre of mass on the box centre voxel ``box_size // 2`` (to a small fraction of a voxel).
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from cryomine.errors import InputError
from cryomine.geometry import fourier_resample
from cryomine.io import MRC_SUFFIXES, read_mrc
from cryomine.structures._catalog import data_directory, structure_info
from cryomine.structures._density import ATOMIC_SUFFIXES, atomic_density
from cryomine.structures._resample import (
    PROTEIN_DENSITY_DA_PER_A3,
    SIGMA_PER_RESOLUTION,
    centre_of_mass,
    clean_map,
    envelope_mask,
)

__all__ = ["StructureCroppedWarning", "estimate_diameter_a", "structure_density"]

logger = logging.getLogger(__name__)

#: Calibration of :func:`_estimate_mass_kda`: the half-maximum contour of a 20 Å map encloses
#: this many times the molecular volume (median over the 12 polnet maps of the shared data set
#: that have atomic models; range 0.82-1.23).
_HALF_MAX_VOLUME_RATIO = 1.08


class StructureCroppedWarning(UserWarning):
    """The requested box is smaller than the structure; the map is cut off at the box faces."""


@dataclass(frozen=True)
class _Source:
    """A map ready to resample: density (z, y, x) in Da Å⁻³ on a grid of ``voxel_size_a`` Å."""

    density: np.ndarray
    voxel_size_a: float
    centre_zyx: np.ndarray
    mass_kda: float
    radius_a: float
    sigma_a: float  # Gaussian σ (Å) the density already carries


def _is_file_request(name_or_path: str | Path) -> bool:
    if isinstance(name_or_path, Path):
        return True
    text = str(name_or_path)
    suffixes = [s.lower() for s in Path(text).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return (
        "/" in text
        or "\\" in text
        or bool(suffixes and suffixes[-1] in ATOMIC_SUFFIXES + MRC_SUFFIXES)
    )


def _file_kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in ATOMIC_SUFFIXES:
        return "atomic"
    if last in MRC_SUFFIXES:
        return "map"
    raise InputError(
        f"{path}: unknown structure file type; expected an atomic model "
        f"({', '.join(ATOMIC_SUFFIXES)}) or a map ({', '.join(MRC_SUFFIXES)}), optionally .gz"
    )


def _radius_a(
    density: np.ndarray, voxel_size_a: float, centre: np.ndarray, mass_kda: float
) -> float:
    """Largest distance (Å) from ``centre`` of a voxel of the molecular envelope."""
    points = np.argwhere(envelope_mask(density, voxel_size_a=voxel_size_a, mass_kda=mass_kda))
    distances = np.sqrt(((points - centre) ** 2).sum(axis=1))
    return float((distances.max() + 0.5) * voxel_size_a)


def _estimate_mass_kda(density: np.ndarray, voxel_size_a: float) -> float:
    """Rough mass (kDa) of a map of unknown scale from its half-maximum contour at 20 Å."""
    sigma_vox = SIGMA_PER_RESOLUTION * 20.0 / voxel_size_a
    smooth = (
        ndimage.gaussian_filter(density, sigma_vox, mode="constant") if sigma_vox > 0.5 else density
    )
    volume_a3 = float((smooth > 0.5 * smooth.max()).sum()) * voxel_size_a**3
    return volume_a3 / _HALF_MAX_VOLUME_RATIO * PROTEIN_DENSITY_DA_PER_A3 / 1000.0


@functools.lru_cache(maxsize=32)
def _map_source(
    path: str,
    stamp: tuple[int, int],
    largest_component_only: bool,
    mass_kda: float | None,
    resolution_a: float | None,
) -> _Source:
    data, voxel = read_mrc(Path(path), mmap=False)
    if data.ndim != 3:
        raise InputError(f"{path}: expected a 3-D density map, got shape {data.shape}")
    density = clean_map(data, voxel_size_a=voxel, largest_component_only=largest_component_only)
    if mass_kda is None:
        mass_kda = _estimate_mass_kda(density, voxel)
        logger.info("%s: mass not given; estimated %.0f kDa from the map's volume", path, mass_kda)
    total = float(density.sum()) * voxel**3
    if not total > 0:
        raise InputError(f"{path}: map has no positive density; expected protein bright (positive)")
    density *= mass_kda * 1000.0 / total
    centre = centre_of_mass(density)
    own_resolution = resolution_a if resolution_a is not None else 2.0 * voxel
    return _Source(
        density=density,
        voxel_size_a=voxel,
        centre_zyx=centre,
        mass_kda=mass_kda,
        radius_a=_radius_a(density, voxel, centre, mass_kda),
        sigma_a=SIGMA_PER_RESOLUTION * own_resolution,
    )


@functools.lru_cache(maxsize=8)
def _atomic_source(
    path: str, stamp: tuple[int, int], spacing_a: float, blur_sigma_a: float
) -> _Source:
    computed = atomic_density(
        Path(path),
        spacing_a=spacing_a,
        blur_sigma_a=blur_sigma_a,
        margin_a=4 * blur_sigma_a + spacing_a,
    )
    density = computed.density
    density *= computed.mass_kda * 1000.0 / (float(density.sum()) * spacing_a**3)
    centre = centre_of_mass(density)
    return _Source(
        density=density,
        voxel_size_a=spacing_a,
        centre_zyx=centre,
        mass_kda=computed.mass_kda,
        radius_a=_radius_a(density, spacing_a, centre, computed.mass_kda),
        sigma_a=blur_sigma_a,
    )


def _atomic_spacing_a(blur_sigma_a: float, voxel_size_a: float) -> float:
    """Coarsest grid (Å, ≤ the voxel size) on which atoms blurred by σ alias < 0.1 % into the band.

    Sampling at spacing ``h`` folds frequency ``f`` onto ``1/h − f``; the band kept in the end
    reaches ``1/(2v)``, so only frequencies ≥ ``1/h − 1/(2v)`` can land in it. A Gaussian of σ is
    below 10⁻³ beyond ``√(ln 10³ / 2π²) / σ``.
    """
    alias_free_freq = math.sqrt(math.log(1e3) / (2 * math.pi**2)) / blur_sigma_a
    spacing_a = min(voxel_size_a, 1.0 / (alias_free_freq + 0.5 / voxel_size_a))
    return float(f"{spacing_a:.6g}")


def _stamp(path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class _Request:
    """What to load, resolved from a name or a path (hashable: the cache key)."""

    path: str
    stamp: tuple[int, int]
    kind: str
    label: str
    largest_component_only: bool = False
    own_resolution_a: float | None = None
    catalog_mass_kda: float | None = None


def _resolve(name_or_path: str | Path) -> _Request:
    if _is_file_request(name_or_path):
        path = Path(name_or_path).expanduser().resolve()
        return _Request(str(path), _stamp(path), _file_kind(path), str(name_or_path))
    info = structure_info(str(name_or_path))
    path = data_directory() / info.file
    return _Request(
        str(path),
        _stamp(path),
        info.kind,
        info.name,
        info.largest_component_only,
        info.resolution_a,
        info.mass_kda if info.kind == "map" else None,
    )


def _load_source(
    request: _Request, *, voxel_size_a: float, resolution_a: float, mass_kda: float | None
) -> _Source:
    if request.kind == "atomic":
        blur_sigma_a = SIGMA_PER_RESOLUTION * resolution_a
        spacing_a = _atomic_spacing_a(blur_sigma_a, voxel_size_a)
        source = _atomic_source(request.path, request.stamp, spacing_a, blur_sigma_a)
        return source if mass_kda is None else _rescaled(source, mass_kda)
    return _map_source(
        request.path,
        request.stamp,
        request.largest_component_only,
        mass_kda if mass_kda is not None else request.catalog_mass_kda,
        request.own_resolution_a,
    )


def _rescaled(source: _Source, mass_kda: float) -> _Source:
    factor = mass_kda / source.mass_kda
    return _Source(
        source.density * factor,
        source.voxel_size_a,
        source.centre_zyx,
        mass_kda,
        source.radius_a,
        source.sigma_a,
    )


def _check_positive(value: float, what: str) -> float:
    if (
        not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InputError(f"{what} {value!r}: expected a positive number")
    return float(value)


def structure_density(
    name_or_path: str | Path,
    *,
    voxel_size_a: float,
    resolution_a: float | None = None,
    box_size: int | None = None,
    mass_kda: float | None = None,
) -> np.ndarray:
    """Density map of a structure at a voxel size, centred in a cubic box.

    Parameters
    ----------
    name_or_path
        A built-in name or alias (case-insensitive; see :func:`list_structures`), or a path to an
        atomic model (``.pdb .ent .cif .mmcif``) or a density map (``.mrc .map ...``, protein
        bright), optionally gzipped. Atomic models are used as given (first model, no waters, no
        assembly expansion).
    voxel_size_a
        Voxel size of the result, Å.
    resolution_a
        Resolution, Å: a Gaussian low-pass with amplitude 1/e at ``1 / resolution_a``. Default
        ``2 * voxel_size_a`` (Nyquist). A map is not sharpened: its own resolution (catalogue
        value, or twice its voxel size) is a floor.
    box_size
        Edge of the cubic box, voxels. Default: the smallest even box that holds the molecular
        envelope plus a margin of ``resolution_a + voxel_size_a`` on each side. A box too small
        for the structure gives a :class:`StructureCroppedWarning` and a cut-off map.
    mass_kda
        Mass the density is scaled to, kDa. Default: the atoms' mass for atomic models, the
        catalogue mass for built-in maps, and a rough estimate from the enclosed volume for other
        maps (pass it to get comparable contrast).

    Returns
    -------
    ndarray, shape (box_size, box_size, box_size), float32, axes (z, y, x)
        Density in Da Å⁻³, protein positive, centre of mass at voxel ``box_size // 2``.

    Raises
    ------
    InputError
        Unknown name, unreadable file, or a non-positive voxel size, resolution, box or mass.
    """
    voxel = _check_positive(voxel_size_a, "voxel size (Å)")
    resolution = (
        2.0 * voxel if resolution_a is None else _check_positive(resolution_a, "resolution (Å)")
    )
    if box_size is not None and (
        isinstance(box_size, bool) or not isinstance(box_size, (int, np.integer)) or box_size < 1
    ):
        raise InputError(f"box size {box_size!r}: expected a positive whole number of voxels")
    mass = None if mass_kda is None else _check_positive(mass_kda, "mass (kDa)")
    request = _resolve(name_or_path)
    box = None if box_size is None else int(box_size)
    result, radius_a = _cached_density(request, voxel, resolution, box, mass)
    n = result.shape[0]
    half_extent_a = ((n - 1) // 2 + 0.5) * voxel
    if radius_a > half_extent_a:
        needed = 2 * math.ceil(radius_a / voxel)
        warnings.warn(
            f"{request.label} reaches {radius_a:.0f} Å from its centre of mass but a box of {n} "
            f"× {voxel:g} Å holds {half_extent_a:.0f} Å; the map is cut off at the box faces "
            f"(use box_size ≥ {needed} or None)",
            StructureCroppedWarning,
            stacklevel=2,
        )
    return result.copy()


@functools.lru_cache(maxsize=128)
def _cached_density(
    request: _Request,
    voxel_size_a: float,
    resolution_a: float,
    box_size: int | None,
    mass_kda: float | None,
) -> tuple[np.ndarray, float]:
    source = _load_source(
        request, voxel_size_a=voxel_size_a, resolution_a=resolution_a, mass_kda=mass_kda
    )
    if box_size is None:
        margin_a = resolution_a + voxel_size_a
        box_size = 2 * math.ceil((source.radius_a + margin_a) / voxel_size_a)
    sigma_target = SIGMA_PER_RESOLUTION * resolution_a
    sigma_extra = math.sqrt(max(sigma_target**2 - source.sigma_a**2, 0.0))
    out = fourier_resample(
        source.density,
        voxel_size_a=source.voxel_size_a,
        out_voxel_size_a=voxel_size_a,
        out_box=box_size,
        centre_zyx=source.centre_zyx,
        sigma_a=sigma_extra,
    ).astype(np.float32)
    out.flags.writeable = False
    logger.debug(
        "%s: %d³ at %.3g Å, resolution %.3g Å", request.label, box_size, voxel_size_a, resolution_a
    )
    return out, source.radius_a


def estimate_diameter_a(density: np.ndarray, *, voxel_size_a: float, mass_kda: float) -> float:
    """Largest extent (Å) of the molecular envelope of a map.

    The envelope is the contour that encloses ``mass / 0.81 Da Å⁻³`` (see
    :func:`~cryomine.structures._resample.envelope_mask`); the extent is the largest distance
    between the centres of two of its voxels, plus one voxel.

    Parameters
    ----------
    density : ndarray, shape (z, y, x)
        Protein positive.
    voxel_size_a
        Voxel size, Å.
    mass_kda
        Mass of the molecule, kDa.
    """
    points = np.argwhere(
        envelope_mask(density, voxel_size_a=voxel_size_a, mass_kda=mass_kda)
    ).astype(float)
    if len(points) > 4:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # flat or degenerate envelope: use every point
            pass
    extent = float(pdist(points).max()) if len(points) > 1 else 0.0
    return (extent + 1.0) * voxel_size_a
