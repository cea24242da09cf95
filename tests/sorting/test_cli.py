"""``cryomine sort``, ``predict`` and ``evaluate sorting`` end to end, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cryomine.cli import app

FAST_OPTIONS = ["--width", "0.0625", "--pretrained", "none", "--k-range", "2", "4", "--max-iter", "2", "--batch-size", "16",
                "--pca-components", "4", "--device", "cpu", "--seed", "0"]  # fmt: skip


def test_sort_predict_evaluate(tiny_particle_set: Path, tmp_path: Path) -> None:
    from cryomine.io import ParticleSet, read_particles

    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["sort", str(tiny_particle_set), "-o", str(run), *FAST_OPTIONS])
    assert result.exit_code == 0, result.output
    assert "iteration 1/2: K=" in result.output and "iteration 2/2" in result.output
    for name in (
        "particles.star",
        "features.npy",
        "history.json",
        "run.json",
        "model",
        "checkpoints",
    ):
        assert (run / name).exists(), name
    particles = ParticleSet.open(tiny_particle_set)
    table = read_particles(run / "particles.star")
    assert len(table) == particles.n_particles
    np.testing.assert_array_equal(table["cmParticleId"], particles.table["cmParticleId"])
    classes = table["rlnClassNumber"].to_numpy()
    assert classes.min() == 1  # 1-based
    assert (
        (table["rlnMaxValueProbDistribution"] > 0) & (table["rlnMaxValueProbDistribution"] <= 1)
    ).all()
    assert np.load(run / "features.npy").shape == (particles.n_particles, 1024)
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2
    record = json.loads((run / "run.json").read_text())
    assert record["results"]["n_classes"] == classes.max()

    again = runner.invoke(app, ["sort", str(tiny_particle_set), "-o", str(run), *FAST_OPTIONS])
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = runner.invoke(
        app, ["sort", str(tiny_particle_set), "-o", str(run), *FAST_OPTIONS, "--resume"]
    )
    assert resumed.exit_code == 0, resumed.output
    np.testing.assert_array_equal(read_particles(run / "particles.star")["rlnClassNumber"], classes)

    predicted = tmp_path / "predicted"
    result = runner.invoke(
        app, ["predict", str(run), str(tiny_particle_set), "-o", str(predicted), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        read_particles(predicted / "particles.star")["rlnClassNumber"], classes
    )

    truth = str(tiny_particle_set / "particles.star")
    result = runner.invoke(
        app, ["evaluate", "sorting", "--truth", truth, "--pred", str(run / "particles.star")]
    )
    assert result.exit_code == 0, result.output
    assert "homogeneity" in result.output

    missing = runner.invoke(
        app, ["predict", str(tmp_path), str(tiny_particle_set), "-o", str(predicted)]
    )
    assert missing.exit_code == 2 and "no model/" in missing.output


def test_sort_refuses_a_bad_lowpass(tiny_particle_set: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["sort", str(tiny_particle_set), "-o", str(tmp_path / "run"), *FAST_OPTIONS,
         "--lowpass", "sharp"],
    )  # fmt: skip
    assert result.exit_code == 2 and "--lowpass 'sharp'" in result.output


def test_sort_steering_options_reach_the_estimator(tiny_particle_set: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["sort", str(tiny_particle_set), "-o", str(run), *FAST_OPTIONS, "--preset", "paper",
         "--covariance", "diag,ppca2", "--n-init", "2", "--min-class-size", "3",
         "--learning-rate", "0.001", "--min-steps", "5", "--tol", "0.01",
         "--feature-transform", "signed-sqrt"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    parameters = json.loads((run / "run.json").read_text())["parameters"]
    assert parameters["preset"] == "paper" and parameters["feature_transform"] == "signed-sqrt"
    assert parameters["covariance_types"] == ["diag", "ppca2"]
    assert parameters["n_init"] == 2 and parameters["min_class_size"] == 3
    assert parameters["learning_rate"] == 0.001 and parameters["tol"] == 0.01
    history = json.loads((run / "history.json").read_text())
    assert {c["covariance"] for c in history[0]["candidates"]} == {"diag", "ppca2"}
    assert history[0]["covariance_type"] in {"diag", "ppca2"}
    assert history[0]["steps"] >= 5


def test_sort_former_min_cluster_size_option_still_works_and_is_hidden(
    tiny_particle_set: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    help_text = runner.invoke(app, ["sort", "--help"], terminal_width=400).output
    assert "--min-class-size" in help_text and "--min-cluster-size" not in help_text
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        ["sort", str(tiny_particle_set), "-o", str(run), *FAST_OPTIONS, "--max-iter", "1",
         "--min-cluster-size", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--min-cluster-size is deprecated; use --min-class-size" in result.stderr
    record = json.loads((run / "run.json").read_text())
    assert record["parameters"]["min_class_size"] == 3
    assert "min_cluster_size" not in record["parameters"]
    clash = runner.invoke(
        app,
        ["sort", str(tiny_particle_set), "-o", str(tmp_path / "clash"), *FAST_OPTIONS,
         "--min-class-size", "2", "--min-cluster-size", "3"],
    )  # fmt: skip
    assert clash.exit_code != 0 and "pass only --min-class-size" in clash.output


def test_sort_refuses_an_unknown_covariance(tiny_particle_set: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["sort", str(tiny_particle_set), "-o", str(tmp_path / "run"), *FAST_OPTIONS,
         "--covariance", "full,banana"],
    )  # fmt: skip
    assert result.exit_code == 2 and "banana" in result.output


def test_sort_starts_from_the_shipped_pretrained_network(
    tiny_particle_set: Path, tmp_path: Path
) -> None:
    from cryomine.sorting._pretrain import pretrained_path
    from cryomine.sorting._yopo import YOPO

    run = tmp_path / "run"
    options = ["--k-range", "2", "4", "--max-iter", "1", "--pca-components", "4", "--device", "cpu"]
    result = CliRunner().invoke(app, ["sort", str(tiny_particle_set), "-o", str(run), *options])
    assert result.exit_code == 0, result.output
    parameters = json.loads((run / "run.json").read_text())["parameters"]
    assert parameters["pretrained"] == "builtin" and parameters["width"] == 0.25
    saved = json.loads((run / "model" / "state.json").read_text())
    assert saved["pretrained_record"]["format"] == "cryomine-yopo-pretrained-1"
    # one iteration trains nothing, so the saved trunk is the shipped one, weight for weight
    import torch

    shipped = torch.load(pretrained_path("builtin", 0.25) / "state.pt", weights_only=True)["trunk"]
    fitted = torch.load(run / "model" / "state.pt", weights_only=True)["trunk"]
    assert all(torch.equal(shipped[name], fitted[name]) for name in shipped)
    assert set(shipped) == set(YOPO(width=0.25).state_dict())

    wrong = CliRunner().invoke(
        app, ["sort", str(tiny_particle_set), "-o", str(tmp_path / "w1"), *options, "--width", "1"]
    )
    assert wrong.exit_code == 2 and "--pretrained none" in wrong.output
