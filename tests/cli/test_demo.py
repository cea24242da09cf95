import json

from typer.testing import CliRunner

from cryomine.cli import app

runner = CliRunner()


def test_demo_runs_every_step_and_resumes(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "-o", str(out), "--per-class", "12", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for step in ("simulate subtomograms", "sort", "evaluate sorting", "report"):
        assert f"$ cryomine {step}" in result.output
    metrics = json.loads((out / "sorting_metrics.json").read_text())
    assert metrics["n_particles"] == 36
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "sort" / "run.json").exists()

    again = runner.invoke(app, ["demo", "-o", str(out), "--per-class", "12", "--device", "cpu"])
    assert again.exit_code == 0, again.output
    assert "already done, skipped: cryomine simulate" in again.output
    assert "already done, skipped: cryomine sort" in again.output
