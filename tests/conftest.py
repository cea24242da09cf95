"""Fixtures shared by the test packages: small synthetic structures (sums of Gaussian blobs)."""

from __future__ import annotations

import numpy as np
import pytest

BOX = 24


def blob_density(seed: int, box: int = BOX, n_blobs: int = 5, reach: float = 5.0) -> np.ndarray:
    """A compact, asymmetric density: Gaussian blobs within ``reach`` voxels of ``box // 2``."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:box, :box, :box] - box // 2
    volume = np.zeros((box, box, box), dtype=np.float32)
    for _ in range(n_blobs):
        centre = rng.uniform(-reach, reach, 3)
        sigma = rng.uniform(1.5, 2.5)
        volume += np.exp(
            -((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2) / (2 * sigma**2)
        )
    return volume


@pytest.fixture(scope="session")
def make_blob():  # type: ignore[no-untyped-def]
    """The :func:`blob_density` factory (tests/simulate, tests/reconstruct)."""
    return blob_density
