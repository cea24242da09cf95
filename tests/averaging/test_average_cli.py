import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import (
    COLUMNS,
    new_particle_table,
    positions_zyx,
    read_mrc,
    read_particles,
    rotations_from_table,
    write_particle_set,
    write_particles,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def sort_run(tmp_path_factory, truth_map, helpers):
    """A particle set (8 + 3 particles, 24 Å voxels, table in 12 Å tomogram voxels) and a sort
    run directory that names it in run.json, as ``cryomine sort`` does."""
    root = tmp_path_factory.mktemp("average_cli")
    particles, _, _ = helpers["simulate"](truth_map, 11, snr=2.0, seed=11)
    positions = np.random.default_rng(12).uniform(20, 60, (11, 3))
    table = new_particle_table(
        positions, tomo_name=["TS_01"] * 6 + ["TS_02"] * 5, pixel_size_a=12.0
    )
    write_particle_set(root / "particles", table, particles, voxel_size_a=helpers["voxel_a"])
    run = root / "run"
    run.mkdir()
    table[COLUMNS.class_number] = [1] * 8 + [2] * 3
    write_particles(run / "particles.star", table)
    (run / "run.json").write_text(
        json.dumps({"parameters": {"particles_dir": str(root / "particles")}})
    )
    return root, table


def test_average_writes_maps_fsc_orientations_and_summary(sort_run):
    root, table = sort_run
    out = root / "averages"
    result = runner.invoke(
        app,
        [
            "average",
            str(root / "run"),
            "-o",
            str(out),
            "--iterations",
            "1",
            "--angular-step",
            "60",
            "--device",
            "cpu",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    for k in (1, 2):
        average, voxel = read_mrc(out / f"class_{k:03d}.mrc")
        assert average.shape == (16, 16, 16) and voxel == pytest.approx(24.0)
        for h in (1, 2):
            assert read_mrc(out / f"class_{k:03d}_half{h}.mrc")[0].shape == (16, 16, 16)
        fsc = np.loadtxt(out / f"fsc_class_{k:03d}.csv", delimiter=",", skiprows=1)
        assert fsc.shape == (9, 3)
        np.testing.assert_allclose(fsc[1:, 1], 1 / fsc[1:, 0], rtol=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert [c["n_particles"] for c in summary["classes"]] == [8, 3]
    assert (out / "run.json").is_file()
    oriented = read_particles(out / "particles.star")
    assert len(oriented) == 11
    assert set(oriented["rlnRandomSubset"]) == {1, 2}
    assert all(name in oriented.columns for name in (*COLUMNS.angles, *COLUMNS.origin_xyz_angst))
    # Coordinates are kept; centres move by the found shift: at most box / 6 = 2.67 voxels of 24 Å
    # in half 1 (half 2's shifts also carry the shift that brought half map 2 onto half map 1).
    np.testing.assert_allclose(oriented[list(COLUMNS.xyz)], table[list(COLUMNS.xyz)])
    moved_a = np.linalg.norm(positions_zyx(oriented) - positions_zyx(table), axis=1) * 12.0
    half1 = oriented["rlnRandomSubset"].to_numpy() == 1
    assert np.all(moved_a[half1] <= 16 / 6 * 24.0 + 1e-6)
    assert np.any(moved_a > 0)
    assert len(rotations_from_table(oriented)) == 11


def test_average_selects_classes_and_takes_an_explicit_particle_set(sort_run):
    root, _ = sort_run
    run = root / "run_without_record"
    run.mkdir()
    (run / "particles.star").write_bytes((root / "run" / "particles.star").read_bytes())
    result = runner.invoke(
        app,
        [
            "average",
            str(run),
            "-o",
            str(root / "a2"),
            "--iterations",
            "1",
            "--angular-step",
            "60",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 2 and "--particles" in result.output
    result = runner.invoke(
        app,
        [
            "average",
            str(run),
            "-o",
            str(root / "a2"),
            "--particles",
            str(root / "particles"),
            "--classes",
            "2",
            "--iterations",
            "1",
            "--angular-step",
            "60",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (root / "a2").glob("class_*.mrc")) == [
        "class_002.mrc",
        "class_002_half1.mrc",
        "class_002_half2.mrc",
    ]
    assert len(read_particles(root / "a2" / "particles.star")) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classes", "7"], "not in"),
        (["--classes", "x"], "class numbers"),
        (["--device", "tpu"], "device"),
    ],
)
def test_average_bad_options_exit_2(sort_run, extra, message):
    root, _ = sort_run
    result = runner.invoke(
        app, ["average", str(root / "run"), "-o", str(root / "bad"), "--iterations", "1", *extra]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (root / "bad").exists()


def test_found_shift_becomes_a_relion_origin_that_moves_the_centre(sort_run):
    from scipy.spatial.transform import Rotation

    from cryomine.averaging._average import ClassAverage
    from cryomine.averaging._run import found_orientations, oriented_rows

    _, table = sort_run
    rows = table.iloc[:2].copy()
    for axis, name in enumerate(COLUMNS.origin_xyz_angst):
        rows[name] = [6.0 * axis, -3.0]  # existing origins are kept and extended
    shifts = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, -1.0]])  # subtomogram voxels of 24 Å
    rotations = Rotation.from_rotvec([[0.1, 0.2, 0.3], [0.0, 1.0, 0.0]])
    result = ClassAverage(
        average=np.zeros((4, 4, 4)), half_maps=np.zeros((2, 4, 4, 4)),
        fsc_frequencies_per_a=np.zeros(3), fsc=np.zeros(3), resolution_a=50.0,
        rotations=rotations, shifts_zyx=shifts, half=np.array([1, 2]), scores=np.zeros(2),
    )  # fmt: skip
    oriented = oriented_rows(rows, result, 24.0)
    expected = positions_zyx(rows) + shifts * 24.0 / 12.0  # table coordinates are 12 Å voxels
    np.testing.assert_allclose(positions_zyx(oriented), expected)
    assert np.allclose(rotations_from_table(oriented).as_matrix(), rotations.as_matrix())
    assert list(oriented["rlnRandomSubset"]) == [1, 2]
    # and back: what `average --start auto` starts an aligned run's classes from
    found_rotations, found_shifts = found_orientations(oriented, rows, 24.0)
    np.testing.assert_allclose(found_shifts, shifts, atol=1e-9)
    assert np.allclose(found_rotations.as_matrix(), rotations.as_matrix())


def test_an_aligned_run_is_refined_from_its_orientations(sort_run):
    """A run whose particles.star holds found orientations (cmAlignmentScore and angles, as MPP
    writes them; here an average's output) starts from them; --start global and a plain run
    search globally; --start orientations on a plain run is refused."""
    root, _ = sort_run
    aligned = root / "aligned_run"
    aligned.mkdir()
    common = ["--iterations", "1", "--angular-step", "60", "--device", "cpu"]
    first = runner.invoke(app, ["average", str(root / "run"), "-o", str(root / "first"), *common])
    assert first.exit_code == 0, first.output
    (aligned / "particles.star").write_bytes((root / "first" / "particles.star").read_bytes())
    (aligned / "run.json").write_bytes((root / "run" / "run.json").read_bytes())
    for start, expected in (("auto", True), ("global", False)):
        out = root / f"from_{start}"
        result = runner.invoke(app, ["average", str(aligned), "-o", str(out), "--start", start,
                                     *common])  # fmt: skip
        assert result.exit_code == 0, result.output
        record = json.loads((out / "run.json").read_text())
        assert record["parameters"]["from_orientations"] is expected
    plain = json.loads((root / "first" / "run.json").read_text())
    assert plain["parameters"]["from_orientations"] is False
    refused = runner.invoke(app, ["average", str(root / "run"), "-o", str(root / "refused"),
                                  "--start", "orientations", *common])  # fmt: skip
    assert refused.exit_code == 2 and "--start global" in refused.output
    assert not (root / "refused").exists()
