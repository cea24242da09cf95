"""Fixtures for the geometry tests: devices and small asymmetric test volumes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

_DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


@pytest.fixture(params=_DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Each device the tests run on: CPU always, CUDA when present."""
    return torch.device(request.param)


BlobMaker = Callable[[int, Sequence[float], float], np.ndarray]


@pytest.fixture
def gaussian_blob() -> BlobMaker:
    """``make(n, position_xyz, sigma_px)``: an ``(n, n, n)`` z, y, x Gaussian blob.

    ``position_xyz`` is relative to the box centre ``n // 2``, in voxels, x, y, z order.
    """

    def make(n: int, position_xyz: Sequence[float], sigma_px: float) -> np.ndarray:
        z, y, x = np.mgrid[:n, :n, :n].astype(np.float64)
        c = n // 2
        px, py, pz = position_xyz
        r2 = (x - c - px) ** 2 + (y - c - py) ** 2 + (z - c - pz) ** 2
        return np.exp(-r2 / (2.0 * sigma_px**2))

    return make


@pytest.fixture
def three_blobs(gaussian_blob: BlobMaker) -> Callable[[int], np.ndarray]:
    """``make(n)``: an asymmetric ``(n, n, n)`` volume, blobs of sigma 2.0, 1.5, 1.0 voxels on the
    +x, +y and +z axes at distance ``n // 4`` from the centre."""

    def make(n: int) -> np.ndarray:
        d = n // 4
        return (
            gaussian_blob(n, (d, 0, 0), 2.0)
            + gaussian_blob(n, (0, d, 0), 1.5)
            + gaussian_blob(n, (0, 0, d), 1.0)
        )

    return make


def centre_of_mass_xyz(volume: np.ndarray) -> np.ndarray:
    """Centre of mass of a ``(Z, Y, X)`` array relative to the box centre, x, y, z voxels."""
    weights = np.clip(volume, 0.0, None)
    grids = np.mgrid[tuple(slice(0, n) for n in volume.shape)].astype(np.float64)
    com_zyx = np.array([(g * weights).sum() / weights.sum() for g in grids])
    return (com_zyx - np.array([n // 2 for n in volume.shape]))[::-1]


@pytest.fixture
def com_xyz() -> Callable[[np.ndarray], np.ndarray]:
    """The :func:`centre_of_mass_xyz` helper."""
    return centre_of_mass_xyz
