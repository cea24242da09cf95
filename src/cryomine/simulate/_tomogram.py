"""A crowded simulated tomogram with ground truth: particles, membrane vesicles, gold beads.

The clean volume (density in Da Å⁻³, protein positive) holds ``n_particles`` copies of the given
structures at uniform random orientations and non-overlapping positions (bounding spheres), plus
optional distractors: membrane vesicles (spherical shells, ``membrane_thickness_a`` thick, density
``MEMBRANE_DENSITY_FACTOR`` x protein) and gold beads (solid spheres, ``gold_diameter_a`` across,
``GOLD_DENSITY_FACTOR`` x protein). Every object lies entirely inside the volume. It is imaged
as a whole like a subtomogram (:mod:`cryomine.simulate._imaging`: projection about y, CTF per
tilt, noise on the projections at the SNR, weighted back-projection), keeping the physical
contrast: **protein is dark** in the tomogram. The SNR is ``var(noise-free reconstruction) /
var(noise reconstruction)`` over the whole volume; the result is z-scored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cryomine.errors import InputError
from cryomine.simulate._imaging import (
    ImagingMode,
    ImagingParameters,
    add_noise_at_snr,
    check_simulation_options,
    image_volumes,
)
from cryomine.simulate._subtomograms import load_structure_densities

__all__ = [
    "GOLD_DENSITY_FACTOR",
    "MEMBRANE_DENSITY_FACTOR",
    "SimulatedTomogram",
    "simulate_tomogram",
]

logger = logging.getLogger(__name__)

#: Density of a membrane shell relative to protein (0.81 Da Å⁻³).
MEMBRANE_DENSITY_FACTOR = 0.5
#: Density of a gold bead relative to protein.
GOLD_DENSITY_FACTOR = 10.0
#: A particle's label covers the voxels where its density exceeds this fraction of its maximum.
LABEL_THRESHOLD = 0.1
#: Outer radius range of the vesicles, Å.
VESICLE_RADIUS_RANGE_A = (150.0, 400.0)
_MAX_TRIES = 2000


@dataclass
class SimulatedTomogram:
    """A simulated tomogram and its truth.

    Attributes
    ----------
    tomogram
        float32 ``(z, y, x)``, protein dark, z-scored.
    clean
        float32 ``(z, y, x)`` noise-free density before imaging (Da Å⁻³, protein positive).
    labels
        int16 ``(z, y, x)``: ``k`` (1-based) where structure ``k`` lies, ``n_structures + 1`` on
        membranes, ``n_structures + 2`` on gold beads, 0 elsewhere.
    table
        Canonical particle table: centres (voxels), RELION angles of the true rotation,
        ``cmStructure``, ``cmTrueClass`` and ``rlnClassNumber`` (both the 1-based structure index).
    label_names
        Label value → name.
    parameters
        The resolved parameters (JSON-friendly).
    """

    tomogram: np.ndarray
    clean: np.ndarray
    labels: np.ndarray
    table: pd.DataFrame
    label_names: dict[int, str]
    parameters: dict[str, Any]


@dataclass
class _Sphere:
    centre_zyx: np.ndarray
    radius: float
    shell_half_thickness: float | None = None  # None: a solid sphere

    def clear_of(self, centre_zyx: np.ndarray, radius: float, *, solid: bool) -> bool:
        distance = float(np.linalg.norm(self.centre_zyx - centre_zyx))
        if self.shell_half_thickness is None or solid:
            return distance >= self.radius + radius
        return abs(distance - self.radius) >= self.shell_half_thickness + radius


def _bounding_radius(density: np.ndarray) -> float:
    """Radius (voxels) around ``n // 2`` of the voxels above ``LABEL_THRESHOLD`` x max, plus one."""
    inside = np.argwhere(density > LABEL_THRESHOLD * density.max())
    centre = np.array(density.shape) // 2
    return float(np.sqrt(((inside - centre) ** 2).sum(axis=1)).max()) + 1.0 if len(inside) else 1.0


def _place(
    rng: np.random.Generator,
    placed: list[_Sphere],
    shape_zyx: tuple[int, int, int],
    radius: float,
    *,
    solid: bool,
    what: str,
) -> np.ndarray:
    low = np.full(3, radius)
    high = np.array(shape_zyx, dtype=np.float64) - 1.0 - radius
    if np.any(high < low):
        raise InputError(
            f"{what} of radius {radius:.1f} voxels does not fit in a volume of {shape_zyx} voxels"
        )
    for _ in range(_MAX_TRIES):
        centre = rng.uniform(low, high)
        if all(other.clear_of(centre, radius, solid=solid) for other in placed):
            return centre
    raise InputError(
        f"could not place {what} without overlap after {_MAX_TRIES} tries; "
        "use a larger --shape or fewer objects"
    )


