"""Sorting metrics: perfect and imperfect sortings, matching by particle id, the CLI verb."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.evaluate import evaluate_sorting, sorting_metrics


def test_a_renamed_perfect_sorting_scores_one() -> None:
    truth = np.repeat([0, 1, 2], 5)
    result = sorting_metrics(truth, np.array([7, 3, 5])[truth])
    assert result.k_correct and result.accuracy == 1.0
    assert result.homogeneity == pytest.approx(1.0) and result.completeness == pytest.approx(1.0)
    assert result.v_measure == pytest.approx(1.0) and result.adjusted_rand == pytest.approx(1.0)
    assert result.matching == {"7": 0, "3": 1, "5": 2}
    assert result.confusion == [[0, 0, 5], [5, 0, 0], [0, 5, 0]]  # columns: predicted 3, 5, 7


def test_accuracy_after_matching_and_only_when_k_is_right() -> None:
    truth = np.repeat([0, 1, 2], 10)
    predicted = truth.copy()
    predicted[[0, 1, 10]] = [1, 2, 0]  # three mistakes
    result = sorting_metrics(truth, predicted)
    assert result.accuracy == pytest.approx(27 / 30)
    assert 0.0 < result.homogeneity < 1.0
    merged = np.where(truth == 2, 1, truth)  # K = 2: pure clusters, incomplete
    result = sorting_metrics(truth, merged)
    assert result.accuracy is None and result.matching is None and not result.k_correct
    assert result.n_predicted_classes == 2
    assert result.completeness == pytest.approx(1.0) and result.homogeneity < 0.7
    split = np.arange(30) // 5  # K = 6: homogeneous, incomplete
    assert sorting_metrics(truth, split).homogeneity == pytest.approx(1.0)


def test_tables_are_matched_by_particle_id(truth_table: pd.DataFrame) -> None:
    predicted = truth_table.sample(frac=1.0, random_state=0).reset_index(drop=True)
    predicted["rlnClassNumber"] = 4 - predicted["cmTrueClass"]  # renamed, perfect
    predicted = predicted.drop(columns=["cmTrueClass"]).iloc[:25]  # 5 particles missing
    result = evaluate_sorting(truth_table, predicted)
    assert result.n_particles == 25 and result.accuracy == 1.0
    # row order alone (ignoring ids) would give a poor score
    shuffled = sorting_metrics(truth_table["cmTrueClass"].iloc[:25], predicted["rlnClassNumber"])
    assert shuffled.accuracy is not None and shuffled.accuracy < 1.0


def test_bad_tables_raise(truth_table: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="rlnClassNumber"):
        evaluate_sorting(truth_table, truth_table)
    with pytest.raises(InputError, match="no class column"):
        evaluate_sorting(truth_table.drop(columns=["cmTrueClass"]), truth_table)
    other = truth_table.copy()
    other["cmParticleId"] += 1000
    other["rlnClassNumber"] = 1
    with pytest.raises(InputError, match="share no"):
        evaluate_sorting(truth_table, other)
    with pytest.raises(InputError, match="shapes"):
        sorting_metrics([1, 2], [1])


def test_cli_evaluate_sorting(truth_table: pd.DataFrame, tmp_path: Path) -> None:
    from cryomine.io import write_particles

    predicted = truth_table.drop(columns=["cmTrueClass"])
    predicted["rlnClassNumber"] = np.r_[np.repeat([2, 3, 1], 10)]
    predicted.loc[0, "rlnClassNumber"] = 3
    write_particles(tmp_path / "truth.star", truth_table)
    write_particles(tmp_path / "pred.star", predicted)
    runner = CliRunner()
    out = tmp_path / "metrics.json"
    truth, pred = str(tmp_path / "truth.star"), str(tmp_path / "pred.star")
    result = runner.invoke(
        app, ["evaluate", "sorting", "--truth", truth, "--pred", pred, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "homogeneity" in result.output and "96.67 %" in result.output
    metrics = json.loads(out.read_text())
    assert metrics["k_correct"] and metrics["accuracy"] == pytest.approx(29 / 30)
    missing = runner.invoke(app, ["evaluate", "sorting", "--truth", str(tmp_path / "truth.star"),
                                  "--pred", str(tmp_path / "truth.star")])  # fmt: skip
    assert missing.exit_code == 2 and "rlnClassNumber" in missing.output
