import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.evaluate import evaluate_pipeline
from cryomine.io import new_particle_table


def test_classes_map_to_majority_structures_and_f1_per_structure():
    truth = new_particle_table(np.array([[10.0, 10, 10], [10, 10, 40], [10, 40, 10], [10, 40, 40]]),
                               tomo_name="t", pixel_size_a=10.0)  # fmt: skip
    truth["cmStructure"] = ["ribo", "ribo", "prot", "prot"]
    # picks near all four, plus one false pick; class 1 = two ribosomes + one proteasome, class 2 = the rest
    picks = new_particle_table(np.array([[10.0, 10, 11], [10, 10, 41], [10, 40, 11], [10, 41, 40], [30, 30, 30]]),
                               tomo_name="t", pixel_size_a=10.0)  # fmt: skip
    picks["rlnClassNumber"] = [1, 1, 1, 2, 2]
    result = evaluate_pipeline(truth, picks, radius_a=30.0)
    assert result["class_to_structure"] == {"1": "ribo", "2": "prot"}
    ribo, prot = result["per_structure"]["ribo"], result["per_structure"]["prot"]
    assert (ribo["n_predicted"], ribo["n_hits"], ribo["recall"]) == (3, 2, 1.0)
    assert ribo["precision"] == pytest.approx(2 / 3)
    assert (prot["n_predicted"], prot["n_hits"]) == (2, 1)
    assert prot["precision"] == pytest.approx(0.5) and prot["recall"] == pytest.approx(0.5)
    assert prot["f1"] == pytest.approx(0.5)


def test_needs_classes_and_structures():
    table = new_particle_table(np.zeros((1, 3)), tomo_name="t", pixel_size_a=10.0)
    with pytest.raises(InputError, match="cmStructure"):
        evaluate_pipeline(table, table, radius_a=30.0)
