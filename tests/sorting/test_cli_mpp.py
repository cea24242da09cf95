"""``cryomine sort --method mpp|disca-mpp`` and ``cryomine refine`` end to end, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.sorting.test_cli import FAST_OPTIONS
from typer.testing import CliRunner

from cryomine.cli import app


def test_sort_mpp_writes_a_sort_run_that_average_and_evaluate_read(
    tiny_particle_set: Path, tmp_path: Path
) -> None:
    from cryomine.io import COLUMNS, ParticleSet, read_particles, rotations_from_table

    runner = CliRunner()
    run = tmp_path / "mpp"
    result = runner.invoke(app, ["sort", str(tiny_particle_set), "-o", str(run), "--method", "mpp",
                                 "--device", "cpu", "--max-iter", "4"])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = read_particles(run / "particles.star")
    particles = ParticleSet.open(tiny_particle_set)
    assert len(table) == particles.n_particles
    np.testing.assert_array_equal(table[COLUMNS.particle_id], particles.table[COLUMNS.particle_id])
    classes = table[COLUMNS.class_number].to_numpy()
    assert classes.min() == 1
    record = json.loads((run / "run.json").read_text())
    k = record["results"]["n_classes"]
    assert k == classes.max() and record["results"]["method"] == "mpp"
    assert set(table["rlnRandomSubset"]) == {1, 2}
    assert len(rotations_from_table(table)) == len(table)
    assert {"cmAlignmentScore", "cmScoreMargin", *COLUMNS.origin_xyz_angst} <= set(table.columns)
    for c in range(1, k + 1):
        for suffix in ("", "_half1", "_half2"):
            assert (run / "classes" / f"class_{c:03d}{suffix}.mrc").is_file()
        assert (run / "classes" / f"fsc_class_{c:03d}.csv").is_file()
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["n_classes"] >= 1
    from cryomine.report._figures import history_figure

    assert history_figure(history).startswith(b"\x89PNG")  # no DDBI in MPP entries
    # the run reads like any sort run
    truth = str(tiny_particle_set / "particles.star")
    evaluated = runner.invoke(
        app, ["evaluate", "sorting", "--truth", truth, "--pred", str(run / "particles.star")]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = runner.invoke(app, ["report", str(run), "-o", str(tmp_path / "report.html")])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report.html").stat().st_size > 1000
    again = runner.invoke(app, ["sort", str(tiny_particle_set), "-o", str(run), "--method", "mpp"])
    assert again.exit_code != 0 and "already holds a finished sort" in again.output


def test_disca_mpp_and_refine(tiny_particle_set: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "both"
    result = runner.invoke(app, ["sort", str(tiny_particle_set), "-o", str(run), *FAST_OPTIONS,
                                 "--method", "disca-mpp"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (run / "disca" / "particles.star").is_file()
    assert (run / "disca" / "features.npy").is_file()
    assert (run / "particles.star").is_file()
    record = json.loads((run / "run.json").read_text())
    assert record["parameters"]["method"] == "disca-mpp"
    history = json.loads((run / "history.json").read_text())
    assert history[0]["event"] == "initial patterns"
    disca = json.loads((run / "disca" / "run.json").read_text())
    assert history[0]["n_classes"] == disca["results"]["n_classes"]

    refined = tmp_path / "refined"
    result = runner.invoke(app, ["refine", str(run / "disca"), "-o", str(refined), "--device",
                                 "cpu", "--no-propose", "--lowpass", "40"])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((refined / "run.json").read_text())
    assert record["parameters"]["propose"] is False
    assert record["parameters"]["max_frequency"] == pytest.approx(13.0 / 40.0)


def test_refine_refuses_bad_input(tiny_particle_set: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["refine", str(tmp_path), "-o", str(tmp_path / "out")])
    assert missing.exit_code == 2 and "no particles.star" in missing.output
    same = runner.invoke(app, ["refine", str(tiny_particle_set), "-o", str(tiny_particle_set)])
    assert same.exit_code == 2 and "another directory" in same.output
    unsorted = runner.invoke(app, ["refine", str(tiny_particle_set), "-o", str(tmp_path / "o")])
    assert unsorted.exit_code == 2 and "rlnClassNumber" in unsorted.output
    method = runner.invoke(app, ["sort", str(tiny_particle_set), "-o", str(tmp_path / "m"),
                                 "--method", "kmeans"])  # fmt: skip
    assert method.exit_code == 2 and "expected disca, mpp or disca-mpp" in method.output
