"""Fixtures for the template-matching tests: a small asymmetric template and planted volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation


def make_blob(
    size: int = 16, *, seed: int = 1, n_atoms: int = 24, spread: float = 2.6
) -> np.ndarray:
    """An asymmetric cluster of Gaussian pseudo-atoms (σ 0.8 voxel), centred at ``size // 2``."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size,) * 3).reshape(3, -1).T - size // 2
    density = np.zeros(size**3)
    for centre in rng.normal(scale=spread, size=(n_atoms, 3)) * [1.3, 1.0, 0.7]:
        density += np.exp(-((grid - centre) ** 2).sum(axis=1) / (2 * 0.8**2))
    return density.reshape((size,) * 3).astype(np.float32)


def plant(
    shape: tuple[int, int, int],
    density: np.ndarray,
    rotation: Rotation,
    centre_zyx: tuple[int, int, int],
    *,
    snr_amplitude: float,
    seed: int,
    tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
) -> np.ndarray:
    """White noise plus the rotated density at ``centre_zyx`` (integer), with a missing wedge."""
    from cryomine.geometry import missing_wedge_mask, transform_volumes

    box = density.shape[0]
    rotated, _ = transform_volumes(torch.from_numpy(density)[None], rotation.as_matrix()[None])
    volume = np.zeros(shape, dtype=np.float64)
    low = np.asarray(centre_zyx) - box // 2
    volume[tuple(slice(a, a + box) for a in low)] += rotated[0].numpy()
    wedge = missing_wedge_mask(shape, tilt_range_deg=tilt_range_deg, rfft=True)
    volume = np.fft.irfftn(np.fft.rfftn(volume) * wedge, s=shape, axes=(0, 1, 2))
    noise = np.random.default_rng(seed).normal(size=shape)
    return (snr_amplitude * volume / volume.std() + noise).astype(np.float32)


@pytest.fixture(scope="session")
def blob() -> np.ndarray:
    return make_blob()


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def blob_factory():
    """:func:`make_blob` (a fixture, so test modules need not import conftest)."""
    return make_blob


@pytest.fixture(scope="session")
def planter():
    """:func:`plant`."""
    return plant
