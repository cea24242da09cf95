"""Fixtures for the sorting tests: small simulated subtomogram sets with known classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: Three clearly different structures: 70S ribosome (262 Å), 20S proteasome (175 Å),
#: RuBisCO (127 Å).
THREE_STRUCTURES = ("4v4r", "3j9i", "1bxn")


def simulate(n_per_class: int, snr: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 24, 24, 24)`` z-scored subtomograms and their 0-based true classes."""
    from cryomine.simulate import simulate_subtomograms

    simulated = simulate_subtomograms(
        list(THREE_STRUCTURES), n_per_class=n_per_class, snr=snr, mode="fourier", seed=seed
    )
    volumes = np.concatenate(list(simulated.iter_subtomograms()))
    return volumes, simulated.table["cmTrueClass"].to_numpy() - 1


@pytest.fixture(scope="session")
def three_classes() -> tuple[np.ndarray, np.ndarray]:
    """3 structures x 60 subtomograms at SNR 0.1, ±60° wedge, random pose and ±2 voxel shifts."""
    return simulate(60, 0.1)


@pytest.fixture(scope="session")
def tiny_set() -> tuple[np.ndarray, np.ndarray]:
    """3 structures x 8 subtomograms at SNR 1 (for fast mechanics tests)."""
    return simulate(8, 1.0, seed=1)


@pytest.fixture(scope="session")
def tiny_particle_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_set``'s simulation written as a particle set directory (with truth columns)."""
    from cryomine.simulate import write_simulated_subtomograms

    directory = tmp_path_factory.mktemp("particles") / "set"
    write_simulated_subtomograms(
        directory, list(THREE_STRUCTURES), n_per_class=8, snr=1.0, mode="fourier", seed=1
    )
    return directory
