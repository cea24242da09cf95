import numpy as np
import pytest
from scipy import ndimage

from cryomine.errors import InputError
from cryomine.extract import extract_subtomograms


def _tomogram_with_blob(position_zyx, shape=(40, 64, 72), sigma=1.5):
    volume = np.zeros(shape, np.float32)
    zz, yy, xx = np.indices(shape, dtype=np.float64)
    p = position_zyx
    volume -= np.exp(-((zz - p[0]) ** 2 + (yy - p[1]) ** 2 + (xx - p[2]) ** 2) / (2 * sigma**2))
    return volume.astype(np.float32)


def _centre_of_mass(volume):
    return np.asarray(ndimage.center_of_mass(np.clip(volume, 0, None)))


@pytest.mark.parametrize(
    ("position", "bin_factor"),
    [((20.0, 30.0, 40.0), 1), ((20.3, 29.6, 41.25), 1), ((20.0, 31.0, 35.5), 2)],
)
def test_particle_lands_on_the_box_centre(position, bin_factor):
    tomogram = _tomogram_with_blob(position, sigma=1.5 * bin_factor)
    box = 16
    result = extract_subtomograms(
        tomogram, np.array([position]), voxel_size_a=10.0, box_size=box, bin_factor=bin_factor
    )
    (batch,) = list(result.batches())
    assert batch.shape == (1, box, box, box)
    assert result.voxel_size_a == 10.0 * bin_factor
    # dark blob becomes bright, z-scored
    assert batch[0].max() > 3 and abs(batch[0].mean()) < 1e-5 and abs(batch[0].std() - 1) < 1e-4
    np.testing.assert_allclose(
        _centre_of_mass(batch[0] - np.median(batch[0])), [box // 2] * 3, atol=0.15
    )


def test_particles_near_the_edge_are_skipped_and_counted():
    tomogram = _tomogram_with_blob((20.0, 30.0, 40.0))
    positions = np.array([[20.0, 30, 40], [3.0, 30, 40], [20.0, 30, 68], [20, 8.0, 8.0]])
    result = extract_subtomograms(tomogram, positions, voxel_size_a=10.0, box_size=16)
    np.testing.assert_array_equal(result.kept, [True, False, False, True])
    assert result.n_skipped == 2
    assert sum(len(b) for b in result.batches()) == 2


def test_box_larger_than_the_tomogram_is_refused():
    tomogram = np.zeros((10, 64, 64), np.float32)
    with pytest.raises(InputError, match="does not fit the tomogram"):
        extract_subtomograms(tomogram, np.zeros((1, 3)), voxel_size_a=10.0, box_size=24)
