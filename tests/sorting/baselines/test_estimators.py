"""The baselines are scikit-learn estimators, driven the way DISCA is."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from cryomine.errors import InputError
from cryomine.sorting.baselines import (
    AutoencoderClustering,
    ScaleMixture,
    TemplateMatchingClassifier,
    autoencoder_cluster,
    template_matching_classify,
)

FAST_TM = {"angular_step_deg": 60.0, "refine_to_deg": 30.0, "max_shift_px": 2.0, "device": "cpu"}
FAST_AE = {"k_range": (2, 4), "epochs": 2, "batch_size": 4, "pca_components": 4, "device": "cpu"}


@pytest.mark.parametrize(
    "make",
    [
        lambda refs: TemplateMatchingClassifier(refs, **FAST_TM),
        lambda refs: AutoencoderClustering(random_state=1, **FAST_AE),
        lambda refs: ScaleMixture(k_range=(1, 3), random_state=1),
    ],
    ids=["template-matching", "autoencoder", "scale"],
)
def test_constructor_stores_and_clone_copies_the_parameters(baseline_set, make) -> None:
    model = make(baseline_set.references_ctf)
    params = model.get_params()
    copy = clone(model)
    assert copy is not model
    assert set(copy.get_params()) == set(params)
    assert not hasattr(copy, "labels_")  # the constructor only stores
    assert copy.set_params(**{name: params[name] for name in list(params)[:1]}) is copy
    fitted = model.fit(baseline_set.volumes)
    assert fitted is model
    assert model.labels_.shape == (len(baseline_set.truth),)
    assert model.labels_.dtype == np.int64
    assert model.n_classes_ == np.unique(model.labels_).size


def test_template_matching_estimator_is_the_function(baseline_set) -> None:
    model = TemplateMatchingClassifier(baseline_set.references_ctf, **FAST_TM)
    model.fit(baseline_set.volumes)
    result = template_matching_classify(
        baseline_set.volumes, baseline_set.references_ctf, **FAST_TM
    )
    np.testing.assert_array_equal(model.labels_, baseline_set.truth)
    np.testing.assert_array_equal(model.labels_, result.labels)
    np.testing.assert_allclose(model.scores_, result.scores)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.reference_names_ == list(baseline_set.references_ctf)
    assert model.result_.n_rotations_scored == 69 + 2 * 33 + 19  # alignments were made
    np.testing.assert_array_equal(model.predict(baseline_set.volumes[::-1]), model.labels_[::-1])
    assert model.score(baseline_set.volumes, baseline_set.truth) == 1.0
    with pytest.raises(InputError, match="angular step"):
        TemplateMatchingClassifier(baseline_set.references_ctf, angular_step_deg=0.0).fit(
            baseline_set.volumes
        )


def test_autoencoder_estimator_is_the_function_and_predicts_its_training_labels(
    baseline_set,
) -> None:
    model = AutoencoderClustering(random_state=0, **FAST_AE).fit(baseline_set.volumes)
    result = autoencoder_cluster(baseline_set.volumes, random_state=0, **FAST_AE)
    np.testing.assert_array_equal(model.codes_, result.codes)
    np.testing.assert_array_equal(model.labels_, result.labels)
    assert model.n_classes_ == result.n_classes
    assert len(model.result_.losses) == 2  # the mechanism ran: two training epochs
    assert set(model.bic_) == {2, 3, 4}
    np.testing.assert_allclose(model.transform(baseline_set.volumes), model.codes_, atol=1e-5)
    np.testing.assert_array_equal(model.predict(baseline_set.volumes), model.labels_)
    with pytest.raises(InputError, match="call fit"):
        AutoencoderClustering().predict(baseline_set.volumes)
