"""Fixtures for the io tests: seeded generators, small volumes and particle tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from cryomine.io import COLUMNS, new_particle_table

WARP_DIR = Path("/work/shared/data/experimental/mpneumoniae_ribosome_tiltstack_particles")
WARP_STAR = WARP_DIR / "warptools_test_4-tomos_10-ptcls_box-32_angpix-12.star"
WARP_TOMOGRAMS = WARP_DIR / "warptools_test_4-tomos_10-ptcls_box-32_angpix-12_tomograms.star"


@pytest.fixture
def warp_star() -> Path:
    """The real RELION 5 / WarpTools particle STAR file (skips when the data are absent)."""
    if not WARP_STAR.exists():
        pytest.skip(f"real WarpTools test data not available at {WARP_STAR}")
    return WARP_STAR


@pytest.fixture
def warp_tomograms(warp_star: Path) -> Path:
    """The tomograms STAR file that goes with :func:`warp_star`."""
    if not WARP_TOMOGRAMS.exists():
        pytest.skip(f"real WarpTools test data not available at {WARP_TOMOGRAMS}")
    return WARP_TOMOGRAMS


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20231121)


@pytest.fixture
def volume(rng: np.random.Generator) -> np.ndarray:
    """A (z, y, x) = (6, 7, 8) float32 volume; distinct sizes catch axis swaps."""
    return rng.normal(size=(6, 7, 8)).astype(np.float32)


@pytest.fixture
def tomogram_shapes() -> dict[str, tuple[int, int, int]]:
    """Sizes (z, y, x) in voxels of the tomograms of :func:`particle_table`."""
    return {"tomo_a": (50, 200, 180), "tomo_b": (61, 128, 127)}


@pytest.fixture
def particle_table(
    rng: np.random.Generator, tomogram_shapes: dict[str, tuple[int, int, int]]
) -> pd.DataFrame:
    """A canonical table of 30 particles in two tomograms, with angles, classes, scores, truth."""
    n = 30
    names = np.where(np.arange(n) < 18, "tomo_a", "tomo_b")
    sizes = np.array([tomogram_shapes[name] for name in names], dtype=float)
    positions = rng.uniform(0.0, 1.0, size=(n, 3)) * (sizes - 1)
    table = new_particle_table(
        positions,
        tomo_name=list(names),
        pixel_size_a=13.48,
        rotations=Rotation.random(n, random_state=rng),
        scores=rng.uniform(0.1, 0.9, n),
    )
    table[COLUMNS.class_number] = rng.integers(1, 5, n)
    table[COLUMNS.particle_id] = np.arange(101, 101 + n)
    table[COLUMNS.structure] = np.where(np.arange(n) % 2 == 0, "1bxn", "3j9i")
    table[COLUMNS.true_class] = np.where(np.arange(n) % 2 == 0, 1, 2)
    table["myNote"] = [f"note {i}" for i in range(n)]
    return table
