import numpy as np
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import ParticleSet, read_coords, read_particles, write_mrc

runner = CliRunner()


def _write_tomogram(path, positions, shape=(40, 80, 80), radius=5):
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    volume = np.random.default_rng(0).normal(0, 0.2, shape).astype(np.float32)
    for p in positions:
        volume -= ((zz - p[0]) ** 2 + (yy - p[1]) ** 2 + (xx - p[2]) ** 2 <= radius**2).astype(
            np.float32
        )
    write_mrc(path, volume, 10.0)


def test_pick_then_extract(tmp_path):
    truth = np.array([[20.0, 20, 20], [20, 40, 60], [20, 60, 25]])
    tomo = tmp_path / "rec_TS_01.mrc"
    _write_tomogram(tomo, truth)
    picks = tmp_path / "picks.star"
    result = runner.invoke(
        app, ["pick", str(tomo), "--particle-diameter", "100", "--max-picks", "3", "-o", str(picks)]
    )
    assert result.exit_code == 0, result.output
    table = read_particles(picks)
    assert set(table["rlnTomoName"]) == {"TS_01"}
    found = table[["rlnCoordinateZ", "rlnCoordinateY", "rlnCoordinateX"]].to_numpy()
    assert all(np.min(np.linalg.norm(found - t, axis=1)) <= 1.0 for t in truth)
    assert (tmp_path / "picks.star.run.json").exists()

    out = tmp_path / "particles"
    result = runner.invoke(app, ["extract", str(tomo), str(picks), "--box", "16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    particle_set = ParticleSet.open(out)
    assert particle_set.n_particles == 3 and particle_set.box_size == 16
    subtomograms = particle_set.read(np.arange(3))
    centre = subtomograms[:, 6:11, 6:11, 6:11].mean()
    assert centre > 1.0  # dark blobs became bright, at the centre of each box


def test_pick_writes_coords_and_refuses_to_overwrite(tmp_path):
    tomo = tmp_path / "t.mrc"
    _write_tomogram(tomo, [[20.0, 40, 40]])
    out = tmp_path / "picks.coords"
    args = ["pick", str(tomo), "--particle-diameter", "100", "--max-picks", "1", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    np.testing.assert_allclose(read_coords(out), [[20, 40, 40]], atol=1)
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "already exists" in again.output


def test_missing_tomogram_is_a_one_line_error(tmp_path):
    result = runner.invoke(
        app,
        [
            "pick",
            str(tmp_path / "nope.mrc"),
            "--particle-diameter",
            "100",
            "-o",
            str(tmp_path / "p.star"),
        ],
    )
    assert result.exit_code == 2
    assert "file not found" in result.output
    assert not (tmp_path / "p.star").exists()


def test_evaluate_picking_against_the_truth(tmp_path):
    from cryomine.io import new_particle_table, write_particles

    truth = new_particle_table(
        np.array([[20.0, 20, 20], [20, 40, 60]]), tomo_name="TS_01", pixel_size_a=10.0
    )
    truth["cmStructure"] = ["a", "b"]
    picks = new_particle_table(
        np.array([[20.0, 21, 20], [5, 5, 5]]), tomo_name="TS_01", pixel_size_a=10.0
    )
    write_particles(tmp_path / "truth.star", truth)
    write_particles(tmp_path / "picks.star", picks)
    out = tmp_path / "metrics.json"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "picking",
            "--truth",
            str(tmp_path / "truth.star"),
            "--pred",
            str(tmp_path / "picks.star"),
            "--radius",
            "80",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    metrics = json.loads(out.read_text())
    assert metrics["overall"]["precision"] == 0.5 and metrics["overall"]["recall"] == 0.5
    assert metrics["per_class"]["a"]["recall"] == 1.0 and metrics["per_class"]["b"]["recall"] == 0.0
