"""Fixtures for the placement tests: an asymmetric two-blob average with known blob offsets."""

from __future__ import annotations

import numpy as np
import pytest

#: Blob centres relative to the box centre, z, y, x voxels of the average, and their heights.
BLOBS = ((np.array([0.0, 0.0, 4.0]), 1.0), (np.array([0.0, 3.0, -1.0]), 0.6))


@pytest.fixture(scope="session")
def two_blob_average() -> np.ndarray:
    """``(16, 16, 16)`` float32 map: Gaussian blobs (σ 1.2 voxels) at :data:`BLOBS`."""
    axis = np.arange(16, dtype=np.float64) - 8
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    volume = np.zeros((16, 16, 16))
    for offset, height in BLOBS:
        volume += height * np.exp(
            -((z - offset[0]) ** 2 + (y - offset[1]) ** 2 + (x - offset[2]) ** 2) / (2 * 1.2**2)
        )
    return volume.astype(np.float32)


@pytest.fixture(scope="session")
def blobs() -> tuple:
    return BLOBS
