import math

import numpy as np
import pytest

from cryomine.averaging import fourier_shell_correlation, resolution_at
from cryomine.errors import InputError
from cryomine.geometry import radial_frequency_grid


def test_identical_maps_correlate_perfectly_and_resolve_to_nyquist():
    volume = np.random.default_rng(0).normal(size=(20, 20, 20))
    freqs, fsc = fourier_shell_correlation(volume, volume, voxel_size_a=5.0)
    assert freqs.shape == fsc.shape == (11,)
    assert freqs[-1] == pytest.approx(1 / 10.0)
    np.testing.assert_allclose(fsc[1:], 1.0, atol=1e-9)
    assert resolution_at(freqs, fsc) == pytest.approx(10.0)


def test_independent_noise_does_not_correlate():
    rng = np.random.default_rng(1)
    freqs, fsc = fourier_shell_correlation(
        rng.normal(size=(32,) * 3), rng.normal(size=(32,) * 3), voxel_size_a=2.0
    )
    assert abs(np.mean(fsc[2:])) < 0.02
    assert np.max(np.abs(fsc[4:])) < 0.2  # shells of >= 100 voxels: sd about 0.07
    assert resolution_at(freqs, fsc) > 30.0


def test_shared_signal_up_to_a_frequency_crosses_there():
    rng = np.random.default_rng(2)
    size, voxel, cutoff = 32, 3.0, 0.25  # cycles per voxel
    low = np.fft.ifftshift(radial_frequency_grid((size,) * 3)) <= cutoff
    signal = np.fft.fftn(rng.normal(size=(size,) * 3))
    maps = [
        np.fft.ifftn(np.where(low, signal, np.fft.fftn(rng.normal(size=(size,) * 3)))).real
        for _ in range(2)
    ]
    freqs, fsc = fourier_shell_correlation(*maps, voxel_size_a=voxel)
    expected_a = voxel / cutoff  # 12 Å
    shell_a = 1 / (size * voxel)  # shell width, 1/Å
    assert (
        1 / (1 / expected_a + shell_a)
        <= resolution_at(freqs, fsc)
        <= 1 / (1 / expected_a - shell_a)
    )
    assert np.all(fsc[1:7] > 0.99) and np.all(np.abs(fsc[10:]) < 0.2)


def test_mask_is_applied_to_both_maps():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 12, 12, 12))
    mask = np.zeros((12, 12, 12))
    mask[3:9, 3:9, 3:9] = 1.0
    b_inside_equal = np.where(mask > 0, a, b)
    _, fsc = fourier_shell_correlation(a, b_inside_equal, voxel_size_a=1.0, mask=mask)
    np.testing.assert_allclose(fsc[1:], 1.0, atol=1e-9)


def test_resolution_interpolates_the_first_crossing_and_documents_edge_cases():
    freqs = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    assert resolution_at(freqs, np.array([1.0, 0.9, 0.5, 0.1, 0.5])) == pytest.approx(
        1 / (0.2 + 0.1 * 0.357 / 0.4)
    )
    assert resolution_at(freqs, np.array([1.0, 0.1, 0.9, 0.9, 0.9])) == math.inf
    assert resolution_at(freqs, np.array([1.0, 0.9, 0.9, 0.9, 0.9])) == pytest.approx(2.5)
    assert resolution_at(
        freqs, np.array([1.0, 0.9, np.nan, 0.5, 0.0]), threshold=0.5
    ) == pytest.approx(1 / 0.3)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="differs"):
        fourier_shell_correlation(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), voxel_size_a=1.0)
    with pytest.raises(InputError, match="voxel_size_a"):
        fourier_shell_correlation(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), voxel_size_a=0.0)
    with pytest.raises(InputError, match="n >= 2"):
        resolution_at(np.array([0.0]), np.array([1.0]))
