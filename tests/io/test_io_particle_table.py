"""Particle-table conversions: positions (z, y, x ↔ RELION x, y, z) and rotations (RELION ZYZ)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.io import (
    COLUMNS,
    canonical_particles,
    new_particle_table,
    positions_zyx,
    rescale_positions,
    rotations_from_table,
    set_positions_zyx,
    set_rotations,
)


def _table_with_angles(angles: np.ndarray) -> pd.DataFrame:
    table = new_particle_table(np.zeros((len(angles), 3)), tomo_name="t", pixel_size_a=1.0)
    for axis, name in enumerate(COLUMNS.angles):
        table[name] = angles[:, axis]
    return table


def _assert_same_rotations(a: Rotation, b: Rotation, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(a.as_matrix(), b.as_matrix(), atol=atol)


def test_known_rotation_is_the_inverse_of_relion_zyz() -> None:
    table = _table_with_angles(np.array([[30.0, 40.0, 50.0]]))
    expected = Rotation.from_euler("ZYZ", [30, 40, 50], degrees=True).inv()
    _assert_same_rotations(
        rotations_from_table(table), Rotation.concatenate([expected]), atol=1e-12
    )


def test_known_rotation_by_hand() -> None:
    """rot = 90° alone: RELION's passive Rz(90) is the active rotation x → -y, y → x."""
    rotation = rotations_from_table(_table_with_angles(np.array([[90.0, 0.0, 0.0]])))[0]
    np.testing.assert_allclose(rotation.apply([1.0, 0.0, 0.0]), [0.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rotation.apply([0.0, 1.0, 0.0]), [1.0, 0.0, 0.0], atol=1e-12)


def test_missing_angles_mean_identity() -> None:
    table = new_particle_table(np.ones((4, 3)), tomo_name="t", pixel_size_a=1.0)
    rotations = rotations_from_table(table)
    assert len(rotations) == 4
    np.testing.assert_allclose(rotations.as_matrix(), np.tile(np.eye(3), (4, 1, 1)))


def test_random_rotations_round_trip(rng: np.random.Generator) -> None:
    rotations = Rotation.random(500, random_state=rng)
    table = set_rotations(
        new_particle_table(np.zeros((500, 3)), tomo_name="t", pixel_size_a=1.0), rotations
    )
    _assert_same_rotations(rotations_from_table(table), rotations)
    tilt = table[COLUMNS.angles[1]].to_numpy()
    assert np.all((tilt >= 0) & (tilt <= 180))
    for name in (COLUMNS.angles[0], COLUMNS.angles[2]):
        assert np.all(np.abs(table[name].to_numpy()) <= 180 + 1e-9)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    rot=st.floats(-180, 180),
    tilt=st.one_of(st.floats(0, 180), st.sampled_from([0.0, 1e-9, 1e-5, 180.0 - 1e-9, 180.0])),
    psi=st.floats(-180, 180),
)
def test_angles_to_rotation_to_angles(rot: float, tilt: float, psi: float) -> None:
    """Angles → Rotation → angles gives the same rotation, also at gimbal lock (tilt 0, 180)."""
    table = _table_with_angles(np.array([[rot, tilt, psi]]))
    rotations = rotations_from_table(table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # set_rotations must not leak scipy's gimbal-lock warning
        again = set_rotations(table.copy(), rotations)
    angles = again[list(COLUMNS.angles)].to_numpy()
    assert np.all(np.isfinite(angles))
    assert 0.0 <= angles[0, 1] <= 180.0
    _assert_same_rotations(rotations_from_table(again), rotations, atol=1e-7)
    if min(tilt, 180 - tilt) > 1e-3:  # away from gimbal lock the angles themselves come back
        np.testing.assert_allclose(
            np.cos(np.radians(angles[0])), np.cos(np.radians([rot, tilt, psi])), atol=1e-7
        )
        np.testing.assert_allclose(
            np.sin(np.radians(angles[0])), np.sin(np.radians([rot, tilt, psi])), atol=1e-7
        )


def test_gimbal_lock_puts_in_plane_angle_in_rot() -> None:
    table = set_rotations(
        _table_with_angles(np.zeros((2, 3))),
        Rotation.from_euler("ZYZ", [[20.0, 0.0, 15.0], [20.0, 180.0, 15.0]], degrees=True).inv(),
    )
    np.testing.assert_allclose(table[COLUMNS.angles[2]], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(table[COLUMNS.angles[1]], [0.0, 180.0], atol=1e-9)


def test_subtomogram_angles_compose_and_are_reset(rng: np.random.Generator) -> None:
    particle = Rotation.random(5, random_state=rng)
    sub = Rotation.random(5, random_state=rng)
    table = set_rotations(
        new_particle_table(np.zeros((5, 3)), tomo_name="t", pixel_size_a=1.0), particle
    )
    sub_angles = sub.inv().as_euler("ZYZ", degrees=True)
    for axis, name in enumerate(COLUMNS.subtomogram_angles):
        table[name] = sub_angles[:, axis]
    _assert_same_rotations(rotations_from_table(table), sub * particle)
    set_rotations(table, particle)
    assert np.all(table[list(COLUMNS.subtomogram_angles)].to_numpy() == 0)
    _assert_same_rotations(rotations_from_table(table), particle)


def test_positions_are_zyx_of_relion_xyz(rng: np.random.Generator) -> None:
    zyx = rng.uniform(0, 100, (7, 3))
    table = new_particle_table(zyx, tomo_name="t", pixel_size_a=2.0)
    np.testing.assert_array_equal(table[COLUMNS.xyz[0]], zyx[:, 2])
    np.testing.assert_array_equal(table[COLUMNS.xyz[2]], zyx[:, 0])
    np.testing.assert_array_equal(positions_zyx(table), zyx)
    moved = zyx + 1.5
    np.testing.assert_array_equal(positions_zyx(set_positions_zyx(table, moved)), moved)


def test_origin_shifts_are_subtracted_and_reset() -> None:
    table = new_particle_table(np.array([[10.0, 20.0, 30.0]]), tomo_name="t", pixel_size_a=2.0)
    for name, value in zip(COLUMNS.origin_xyz_angst, (2.0, 4.0, 6.0), strict=True):
        table[name] = value  # Å: 1, 2, 3 voxels in x, y, z
    np.testing.assert_allclose(positions_zyx(table), [[7.0, 18.0, 29.0]])
    set_positions_zyx(table, np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(positions_zyx(table), [[1.0, 2.0, 3.0]])
    assert table[list(COLUMNS.origin_xyz_angst)].to_numpy().tolist() == [[0.0, 0.0, 0.0]]


def test_rescale_keeps_physical_positions() -> None:
    table = new_particle_table(np.array([[10.0, 20.0, 30.0]]), tomo_name="t", pixel_size_a=2.0)
    binned = rescale_positions(table, 8.0)
    np.testing.assert_allclose(positions_zyx(binned), [[2.5, 5.0, 7.5]])
    assert binned[COLUMNS.pixel_size].tolist() == [8.0]
    assert table[COLUMNS.pixel_size].tolist() == [2.0]  # the input is not modified


def test_canonical_form_dtypes_and_ids() -> None:
    table = pd.DataFrame(
        {
            "rlnMicrographName": [1, 2],
            "rlnCoordinateX": [1, 2],
            "rlnCoordinateY": ["3.5", "4"],
            "rlnCoordinateZ": [0, 0],
            "rlnImagePixelSize": [10, 10],
            "rlnClassNumber": [1.0, 2.0],
            "other": ["a", "b"],
        }
    )
    canonical = canonical_particles(table)
    assert canonical[COLUMNS.tomo_name].tolist() == ["1", "2"]
    assert canonical[COLUMNS.xyz[1]].dtype == np.float64
    assert canonical[COLUMNS.class_number].dtype == np.int64
    assert canonical[COLUMNS.particle_id].tolist() == [1, 2]
    assert canonical["other"].tolist() == ["a", "b"]
    assert list(table.columns)[:1] == ["rlnMicrographName"]  # input untouched


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.drop(columns=["rlnCoordinateY", "rlnImagePixelSize"]),
            "rlnCoordinateY, rlnImagePixelSize",
        ),
        (lambda t: t.assign(rlnCoordinateX=[np.nan, 1.0]), "NaN or Inf"),
        (lambda t: t.assign(rlnImagePixelSize=[0.0, 1.0]), "must be positive"),
        (lambda t: t.assign(rlnClassNumber=[1.5, 2.0]), "whole numbers"),
        (lambda t: t.assign(rlnCoordinateZ=["a", "b"]), "must hold numbers"),
    ],
)
def test_canonical_form_errors(change, message: str) -> None:  # type: ignore[no-untyped-def]
    table = new_particle_table(np.zeros((2, 3)), tomo_name="t", pixel_size_a=1.0)
    with pytest.raises(InputError, match=message):
        canonical_particles(change(table), source="my.star")


def test_shape_mismatches_are_input_errors() -> None:
    table = new_particle_table(np.zeros((2, 3)), tomo_name="t", pixel_size_a=1.0)
    with pytest.raises(InputError, match="3 rotations"):
        set_rotations(table, Rotation.random(3, random_state=0))
    with pytest.raises(InputError, match=r"shape \(N, 3\)"):
        set_positions_zyx(table, np.zeros((2, 2)))
    with pytest.raises(InputError, match="3 rows"):
        set_positions_zyx(table, np.zeros((3, 3)))


def test_empty_table() -> None:
    table = new_particle_table(
        np.zeros((0, 3)), tomo_name="t", pixel_size_a=1.0, rotations=Rotation.random(0)
    )
    assert len(table) == 0
    assert positions_zyx(table).shape == (0, 3)
    assert len(rotations_from_table(table)) == 0
