import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryomine.averaging import (
    accumulate_aligned,
    align_global,
    align_local,
    align_maps,
    compose_half_alignment,
    local_rotation_offsets,
    map_from_sums,
)
from cryomine.errors import InputError
from cryomine.geometry import (
    missing_wedge_mask,
    rotation_angles_deg,
    transform_volumes,
    uniform_rotation_grid,
)

BOX = 16


@pytest.fixture(scope="module")
def wedge() -> torch.Tensor:
    return torch.as_tensor(missing_wedge_mask((BOX,) * 3))


def test_known_rotation_and_shift_are_recovered_within_the_grid_step(truth_map, wedge, helpers):
    wedge_filter = helpers["wedge_filter"]
    true_rotation = Rotation.from_euler("ZYZ", [40, 70, -100], degrees=True)
    true_shift = np.array([1.0, -2.0, 1.0])
    particle, _ = transform_volumes(
        torch.as_tensor(truth_map)[None], true_rotation.as_matrix()[None], true_shift
    )
    particle = torch.as_tensor(wedge_filter(particle.numpy()), dtype=torch.float32)
    reference = torch.as_tensor(truth_map)
    ones = torch.ones_like(reference)
    coarse = align_global(
        particle,
        reference,
        ones,
        wedge,
        uniform_rotation_grid(30.0),
        max_frequency=0.4,
        max_shift_px=3.0,
    )
    coarse_error = rotation_angles_deg(coarse.rotations * true_rotation.inv())[0]
    assert coarse_error < 30.0
    np.testing.assert_allclose(coarse.shifts_zyx[0], true_shift)
    fine = align_local(
        particle,
        reference,
        ones,
        wedge,
        coarse.rotations,
        local_rotation_offsets(10.0, 30.0),
        max_frequency=0.45,
        max_shift_px=3.0,
    )
    fine = align_local(
        particle,
        reference,
        ones,
        wedge,
        fine.rotations,
        local_rotation_offsets(4.0, 8.0),
        max_frequency=0.45,
        max_shift_px=3.0,
    )
    assert rotation_angles_deg(fine.rotations * true_rotation.inv())[0] < 6.0
    np.testing.assert_allclose(fine.shifts_zyx[0], true_shift)
    assert fine.scores[0] > 0.95 and fine.scores[0] >= coarse.scores[0]


def test_shift_search_respects_the_limit(truth_map, wedge):
    particle, _ = transform_volumes(
        torch.as_tensor(truth_map)[None], np.eye(3), np.array([0.0, 3.0, 0.0])
    )
    reference = torch.as_tensor(truth_map)
    found = align_global(
        particle,
        reference,
        torch.ones_like(reference),
        wedge,
        Rotation.identity(1),
        max_frequency=0.4,
        max_shift_px=1.5,
    )
    assert np.linalg.norm(found.shifts_zyx[0]) <= 1.5


def test_local_offsets_form_a_ball_lattice_with_the_identity():
    offsets = local_rotation_offsets(10.0, 20.0)
    angles = rotation_angles_deg(offsets)
    assert angles.max() <= 20.0 + 1e-9 and np.isclose(angles, 0.0).sum() == 1
    assert len(offsets) == 33  # lattice points of spacing 1 within radius 2
    with pytest.raises(InputError):
        local_rotation_offsets(0.0, 10.0)


def test_wedge_weighted_average_with_true_poses_recovers_the_map(truth_map, wedge, helpers):
    simulate, correlation = helpers["simulate"], helpers["correlation"]
    particles, rotations, shifts = simulate(truth_map, 12, snr=100.0, seed=4)
    numerator, weight = accumulate_aligned(torch.as_tensor(particles), rotations, shifts, wedge)
    assert weight.shape == (BOX,) * 3 and float(weight.max()) <= 12.0 + 1e-4
    average = map_from_sums(numerator, weight, wiener_constant=1.0).numpy()
    single = map_from_sums(
        *accumulate_aligned(torch.as_tensor(particles[:1]), rotations[:1], shifts[:1], wedge),
        wiener_constant=1.0,
    ).numpy()
    assert correlation(average, truth_map) > 0.93
    assert correlation(average, truth_map) > correlation(single, truth_map) + 0.03


def test_particle_weights_scale_each_term_of_both_sums(truth_map, wedge, helpers):
    """A soft assignment's weights: weight 0 removes a particle, 0.5 halves its term."""
    particles, rotations, shifts = helpers["simulate"](truth_map, 3, snr=1.0, seed=7)
    volumes = torch.as_tensor(particles)
    parts = [accumulate_aligned(volumes[i : i + 1], rotations[i : i + 1], shifts[i : i + 1], wedge)
             for i in range(3)]  # fmt: skip
    numerator, weight = accumulate_aligned(volumes, rotations, shifts, wedge,
                                           np.array([1.0, 0.0, 0.5]))  # fmt: skip
    torch.testing.assert_close(numerator, parts[0][0] + 0.5 * parts[2][0], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(weight, parts[0][1] + 0.5 * parts[2][1], rtol=1e-5, atol=1e-5)


def test_composed_half_alignment_maps_particles_into_the_other_frame(truth_map, helpers):
    correlation = helpers["correlation"]
    rng = np.random.default_rng(5)
    q, s = Rotation.from_rotvec([0.3, -0.2, 0.5]), np.array([0.5, -1.0, 0.25])
    rotations, shifts = Rotation.random(3, random_state=6), rng.uniform(-1, 1, (3, 3))
    base = torch.as_tensor(truth_map, dtype=torch.float64)[None]
    half2, _ = transform_volumes(base, q.as_matrix()[None], s)
    direct, _ = transform_volumes(half2.expand(3, -1, -1, -1), rotations.as_matrix(), shifts)
    new_rotations, new_shifts = compose_half_alignment(rotations, shifts, q, s)
    composed, _ = transform_volumes(
        base.expand(3, -1, -1, -1), new_rotations.as_matrix(), new_shifts
    )
    inner = (slice(None), *(slice(4, 12),) * 3)  # away from the box edges
    for i in range(3):
        assert correlation(composed[inner][i].numpy(), direct[inner][i].numpy()) > 0.98


def test_align_maps_finds_the_rotation_between_two_maps(truth_map):
    q = Rotation.from_euler("ZYZ", [100, 50, 20], degrees=True)
    moving, _ = transform_volumes(
        torch.as_tensor(truth_map)[None], q.as_matrix()[None], np.array([1.0, 0.0, -1.0])
    )
    found, shift = align_maps(
        moving[0],
        torch.as_tensor(truth_map),
        angular_step_deg=40.0,
        max_frequency=0.4,
        max_shift_px=3.0,
    )
    assert rotation_angles_deg(found * q.inv())[0] < 6.0
    np.testing.assert_allclose(shift, [1.0, 0.0, -1.0])


def test_mismatched_reference_is_refused(truth_map, wedge):
    with pytest.raises(InputError, match="reference"):
        align_global(
            torch.zeros(2, BOX, BOX, BOX),
            torch.zeros(8, 8, 8),
            torch.ones(8, 8, 8),
            wedge,
            Rotation.identity(1),
            max_frequency=0.3,
            max_shift_px=1.0,
        )
