"""Atomic model (PDB / mmCIF, gzipped or not) → density map, with gemmi.

The model is used as given: the first model of the file, waters removed, ligands kept, no
biological-assembly or NCS expansion (a file holding an asymmetric unit gives the asymmetric
unit; pass an ``_assembly1`` file for the biological assembly). Density is computed with gemmi's
``DensityCalculatorE`` (electron scattering factors, each atom a sum of Gaussians) in a P1 box,
on a fine grid whose spacing resolves the requested resolution; the caller then resamples it to
the final voxel size with :func:`cryomine.geometry.fourier_resample`.

gemmi grids are indexed ``[x, y, z]`` in numpy; this module returns ``(z, y, x)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np

from cryomine.errors import InputError

__all__ = ["ATOMIC_SUFFIXES", "AtomicDensity", "atomic_density", "read_atomic_model"]

logger = logging.getLogger(__name__)

ATOMIC_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")


@dataclass(frozen=True)
class AtomicDensity:
    """A density map computed from an atomic model.

    Attributes
    ----------
    density : ndarray, shape (z, y, x), float64
        Electron-scattering density (gemmi's units), protein positive, zero background.
    voxel_size_a : float
        Grid spacing, Å.
    centre_zyx : ndarray, shape (3,)
        Position of the atoms' centre of mass in the grid, voxels (z, y, x).
    mass_kda : float
        Mass of the atoms in the model, kDa (occupancy-weighted, hydrogens as given).
    """

    density: np.ndarray
    voxel_size_a: float
    centre_zyx: np.ndarray
    mass_kda: float


def read_atomic_model(path: Path) -> gemmi.Model:
    """Read the first model of a PDB/mmCIF file (gzipped or not), waters removed.

    Raises :class:`InputError` when the file cannot be read or holds no atoms.
    """
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError) as error:
        raise InputError(f"{path}: not a readable PDB/mmCIF atomic model ({error})") from error
    if len(structure) == 0:
        raise InputError(f"{path}: atomic model file holds no models")
    if len(structure) > 1:
        logger.info("%s: %d models; using the first", path, len(structure))
    structure.remove_waters()
    structure.remove_empty_chains()
    model = structure[0]
    if model.count_atom_sites() == 0:
        raise InputError(f"{path}: atomic model holds no atoms (other than waters)")
    return model


def _bounding_radius_a(model: gemmi.Model, com: np.ndarray) -> float:
    """Upper bound (Å) on any atom's distance from ``com`` (x, y, z, Å), from the bounding box."""
    structure = gemmi.Structure()
    structure.add_model(model)
    box = structure.calculate_box()
    low, high = np.array(box.minimum.tolist()), np.array(box.maximum.tolist())
    return float(np.linalg.norm(np.maximum(np.abs(high - com), np.abs(com - low))))


#: Each atom's density is computed out to this many σ of its blur (tails beyond hold < 0.5 %).
CUTOFF_SIGMAS = 3.5


def atomic_density(
    path: Path,
    *,
    spacing_a: float,
    blur_sigma_a: float,
    margin_a: float,
) -> AtomicDensity:
    """Compute the density of an atomic model on a cubic grid around its centre of mass.

    Parameters
    ----------
    path
        ``.pdb``, ``.ent``, ``.cif`` or ``.mmcif``, optionally gzipped.
    spacing_a
        Grid spacing, Å.
    blur_sigma_a
        σ (Å) of the isotropic Gaussian blur added to every atom (gemmi's ``blur``,
        ``B = 8 π² σ²``), on top of its scattering factor and B factor; the spacing must
        sample it.
    margin_a
        Empty space kept between the outermost atom and the box face, Å.

    Returns
    -------
    AtomicDensity
        The density ``(z, y, x)`` with the centre of mass near the box centre.
    """
    model = read_atomic_model(path)
    com = np.asarray(model.calculate_center_of_mass().tolist())
    radius_a = _bounding_radius_a(model, com)
    n = 2 * math.ceil((radius_a + margin_a) / spacing_a)
    length_a = n * spacing_a
    # Put the centre of mass on the grid point n // 2 of a P1 box (x, y, z in Å).
    shift = np.full(3, (n // 2) * spacing_a) - com
    model.transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(*shift.tolist())))

    calculator = gemmi.DensityCalculatorE()
    calculator.grid.set_unit_cell(gemmi.UnitCell(length_a, length_a, length_a, 90, 90, 90))
    calculator.grid.spacegroup = gemmi.find_spacegroup_by_name("P1")
    calculator.grid.set_size(n, n, n)
    calculator.blur = 8.0 * math.pi**2 * blur_sigma_a**2
    # gemmi's cutoff is an absolute density: set it to that of the sharpest carbon atom of the
    # model at CUTOFF_SIGMAS σ, so no atom is cut closer than that.
    b_sharpest = calculator.blur + max(0.0, float(model.calculate_b_iso_range()[0]))
    sigma_sharpest = math.sqrt(b_sharpest / (8.0 * math.pi**2))
    calculator.cutoff = gemmi.Element("C").c4322.calculate_density_iso(
        (CUTOFF_SIGMAS * sigma_sharpest) ** 2, b_sharpest
    )
    calculator.put_model_density_on_grid(model)
    grid_xyz = np.array(calculator.grid, copy=True)
    density = np.ascontiguousarray(grid_xyz.transpose(2, 1, 0), dtype=np.float64)
    mass_kda = float(model.calculate_mass()) / 1000.0
    logger.debug(
        "%s: %d atoms, %.1f kDa, radius ≤ %.0f Å, grid %d³ at %.3g Å",
        path,
        model.count_atom_sites(),
        mass_kda,
        radius_a,
        n,
        spacing_a,
    )
    return AtomicDensity(
        density=density,
        voxel_size_a=spacing_a,
        centre_zyx=np.full(3, float(n // 2)),
        mass_kda=mass_kda,
    )
