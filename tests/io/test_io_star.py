"""STAR particle tables: RELION 4/5 round trips, optics blocks, errors, a real WarpTools file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.io import (
    COLUMNS,
    new_particle_table,
    positions_zyx,
    read_particles,
    read_star_blocks,
    read_tomogram_sizes,
    rotations_from_table,
    write_particles,
)


def _write_raw(path: Path, blocks: dict[str, pd.DataFrame]) -> Path:
    starfile.write(blocks, path)
    return path


def test_relion4_round_trip_is_exact(tmp_path: Path, particle_table: pd.DataFrame) -> None:
    path = write_particles(tmp_path / "p.star", particle_table)
    back = read_particles(path)
    pd.testing.assert_frame_equal(back, particle_table, check_exact=True)
    assert back[COLUMNS.tomo_name].dtype == particle_table[COLUMNS.tomo_name].dtype
    assert back[COLUMNS.class_number].dtype == np.int64
    assert back[COLUMNS.true_class].dtype == np.int64
    assert back["myNote"].tolist()[:2] == ["note 0", "note 1"]  # strings with spaces survive
    assert os.listdir(tmp_path) == ["p.star"]


def test_relion5_round_trip(
    tmp_path: Path, particle_table: pd.DataFrame, tomogram_shapes: dict[str, tuple[int, int, int]]
) -> None:
    path = write_particles(
        tmp_path / "p5.star", particle_table, flavour="relion5", tomogram_shapes=tomogram_shapes
    )
    raw = read_star_blocks(path)["particles"]
    assert set(COLUMNS.centered_xyz_angst) <= set(raw.columns)
    assert not set(COLUMNS.xyz) & set(raw.columns)
    back = read_particles(path, tomogram_shapes=tomogram_shapes)
    pd.testing.assert_frame_equal(back, particle_table, check_exact=False, rtol=1e-12, atol=1e-9)


def test_relion5_centred_definition(tmp_path: Path) -> None:
    """x_angst = (x_px - size_x / 2) · pixel size, size / 2 as a float (odd sizes too)."""
    table = new_particle_table(np.array([[0.0, 10.0, 63.5]]), tomo_name="t", pixel_size_a=2.0)
    shapes = {"t": (61, 128, 127)}  # z, y, x
    path = write_particles(tmp_path / "c.star", table, flavour="relion5", tomogram_shapes=shapes)
    raw = read_star_blocks(path)["particles"]
    x, y, z = (float(raw[name].iloc[0]) for name in COLUMNS.centered_xyz_angst)
    assert (x, y, z) == pytest.approx(((63.5 - 63.5) * 2, (10 - 64) * 2, (0 - 30.5) * 2))


def test_relion5_needs_shapes_and_names_what_is_missing(
    tmp_path: Path, particle_table: pd.DataFrame, tomogram_shapes: dict[str, tuple[int, int, int]]
) -> None:
    with pytest.raises(InputError, match="tomogram_shapes"):
        write_particles(tmp_path / "x.star", particle_table, flavour="relion5")
    path = write_particles(
        tmp_path / "p5.star", particle_table, flavour="relion5", tomogram_shapes=tomogram_shapes
    )
    with pytest.raises(
        InputError, match=r"p5\.star: RELION 5 centred coordinates need the tomogram sizes"
    ):
        read_particles(path)
    with pytest.raises(InputError, match="no tomogram shape given for rlnTomoName tomo_b"):
        read_particles(path, tomogram_shapes={"tomo_a": tomogram_shapes["tomo_a"]})
    with pytest.raises(InputError, match="three positive sizes"):
        read_particles(path, tomogram_shapes={"tomo_a": (1, 2), "tomo_b": (1, 2, 3)})
    assert not (tmp_path / "x.star").exists()


def test_shapes_match_names_without_suffix(tmp_path: Path) -> None:
    table = new_particle_table(
        np.array([[5.0, 6.0, 7.0]]), tomo_name="TS_01.tomostar", pixel_size_a=10.0
    )
    path = write_particles(
        tmp_path / "p.star", table, flavour="relion5", tomogram_shapes={"TS_01": (20, 30, 40)}
    )
    back = read_particles(path, tomogram_shapes={"TS_01.mrc": (20, 30, 40)})
    np.testing.assert_allclose(positions_zyx(back), [[5.0, 6.0, 7.0]])
    assert back[COLUMNS.tomo_name].tolist() == ["TS_01.tomostar"]


def test_relion5_converted_into_another_pixel_size(tmp_path: Path) -> None:
    table = new_particle_table(np.array([[10.0, 20.0, 30.0]]), tomo_name="t", pixel_size_a=5.0)
    path = write_particles(
        tmp_path / "p.star", table, flavour="relion5", tomogram_shapes={"t": (40, 80, 100)}
    )
    back = read_particles(path, tomogram_shapes={"t": (20, 40, 50)}, pixel_size_a=10.0)
    np.testing.assert_allclose(positions_zyx(back), [[5.0, 10.0, 15.0]])
    assert back[COLUMNS.pixel_size].tolist() == [10.0]


def test_optics_and_particles_blocks(tmp_path: Path) -> None:
    optics = pd.DataFrame(
        {"rlnOpticsGroup": [1, 2], "rlnImagePixelSize": [4.0, 8.0], "rlnVoltage": [300.0, 300.0]}
    )
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["a", "b", "a"],
            "rlnCoordinateX": [1.0, 2.0, 3.0],
            "rlnCoordinateY": [4.0, 5.0, 6.0],
            "rlnCoordinateZ": [7.0, 8.0, 9.0],
            "rlnOpticsGroup": [1, 2, 1],
        }
    )
    path = _write_raw(tmp_path / "o.star", {"optics": optics, "particles": particles})
    table = read_particles(path)
    assert table[COLUMNS.pixel_size].tolist() == [4.0, 8.0, 4.0]
    assert table[COLUMNS.particle_id].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(positions_zyx(table), [[7, 4, 1], [8, 5, 2], [9, 6, 3]])
    with pytest.raises(InputError, match=r"optics group\(s\) \[3\]"):
        read_particles(
            _write_raw(
                tmp_path / "bad.star",
                {"optics": optics, "particles": particles.assign(rlnOpticsGroup=3)},
            )
        )


def test_tilt_series_pixel_size_is_a_fallback(tmp_path: Path) -> None:
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnTomoTiltSeriesPixelSize": [1.35]})
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["a"],
            "rlnCoordinateX": [1.0],
            "rlnCoordinateY": [2.0],
            "rlnCoordinateZ": [3.0],
        }
    )
    table = read_particles(
        _write_raw(tmp_path / "o.star", {"optics": optics, "particles": particles})
    )
    assert table[COLUMNS.pixel_size].tolist() == [1.35]


def test_pixel_size_is_required_or_overridden(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["a"],
            "rlnCoordinateX": [1.0],
            "rlnCoordinateY": [2.0],
            "rlnCoordinateZ": [3.0],
        }
    )
    path = _write_raw(tmp_path / "bare.star", {"particles": particles})
    with pytest.raises(InputError, match=r"bare\.star: the file states no pixel size"):
        read_particles(path)
    assert read_particles(path, pixel_size_a=7.5)[COLUMNS.pixel_size].tolist() == [7.5]
    stated = write_particles(tmp_path / "stated.star", read_particles(path, pixel_size_a=7.5))
    with caplog.at_level("WARNING"):
        table = read_particles(stated, pixel_size_a=3.0)
    assert table[COLUMNS.pixel_size].tolist() == [3.0]
    assert "instead of the file's" in caplog.text
    with pytest.raises(InputError, match="positive"):
        read_particles(path, pixel_size_a=-1.0)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    particles = pd.DataFrame(
        {"rlnTomoName": ["a"], "rlnCoordinateX": [1.0], "rlnImagePixelSize": [1.0]}
    )
    path = _write_raw(tmp_path / "few.star", {"particles": particles})
    with pytest.raises(
        InputError, match=r"few\.star: missing particle column\(s\) rlnCoordinateY, rlnCoordinateZ"
    ):
        read_particles(path)


def test_numeric_looking_names_stay_strings(tmp_path: Path) -> None:
    table = new_particle_table(np.zeros((2, 3)), tomo_name=["001", "2"], pixel_size_a=1.0)
    table[COLUMNS.structure] = ["10", "20"]
    back = read_particles(write_particles(tmp_path / "n.star", table))
    assert back[COLUMNS.tomo_name].tolist() == ["001", "2"]
    assert back[COLUMNS.structure].tolist() == ["10", "20"]


def test_empty_table_round_trip(tmp_path: Path) -> None:
    table = new_particle_table(np.zeros((0, 3)), tomo_name="t", pixel_size_a=1.0)
    back = read_particles(write_particles(tmp_path / "e.star", table))
    assert len(back) == 0
    assert set(COLUMNS.required) <= set(back.columns)


def test_unreadable_inputs(tmp_path: Path, particle_table: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_particles(tmp_path / "none.star")
    (tmp_path / "empty.star").write_text("just some text\n")
    with pytest.raises(InputError, match=r"empty\.star: no data blocks"):
        read_particles(tmp_path / "empty.star")
    two = {"a": particle_table.head(2), "b": particle_table.head(2)}
    with pytest.raises(InputError, match="cannot tell which table"):
        read_particles(_write_raw(tmp_path / "two.star", two))
    with pytest.raises(InputError, match="flavour"):
        write_particles(tmp_path / "x.star", particle_table, flavour="relion3")  # type: ignore[arg-type]


def test_overwrite_false_keeps_the_file(tmp_path: Path, particle_table: pd.DataFrame) -> None:
    path = write_particles(tmp_path / "p.star", particle_table)
    before = path.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        write_particles(path, particle_table.head(3), overwrite=False)
    assert path.read_bytes() == before


def test_invalid_table_is_not_written(tmp_path: Path, particle_table: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="rlnCoordinateZ"):
        write_particles(tmp_path / "p.star", particle_table.drop(columns=[COLUMNS.xyz[2]]))
    assert os.listdir(tmp_path) == []


def test_real_warptools_star(warp_star: Path) -> None:
    table = read_particles(warp_star)
    raw = read_star_blocks(warp_star)["particles"]
    assert len(table) == 40
    assert table[COLUMNS.tomo_name].nunique() == 4
    assert set(table[COLUMNS.tomo_name]) == {
        "Unt_050.tomostar",
        "Unt_076.tomostar",
        "Unt_083.tomostar",
        "Unt_088.tomostar",
    }
    assert table[COLUMNS.pixel_size].unique().tolist() == [12.0]  # optics rlnImagePixelSize
    assert table[COLUMNS.particle_id].tolist() == list(range(1, 41))
    np.testing.assert_array_equal(positions_zyx(table)[:, ::-1], raw[list(COLUMNS.xyz)].to_numpy())
    first = raw[list(COLUMNS.angles)].to_numpy()[0]
    expected = Rotation.from_euler("ZYZ", first, degrees=True).inv()
    np.testing.assert_allclose(
        rotations_from_table(table)[0].as_matrix(), expected.as_matrix(), atol=1e-12
    )
    assert table["rlnTomoVisibleFrames"].iloc[0].startswith("[0,1,1,1,1,0")  # other columns kept


def test_real_tomogram_sizes_and_relion5_round_trip(
    tmp_path: Path, warp_star: Path, warp_tomograms: Path
) -> None:
    sizes = read_tomogram_sizes(warp_tomograms, pixel_size_a=12.0)
    assert sizes["Unt_083.tomostar"] == pytest.approx(
        (1400 * 1.667 / 12, 6000 * 1.667 / 12, 4400 * 1.667 / 12)
    )
    table = read_particles(warp_star)
    zyx = positions_zyx(table)
    assert np.all(zyx >= 0) and np.all(
        zyx < np.array(sizes["Unt_083.tomostar"])
    )  # inside the tomograms
    path = write_particles(tmp_path / "r5.star", table, flavour="relion5", tomogram_shapes=sizes)
    pd.testing.assert_frame_equal(read_particles(path, tomogram_shapes=sizes), table, rtol=1e-12)
    with pytest.raises(InputError, match="not a RELION 5 tomograms table"):
        read_tomogram_sizes(warp_star, pixel_size_a=12.0)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    fraction=st.lists(st.tuples(*[st.floats(0, 1)] * 3), min_size=1, max_size=5),
    shape=st.tuples(*[st.integers(1, 4000)] * 3),
    pixel_size_a=st.floats(0.5, 30.0),
)
def test_relion5_conversion_round_trips(
    fraction: list[tuple[float, float, float]], shape: tuple[int, int, int], pixel_size_a: float
) -> None:
    zyx = np.array(fraction) * (np.array(shape) - 1)
    table = new_particle_table(zyx, tomo_name="t", pixel_size_a=pixel_size_a)
    with tempfile.TemporaryDirectory() as directory:
        path = write_particles(
            Path(directory) / "p.star", table, flavour="relion5", tomogram_shapes={"t": shape}
        )
        centred = read_star_blocks(path)["particles"][list(COLUMNS.centered_xyz_angst)].to_numpy()
        back = read_particles(path, tomogram_shapes={"t": shape})
    expected = (zyx[:, ::-1] - np.array(shape[::-1]) / 2) * pixel_size_a
    np.testing.assert_allclose(centred, expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(positions_zyx(back), zyx, rtol=1e-12, atol=1e-9)