def _paint_sphere(
    volume: np.ndarray, labels: np.ndarray, sphere: _Sphere, *, value: float, label: int
) -> None:
    """Add a soft-edged solid sphere or shell (edge width ~1 voxel) to ``volume`` and ``labels``."""
    reach = sphere.radius + 2.0
    low = np.maximum(np.floor(sphere.centre_zyx - reach).astype(int), 0)
    high = np.minimum(np.ceil(sphere.centre_zyx + reach).astype(int) + 1, volume.shape)
    grids = np.ogrid[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, sphere.centre_zyx, strict=True)))
    if sphere.shell_half_thickness is None:
        beyond = distance - sphere.radius
    else:
        beyond = (
            np.abs(distance - (sphere.radius - sphere.shell_half_thickness))
            - sphere.shell_half_thickness
        )
    profile = 0.5 * (1.0 - np.tanh(beyond / 0.5))
    region = (slice(low[0], high[0]), slice(low[1], high[1]), slice(low[2], high[2]))
    volume[region] += value * profile
    labels[region][(profile > 0.5) & (labels[region] == 0)] = label


def simulate_tomogram(
    structures: Sequence[str | Path] | Mapping[str, np.ndarray],
    *,
    shape_zyx: tuple[int, int, int] = (100, 400, 400),
    voxel_size_a: float = 10.0,
    n_particles: int = 100,
    snr: float = 0.1,
    tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
    tilt_step_deg: float = 3.0,
    defocus_um: float = 5.0,
    b_factor_a2: float = 0.0,
    n_membranes: int = 0,
    n_gold: int = 0,
    membrane_thickness_a: float = 40.0,
    gold_diameter_a: float = 100.0,
    box_size: int | None = None,
    resolution_a: float | None = None,
    mode: ImagingMode = "tilt-series",
    tomo_name: str = "tomogram",
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedTomogram:
    """Simulate a crowded tomogram with known particle positions, orientations and classes.

    Parameters
    ----------
    structures
        Structure names/paths, or a mapping name → density (cubic, at ``voxel_size_a``, centred at
        ``n // 2``). Particle ``i`` gets structure ``i mod K`` in a random order (balanced).
    shape_zyx
        Tomogram shape in voxels, z (beam, thickness) first.
    voxel_size_a
        Voxel size, Å.
    n_particles
        Number of particles.
    snr
        var(noise-free reconstruction) / var(noise reconstruction) over the whole tomogram.
    tilt_range_deg, tilt_step_deg, defocus_um, b_factor_a2
        Imaging (degrees; µm underfocus, positive; Å²).
    n_membranes, n_gold
        Numbers of vesicles and gold beads (placed first, largest first).
    membrane_thickness_a, gold_diameter_a
        Membrane thickness and gold-bead diameter, Å.
    box_size
        Box of the structure maps (voxels); ``None``: each structure's own default box.
    resolution_a
        Resolution of the structure maps, Å (``None``: the library default).
    mode
        ``"tilt-series"`` or ``"fourier"`` imaging.
    tomo_name
        ``rlnTomoName`` of the truth table.
    seed
        Seed of everything random.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    progress
        ``progress(n_done, n_total)`` over the particles placed, then once after imaging.
    """
    from cryomine._device import resolve_device
    from cryomine.geometry import random_rotations, transform_volumes
    from cryomine.io import COLUMNS, new_particle_table
    from cryomine.structures import PROTEIN_DENSITY_DA_PER_A3

    shape = tuple(int(s) for s in shape_zyx)
    if len(shape) != 3 or min(shape) < 8:
        raise InputError(
            f"tomogram shape {shape_zyx}: expected three sizes (z, y, x) of at least 8 voxels"
        )
    check_simulation_options(snr=snr, voxel_size_a=voxel_size_a, mode=mode)
    if n_particles < 0 or n_membranes < 0 or n_gold < 0:
        raise InputError("numbers of particles, membranes and gold beads must be >= 0")
    imaging = ImagingParameters(
        tilt_range_deg=tilt_range_deg,
        tilt_step_deg=tilt_step_deg,
        defocus_um=defocus_um,
        b_factor_a2=b_factor_a2,
    )
    torch_device = resolve_device(device)
    densities = load_structure_densities(
        structures, voxel_size_a=voxel_size_a, box_size=box_size, resolution_a=resolution_a
    )
    names = list(densities)
    for name, volume in densities.items():
        if volume.ndim != 3 or len(set(volume.shape)) != 1:
            raise InputError(
                f"structure {name!r}: density must be a cubic (n, n, n) array, got {volume.shape}"
            )

    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    clean = np.zeros(shape, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.int16)
    placed: list[_Sphere] = []
    membrane_label, gold_label = len(names) + 1, len(names) + 2

    half_thickness = 0.5 * membrane_thickness_a / voxel_size_a
    for _ in range(n_membranes):
        radius = rng.uniform(*VESICLE_RADIUS_RANGE_A) / voxel_size_a
        radius = min(radius, 0.5 * min(shape) - 1.0)
        sphere = _Sphere(
            _place(rng, placed, shape, radius, solid=True, what="a vesicle"), radius, half_thickness
        )
        placed.append(sphere)
        _paint_sphere(
            clean,
            labels,
            sphere,
            value=MEMBRANE_DENSITY_FACTOR * PROTEIN_DENSITY_DA_PER_A3,
            label=membrane_label,
        )
    gold_radius = 0.5 * gold_diameter_a / voxel_size_a
    for _ in range(n_gold):
        sphere = _Sphere(
            _place(rng, placed, shape, gold_radius, solid=False, what="a gold bead"), gold_radius
        )
        placed.append(sphere)
        _paint_sphere(
            clean,
            labels,
            sphere,
            value=GOLD_DENSITY_FACTOR * PROTEIN_DENSITY_DA_PER_A3,
            label=gold_label,
        )

    classes = rng.permutation(np.resize(np.arange(len(names)), n_particles))
    rotations = random_rotations(n_particles, rng=rng) if n_particles else None
    radii = {name: _bounding_radius(densities[name]) for name in names}
    centres = np.zeros((n_particles, 3))
    for i, k in enumerate(classes):
        centres[i] = _place(
            rng, placed, shape, radii[names[k]], solid=False, what=f"particle {i + 1} ({names[k]})"
        )
        placed.append(_Sphere(centres[i], radii[names[k]]))

    for i, k in enumerate(classes):
        density = torch.from_numpy(densities[names[k]]).to(torch_device)[None]
        n = density.shape[-1]
        corner = np.floor(centres[i]).astype(int) - n // 2
        fraction = centres[i] - np.floor(centres[i])
        matrix = rotations[i].as_matrix()[None] if rotations is not None else np.eye(3)[None]
        moved, _ = transform_volumes(density, matrix, fraction[None])
        moved_np = moved[0].cpu().numpy()
        low = np.maximum(corner, 0)
        high = np.minimum(corner + n, shape)
        target = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        source = tuple(slice(a - c, b - c) for a, b, c in zip(low, high, corner, strict=True))
        clean[target] += moved_np[source]
        inside = (moved_np[source] > LABEL_THRESHOLD * moved_np.max()) & (labels[target] == 0)
        labels[target][inside] = k + 1
        if progress is not None:
            progress(i + 1, n_particles + 1)

    clean_t = torch.from_numpy(clean).to(torch_device)[None]
    signal, noise = image_volumes(
        clean_t, [rng], voxel_size_a=voxel_size_a, imaging=imaging, mode=mode
    )
    noisy = add_noise_at_snr(signal, noise, snr)[0]
    tomogram = ((noisy - noisy.mean()) / noisy.std()).cpu().numpy().astype(np.float32)
    if progress is not None:
        progress(n_particles + 1, n_particles + 1)

    table = new_particle_table(
        centres,
        tomo_name=tomo_name,
        pixel_size_a=voxel_size_a,
        rotations=rotations,
    )
    table[COLUMNS.structure] = [names[k] for k in classes]
    table[COLUMNS.true_class] = (classes + 1).astype(int)
    table[COLUMNS.class_number] = (classes + 1).astype(int)
    label_names = {k + 1: name for k, name in enumerate(names)}
    label_names.update({membrane_label: "membrane", gold_label: "gold"})
    parameters: dict[str, Any] = {
        "structures": names,
        "shape_zyx": list(shape),
        "voxel_size_a": float(voxel_size_a),
        "n_particles": int(n_particles),
        "snr": float(snr),
        "tilt_range_deg": list(imaging.tilt_range_deg),
        "tilt_step_deg": float(tilt_step_deg),
        "defocus_um": float(defocus_um),
        "b_factor_a2": float(b_factor_a2),
        "n_membranes": int(n_membranes),
        "n_gold": int(n_gold),
        "membrane_thickness_a": float(membrane_thickness_a),
        "gold_diameter_a": float(gold_diameter_a),
        "box_size": box_size,
        "resolution_a": resolution_a,
        "mode": mode,
        "tomo_name": tomo_name,
        "seed": int(seed),
        "bounding_radii_px": radii,
    }
    logger.info(
        "simulated tomogram %s: %d particles, %d vesicles, %d gold",
        shape,
        n_particles,
        n_membranes,
        n_gold,
    )
    return SimulatedTomogram(
        tomogram=tomogram,
        clean=clean,
        labels=labels,
        table=table,
        label_names=label_names,
        parameters=parameters,
    )
