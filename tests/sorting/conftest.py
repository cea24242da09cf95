"""Fixtures for the sorting tests: small simulated subtomogram sets with known classes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: Three clearly different structures: 70S ribosome (262 Å), 20S proteasome (175 Å),
#: RuBisCO (127 Å).
THREE_STRUCTURES = ("4v4r", "3j9i", "1bxn")


#: The three-class validation case of BENCHMARKS.md §6 (never tuned on): 80S ribosome (4v7r),
#: 26S proteasome (4cr2), ClpB (1qvr), at 16 Å per voxel so that the 80S fits a 24³ box.
VALIDATION_THREE = ("4v7r", "4cr2", "1qvr")
VALIDATION_VOXEL_SIZE_A = 16.0


def simulate_table(
    n_per_class: int,
    snr: float,
    *,
    seed: int = 0,
    structures: tuple[str, ...] = THREE_STRUCTURES,
    voxel_size_a: float | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``(N, 24, 24, 24)`` z-scored subtomograms (±60° wedge) and their table (true classes,
    orientations and shifts)."""
    from cryomine.simulate import simulate_subtomograms

    sampling = {} if voxel_size_a is None else {"voxel_size_a": voxel_size_a}
    simulated = simulate_subtomograms(
        list(structures), n_per_class=n_per_class, snr=snr, mode="fourier", seed=seed,
        **sampling,
    )  # fmt: skip
    return np.concatenate(list(simulated.iter_subtomograms())), simulated.table


def simulate(
    n_per_class: int,
    snr: float,
    *,
    seed: int = 0,
    structures: tuple[str, ...] = THREE_STRUCTURES,
    voxel_size_a: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 24, 24, 24)`` z-scored subtomograms and their 0-based true classes (±60° wedge)."""
    volumes, table = simulate_table(
        n_per_class, snr, seed=seed, structures=structures, voxel_size_a=voxel_size_a
    )
    return volumes, table["cmTrueClass"].to_numpy() - 1


@pytest.fixture(scope="session")
def three_classes() -> tuple[np.ndarray, np.ndarray]:
    """3 tuning structures x 60 at 13 Å, SNR 0.1, ±60° wedge, random pose and ±2 voxel shifts."""
    return simulate(60, 0.1)


@pytest.fixture(scope="session")
def validation_three() -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    """``seed -> (volumes, truth)``: the validation three x 60 at 16 Å, SNR 0.1, ±60° wedge."""

    def make(seed: int) -> tuple[np.ndarray, np.ndarray]:
        return simulate(
            60, 0.1, seed=seed, structures=VALIDATION_THREE, voxel_size_a=VALIDATION_VOXEL_SIZE_A
        )

    return make


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
