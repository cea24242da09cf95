"""The DISCA estimator: validation, history, checkpoint/resume, save/load/predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.sorting import DISCA

#: Fast settings for mechanics tests (not for accuracy): 4-13 channels, 2-4 candidate classes.
FAST = {
    "width": 0.0625,
    "pretrained": None,
    "k_range": (2, 4),
    "batch_size": 16,
    "pca_components": 4,
    "device": "cpu",
}


#: tol 0: never converges early, so all iterations (and the resume paths) are exercised.
SEEDED = {**FAST, "random_state": 11, "tol": 0.0}


@pytest.fixture(scope="module")
def uninterrupted(tiny_set: tuple[np.ndarray, np.ndarray]) -> DISCA:
    """Three uninterrupted iterations with ``SEEDED`` settings (shared by several tests)."""
    return DISCA(**SEEDED, max_iter=3).fit(tiny_set[0])


def _without_timings(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if k != "timings_s"} for entry in history]


def test_parameters_are_validated_in_fit_not_in_the_constructor(
    tiny_set: tuple[np.ndarray, np.ndarray],
) -> None:
    volumes, _ = tiny_set
    model = DISCA(max_iter=0)  # storing a bad value is fine
    with pytest.raises(InputError, match="max_iter"):
        model.fit(volumes)
    with pytest.raises(InputError, match="k_range"):
        DISCA(k_range=(5, 2)).fit(volumes)
    with pytest.raises(InputError, match="at least 21"):
        DISCA(**FAST).fit(volumes[:, :20, :20, :20])
    with pytest.raises(InputError, match="N, S, S, S"):
        DISCA(**FAST).fit(volumes[0])
    with pytest.raises(InputError, match="not fitted"):
        DISCA().predict(volumes)


def test_fit_records_history_and_fitted_attributes(
    tiny_set: tuple[np.ndarray, np.ndarray], uninterrupted: DISCA
) -> None:
    volumes, _ = tiny_set
    model = uninterrupted
    n = len(volumes)
    assert model.labels_.shape == (n,) and model.labels_.min() == 0
    assert model.n_classes_ == model.labels_.max() + 1 == model.probabilities_.shape[1]
    assert model.features_.shape == (n, 1024) and model.features_.dtype == np.float32
    assert len(model.history_) == model.n_iter_ == 3
    first, second, last = model.history_
    assert first["label_change"] is None and first["warm_used"] is None
    assert set(first["candidate_bic"]) >= {"2", "3", "4"}
    assert first["learning_rate"] == pytest.approx(1e-4 * 0.95) and first["alpha"] == pytest.approx(
        0.2 * 0.9
    )
    assert second["learning_rate"] == pytest.approx(1e-4 * 0.95**2)
    assert first["head_loss"] is not None  # K appeared: the new head was trained alone first
    assert isinstance(second["warm_used"], bool) and 0.0 <= second["label_change"] <= 1.0
    assert "loss" not in last  # the last iteration does not train
    best = min(model.history_, key=lambda e: e["ddbi"])
    assert model.best_iteration_ == best["iteration"] and model.ddbi_ == pytest.approx(best["ddbi"])


def test_stops_when_labels_stop_changing(tiny_set: tuple[np.ndarray, np.ndarray]) -> None:
    volumes, _ = tiny_set
    model = DISCA(**FAST, random_state=11, max_iter=8).fit(volumes)
    assert model.converged_ and model.n_iter_ < 8
    # the rule: not before min_iter (3) iterations, of which all but the last trained
    assert model.n_iter_ >= model.min_iter == 3
    assert all(entry["steps"] > 0 for entry in model.history_[:-1])
    last = model.history_[-1]
    assert last["label_change"] < 1e-3 and last["n_classes"] == model.history_[-2]["n_classes"]
    assert "loss" not in last  # a converged iteration does not train


def test_may_not_stop_before_min_iter(tiny_set: tuple[np.ndarray, np.ndarray]) -> None:
    # tol 0.5: the labels "settle" at once; the untrained network may still not answer
    volumes, _ = tiny_set
    model = DISCA(**FAST, random_state=11, max_iter=8, tol=0.5, min_iter=4).fit(volumes)
    assert model.converged_ and model.n_iter_ == 4


class _Crash(RuntimeError):
    pass


def test_resume_after_a_crash_equals_an_uninterrupted_run(
    tiny_set: tuple[np.ndarray, np.ndarray], uninterrupted: DISCA, tmp_path: Path
) -> None:
    volumes, _ = tiny_set
    settings = {**SEEDED, "max_iter": 3}
    entries: list[dict[str, Any]] = []

    def crash_after_two(entry: dict[str, Any]) -> None:
        entries.append(entry)
        if entry["iteration"] == 1:
            raise _Crash

    with pytest.raises(_Crash):
        DISCA(**settings).fit(volumes, checkpoint_dir=tmp_path, callback=crash_after_two)
    assert (tmp_path / "latest" / "state.json").is_file()
    resumed = DISCA(**settings).fit(volumes, checkpoint_dir=tmp_path, resume=True)
    assert _without_timings(entries) == _without_timings(uninterrupted.history_[:2])
    np.testing.assert_array_equal(resumed.labels_, uninterrupted.labels_)
    assert _without_timings(resumed.history_) == _without_timings(uninterrupted.history_)
    np.testing.assert_allclose(resumed.features_, uninterrupted.features_, rtol=1e-5, atol=1e-5)


def test_resume_with_more_iterations_continues_a_finished_run(
    tiny_set: tuple[np.ndarray, np.ndarray], uninterrupted: DISCA, tmp_path: Path
) -> None:
    volumes, _ = tiny_set
    settings = SEEDED
    DISCA(**settings, max_iter=2).fit(volumes, checkpoint_dir=tmp_path)
    resumed = DISCA(**settings, max_iter=3).fit(volumes, checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.labels_, uninterrupted.labels_)
    assert _without_timings(resumed.history_) == _without_timings(uninterrupted.history_)
    with pytest.raises(InputError, match="different settings"):
        DISCA(**{**settings, "width": 0.125}, max_iter=3).fit(
            volumes, checkpoint_dir=tmp_path, resume=True
        )


def test_save_load_predict_round_trip(
    tiny_set: tuple[np.ndarray, np.ndarray], uninterrupted: DISCA, tmp_path: Path
) -> None:
    volumes, _ = tiny_set
    model = uninterrupted
    np.testing.assert_array_equal(model.predict(volumes), model.labels_)
    model.save(tmp_path / "model")
    with pytest.raises(InputError, match="exists"):
        model.save(tmp_path / "model")
    loaded = DISCA.load(tmp_path / "model")
    assert loaded.get_params() == model.get_params()
    assert loaded.n_classes_ == model.n_classes_
    np.testing.assert_array_equal(loaded.predict(volumes), model.labels_)
    np.testing.assert_allclose(loaded.transform(volumes), model.features_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.predict_proba(volumes), model.probabilities_, atol=1e-6)
    with pytest.raises(InputError, match="not a saved DISCA"):
        DISCA.load(tmp_path)


def test_signed_sqrt_feature_transform_runs_through_fit_and_predict(
    tiny_set: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    volumes, _ = tiny_set
    with pytest.raises(InputError, match="feature_transform 'log'"):
        DISCA(**FAST, feature_transform="log").fit(volumes)
    model = DISCA(**SEEDED, max_iter=1, feature_transform="signed-sqrt").fit(volumes)
    plain = DISCA(**SEEDED, max_iter=1).fit(volumes)
    # the same network (nothing trained at max_iter 1), features transformed value by value
    np.testing.assert_allclose(
        model.features_, np.sign(plain.features_) * np.sqrt(np.abs(plain.features_)), atol=1e-6
    )
    model.save(tmp_path / "model")
    loaded = DISCA.load(tmp_path / "model")
    assert loaded.feature_transform == "signed-sqrt"
    np.testing.assert_array_equal(loaded.predict(volumes), model.labels_)


def test_particle_set_input_streams_like_an_array(tiny_particle_set: Path) -> None:
    from cryomine.io import ParticleSet

    particles = ParticleSet.open(tiny_particle_set)
    volumes = particles.read(np.arange(particles.n_particles))
    from_set = DISCA(**FAST, max_iter=1, random_state=0).fit(particles)
    from_array = DISCA(**FAST, max_iter=1, random_state=0).fit(volumes)
    np.testing.assert_array_equal(from_set.labels_, from_array.labels_)


def test_former_cluster_names_warn_and_map_onto_the_class_names(uninterrupted: DISCA) -> None:
    from sklearn.base import clone

    with pytest.warns(FutureWarning, match="min_cluster_size is deprecated; use min_class_size"):
        model = DISCA(min_cluster_size=5)
    assert model.min_class_size == 5
    assert "min_cluster_size" not in model.get_params()
    assert model.json_params() == DISCA(min_class_size=5).json_params()
    assert clone(model).get_params() == model.get_params()
    with pytest.warns(FutureWarning, match="min_cluster_size is deprecated"):
        assert model.min_cluster_size == 5
    with pytest.warns(FutureWarning, match="min_cluster_size is deprecated"):
        model.set_params(min_cluster_size=4)
    assert model.min_class_size == 4
    with pytest.warns(FutureWarning, match="min_cluster_size is deprecated"):
        assert DISCA.from_preset("paper", min_cluster_size=2).min_class_size == 2
    with pytest.raises(TypeError, match="pass only min_class_size"), pytest.warns(FutureWarning):
        DISCA(min_cluster_size=5, min_class_size=3)
    with pytest.raises(TypeError, match="min_cluter_size"):
        DISCA(min_cluter_size=5)
    with pytest.warns(FutureWarning, match="n_clusters_ is deprecated; use n_classes_"):
        assert uninterrupted.n_clusters_ == uninterrupted.n_classes_
    # history entries carry the former key too, for one release
    assert all(e["n_clusters"] == e["n_classes"] for e in uninterrupted.history_)


def _rewrite_with_former_names(state: Path, min_cluster_size: int | None) -> None:
    """Rewrite a saved model's or checkpoint's state.json as written before the rename."""
    import json

    meta = json.loads(state.read_text())
    del meta["params"]["min_class_size"]
    meta["params"]["min_cluster_size"] = min_cluster_size
    if "n_classes" in meta:
        meta["n_clusters"] = meta.pop("n_classes")
    for entry in meta["history"]:
        del entry["n_classes"]
    state.write_text(json.dumps(meta))


def test_a_model_saved_with_the_former_names_loads(uninterrupted: DISCA, tmp_path: Path) -> None:
    uninterrupted.save(tmp_path / "model")
    _rewrite_with_former_names(tmp_path / "model" / "state.json", 7)
    loaded = DISCA.load(tmp_path / "model")
    assert loaded.min_class_size == 7  # not the legacy default (the paper's 1)
    assert loaded.get_params() == {**uninterrupted.get_params(), "min_class_size": 7}
    assert loaded.n_classes_ == uninterrupted.n_classes_
    assert [e["n_classes"] for e in loaded.history_] == [
        e["n_classes"] for e in uninterrupted.history_
    ]


def test_a_checkpoint_written_with_the_former_names_resumes(
    tiny_set: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    volumes, _ = tiny_set
    settings = {**SEEDED, "min_class_size": 2}
    DISCA(**settings, max_iter=1).fit(volumes, checkpoint_dir=tmp_path)
    _rewrite_with_former_names(tmp_path / "latest" / "state.json", 2)
    resumed = DISCA(**settings, max_iter=2).fit(volumes, checkpoint_dir=tmp_path, resume=True)
    assert [e["iteration"] for e in resumed.history_] == [0, 1]
    assert all(isinstance(e["n_classes"], int) for e in resumed.history_)
    with pytest.raises(InputError, match="different settings"):
        DISCA(**{**settings, "min_class_size": 3}, max_iter=2).fit(
            volumes, checkpoint_dir=tmp_path, resume=True
        )
