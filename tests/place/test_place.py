import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import matrices_zyx
from cryomine.io import COLUMNS, new_particle_table
from cryomine.place import place_averages, resample_average


def _local_centre_of_mass(volume: np.ndarray, around: np.ndarray, radius: float) -> np.ndarray:
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij"), axis=-1)
    near = (np.linalg.norm(grid - around, axis=-1) <= radius) & (volume > 0)
    weights = volume[near]
    return (grid[near] * weights[:, None]).sum(axis=0) / weights.sum()


def test_resampling_keeps_the_centre_and_scales_lengths(two_blob_average, blobs):
    up = resample_average(two_blob_average, from_voxel_a=20.0, to_voxel_a=10.0)
    assert up.shape == (32, 32, 32)
    offset, _ = blobs[0]
    peak = np.unravel_index(np.argmax(up), up.shape)
    np.testing.assert_allclose(peak, 16 + 2 * offset, atol=0.5)
    same = resample_average(two_blob_average, from_voxel_a=5.0, to_voxel_a=5.0)
    np.testing.assert_array_equal(same, two_blob_average)
    with pytest.raises(InputError, match="cubic"):
        resample_average(np.zeros((4, 4, 5)), from_voxel_a=1.0, to_voxel_a=1.0)


def test_particle_lands_at_its_position_rotated_and_with_its_origin_shift(two_blob_average, blobs):
    rotation = Rotation.from_euler("ZYZ", [30, 50, -70], degrees=True)
    coordinate = np.array([30.0, 41.0, 36.0])  # z, y, x tomogram voxels (10 Å)
    table = new_particle_table(
        coordinate[None], tomo_name="TS", pixel_size_a=10.0, rotations=rotation
    )
    table[COLUMNS.class_number] = 3
    origin_xyz_a = np.array([-4.0, 7.0, 2.5])  # RELION: centre = coordinate - origin / pixel size
    for axis, name in enumerate(COLUMNS.origin_xyz_angst):
        table[name] = origin_xyz_a[axis]
    centre = coordinate - origin_xyz_a[::-1] / 10.0
    density = np.zeros((60, 70, 72), dtype=np.float32)
    labels = np.zeros(density.shape, dtype=np.int16)
    count = place_averages(
        table,
        {3: two_blob_average},
        average_voxel_size_a=20.0,
        tomogram_voxel_size_a=10.0,
        density=density,
        labels=labels,
    )
    assert count == 1
    r_zyx = matrices_zyx(rotation)[0]
    for offset, _ in blobs:
        expected = centre + 2.0 * (
            r_zyx @ offset
        )  # averages are binned 2× relative to the tomogram
        found = _local_centre_of_mass(density, expected, radius=4.0)
        np.testing.assert_allclose(found, expected, atol=0.35)
    strong = np.rint(centre + 2.0 * (r_zyx @ blobs[0][0])).astype(int)
    assert labels[tuple(strong)] == 3
    assert labels[0, 0, 0] == 0 and set(np.unique(labels)) == {0, 3}
    # Labels mark where the placed average exceeds half the maximum of the (resampled) average.
    threshold = 0.5 * resample_average(two_blob_average, from_voxel_a=20.0, to_voxel_a=10.0).max()
    assert density[labels == 3].min() > threshold - 1e-6
    assert density[labels == 0].max() <= threshold + 1e-6


def test_particles_near_the_border_are_clipped_and_unknown_classes_skipped(two_blob_average):
    positions = np.array([[1.0, 1.0, 1.0], [10.0, 10.0, 10.0]])
    table = new_particle_table(positions, tomo_name="TS", pixel_size_a=5.0)
    table[COLUMNS.class_number] = [1, 2]
    density = np.zeros((20, 20, 20), dtype=np.float32)
    count = place_averages(
        table,
        {1: two_blob_average},
        average_voxel_size_a=5.0,
        tomogram_voxel_size_a=5.0,
        density=density,
    )
    assert count == 1
    assert density[:4, :4, :10].max() > 0.5 and density[8:12, 8:12, 8:12].max() < 0.01


def test_bad_input_is_refused(two_blob_average):
    table = new_particle_table(np.zeros((1, 3)), tomo_name="TS", pixel_size_a=5.0)
    density = np.zeros((8, 8, 8), dtype=np.float32)
    with pytest.raises(InputError, match="rlnClassNumber"):
        place_averages(
            table,
            {1: two_blob_average},
            average_voxel_size_a=5.0,
            tomogram_voxel_size_a=5.0,
            density=density,
        )
    table[COLUMNS.class_number] = 1
    with pytest.raises(InputError, match="threshold"):
        place_averages(
            table,
            {1: two_blob_average},
            average_voxel_size_a=5.0,
            tomogram_voxel_size_a=5.0,
            density=density,
            threshold_fraction=0.0,
        )
    with pytest.raises(InputError, match="labels"):
        place_averages(
            table,
            {1: two_blob_average},
            average_voxel_size_a=5.0,
            tomogram_voxel_size_a=5.0,
            density=density,
            labels=np.zeros((8, 8, 9), dtype=np.int16),
        )


def test_the_former_module_name_warns_and_returns_the_new_functions() -> None:
    import cryomine.embed
    import cryomine.place

    with pytest.warns(FutureWarning, match=r"cryomine.embed.embed_run is deprecated"):
        assert cryomine.embed.embed_run is cryomine.place.place_run
    with pytest.warns(FutureWarning, match="use cryomine.place.place_averages"):
        assert cryomine.embed.embed_averages is cryomine.place.place_averages
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        cryomine.embed.nothing  # noqa: B018
