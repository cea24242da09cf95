"""The FLCF search: brute force, planted template, tiles, rotations, the template."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.matching import (
    flcf_max,
    make_template,
    plan_tiles,
    prepare_rotated,
    search_rotations,
    search_tiles,
)


def _brute_force(volume: np.ndarray, normalised: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Best Pearson correlation under the mask at every voxel, windows padded with the mean."""
    box = normalised.shape[-1]
    before, after = box // 2, box - 1 - box // 2
    padded = np.pad(volume.astype(np.float64), [(before, after)] * 3, constant_values=volume.mean())
    best = np.full(volume.shape, -np.inf)
    for z, y, x in np.ndindex(volume.shape):
        window = padded[z : z + box, y : y + box, x : x + box]
        for r in range(len(normalised)):
            mask = masks[r if len(masks) > 1 else 0]
            n = mask.sum()
            mean = (mask * window).sum() / n
            std = np.sqrt((mask * window**2).sum() / n - mean**2)
            best[z, y, x] = max(best[z, y, x], (normalised[r] * window).sum() / (n * std))
    return best


@pytest.mark.parametrize("user_mask", [False, True])
def test_flcf_equals_brute_force_correlation(user_mask, blob_factory):
    density = blob_factory(8, n_atoms=6, spread=1.5)
    mask = None
    if user_mask:  # an off-centre box mask: rotated with the template
        mask = np.zeros((8, 8, 8), dtype=np.float32)
        mask[2:7, 1:6, 2:6] = 1.0
    template = make_template(
        density, voxel_size_a=10.0, contrast="bright", mask=mask, mask_radius_px=2.5
    )
    volume = np.random.default_rng(0).normal(size=(9, 10, 11)).astype(np.float32)
    matrices = Rotation.random(4, random_state=2).as_matrix()
    found = flcf_max(volume, template, matrices)
    normalised, masks = prepare_rotated(template, matrices, torch.device("cpu"))
    expected = _brute_force(volume, normalised.numpy(), masks.numpy())
    np.testing.assert_allclose(found.scores, expected, atol=2e-5)
    assert found.count == volume.size * 4
    assert np.all(np.abs(found.scores) <= 1.0 + 1e-5)


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ),
    ],
)
def test_search_runs_on_the_device_and_agrees_with_the_cpu(device, blob):
    template = make_template(blob, voxel_size_a=10.0, contrast="bright")
    volume = np.random.default_rng(5).normal(size=(12, 14, 13)).astype(np.float32)
    matrices = search_rotations(90.0).as_matrix()
    on_device = flcf_max(volume, template, matrices, device=device)
    on_cpu = flcf_max(volume, template, matrices, device="cpu")
    np.testing.assert_allclose(on_device.scores, on_cpu.scores, atol=1e-4)


def test_tilt_angles_file(tmp_path):
    from cryomine.matching import read_tilt_angles

    path = tmp_path / "TS_01.tlt"
    path.write_text("# tilts\n-57.0\n-3.0\n 0.0\n3.0\n54.0\n")
    np.testing.assert_array_equal(read_tilt_angles(path), [-57.0, -3.0, 0.0, 3.0, 54.0])
    path.write_text("-60\nsixty\n")
    with pytest.raises(InputError, match="tilt angle"):
        read_tilt_angles(path)
    with pytest.raises(InputError, match="not found"):
        read_tilt_angles(tmp_path / "missing.tlt")


def test_planted_template_is_found_within_one_voxel_and_one_step(blob, planter):
    step = 30.0
    truth = Rotation.from_euler("ZYZ", [40.0, 70.0, -110.0], degrees=True)
    centre = (13, 15, 12)
    volume = planter((28, 30, 26), blob, truth, centre, snr_amplitude=0.6, seed=4)
    template = make_template(blob, voxel_size_a=10.0, contrast="bright")
    rotations = search_rotations(step)
    found = flcf_max(volume, template, rotations.as_matrix())
    peak = np.unravel_index(np.argmax(found.scores), found.scores.shape)
    assert np.abs(np.array(peak) - centre).max() <= 1
    best = rotations[int(found.indices[peak])]
    assert np.degrees((best * truth.inv()).magnitude()) <= step


def test_tiled_search_equals_untiled(blob):
    volume = np.random.default_rng(3).normal(size=(20, 23, 18)).astype(np.float32)
    template = make_template(blob, voxel_size_a=10.0, contrast="bright")
    matrices = search_rotations(90.0).as_matrix()
    whole = flcf_max(volume, template, matrices)
    tiles = plan_tiles(volume.shape, (8, 10, 7), template.box_size)
    assert len(tiles) == 3 * 3 * 3
    stitched = np.zeros(volume.shape, dtype=np.float32)
    indices = np.zeros(volume.shape, dtype=np.int64)
    total = 0.0
    for tile, scores in search_tiles(volume, template, matrices, tiles):
        region = tuple(slice(a, a + n) for a, n in zip(tile.start, tile.shape, strict=True))
        stitched[region] = scores.scores
        indices[region] = scores.indices
        total += scores.sum
    np.testing.assert_allclose(stitched, whole.scores, atol=1e-5)
    assert np.mean(indices == whole.indices) > 0.999
    assert total == pytest.approx(whole.sum, abs=1e-3)


def test_symmetry_keeps_one_rotation_per_orbit():
    full = search_rotations(30.0)
    c4 = search_rotations(30.0, "C4")
    assert abs(len(c4) - len(full) / 4) < 0.05 * len(full)
    quarter = Rotation.from_euler("z", 90.0, degrees=True)
    # every grid rotation has a kept rotation within one step of it or of a symmetry mate
    for r in full[::37]:
        mates = [r * quarter**k for k in range(4)]
        nearest = min(np.degrees((c4 * m.inv()).magnitude()).min() for m in mates)
        assert nearest <= 30.0
    with pytest.raises(InputError, match="symmetry"):
        search_rotations(30.0, "D2")


def test_template_filter_and_mask(blob, blob_factory):
    template = make_template(blob, voxel_size_a=10.0, tilt_range_deg=(-45, 45), defocus_um=3.0)
    assert template.fourier_filter.shape == (16, 16, 9)
    assert np.all(template.density <= 1e-6)  # dark contrast: protein negative
    assert template.mask_is_spherical and template.mask.max() == 1.0
    bright = make_template(blob, voxel_size_a=10.0, tilt_range_deg=None, contrast="bright")
    assert np.all(bright.fourier_filter == 1.0)
    with pytest.raises(InputError, match="defocus"):
        make_template(blob, voxel_size_a=10.0, defocus_um=-1.0)
    with pytest.raises(InputError, match="mask"):
        make_template(blob, voxel_size_a=10.0, mask=np.ones((4, 4, 4)))
    with pytest.raises(InputError, match="odd"):
        make_template(blob_factory(15), voxel_size_a=10.0)


def test_template_from_a_built_in_structure():
    template = make_template("4v4r", voxel_size_a=25.0)
    assert template.box_size % 2 == 0 and template.density.min() < 0
    assert template.parameters["structure"] == "4v4r"
