"""Multi-stage sorting: the split test, the stage loop, ``StagedSorter`` and ``sort --stages``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClusterMixin
from typer.testing import CliRunner

from cryomine.errors import InputError
from cryomine.sorting._stages import SPLIT_DIMENSIONS, sort_in_stages, split_test


def _blobs(sizes: list[int], seed: int = 0, dim: int = 32, spread: float = 6.0) -> np.ndarray:
    """Gaussian blobs ``(sum(sizes), dim)``: unit noise around centres ``spread`` apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread / np.sqrt(2), size=(len(sizes), dim))
    return np.concatenate(
        [c + rng.normal(size=(n, dim)) for c, n in zip(centres, sizes, strict=True)]
    )


def test_split_test_passes_pure_classes_and_fails_a_class_with_a_minority() -> None:
    features = _blobs([100, 100, 12])  # the third blob is a 10 % minority inside class 1
    labels = np.array([0] * 100 + [1] * 112)
    tests = split_test(features, labels)
    assert [t["class"] for t in tests] == [0, 1]
    assert tests[0]["homogeneous"] and tests[0]["dimensions"] == SPLIT_DIMENSIONS
    assert not tests[1]["homogeneous"]
    assert tests[1]["bic_two"] < tests[1]["bic_one"]


def test_split_test_scales_its_dimensions_to_the_class() -> None:
    features = _blobs([5, 4, 3])
    tests = split_test(features, np.repeat([0, 1], [9, 3]))
    # 9 members: d = 9 // 4 = 2, room for two components of 3; the two blobs are found
    assert tests[0]["dimensions"] == 2 and not tests[0]["homogeneous"]
    # 3 members cannot hold two components: passes untested
    assert tests[1]["dimensions"] == 0 and tests[1]["homogeneous"] and tests[1]["bic_one"] is None


