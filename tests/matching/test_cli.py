"""``cryomine match search`` / ``extract`` end to end, the job folder and resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.io import read_mrc, read_particles, rotations_from_table, write_mrc
from cryomine.matching import make_template, read_job, read_rotations, run_search, search_rotations

runner = CliRunner()
VOXEL_A = 25.0


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    """A 24 x 48 x 48 tomogram at 25 Å with five 70S ribosomes (protein dark), and its truth."""
    from cryomine.simulate import simulate_tomogram

    sim = simulate_tomogram(
        ["4v4r"], shape_zyx=(24, 48, 48), voxel_size_a=VOXEL_A, n_particles=5, snr=2.0,
        mode="fourier", seed=2,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("match")
    path = folder / "rec_TS_01.mrc"
    write_mrc(path, sim.tomogram, VOXEL_A)
    return path, sim.table


@pytest.fixture(scope="module")
def searched(simulated):
    tomogram, _ = simulated
    job = tomogram.parent / "job"
    result = runner.invoke(
        app,
        ["match", "search", str(tomogram), "--template", "4v4r", "-o", str(job),
         "--angular-step", "40", "--tile", "16,32,32", "--tilt-range", "-60,60"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return job


def test_search_writes_the_job_folder(searched):
    names = {p.name for p in searched.iterdir()}
    assert {"scores.mrc", "angles.mrc", "rotations.csv", "job.json", "run.json"} <= names
    assert "tiles" not in names
    job = read_job(searched)
    scores, voxel = read_mrc(searched / "scores.mrc")
    angles, _ = read_mrc(searched / "angles.mrc")
    assert scores.shape == (24, 48, 48) and voxel == pytest.approx(VOXEL_A)
    assert job["n_positions"] == 24 * 48 * 48 and job["n_tiles"] == 2 * 2 * 2
    assert job["n_rotations"] == len(read_rotations(searched / "rotations.csv"))
    assert 0 < job["statistics"]["std"] < 1
    assert job["statistics"]["n_scores"] == job["n_positions"] * job["n_rotations"]
    assert angles.min() >= 0 and angles.max() < job["n_rotations"]
    assert np.array_equal(angles, np.round(angles))
    assert job["parameters"]["angular_step_deg"] == 40.0


def test_extract_finds_the_particles_with_their_orientations(searched, simulated, tmp_path):
    _, truth = simulated
    picks = tmp_path / "picks.star"
    result = runner.invoke(app, ["match", "extract", str(searched), "-o", str(picks)])
    assert result.exit_code == 0, result.output
    text = picks.read_text()
    assert "rlnCenteredCoordinateXAngst" in text and "rlnAutopickFigureOfMerit" in text
    table = read_particles(picks, tomogram_shapes={"TS_01": (24.0, 48.0, 48.0)})
    assert set(table["rlnTomoName"]) == {"TS_01"}
    found = table[["rlnCoordinateZ", "rlnCoordinateY", "rlnCoordinateX"]].to_numpy()
    true = truth[["rlnCoordinateZ", "rlnCoordinateY", "rlnCoordinateX"]].to_numpy()
    distance = np.linalg.norm(found[:, None] - true[None], axis=-1)
    assert len(table) >= 4 and np.all(distance.min(axis=1) <= 2.0)  # no false picks
    assert (distance.min(axis=0) <= 2.0).sum() >= 4  # recall
    # orientations: the best rotation is within two grid steps of the truth for most picks
    nearest = distance.argmin(axis=1)
    error = (rotations_from_table(table) * rotations_from_table(truth)[nearest].inv()).magnitude()
    assert np.median(np.degrees(error)) < 40.0
    assert np.all(np.diff(table["rlnAutopickFigureOfMerit"].to_numpy()) <= 0)
    record = json.loads((tmp_path / "picks.star.run.json").read_text())
    assert record["results"]["n_picks"] == len(table)


def test_extract_with_p_values_and_other_formats(searched, tmp_path):
    picks = tmp_path / "picks.star"
    result = runner.invoke(
        app,
        ["match", "extract", str(searched), "-o", str(picks), "--number", "2", "--p-values", "9",
         "--p-value-step", "60", "--flavour", "relion4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = read_particles(picks)
    assert len(table) == 2 and "cmTemplatePValue" in table.columns
    np.testing.assert_allclose(table["cmTemplatePValue"], 0.1)  # 1 / (1 + 9): true matches
    kept = tmp_path / "kept.star"
    result = runner.invoke(
        app,
        ["match", "extract", str(searched), "-o", str(kept), "--number", "3", "--p-values", "4",
         "--p-value-step", "90", "--max-p-value", "0.2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    kept_table = read_particles(kept, tomogram_shapes={"TS_01": (24.0, 48.0, 48.0)})
    assert 1 <= len(kept_table) <= 3 and np.all(kept_table["cmTemplatePValue"] <= 0.2)
    coords = tmp_path / "picks.coords"
    result = runner.invoke(app, ["match", "extract", str(searched), "-o", str(coords)])
    assert result.exit_code == 0, result.output
    assert len(coords.read_text().splitlines()) >= 4


def test_bad_input_gives_one_line_errors(simulated, searched, tmp_path):
    tomogram, _ = simulated
    cases = [
        (["match", "search", str(tomogram), "--template", "4v4r", "-o", str(tmp_path / "j"),
          "--tilt-range", "60,-60"], "--tilt-range"),
        (["match", "search", str(tomogram), "--template", "no_such_structure", "-o",
          str(tmp_path / "j")], "no_such_structure"),
        (["match", "search", str(tomogram), "--template", "4v4r", "-o", str(searched)],
         "finished search"),
        (["match", "extract", str(tmp_path), "-o", str(tmp_path / "p.star")], "job.json"),
        (["match", "extract", str(searched), "-o", str(tmp_path / "p.txt")], "picks format"),
        (["match", "extract", str(searched), "-o", str(tmp_path / "p.star"), "--false-alarms",
          "0"], "false alarms"),
        (["match", "extract", str(searched), "-o", str(tmp_path / "p.star"), "--max-p-value",
          "0.1"], "--max-p-value"),
    ]  # fmt: skip
    for argv, expected in cases:
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert expected in result.output and len(result.output.strip().splitlines()) == 1


def test_an_interrupted_search_resumes_from_its_tiles(tmp_path, blob):
    volume = np.random.default_rng(0).normal(size=(12, 20, 20)).astype(np.float32)
    template = make_template(blob, voxel_size_a=10.0, contrast="bright")
    rotations = search_rotations(90.0)
    options = {"voxel_size_a": 10.0, "tile_shape": (12, 10, 10), "keep_tiles": True}
    first = run_search(volume, template, rotations, tmp_path / "a", **options)
    reference, _ = read_mrc(tmp_path / "a" / "scores.mrc", mmap=False)
    job = tmp_path / "b"
    calls = []

    def stop_after_two(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(volume, template, rotations, job, progress=stop_after_two, **options)
    assert not (job / "job.json").exists() and len(list((job / "tiles").glob("*.npz"))) == 1
    with pytest.raises(InputError, match="other parameters"):
        run_search(volume, template, search_rotations(60.0), job, **options)
    resumed = run_search(volume, template, rotations, job, **options)
    assert resumed["tiles_resumed"] == [0]
    scores, _ = read_mrc(job / "scores.mrc", mmap=False)
    np.testing.assert_array_equal(scores, reference)
    assert resumed["statistics"]["std"] == pytest.approx(first["statistics"]["std"])
