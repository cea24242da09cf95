"""Plain .coords text and copick picks JSON: round trips, axis order, units, rotations, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.io import (
    COLUMNS,
    COPICK_INSTANCE_ID,
    positions_zyx,
    read_coords,
    read_copick_picks,
    rotations_from_table,
    write_coords,
    write_copick_picks,
)

# ---------------------------------------------------------------- .coords


def test_coords_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    zyx = rng.uniform(0, 500, (25, 3))
    path = write_coords(tmp_path / "t.coords", zyx)
    np.testing.assert_array_equal(read_coords(path), zyx)
    assert os.listdir(tmp_path) == ["t.coords"]


def test_coords_file_is_x_y_z(tmp_path: Path) -> None:
    path = write_coords(tmp_path / "t.coords", np.array([[1.0, 2.0, 3.0]]))
    assert path.read_text().split() == ["3.0", "2.0", "1.0"]


def test_coords_reads_tomotwin_and_imod_style_text(tmp_path: Path) -> None:
    path = tmp_path / "picks.coords"
    path.write_text("# x y z\n  10 20 30\n\n11.5\t21.5\t31.5\n12,22,32\n")
    np.testing.assert_array_equal(
        read_coords(path), [[30, 20, 10], [31.5, 21.5, 11.5], [32, 22, 12]]
    )


def test_coords_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.coords").write_text("")
    assert read_coords(tmp_path / "e.coords").shape == (0, 3)
    write_coords(tmp_path / "w.coords", np.zeros((0, 3)))
    assert read_coords(tmp_path / "w.coords").shape == (0, 3)


@pytest.mark.parametrize("line", ["1 2", "1 2 3 4", "1 2 x", "1 nan 3"])
def test_coords_bad_lines_name_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.coords"
    path.write_text(f"1 2 3\n{line}\n")
    with pytest.raises(InputError, match=r"bad\.coords:2: expected three"):
        read_coords(path)


def test_coords_write_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"shape \(N, 3\)"):
        write_coords(tmp_path / "a.coords", np.zeros((3, 2)))
    with pytest.raises(InputError, match="NaN or Inf"):
        write_coords(tmp_path / "a.coords", np.array([[np.inf, 0, 0]]))
    with pytest.raises(InputError, match="file not found"):
        read_coords(tmp_path / "a.coords")
    write_coords(tmp_path / "a.coords", np.ones((1, 3)))
    with pytest.raises(InputError, match="already exists"):
        write_coords(tmp_path / "a.coords", np.zeros((1, 3)), overwrite=False)
    np.testing.assert_array_equal(read_coords(tmp_path / "a.coords"), np.ones((1, 3)))


# ---------------------------------------------------------------- copick


@pytest.fixture
def one_tomogram(particle_table: pd.DataFrame) -> pd.DataFrame:
    table = particle_table[particle_table[COLUMNS.tomo_name] == "tomo_a"].reset_index(drop=True)
    table[COPICK_INSTANCE_ID] = np.arange(len(table))
    return table


def test_copick_round_trip(tmp_path: Path, one_tomogram: pd.DataFrame) -> None:
    path = write_copick_picks(
        tmp_path / "me_1_ribosome.json",
        one_tomogram,
        object_name="ribosome",
        user_id="me",
        session_id="1",
    )
    back = read_copick_picks(path)
    assert back[COLUMNS.tomo_name].unique().tolist() == ["tomo_a"]
    assert back[COLUMNS.pixel_size].unique().tolist() == [13.48]
    np.testing.assert_allclose(positions_zyx(back), positions_zyx(one_tomogram), rtol=1e-12)
    np.testing.assert_allclose(
        rotations_from_table(back).as_matrix(),
        rotations_from_table(one_tomogram).as_matrix(),
        atol=1e-12,
    )
    np.testing.assert_array_equal(back[COLUMNS.score], one_tomogram[COLUMNS.score])
    np.testing.assert_array_equal(back[COPICK_INSTANCE_ID], one_tomogram[COPICK_INSTANCE_ID])
    assert back.attrs["copick"]["pickable_object_name"] == "ribosome"
    assert back.attrs["copick"]["user_id"] == "me"


def test_copick_file_layout_is_angstrom_xyz_and_active_rotation(tmp_path: Path) -> None:
    from cryomine.io import new_particle_table

    rotation = Rotation.from_euler("ZYZ", [30, 40, 50], degrees=True).inv()
    table = new_particle_table(
        np.array([[1.0, 2.0, 3.0]]),
        tomo_name="TS_5",
        pixel_size_a=10.0,
        rotations=Rotation.concatenate([rotation]),
    )
    data = json.loads(write_copick_picks(tmp_path / "p.json", table, object_name="x").read_text())
    assert (
        data["unit"] == "angstrom" and data["run_name"] == "TS_5" and data["voxel_spacing"] == 10.0
    )
    point = data["points"][0]
    assert point["location"] == pytest.approx({"x": 30.0, "y": 20.0, "z": 10.0})
    matrix = np.array(point["transformation_"])
    np.testing.assert_allclose(matrix[:3, :3], rotation.as_matrix(), atol=1e-12)
    np.testing.assert_array_equal(matrix[3], [0, 0, 0, 1])
    np.testing.assert_array_equal(matrix[:3, 3], [0, 0, 0])
    assert point["score"] == 1.0 and point["instance_id"] == 0


def test_copick_reads_a_hand_written_file(tmp_path: Path) -> None:
    """Translation is added to location; a missing transformation is the identity."""
    shifted = np.eye(4)
    shifted[:3, 3] = [5.0, 0.0, -5.0]
    document = {
        "pickable_object_name": "apoferritin",
        "user_id": "curation",
        "session_id": "0",
        "run_name": "TS_86_3",
        "voxel_spacing": 10.012,
        "unit": "angstrom",
        "points": [
            {
                "location": {"x": 100.0, "y": 200.0, "z": 300.0},
                "transformation_": shifted.tolist(),
                "score": 0.5,
            },
            {"location": {"x": 0.0, "y": 10.0, "z": 20.0}, "instance_id": 3},
        ],
    }
    path = tmp_path / "curation_0_apoferritin.json"
    path.write_text(json.dumps(document))
    table = read_copick_picks(path, voxel_size_a=5.0)
    np.testing.assert_allclose(positions_zyx(table), [[59.0, 40.0, 21.0], [4.0, 2.0, 0.0]])
    assert table[COLUMNS.pixel_size].tolist() == [5.0, 5.0]
    assert table[COLUMNS.score].tolist() == [0.5, 1.0]
    assert table[COPICK_INSTANCE_ID].tolist() == [0, 3]
    np.testing.assert_allclose(
        rotations_from_table(table).as_matrix(), np.tile(np.eye(3), (2, 1, 1)), atol=1e-12
    )
    assert read_copick_picks(path)[COLUMNS.pixel_size].tolist() == [10.012, 10.012]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"unit": "nm", "voxel_spacing": 1.0, "points": []}, "unit 'nm'"),
        ({"points": []}, "no usable voxel_spacing"),
        ({"voxel_spacing": 1.0, "points": [{"location": {"x": 1.0}}]}, "point 0 is malformed"),
        (
            {
                "voxel_spacing": 1.0,
                "points": [
                    {"location": {"x": 1, "y": 1, "z": 1}, "transformation_": [[1, 0], [0, 1]]}
                ],
            },
            "4 x 4",
        ),
        (
            {
                "voxel_spacing": 1.0,
                "points": [
                    {
                        "location": {"x": 1, "y": 1, "z": 1},
                        "transformation_": (2 * np.eye(4)).tolist(),
                    }
                ],
            },
            "bottom row",
        ),
        (
            {
                "voxel_spacing": 1.0,
                "points": [
                    {
                        "location": {"x": 1, "y": 1, "z": 1},
                        "transformation_": np.diag([2.0, 1, 1, 1]).tolist(),
                    }
                ],
            },
            "not a rotation",
        ),
        ([1, 2], "top level"),
    ],
)
def test_copick_bad_files(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=message):
        read_copick_picks(path)


def test_copick_write_errors(tmp_path: Path, particle_table: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="one run"):
        write_copick_picks(tmp_path / "p.json", particle_table, object_name="x")
    mixed = particle_table.assign(rlnTomoName="t")
    mixed.loc[0, COLUMNS.pixel_size] = 5.0
    with pytest.raises(InputError, match="mixes pixel sizes"):
        write_copick_picks(tmp_path / "p.json", mixed, object_name="x")
    (tmp_path / "n.json").write_text("{not json")
    with pytest.raises(InputError, match="not a copick picks JSON"):
        read_copick_picks(tmp_path / "n.json")
    assert sorted(os.listdir(tmp_path)) == ["n.json"]