def _merging_fit(truth: np.ndarray, features: np.ndarray, calls: list[np.ndarray]):
    """A stand-in sorter: stage 1 merges true class 2 into class 0; later stages are exact."""

    def fit_stage(indices: np.ndarray, stage: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(indices)
        labels = truth[indices].copy()
        if stage == 1:
            labels[labels == 2] = 0
        return np.unique(labels, return_inverse=True)[1], features[indices]

    return fit_stage


def test_second_stage_recovers_a_class_the_first_merged() -> None:
    truth = np.repeat([0, 1, 2], [100, 100, 12])
    calls: list[np.ndarray] = []
    seen: list[dict] = []
    result = sort_in_stages(
        len(truth), _merging_fit(truth, _blobs([100, 100, 12]), calls), stages=3,
        callback=seen.append,
    )  # fmt: skip
    # stage 1 keeps class 1 (pure), sends the merged class on; stage 2 splits it; its two classes
    # pass, so the loop ends before stage 3
    assert [len(c) for c in calls] == [212, 112]
    np.testing.assert_array_equal(calls[1], np.flatnonzero(truth != 1))
    assert [r["stage"] for r in seen] == [1, 2] and seen[0]["kept"] == [1]
    assert seen[1]["stopped"] == "every class passed the split test"
    assert result.n_classes == 3
    with pytest.warns(FutureWarning, match="n_clusters is deprecated; use n_classes"):
        assert result.n_clusters == 3
    assert result.class_stage.tolist() == [1, 2, 2]
    # every true class is exactly one final class
    for k in range(3):
        assert np.unique(result.labels[truth == k]).size == 1
    assert np.unique(result.labels).size == 3


def test_one_stage_and_early_stops() -> None:
    truth = np.repeat([0, 1, 2], [100, 100, 12])
    features = _blobs([100, 100, 12])
    calls: list[np.ndarray] = []
    single = sort_in_stages(len(truth), _merging_fit(truth, features, calls), stages=1)
    assert len(calls) == 1 and single.n_classes == 2 and single.stages[0]["tests"] == []
    # a sorter that is already right: every class passes at stage 1, no second stage runs
    calls.clear()

    def exact(indices: np.ndarray, stage: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(indices)
        return truth[indices], features[indices]

    result = sort_in_stages(len(truth), exact, stages=3)
    assert len(calls) == 1 and result.n_classes == 3
    assert result.stages[0]["stopped"] == "every class passed the split test"
    with pytest.raises(InputError, match="stages 0"):
        sort_in_stages(3, exact, stages=0)


def test_particle_set_subset_reads_the_rows_it_names(tiny_particle_set: Path) -> None:
    from cryomine.io import ParticleSet

    particles = ParticleSet.open(tiny_particle_set)
    rows = np.array([5, 1, 7])
    part = particles.subset(rows)
    assert part.n_particles == 3 and len(part.table) == 3
    np.testing.assert_array_equal(part.table["cmParticleId"], particles.table["cmParticleId"][rows])
    np.testing.assert_array_equal(part.read([0, 2]), particles.read([5, 7]))
    np.testing.assert_array_equal(part.subset([2]).read([0]), particles.read([7]))
    with pytest.raises(IndexError):
        part.read([3])


def test_cli_sort_in_stages_recovers_the_class_stage_one_merged(
    tiny_particle_set: Path, tmp_path: Path
) -> None:
    """Stage 1 may find only K = 2 of the three structures; the merged class fails the split
    test and stage 2 separates it (the shipped trunk's features, one iteration per stage)."""
    from cryomine.cli import app
    from cryomine.evaluate import sorting_metrics
    from cryomine.io import ParticleSet, read_particles

    run = tmp_path / "run"
    options = ["--k-range", "2", "2", "--max-iter", "1", "--min-iter", "0", "--batch-size", "16",
               "--pca-components", "4", "--device", "cpu", "--seed", "0", "--stages", "2"]  # fmt: skip
    result = CliRunner().invoke(app, ["sort", str(tiny_particle_set), "-o", str(run), *options])
    assert result.exit_code == 0, result.output
    assert "stage 2: sorting 16 particles" in result.output
    stages = json.loads((run / "stages.json").read_text())
    assert [s["n_particles"] for s in stages] == [24, 16]
    assert [t["homogeneous"] for t in stages[0]["tests"]].count(False) == 1
    for stage in (1, 2):
        assert (run / f"stage-{stage}" / "model").is_dir()
    assert len(read_particles(run / "stage-2" / "particles.star")) == 16
    table = read_particles(run / "particles.star")
    particles = ParticleSet.open(tiny_particle_set)
    np.testing.assert_array_equal(table["cmParticleId"], particles.table["cmParticleId"])
    classes = table["rlnClassNumber"].to_numpy()
    record = json.loads((run / "run.json").read_text())
    assert record["results"]["class_stage"] == [1, 2, 2]
    for k, stage in enumerate(record["results"]["class_stage"]):
        assert set(table["cmSortStage"][classes == k + 1]) == {stage}
    metrics = sorting_metrics(table["cmTrueClass"].to_numpy(), classes)
    assert metrics.n_predicted_classes == 3 and metrics.homogeneity == pytest.approx(1.0)


class _KMeansOnVoxels(ClusterMixin, BaseEstimator):
    """A featureless sorter: k-means (K = 2) on the raw voxels; it has no ``features_``."""

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> _KMeansOnVoxels:
        from sklearn.cluster import KMeans

        flat = X.reshape(len(X), -1)
        self.labels_ = KMeans(2, n_init=3, random_state=self.random_state).fit_predict(flat)
        return self


def test_staged_sorter_tests_a_featureless_sorter_on_the_pretrained_trunk() -> None:
    from tests.sorting.conftest import simulate

    from cryomine.sorting import StagedSorter

    volumes, truth = simulate(8, 1.0, seed=3)
    sorter = StagedSorter(_KMeansOnVoxels(), stages=3, device="cpu").fit(volumes)
    assert len(sorter.estimators_) == len(sorter.stages_) >= 1
    first = sorter.stages_[0]
    assert first["n_particles"] == 24 and len(first["tests"]) == 2
    assert all(t["bic_one"] is not None for t in first["tests"])  # features were there to test
    assert sorter.class_stage_.size == sorter.n_classes_ == np.unique(sorter.labels_).size
    with pytest.warns(FutureWarning, match="n_clusters_ is deprecated; use n_classes_"):
        assert sorter.n_clusters_ == sorter.n_classes_
    assert sorter.labels_.shape == truth.shape
