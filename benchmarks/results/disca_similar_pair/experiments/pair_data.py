"""A tuning-set analogue of the validation merge: a structure beside itself with one end cut off.

The validation merge at N >= 1000 (1qvr + 3cf3, two hexameric AAA+ rings of 257 / 227 kDa) has
no counterpart among the tuning structures. This builds one from tuning structures only: a
structure's density and a copy with the slab holding ``cut`` of its mass removed at one end of
its longest inertia axis. Sets are the tuning five plus such a copy (6 classes), cached under
``/tmp/cryomine_exp_cache``; nothing here reads a validation structure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryomine.simulate import simulate_subtomograms
from cryomine.simulate._subtomograms import load_structure_densities

CACHE = Path("/tmp/cryomine_exp_cache")
TUNE5 = ("6v8o", "atp_synthase", "3j9i", "4v94", "4v4r")


def cut_end(density: np.ndarray, cut: float) -> np.ndarray:
    """``density`` without the slab at the low end of its longest axis that holds ``cut`` of its
    (positive) mass. Axes (z, y, x); the cut is a plane perpendicular to the longest axis."""
    mass = np.clip(density, 0, None)
    coords = np.stack(np.indices(density.shape), axis=-1).reshape(-1, 3).astype(np.float64)
    weights = mass.ravel() / mass.sum()
    centre = weights @ coords
    centred = coords - centre
    inertia = (centred * weights[:, None]).T @ centred
    axis = np.linalg.eigh(inertia)[1][:, -1]
    position = centred @ axis
    order = np.argsort(position)
    cumulative = np.cumsum(weights[order])
    threshold = position[order][np.searchsorted(cumulative, cut)]
    out = density.copy().ravel()
    out[position <= threshold] = 0.0
    return out.reshape(density.shape)


def _simulate_cached(path: Path, densities: dict[str, np.ndarray] | list[str], per_class: int,
                     snr: float, seed: int, voxel_size_a: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(volumes, 0-based truth) simulated as the validation benchmark does, cached at ``path``."""
    if path.exists():
        data = np.load(path)
        return data["v"], data["t"]
    sim = simulate_subtomograms(
        densities, n_per_class=per_class, snr=snr, tilt_range_deg=(-60.0, 60.0),
        voxel_size_a=voxel_size_a, mode="fourier", seed=seed,
    )  # fmt: skip
    volumes = np.concatenate(list(sim.iter_subtomograms())).astype(np.float32)
    truth = sim.table["cmTrueClass"].to_numpy() - 1
    CACHE.mkdir(exist_ok=True)
    np.savez(path, v=volumes, t=truth)
    return volumes, truth


def pair_set(base: str, cut: float, per_class: int, snr: float, seed: int,
             voxel_size_a: float = 16.0) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """(volumes, 0-based truth, class names) of the tuning five + ``base`` cut by ``cut``."""
    path = CACHE / f"pair_{base}_{cut}_{per_class}_{snr}_{seed}_{voxel_size_a}.npz"
    names = [*TUNE5, f"{base}-cut{cut:g}"]
    densities = load_structure_densities(list(TUNE5), voxel_size_a=voxel_size_a, box_size=24)
    densities[names[-1]] = cut_end(densities[base], cut)
    return (*_simulate_cached(path, densities, per_class, snr, seed, voxel_size_a), names)


def tune5_set(per_class: int, snr: float, seed: int,
              voxel_size_a: float = 16.0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(volumes, 0-based truth) of the tuning five alone, simulated as :func:`pair_set` does."""
    path = CACHE / f"tune5_{per_class}_{snr}_{seed}_{voxel_size_a}.npz"
    return _simulate_cached(path, list(TUNE5), per_class, snr, seed, voxel_size_a)
