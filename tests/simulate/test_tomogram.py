"""Crowded tomograms: truth positions, labels, non-overlap, contrast, distractors, writing."""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.io import COLUMNS, positions_zyx, read_particles, rotations_from_table
from cryomine.simulate import simulate_tomogram, write_simulated_tomogram

SHAPE = (24, 80, 80)


@pytest.fixture(scope="module")
def tomogram(small_structures):  # type: ignore[no-untyped-def]
    return simulate_tomogram(
        small_structures,
        shape_zyx=SHAPE,
        voxel_size_a=10.0,
        n_particles=10,
        n_membranes=1,
        n_gold=2,
        snr=0.5,
        seed=3,
    )


def test_truth_positions_hold_density_and_labels(tomogram) -> None:  # type: ignore[no-untyped-def]
    table = tomogram.table
    assert len(table) == 10
    assert set(table[COLUMNS.structure]) == {"alpha", "beta"}
    centres = positions_zyx(table)
    index = tuple(np.rint(centres).astype(int).T)
    background = np.median(tomogram.clean)
    assert np.all(tomogram.clean[index] > background + 0.3 * tomogram.clean[index].max())
    np.testing.assert_array_equal(tomogram.labels[index], table[COLUMNS.true_class].to_numpy())
    assert np.all(table[COLUMNS.class_number] == table[COLUMNS.true_class])


def test_particles_do_not_overlap_and_lie_inside(tomogram) -> None:  # type: ignore[no-untyped-def]
    centres = positions_zyx(tomogram.table)
    radii = np.array(
        [tomogram.parameters["bounding_radii_px"][s] for s in tomogram.table[COLUMNS.structure]]
    )
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert np.all(distances >= radii[:, None] + radii[None])
    assert np.all(centres - radii[:, None] >= 0)
    assert np.all(centres + radii[:, None] <= np.array(SHAPE) - 1)


def test_labels_of_each_class_match_the_particles(tomogram) -> None:  # type: ignore[no-untyped-def]
    labels = tomogram.labels
    assert labels.dtype == np.int16 and labels.shape == SHAPE
    assert tomogram.label_names == {1: "alpha", 2: "beta", 3: "membrane", 4: "gold"}
    counts = np.bincount(labels.ravel(), minlength=5)
    assert np.all(counts[1:] > 0)
    assert tomogram.clean[labels == 4].mean() > tomogram.clean[labels == 1].mean()  # gold is dense


def test_protein_is_dark_in_the_tomogram(tomogram) -> None:  # type: ignore[no-untyped-def]
    assert np.corrcoef(tomogram.tomogram.ravel(), tomogram.clean.ravel())[0, 1] < -0.2
    assert tomogram.tomogram.mean() == pytest.approx(0.0, abs=1e-4)
    assert tomogram.tomogram.std() == pytest.approx(1.0, abs=1e-3)


def test_deterministic(small_structures, tomogram) -> None:  # type: ignore[no-untyped-def]
    again = simulate_tomogram(
        small_structures,
        shape_zyx=SHAPE,
        voxel_size_a=10.0,
        n_particles=10,
        n_membranes=1,
        n_gold=2,
        snr=0.5,
        seed=3,
    )
    np.testing.assert_array_equal(again.tomogram, tomogram.tomogram)
    np.testing.assert_array_equal(again.labels, tomogram.labels)


def test_crowding_beyond_capacity_is_refused(small_structures) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="without overlap"):
        simulate_tomogram(
            small_structures, shape_zyx=(16, 24, 24), n_particles=40, snr=1.0, mode="fourier"
        )


def test_write_tomogram(tmp_path: Path, small_structures) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "tomo"
    write_simulated_tomogram(
        out,
        small_structures,
        shape_zyx=(16, 40, 40),
        n_particles=4,
        snr=1.0,
        mode="fourier",
        seed=1,
        write_clean=True,
    )
    for name in (
        "tomogram.mrc",
        "labels.mrc",
        "labels.json",
        "truth.star",
        "clean.mrc",
        "run.json",
    ):
        assert (out / name).is_file()
    with mrcfile.open(out / "labels.mrc") as handle:
        assert handle.data.dtype == np.int16
        assert float(handle.voxel_size.x) == pytest.approx(10.0)
        labels = np.asarray(handle.data)
    table = read_particles(out / "truth.star")
    index = tuple(np.rint(positions_zyx(table)).astype(int).T)
    np.testing.assert_array_equal(labels[index], table[COLUMNS.true_class].to_numpy())
    assert len(rotations_from_table(table)) == 4
    assert json.loads((out / "labels.json").read_text())["1"] == "alpha"
    assert json.loads((out / "run.json").read_text())["results"]["n_particles"] == 4
