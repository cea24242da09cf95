"""The Monte Carlo significance test: pseudo-structures, calibrated p-values, true matches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import fourier_shells
from cryomine.matching import make_template, search_rotations
from cryomine.matching._pseudo import pseudo_structures
from cryomine.matching._significance import extract_windows, template_p_values

SHIFT = 1


@pytest.fixture(scope="module")
def clpb() -> np.ndarray:
    """ClpB (PDB 1QVR, a hexameric ring) at 20 Å: a 14³ map, protein bright."""
    from cryomine.structures import structure_density

    return structure_density("1qvr", voxel_size_a=20.0)


def test_pseudo_structures_match_the_power_spectrum_and_are_seeded(blob):
    nulls = pseudo_structures(blob, 3, rng=np.random.default_rng(5))
    again = pseudo_structures(blob, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(nulls, again)
    assert nulls.shape == (3, 16, 16, 16)
    shells = fourier_shells(blob.shape, rfft=True)

    def radial(volume):
        power = np.abs(np.fft.rfftn(volume)) ** 2
        return np.bincount(shells.ravel(), power.ravel()) / np.bincount(shells.ravel())

    target = radial(blob)
    for null in nulls:
        np.testing.assert_allclose(radial(null)[:9], target[:9], rtol=1e-6)
        assert abs(np.corrcoef(null.ravel(), blob.ravel())[0, 1]) < 0.9  # a different shape
    with pytest.raises(InputError):
        pseudo_structures(blob, 0, rng=np.random.default_rng(0))


def test_p_values_are_uniform_on_noise(clpb):
    """Pooled over independent calls (each draws its own null), noise p-values are uniform."""
    template = make_template(clpb, voxel_size_a=20.0, contrast="bright")
    matrices = search_rotations(60.0).as_matrix()
    width = template.box_size + 2 * SHIFT
    n_null, pooled = 19, []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        noise = rng.normal(size=(8, width, width, width)).astype(np.float32)
        result = template_p_values(
            noise, template, matrices, n_null=n_null, n_reference=12, max_shift_px=SHIFT,
            rng=np.random.default_rng(100 + seed),
        )  # fmt: skip
        assert result.p_values.shape == (8,) and result.null_scores.shape == (8, n_null)
        assert np.all((result.p_values > 0) & (result.p_values <= 1))
        # spread the discrete p-values (k / 20) uniformly over their bins before the KS test
        pooled.append(result.p_values - rng.uniform(size=8) / (n_null + 1))
    assert stats.kstest(np.concatenate(pooled), "uniform").pvalue > 0.01


def test_p_values_are_small_on_true_matches(clpb, planter):
    template = make_template(clpb, voxel_size_a=20.0, contrast="bright")
    matrices = search_rotations(60.0).as_matrix()
    width = template.box_size + 2 * SHIFT
    shape = (width + 8, width + 8, width + 8)
    centre = (shape[0] // 2,) * 3
    windows = []
    for i in range(5):
        turn = Rotation.random(random_state=i)
        volume = planter(shape, clpb, turn, centre, snr_amplitude=0.8, seed=i)
        windows.append(extract_windows(volume, np.array([centre]), template.box_size, SHIFT)[0])
    result = template_p_values(
        np.stack(windows), template, matrices, n_null=19, n_reference=8, max_shift_px=SHIFT,
        rng=np.random.default_rng(1),
    )  # fmt: skip
    # the smallest possible p-value is 1 / (1 + 19) = 0.05
    assert np.median(result.p_values) == pytest.approx(0.05)
    assert np.all(result.p_values <= 0.15)
    assert np.all(result.scores > result.null_scores.max(axis=1))


def test_windows_pad_outside_the_tomogram_with_its_mean():
    tomogram = np.arange(10 * 10 * 10, dtype=np.float32).reshape(10, 10, 10)
    windows = extract_windows(tomogram, np.array([[0, 5, 9], [5, 5, 5]]), 4, 1)
    assert windows.shape == (2, 6, 6, 6)
    assert windows[0, 0, 0, 0] == pytest.approx(tomogram.mean())
    np.testing.assert_array_equal(windows[1], tomogram[2:8, 2:8, 2:8])
    with pytest.raises(InputError, match="outside"):
        extract_windows(tomogram, np.array([[30, 5, 5]]), 4, 1)
