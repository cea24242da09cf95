"""Rotations: Haar sampling, RELION Euler angles, quaternions, z-y-x matrices, uniform grids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import (
    matrices_zyx,
    quaternions_from_rotations,
    random_rotations,
    relion_euler_from_rotations,
    rotation_angles_deg,
    rotations_from_quaternions,
    rotations_from_relion_euler,
    uniform_rotation_grid,
    uniform_rotation_grid_size,
)


def _haar_angle_cdf(theta_deg: np.ndarray) -> np.ndarray:
    theta = np.radians(theta_deg)
    return (theta - np.sin(theta)) / np.pi


def _relion_matrix(rot: float, tilt: float, psi: float) -> np.ndarray:
    """RELION's Euler_angles2matrix (the passive rotation), written out element by element."""
    a, b, g = np.radians([rot, tilt, psi])
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    return np.array(
        [
            [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
            [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
            [sc, ss, cb],
        ]
    )


def test_random_rotations_are_haar_uniform() -> None:
    rotations = random_rotations(4000, rng=np.random.default_rng(11))
    assert len(rotations) == 4000
    result = stats.kstest(rotation_angles_deg(rotations), _haar_angle_cdf)
    assert result.pvalue > 0.01
    # First moment of the Haar measure is zero: the mean matrix vanishes.
    assert np.abs(rotations.as_matrix().mean(axis=0)).max() < 4.0 / np.sqrt(4000)


def test_angle_ks_test_rejects_non_uniform_rotations() -> None:
    # Uniform Euler angles are not uniform on SO(3); the KS check above must notice.
    rng = np.random.default_rng(11)
    angles = rng.uniform([-180, 0, -180], [180, 180, 180], size=(4000, 3))
    result = stats.kstest(rotation_angles_deg(rotations_from_relion_euler(angles)), _haar_angle_cdf)
    assert result.pvalue < 1e-6


def test_random_rotations_reproducible() -> None:
    a = random_rotations(5, rng=np.random.default_rng(3)).as_matrix()
    b = random_rotations(5, rng=np.random.default_rng(3)).as_matrix()
    c = random_rotations(5, rng=np.random.default_rng(4)).as_matrix()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert len(random_rotations(0, rng=np.random.default_rng(0))) == 0


def test_relion_convention_matches_relion_matrix() -> None:
    rng = np.random.default_rng(5)
    for rot, tilt, psi in rng.uniform([-180, 0, -180], [180, 180, 180], size=(20, 3)):
        active = rotations_from_relion_euler([rot, tilt, psi]).as_matrix()
        # RELION's projector samples the reference at A^T x for particle position x, so the
        # active reference->particle rotation is RELION's matrix A itself.
        np.testing.assert_allclose(active, _relion_matrix(rot, tilt, psi), atol=1e-12)


def test_relion_rot_turns_x_towards_minus_y() -> None:
    # rot = 90 alone is a passive turn about z, i.e. the active rotation by -90 deg about z.
    rotation = rotations_from_relion_euler([90.0, 0.0, 0.0])
    np.testing.assert_allclose(rotation.apply([1.0, 0.0, 0.0]), [0.0, -1.0, 0.0], atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    rot=st.floats(-179.9, 179.9),
    tilt=st.floats(0.1, 179.9),
    psi=st.floats(-179.9, 179.9),
)
def test_relion_euler_round_trip(rot: float, tilt: float, psi: float) -> None:
    angles = relion_euler_from_rotations(rotations_from_relion_euler([[rot, tilt, psi]]))
    assert angles.shape == (1, 3)
    np.testing.assert_allclose(angles[0], [rot, tilt, psi], atol=1e-6)


def test_relion_euler_from_rotations_round_trips_matrices() -> None:
    rotations = random_rotations(200, rng=np.random.default_rng(8))
    angles = relion_euler_from_rotations(rotations)
    assert angles.shape == (200, 3)
    assert np.all((angles[:, 1] >= 0) & (angles[:, 1] <= 180))
    back = rotations_from_relion_euler(angles)
    np.testing.assert_allclose(back.as_matrix(), rotations.as_matrix(), atol=1e-10)


def test_relion_gimbal_lock_is_silent_and_consistent() -> None:
    rotation = rotations_from_relion_euler([[30.0, 0.0, 20.0]])
    angles = relion_euler_from_rotations(rotation)  # no warning (pytest makes warnings errors)
    np.testing.assert_allclose(angles, [[50.0, 0.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(
        rotations_from_relion_euler(angles).as_matrix(), rotation.as_matrix(), atol=1e-12
    )


def test_quaternions_are_scalar_last() -> None:
    rotation = Rotation.from_rotvec([0.0, 0.0, np.pi / 2])  # +90 deg about z
    quat = quaternions_from_rotations(rotation)
    assert quat.shape == (1, 4)
    np.testing.assert_allclose(quat[0], [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    rotations = random_rotations(50, rng=np.random.default_rng(1))
    quats = quaternions_from_rotations(rotations)
    assert np.all(quats[:, 3] >= 0)
    back = rotations_from_quaternions(-3.0 * quats)  # scale and sign do not matter
    np.testing.assert_allclose(back.as_matrix(), rotations.as_matrix(), atol=1e-12)


def test_matrices_zyx_act_on_zyx_vectors() -> None:
    rotations = random_rotations(10, rng=np.random.default_rng(2))
    vectors_xyz = np.random.default_rng(3).normal(size=(10, 3))
    expected_xyz = rotations.apply(vectors_xyz)
    mats = matrices_zyx(rotations)
    assert mats.shape == (10, 3, 3)
    got_zyx = np.einsum("nij,nj->ni", mats, vectors_xyz[:, ::-1])
    np.testing.assert_allclose(got_zyx[:, ::-1], expected_xyz, atol=1e-12)
    assert matrices_zyx(Rotation.identity()).shape == (1, 3, 3)


@pytest.mark.parametrize("step_deg", [30.0, 15.0])
def test_uniform_grid_spacing_and_coverage(step_deg: float) -> None:
    grid = uniform_rotation_grid(step_deg)
    n = uniform_rotation_grid_size(step_deg)
    assert len(grid) == n == int(np.ceil(8 * np.pi**2 / np.radians(step_deg) ** 3))
    quats = grid.as_quat()
    tree = cKDTree(np.concatenate([quats, -quats]))  # q and -q are the same rotation

    def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        dots = np.abs(np.sum(a * b, axis=-1)).clip(0.0, 1.0)
        return np.degrees(2.0 * np.arccos(dots))

    _, idx = tree.query(quats, k=3)
    other = np.where(idx[:, 1] % n == np.arange(n), idx[:, 2], idx[:, 1])
    neighbour = angle_deg(quats, tree.data[other])
    assert neighbour.min() > 0.45 * step_deg  # no near-duplicates
    assert 0.6 * step_deg < np.median(neighbour) < 1.1 * step_deg
    probes = random_rotations(20000, rng=np.random.default_rng(0)).as_quat()
    _, nearest = tree.query(probes, k=1)
    covering = angle_deg(probes, tree.data[nearest])
    assert covering.max() < 1.0 * step_deg
    # Near-uniform: the grid's rotation angles follow the Haar distribution.
    assert stats.kstest(rotation_angles_deg(grid), _haar_angle_cdf).pvalue > 0.05
    assert np.abs(grid.as_matrix().mean(axis=0)).max() < 0.02


def test_uniform_grid_deterministic_and_sized() -> None:
    np.testing.assert_array_equal(
        uniform_rotation_grid(20.0).as_quat(), uniform_rotation_grid(20.0).as_quat()
    )
    assert uniform_rotation_grid_size(7.5) == 35203
    assert len(uniform_rotation_grid(180.0)) == uniform_rotation_grid_size(180.0) == 3


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: random_rotations(-1, rng=np.random.default_rng(0)), "n: expected"),
        (lambda: random_rotations(3, rng=0), "rng: expected"),  # type: ignore[arg-type]
        (lambda: rotations_from_relion_euler([[1.0, 2.0]]), "angles_deg: expected shape"),
        (lambda: rotations_from_relion_euler([1.0, np.nan, 2.0]), "angles_deg: contains NaN"),
        (lambda: rotations_from_quaternions([0.0, 0.0, 0.0, 0.0]), "quaternions: contains a zero"),
        (lambda: rotations_from_quaternions([[1.0, 0.0, 0.0]]), "quaternions: expected shape"),
        (lambda: relion_euler_from_rotations(np.eye(3)), "rotations: expected a scipy"),  # type: ignore[arg-type]
        (lambda: uniform_rotation_grid(0.0), "angular_step_deg"),
        (lambda: uniform_rotation_grid(200.0), "angular_step_deg"),
        (lambda: uniform_rotation_grid(0.1), "more than"),
    ],
)
def test_rotation_input_errors(call: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        call()  # type: ignore[operator]
