"""Fixtures for the baseline tests: a tiny, high-SNR simulated set of three structures.

Named ``baseline_*`` so that they do not shadow ``tiny_set`` / ``tiny_particle_set`` of
tests/sorting/conftest.py, which also applies here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

STRUCTURES = ("6v8o", "3j9i", "4v4r")
VOXEL_SIZE_A = 16.0


@dataclass(frozen=True)
class BaselineSet:
    volumes: np.ndarray  # (N, 24, 24, 24) float32, z-scored
    truth: np.ndarray  # (N,) 0-based class
    references_ctf: dict[str, np.ndarray]
    table: object


@pytest.fixture(scope="session")
def baseline_set() -> BaselineSet:
    """3 structures x 3 subtomograms, SNR 10, ±60°, 24³ at 16 Å (Fourier imaging, fast)."""
    from cryomine.simulate import simulate_subtomograms

    sim = simulate_subtomograms(
        list(STRUCTURES), n_per_class=3, snr=10.0, voxel_size_a=VOXEL_SIZE_A, mode="fourier",
        seed=3, device="cpu",
    )  # fmt: skip
    volumes = np.concatenate(list(sim.iter_subtomograms()))
    return BaselineSet(
        volumes, sim.table["cmTrueClass"].to_numpy() - 1, sim.references_ctf, sim.table
    )


@pytest.fixture(scope="session")
def baseline_particle_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of set written to disk (particles.star, subtomograms.zarr, references/)."""
    from cryomine.simulate import write_simulated_subtomograms

    out = tmp_path_factory.mktemp("baselines") / "particles"
    write_simulated_subtomograms(
        out, list(STRUCTURES), n_per_class=2, snr=10.0, voxel_size_a=VOXEL_SIZE_A,
        mode="fourier", seed=5, device="cpu",
    )  # fmt: skip
    return out
