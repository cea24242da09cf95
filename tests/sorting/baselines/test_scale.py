"""The scale-only control (`ScaleMixture`, `cryomine baseline scale`) on paper-model data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import homogeneity_score
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.io import ParticleSet, read_particles
from cryomine.simulate import simulate_subtomograms, write_simulated_subtomograms
from cryomine.sorting.baselines import ScaleMixture, subtomogram_log_std

# A 0.3 MDa and a 2.3 MDa complex (BENCHMARKS.md §1), 24³ at 16 Å, SNR 0.001, ±60°.
OPTIONS = {"n_per_class": 15, "snr": 0.001, "voxel_size_a": 16.0, "noise_model": "paper",
           "seed": 11, "device": "cpu"}  # fmt: skip
STRUCTURES = ["6v8o", "4v4r"]


def _simulate(normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    sim = simulate_subtomograms(STRUCTURES, normalize=normalize, **OPTIONS)
    volumes = np.concatenate(list(sim.iter_subtomograms()))
    return volumes, sim.table["cmTrueClass"].to_numpy() - 1


@pytest.fixture(scope="module")
def raw_and_zscored() -> dict[bool, tuple[np.ndarray, np.ndarray]]:
    return {normalize: _simulate(normalize) for normalize in (False, True)}


def test_scale_separates_masses_unnormalized_and_fails_normalized(raw_and_zscored) -> None:  # type: ignore[no-untyped-def]
    volumes, truth = raw_and_zscored[False]
    model = ScaleMixture(k_range=(2, 6), random_state=0).fit(volumes)
    assert homogeneity_score(truth, model.labels_) > 0.9
    volumes, truth = raw_and_zscored[True]
    model = ScaleMixture(k_range=(2, 6), random_state=0).fit(volumes)
    assert homogeneity_score(truth, model.labels_) < 0.2


def test_estimator_contract(raw_and_zscored) -> None:  # type: ignore[no-untyped-def]
    volumes, _ = raw_and_zscored[False]
    model = ScaleMixture(k_range=(2, 5), random_state=3)
    assert model.get_params() == {"k_range": (2, 5), "k_candidates": None, "random_state": 3}
    assert clone(model).set_params(k_range=(2, 3)).get_params()["k_range"] == (2, 3)
    with pytest.raises(TypeError):
        ScaleMixture((2, 5))  # type: ignore[misc]  # keyword-only
    assert model.fit(volumes, None) is model
    n = len(volumes)
    assert model.labels_.shape == (n,) and model.labels_.dtype == np.int64
    assert model.probabilities_.shape == (n, model.n_classes_)
    assert 2 <= model.n_classes_ <= 5 and set(model.bic_) <= {2, 3, 4, 5}
    with pytest.warns(FutureWarning, match="n_clusters_ is deprecated; use n_classes_"):
        assert model.n_clusters_ == model.n_classes_
    assert np.all(np.diff(model.means_) > 0)  # classes numbered by increasing scale
    np.testing.assert_array_equal(model.predict(volumes), model.labels_)
    np.testing.assert_array_equal(model.fit_predict(volumes), model.labels_)  # ClusterMixin
    np.testing.assert_allclose(
        model.log_std_, np.log(volumes.std(axis=(1, 2, 3), dtype=np.float64))
    )


def test_bad_input() -> None:
    volumes = np.random.default_rng(0).standard_normal((4, 8, 8, 8)).astype(np.float32)
    with pytest.raises(InputError, match="k_range"):
        ScaleMixture(k_range=(5, 2)).fit(volumes)
    volumes[1] = 3.0
    with pytest.raises(InputError, match="subtomogram 1: constant"):
        subtomogram_log_std(volumes)
    with pytest.raises(InputError, match="shape"):
        subtomogram_log_std(np.ones(5))
    with pytest.raises(InputError, match="fit before predict"):
        ScaleMixture().predict(volumes)


def test_verb_reads_the_raw_values_and_writes_a_run_dir(tmp_path: Path) -> None:
    particles = write_simulated_subtomograms(
        tmp_path / "raw", STRUCTURES, normalize=False, **{**OPTIONS, "n_per_class": 8}
    )
    out = tmp_path / "scale"
    args = ["-q", "baseline", "scale", str(particles), "-o", str(out), "--k-range", "2", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = read_particles(out / "particles.star")
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == "baseline scale"
    assert table["rlnClassNumber"].nunique() == record["results"]["n_classes"]
    assert homogeneity_score(table["cmTrueClass"], table["rlnClassNumber"]) > 0.9
    assert np.all((table["cmScore"] > 0) & (table["cmScore"] <= 1))
    log_std = np.load(out / "log_std.npy")
    stored = ParticleSet.open(particles).read(np.arange(16)).astype(np.float64)
    np.testing.assert_allclose(log_std, np.log(stored.std(axis=(1, 2, 3))), atol=1e-6)
    np.testing.assert_allclose(table["cmLogStd"], log_std, atol=1e-5)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_table1_benchmark_has_a_scale_row_on_paper_data(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "sorting_table1.py"
    spec = importlib.util.spec_from_file_location("sorting_table1_scale", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--per-class", "6", "--settings", "60:0.001", "--structures", "6v8o,4v4r",
            "--methods", "scale", "--k-range", "2", "4", "--noise-model", "paper",
            "--no-normalize", "--device", "cpu", "--out-dir", str(tmp_path)]  # fmt: skip
    bench.main(argv)
    payload = json.loads((tmp_path / "sorting_table1.json").read_text())
    (cell,) = payload["cells"]
    assert cell["method"] == "scale" and cell["noise_model"] == "paper"
    assert cell["normalized"] is False and cell["homogeneity"] > 0.9
    assert (tmp_path / "cells" / "tilt60_snr0.001_n12_scale_paper_raw.json").is_file()
    markdown = (tmp_path / "sorting_table1.md").read_text()
    assert "| Scale only homogeneity |" in markdown and "unnormalized" in markdown
