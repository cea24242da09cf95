"""Fixtures for the averaging tests: a small asymmetric map, simulated wedge-limited particles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryomine.geometry import missing_wedge_mask, random_rotations, transform_volumes
from cryomine.structures import structure_density

BOX = 16
VOXEL_A = 24.0


@pytest.fixture(scope="session")
def truth_map() -> np.ndarray:
    """The 70S ribosome (4v4r) at 24 Å per voxel in a 16³ box, protein bright."""
    return structure_density("4v4r", voxel_size_a=VOXEL_A, box_size=BOX)


def wedge_filter(
    volumes: np.ndarray, tilt_range_deg: tuple[float, float] = (-60.0, 60.0)
) -> np.ndarray:
    """Remove the missing wedge (tilt axis y) from ``(N, S, S, S)`` volumes."""
    size = volumes.shape[-1]
    wedge = np.fft.ifftshift(missing_wedge_mask((size,) * 3, tilt_range_deg=tilt_range_deg))
    return np.fft.ifftn(np.fft.fftn(volumes, axes=(-3, -2, -1)) * wedge, axes=(-3, -2, -1)).real


def simulate(
    truth: np.ndarray, n: int, *, snr: float, seed: int, max_shift_px: float = 1.5
) -> tuple[np.ndarray, Rotation, np.ndarray]:
    """``n`` copies of ``truth`` in random orientations and shifts, wedge-filtered, with
    wedge-filtered white noise at signal-to-noise (variance) ratio ``snr``."""
    rng = np.random.default_rng(seed)
    rotations = random_rotations(n, rng=rng)
    shifts = rng.uniform(-max_shift_px, max_shift_px, (n, 3))
    volumes = torch.as_tensor(truth)[None].expand(n, -1, -1, -1)
    clean, _ = transform_volumes(volumes, rotations.as_matrix(), shifts)
    signal = wedge_filter(clean.numpy().astype(np.float64))
    noise = wedge_filter(rng.normal(0.0, 1.0, signal.shape))
    noise *= signal.std() / noise.std() / np.sqrt(snr)
    return (signal + noise).astype(np.float32), rotations, shifts


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two volumes."""
    a = np.asarray(a, dtype=np.float64).ravel() - np.mean(a)
    b = np.asarray(b, dtype=np.float64).ravel() - np.mean(b)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.fixture(scope="session")
def helpers() -> dict:
    """The helper functions above, for test modules (conftest cannot be imported by name)."""
    return {
        "simulate": simulate,
        "wedge_filter": wedge_filter,
        "correlation": correlation,
        "box": BOX,
        "voxel_a": VOXEL_A,
    }
