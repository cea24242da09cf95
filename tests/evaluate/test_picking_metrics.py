import numpy as np
import pandas as pd
import pytest

from cryomine.errors import InputError
from cryomine.evaluate._picking import evaluate_picking, match_positions
from cryomine.io import new_particle_table


def test_matching_is_one_to_one_and_closest_first():
    truth = np.array([[0.0, 0, 0], [0, 0, 10]])
    picks = np.array([[0.0, 0, 1], [0, 0, 0.5], [0, 0, 30]])
    match = match_positions(truth, picks, radius=3)
    # pick 1 is closer to truth 0 than pick 0 is; pick 0 then has nothing left within 3
    np.testing.assert_array_equal(match, [-1, 0, -1])


def test_scores_overall_and_per_class_across_tomograms():
    truth_a = new_particle_table(
        np.array([[10.0, 10, 10], [40, 40, 40]]), tomo_name="a", pixel_size_a=10.0
    )
    truth_b = new_particle_table(np.array([[10.0, 10, 10]]), tomo_name="b", pixel_size_a=10.0)
    truth = pd.concat([truth_a, truth_b], ignore_index=True)
    truth["cmStructure"] = ["ribosome", "proteasome", "ribosome"]
    # in tomogram a: one hit (5 Å off) and one miss; tomogram b's particle is picked in a (no hit)
    picks = new_particle_table(
        np.array([[10.0, 10, 10.5], [25, 25, 25], [10, 10, 10]]), tomo_name="a", pixel_size_a=10.0
    )
    picks.loc[2, "rlnTomoName"] = "c"
    scores = evaluate_picking(truth, picks, radius_a=80.0)
    overall = scores["overall"]
    assert (overall["n_true"], overall["n_picked"], overall["n_hits"]) == (3, 3, 1)
    assert overall["precision"] == pytest.approx(1 / 3)
    assert overall["recall"] == pytest.approx(1 / 3)
    assert overall["f1"] == pytest.approx(1 / 3)
    assert scores["per_class"]["ribosome"]["recall"] == pytest.approx(0.5)
    assert scores["per_class"]["proteasome"]["recall"] == 0.0


def test_radius_must_be_positive():
    table = new_particle_table(np.zeros((1, 3)), tomo_name="a", pixel_size_a=10.0)
    with pytest.raises(InputError, match="radius"):
        evaluate_picking(table, table, radius_a=0)
