"""Band-limited resampling, cleaning and envelopes on synthetic and shipped maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cryomine.geometry import fourier_resample
from cryomine.structures import structure_density
from cryomine.structures._resample import (
    centre_of_mass,
    clean_map,
    envelope_mask,
)


def _band_limited(n: int, max_index: int, seed: int) -> np.ndarray:
    """Real random volume whose spectrum is zero beyond ``max_index`` along every axis."""
    rng = np.random.default_rng(seed)
    spectrum = np.zeros((n, n, n), dtype=complex)
    keep = np.r_[0 : max_index + 1, n - max_index : n]
    block = rng.normal(size=(len(keep),) * 3) + 1j * rng.normal(size=(len(keep),) * 3)
    spectrum[np.ix_(keep, keep, keep)] = block
    return np.fft.ifftn(spectrum).real


def _gaussian_blob(n: int, centre: tuple[float, float, float], sigma: float) -> np.ndarray:
    grid = np.indices((n, n, n), dtype=float)
    r2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    return np.exp(-r2 / (2 * sigma**2))


def test_same_grid_is_the_identity() -> None:
    blob = _gaussian_blob(32, (16, 15, 17), 2.5)
    out = fourier_resample(
        blob, voxel_size_a=3.0, out_voxel_size_a=3.0, out_box=32, centre_zyx=(16, 16, 16)
    )
    np.testing.assert_allclose(out, blob, atol=1e-6)


def test_integer_binning_is_fourier_cropping() -> None:
    # A periodic band-limited volume (low enough that the roll-off near Nyquist does not act).
    volume = _band_limited(32, 5, seed=1)
    tiled = np.tile(volume, (3, 3, 3))  # so that zero padding cannot show
    out = fourier_resample(
        tiled, voxel_size_a=1.0, out_voxel_size_a=2.0, out_box=16, centre_zyx=(48, 48, 48)
    )
    spectrum = np.fft.fftn(volume)
    keep = np.r_[0:8, 24:32]
    cropped = np.fft.ifftn(spectrum[np.ix_(keep, keep, keep)]).real / 8.0
    # Output voxel j lies on source voxel 48 + 2 (j - 8) = 2 j (mod 32): the cropped grid itself.
    inner = (slice(4, 12),) * 3
    np.testing.assert_allclose(out[inner], cropped[inner], atol=2e-3 * np.abs(volume).max())


@settings(max_examples=15, deadline=None)
@given(st.tuples(*[st.floats(-2.0, 2.0)] * 3))
def test_sub_voxel_centring_moves_the_centre_of_mass(shift: tuple[float, float, float]) -> None:
    blob = _gaussian_blob(24, (12.0, 12.0, 12.0), 2.0)
    centre = np.array([12.0, 12.0, 12.0]) + np.array(shift)
    out = fourier_resample(
        blob, voxel_size_a=1.0, out_voxel_size_a=1.0, out_box=24, centre_zyx=centre
    )
    np.testing.assert_allclose(centre_of_mass(out), 12.0 - np.array(shift), atol=0.02)


def test_half_voxel_and_back_preserves_a_shipped_map() -> None:
    density = structure_density("3j9i", voxel_size_a=12.0, box_size=32)
    fine = fourier_resample(
        density, voxel_size_a=12.0, out_voxel_size_a=6.0, out_box=64, centre_zyx=(16, 16, 16)
    )
    back = fourier_resample(
        fine, voxel_size_a=6.0, out_voxel_size_a=12.0, out_box=32, centre_zyx=(32, 32, 32)
    )
    assert np.corrcoef(density.ravel(), back.ravel())[0, 1] > 0.99
    assert float(fine.sum()) * 6.0**3 == pytest.approx(float(density.sum()) * 12.0**3, rel=1e-3)


def test_non_integer_ratio_keeps_the_integral_and_shape() -> None:
    blob = _gaussian_blob(40, (20, 20, 20), 4.0)
    out = fourier_resample(
        blob, voxel_size_a=7.84, out_voxel_size_a=12.0, out_box=26, centre_zyx=(20, 20, 20)
    )
    assert float(out.sum()) * 12.0**3 == pytest.approx(float(blob.sum()) * 7.84**3, rel=1e-3)
    # A Gaussian of σ = 4 × 7.84 Å resampled at 12 Å: peak value and width are unchanged.
    assert out.max() == pytest.approx(1.0, rel=0.02)
    np.testing.assert_allclose(centre_of_mass(out), 13.0, atol=1e-3)


def test_clean_map_removes_solvent_offset_and_distant_noise() -> None:
    rng = np.random.default_rng(3)
    blob = _gaussian_blob(48, (24, 24, 24), 3.0)
    noisy = blob - 0.2 + 0.002 * rng.normal(size=blob.shape)
    noisy[2:5, 2:5, 2:5] += 0.3  # a speck far away, above the noise but below the mask level
    cleaned = clean_map(noisy, voxel_size_a=10.0, threshold_fraction=0.5)
    assert np.abs(cleaned[:8, :8, :8]).max() < 1e-6
    assert cleaned[24, 24, 24] == pytest.approx(1.0, abs=0.02)
    assert cleaned.min() >= 0.0


def test_clean_map_keeps_the_heaviest_copy() -> None:
    two = _gaussian_blob(48, (24, 24, 12), 3.0) + 1.5 * _gaussian_blob(48, (24, 24, 36), 3.0)
    kept = clean_map(two, voxel_size_a=10.0, largest_component_only=True, margin_a=20.0)
    assert kept[24, 24, 12] < 1e-6
    assert kept[24, 24, 36] == pytest.approx(1.5, rel=0.01)


def test_envelope_holds_the_molecular_volume() -> None:
    blob = _gaussian_blob(40, (20.3, 19.8, 20.1), 4.0)  # off-grid centre: no tied values
    mask = envelope_mask(blob, voxel_size_a=5.0, mass_kda=100.0)
    assert mask.sum() == round(100_000 / 0.81 / 125.0)
    assert mask[20, 20, 20] and not mask[0, 0, 0]
    _, n_pieces = ndimage.label(mask)
    assert n_pieces == 1
