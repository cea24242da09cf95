import numpy as np
import pytest
from scipy import ndimage

from cryomine.errors import InputError
from cryomine.picking import pick_particles

VOXEL_A = 10.0
DIAMETER_A = 120.0


def _blob_tomogram(rng, shape=(48, 96, 96), n=12, noise=0.3):
    """Dark spheres of the given diameter at well-separated random positions, plus noise."""
    radius = DIAMETER_A / VOXEL_A / 2
    positions = []
    while len(positions) < n:
        p = rng.uniform(radius + 2, np.asarray(shape) - radius - 3)
        if all(np.linalg.norm(p - q) > 2.5 * radius for q in positions):
            positions.append(p)
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    volume = np.zeros(shape, np.float32)
    for p in positions:
        volume -= (zz - p[0]) ** 2 + (yy - p[1]) ** 2 + (xx - p[2]) ** 2 <= radius**2
    volume = ndimage.gaussian_filter(volume, 1.0)
    volume += noise * rng.standard_normal(shape).astype(np.float32)
    return volume, np.asarray(positions)


def _recall(found, truth, tolerance_px):
    d = np.linalg.norm(truth[:, None, :] - found[None, :, :], axis=2)
    return float(np.mean(d.min(axis=1) <= tolerance_px)) if len(found) else 0.0


def test_finds_dark_blobs_at_their_centres():
    rng = np.random.default_rng(0)
    tomogram, truth = _blob_tomogram(rng)
    picks = pick_particles(
        tomogram, voxel_size_a=VOXEL_A, diameter_a=DIAMETER_A, max_picks=len(truth), border_a=0
    )
    assert picks.positions_zyx.shape == (len(truth), 3)
    assert np.all(np.diff(picks.scores) <= 0)
    assert _recall(picks.positions_zyx, truth, tolerance_px=1.5) == 1.0


def test_bright_contrast_finds_nothing_useful_in_dark_data():
    rng = np.random.default_rng(1)
    tomogram, truth = _blob_tomogram(rng)
    picks = pick_particles(
        tomogram,
        voxel_size_a=VOXEL_A,
        diameter_a=DIAMETER_A,
        contrast="bright",
        max_picks=len(truth),
        border_a=0,
    )
    assert _recall(picks.positions_zyx, truth, tolerance_px=1.5) < 0.3


def test_block_size_does_not_change_the_result():
    rng = np.random.default_rng(2)
    tomogram, _ = _blob_tomogram(rng)
    whole = pick_particles(tomogram, voxel_size_a=VOXEL_A, diameter_a=DIAMETER_A, block_size=128)
    blocked = pick_particles(tomogram, voxel_size_a=VOXEL_A, diameter_a=DIAMETER_A, block_size=20)
    np.testing.assert_array_equal(whole.positions_zyx, blocked.positions_zyx)
    np.testing.assert_allclose(whole.scores, blocked.scores, rtol=1e-5)


def test_min_distance_border_mask_and_threshold():
    rng = np.random.default_rng(3)
    tomogram, _ = _blob_tomogram(rng)
    picks = pick_particles(
        tomogram, voxel_size_a=VOXEL_A, diameter_a=DIAMETER_A, min_distance_a=100
    )
    d = np.linalg.norm(picks.positions_zyx[:, None] - picks.positions_zyx[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 10 - 1e-9
    assert np.all(picks.positions_zyx >= 6) and np.all(
        picks.positions_zyx <= np.array(tomogram.shape) - 7
    )
    strong = pick_particles(
        tomogram, voxel_size_a=VOXEL_A, diameter_a=DIAMETER_A, min_score=picks.scores[3]
    )
    assert len(strong) == 4
    mask = np.zeros(tomogram.shape, bool)
    mask[:, :48] = True
    masked = pick_particles(tomogram, voxel_size_a=VOXEL_A, diameter_a=DIAMETER_A, mask=mask)
    assert np.all(masked.positions_zyx[:, 1] < 48)


def test_nothing_found_has_the_right_shapes():
    tomogram = np.random.default_rng(4).standard_normal((30, 30, 30)).astype(np.float32)
    picks = pick_particles(tomogram, voxel_size_a=VOXEL_A, diameter_a=DIAMETER_A, min_score=1e9)
    assert picks.positions_zyx.shape == (0, 3)
    assert picks.scores.shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contrast": "grey"}, "contrast"),
        ({"diameter_a": 5.0}, "under two voxels"),
        ({"mask": np.ones((2, 2, 2), bool)}, "mask shape"),
    ],
)
def test_bad_input(kwargs, message):
    tomogram = np.zeros((20, 20, 20), np.float32)
    options = {"voxel_size_a": VOXEL_A, "diameter_a": DIAMETER_A, **kwargs}
    with pytest.raises(InputError, match=message):
        pick_particles(tomogram, **options)
