"""`cryomine baseline` verbs and the Table-1 benchmark script, end to end on tiny data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import read_particles

ROOT = Path(__file__).resolve().parents[3]


def _benchmark() -> ModuleType:
    path = ROOT / "benchmarks" / "sorting_table1.py"
    spec = importlib.util.spec_from_file_location("sorting_table1", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_template_matching_verb_writes_a_run_dir(
    baseline_particle_set: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "tm"
    args = ["-q", "baseline", "template-matching", str(baseline_particle_set), "-o", str(out),
            "--angular-step", "90", "--refine-to", "90", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = read_particles(out / "particles.star")
    truth = read_particles(baseline_particle_set / "particles.star")
    assert set(table["rlnClassNumber"]) <= {1, 2, 3}
    assert np.all(np.isfinite(table["cmScore"]))
    names = json.loads((out / "references.json").read_text())
    assert sorted(names.values()) == sorted(set(truth["cmStructure"]))
    assert np.load(out / "scores.npy").shape == (len(truth), 3)
    record = json.loads((out / "run.json").read_text())
    assert record["parameters"]["tilt_range_deg"] == [-60.0, 60.0]  # read from the simulated set
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_autoencoder_verb_writes_a_run_dir(baseline_particle_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "ae"
    result = CliRunner().invoke(app, [
        "-q", "baseline", "autoencoder", str(baseline_particle_set), "-o", str(out), "--epochs", "1",
        "--k-range", "2", "3", "--pca-components", "3", "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = read_particles(out / "particles.star")
    record = json.loads((out / "run.json").read_text())
    assert table["rlnClassNumber"].min() == 1
    assert table["rlnClassNumber"].nunique() == record["results"]["n_classes"]
    assert np.load(out / "codes.npy").shape == (len(table), 32)


def test_missing_references_are_an_input_error(baseline_particle_set: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "baseline", "template-matching", str(baseline_particle_set), "-o", str(tmp_path / "x"),
        "--reference", str(tmp_path / "nothing.mrc"),
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "nothing.mrc" in result.output


def test_settings_and_paper_figures() -> None:
    bench = _benchmark()
    assert bench.parse_settings("60:0.1,40:0.01") == [(60.0, 0.1), (40.0, 0.01)]
    assert len(bench.parse_settings(None)) == 10
    assert bench.paper_figures("disca", 60.0, 0.1) == {
        "k": 5, "homogeneity": 0.9878, "accuracy_percent": 99.70,
    }  # fmt: skip
    assert bench.paper_figures("autoencoder", 40.0, 0.1)["accuracy_percent"] is None
    with pytest.raises(SystemExit):
        bench.parse_settings("60-0.1")


def test_benchmark_runs_end_to_end_and_resumes(tmp_path: Path, capsys) -> None:
    bench = _benchmark()
    argv = ["--per-class", "2", "--settings", "60:0.1", "--structures", "6v8o,3j9i,4v4r",
            "--methods", "template-matching,autoencoder", "--tm-step", "90", "--tm-refine-to", "90",
            "--ae-epochs", "1", "--k-range", "2", "3", "--pca-components", "3",
            "--voxel-size", "16", "--tm-per-class", "1",
            "--mode", "fourier", "--device", "cpu", "--out-dir", str(tmp_path)]  # fmt: skip
    bench.main(argv)
    payload = json.loads((tmp_path / "sorting_table1.json").read_text())
    assert payload["command"].startswith("python benchmarks/sorting_table1.py --per-class 2")
    cells = {c["method"]: c for c in payload["cells"]}
    assert set(cells) == {"template-matching", "autoencoder"}
    for cell in cells.values():
        assert cell["n_subtomograms"] == 6 and 1 <= cell["k"] <= 3
        assert 0.0 <= cell["homogeneity"] <= 1.0 and cell["wall_s"] > 0
        assert cell["paper"]["homogeneity"] > 0
    # template matching scored one subtomogram per class of the same data set
    assert cells["template-matching"]["n_scored"] == 3 and cells["autoencoder"]["n_scored"] == 6
    assert cells["template-matching"]["metrics"]["n_particles"] == 3
    markdown = (tmp_path / "sorting_table1.md").read_text()
    assert "| Template matching (true references) K |" in markdown and "(0.7013)" in markdown
    capsys.readouterr()
    bench.main(argv)  # every cell exists: nothing is recomputed
    assert capsys.readouterr().out.count("skip ") == 2
