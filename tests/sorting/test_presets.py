"""DISCA's presets, the scikit-learn contract, and the record of what each M-step did."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from cryomine.sorting import DISCA
from cryomine.sorting._disca import PRESETS


def test_paper_preset_is_the_specification() -> None:
    model = DISCA.from_preset("paper")
    assert model.lowpass_a is None  # no input filter
    assert tuple(model.covariance_types) == ("full",)
    assert model.min_class_size == 1  # no smallest-class rule
    assert model.learning_rate == 1e-5 and model.min_steps == 0 and model.min_iter == 0
    assert model.tol == 1e-3 and model.pca_components == 16 and model.batch_size == 64
    assert model.feature_rotations == 1 and model.zscore is True
    assert model.batchnorm_recalibration is False and model.n_init == 1
    assert model.ddbi_across_k is True  # the lowest DDBI of the whole run is the answer
    assert model.split_classes is False  # BIC's choice stands
    assert model.width == 1.0 and model.pretrained is None  # the paper's network, from scratch
    assert DISCA.from_preset("paper", width=0.5).width == 0.5
    with pytest.raises(Exception, match="preset"):
        DISCA.from_preset("nonsense")
    assert set(PRESETS) == {"cryomine", "paper"}
    defaults = DISCA().get_params()
    assert all(defaults[name] == value for name, value in PRESETS["cryomine"].items())
    assert defaults["pretrained"] == "builtin" and defaults["width"] == 0.25


@pytest.mark.parametrize(("across_k", "answer"), [(True, 1), (False, 3)])
def test_the_answer_is_the_lowest_ddbi_of_the_run_or_since_k_last_changed(
    across_k: bool, answer: int
) -> None:
    # the DDBI and K of each iteration of the 3 x 60, SNR 0.01, seed 1 validation cell: the
    # K = 2 iteration's DDBI is lowest although the loop settled at K = 3
    from cryomine.sorting._state import BestFit

    model = DISCA(ddbi_across_k=across_k)
    best = BestFit()
    for iteration, (score, k) in enumerate([(0.369, 3), (0.057, 2), (0.308, 3), (0.257, 3)]):
        if model._replaces_best(best, score, k):
            best = BestFit(ddbi=score, iteration=iteration, labels=np.arange(60) % k)
    assert best.iteration == answer


def test_clone_and_params_round_trip() -> None:
    model = DISCA(width=0.25, covariance_types=("full", "diag"), n_init=2, random_state=3)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.set_params(n_init=5).n_init == 5
    assert model.json_params()["covariance_types"] == ["full", "diag"]


def test_history_records_training_and_warns_at_max_iter(
    tiny_set: tuple[np.ndarray, np.ndarray],
) -> None:
    volumes, _ = tiny_set
    model = DISCA(
        width=0.125, pretrained=None, k_range=(2, 4), max_iter=2, pca_components=4, batch_size=8, min_steps=4,
        covariance_types=("full", "diag"), n_init=2, device="cpu", random_state=0,
        learning_rate=1e-3, min_iter=3,  # may not stop before iteration 3: it warns
        min_class_size=3,  # classes of 8 may be split-tested (halves of >= 3)
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        model.fit(volumes)
    first = model.history_[0]
    assert first["steps"] >= 4 and first["epochs"] >= 1
    assert first["weight_change"] > 0  # the network moved
    kinds = {(c["covariance"], c["start"]) for c in first["candidates"]}
    assert kinds == {("full", "fresh"), ("diag", "fresh")}
    assert len(first["candidates"]) == 2 * 2 * 3  # 2 covariances x 2 starts x K 2..4
    assert model.history_[1]["covariance_type"] in {"full", "diag"}
    tested = first["split_tests"]
    assert tested and {"bic_gain", "icl_gain", "split"} <= set(tested[0])
    assert first["splits"] == sum(t["split"] for t in first["split_tests"])
    assert not model.converged_
