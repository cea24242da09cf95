"""Fixtures for the report tests: a small but valid sort run directory built without DISCA.

The run directory has exactly the files ``cryomine sort`` writes (particles.star through the
sort verb's own writer, features.npy, history.json with the keys DISCA records, run.json through
``recording_run``), the particle set it names, an averages directory in ``cryomine average``'s
layout and a tomogram with a label map in ``cryomine place``'s layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest

BOX = 16
N_PER_CLASS = 10
STRUCTURES = ("sphere", "rod", "dumbbell")
TOMO_SHAPE = (20, 48, 64)


@dataclass(frozen=True)
class FakeRun:
    """Paths of the fixture: run directory, particle set, averages, tomogram and label map."""

    run_dir: Path
    particles_dir: Path
    averages_dir: Path
    tomogram: Path
    annotation: Path
    labels: Path
    n_particles: int


def _shapes() -> list[np.ndarray]:
    z, y, x = np.mgrid[:BOX, :BOX, :BOX] - BOX // 2
    sphere = (z**2 + y**2 + x**2 <= 16).astype(np.float32)
    rod = ((z**2 + y**2 <= 4) & (np.abs(x) <= 6)).astype(np.float32)
    dumbbell = ((z**2 + y**2 + (x - 4) ** 2) <= 6) | ((z**2 + y**2 + (x + 4) ** 2) <= 6)
    return [sphere, rod, dumbbell.astype(np.float32)]


def _history(n_iterations: int) -> list[dict]:
    """Entries with every key ``DISCA.fit`` writes (see cryomine.sorting._disca)."""
    entries = []
    for t in range(n_iterations):
        bic = {str(k): 1000.0 - 50 * t - 40 * min(k, 3) + 25 * max(0, k - 3) for k in range(2, 6)}
        entries.append({
            "iteration": t, "candidate_bic": bic, "n_classes": 3, "n_clusters": 3, "warm_bic": bic["3"],
            "fresh_bic": bic["3"] + 1.0, "warm_used": t > 0, "ddbi": 1.0 / (t + 1),
            "label_change": None if t == 0 else 0.1 / t, "best_iteration": t,
            "timings_s": {"features": 0.5, "mixture": 0.1, "train": 2.0},
            "alpha": 0.2 * 0.9 ** (t + 1), "learning_rate": 1e-5 * 0.95 ** (t + 1),
            "head_loss": 0.5 if t == 0 else None, "loss": 1.0 / (t + 2),
        })  # fmt: skip
    return entries


def make_fake_run(root: Path, *, with_truth: bool = True, seed: int = 0) -> FakeRun:
    """Write the whole fixture under ``root`` (see the module docstring)."""
    from cryomine._runrecord import recording_run
    from cryomine.io import (
        new_particle_table,
        write_mrc,
        write_particle_set,
        write_sorted_particles,
    )

    rng = np.random.default_rng(seed)
    shapes = _shapes()
    truth = np.repeat(np.arange(3), N_PER_CLASS)
    n = len(truth)
    volumes = np.stack([shapes[c] + 0.3 * rng.standard_normal(shapes[c].shape) for c in truth])
    grid_y, grid_x = np.meshgrid(np.linspace(8, TOMO_SHAPE[1] - 8, 5),
                                 np.linspace(8, TOMO_SHAPE[2] - 8, 6), indexing="ij")  # fmt: skip
    order = rng.permutation(n)  # a grid 8 voxels apart, so the label spheres never overlap
    centres_10a = np.column_stack([  # z, y, x in the 10 Å voxels of the tomogram
        rng.uniform(8, 12, n), grid_y.ravel()[order] + rng.uniform(-1, 1, n),
        grid_x.ravel()[order] + rng.uniform(-1, 1, n),
    ])  # fmt: skip
    positions = 2 * centres_10a  # the table's coordinates are in 5 Å pixels
    table = new_particle_table(positions, tomo_name="tomoA", pixel_size_a=5.0)
    if with_truth:
        table["cmStructure"] = [STRUCTURES[c] for c in truth]
        table["cmTrueClass"] = truth + 1
    particles_dir = root / "particles"
    write_particle_set(particles_dir, table, volumes, voxel_size_a=10.0)

    predicted = (truth + 1) % 3  # class numbers permuted relative to the truth...
    predicted[[0, 11]] = predicted[[11, 0]]  # ...and two particles swapped
    probabilities = np.full((n, 3), 0.05)
    probabilities[np.arange(n), predicted] = 0.9
    run_dir = root / "run"
    run_dir.mkdir()
    with recording_run(run_dir, "sort", {"particles_dir": str(particles_dir), "max_iter": 4,
                                         "k_range": [2, 5]}, seed=0,
                       inputs=[particles_dir]) as record:  # fmt: skip
        write_sorted_particles(run_dir / "particles.star", table, predicted, probabilities)
        centres = rng.standard_normal((3, 64)) * 4
        features = (centres[predicted] + rng.standard_normal((n, 64))).astype(np.float32)
        np.save(run_dir / "features.npy", features)
        (run_dir / "history.json").write_text(json.dumps(_history(4), indent=1) + "\n")
        record.results.update({"n_particles": n, "n_classes": 3})

    averages_dir = root / "averages"
    averages_dir.mkdir()
    summary = {"voxel_size_a": 10.0, "classes": []}
    for k in (1, 2, 3):
        members = predicted == k - 1
        write_mrc(averages_dir / f"class_{k:03d}.mrc", volumes[members].mean(axis=0), 10.0)
        freqs = np.arange(1, BOX // 2 + 1) / (BOX * 10.0)
        fsc = np.exp(-((freqs * 60) ** 2))
        lines = ["frequency_per_a,resolution_a,fsc"] + [
            f"{f:.6g},{1 / f:.6g},{c:.6g}" for f, c in zip(freqs, fsc, strict=True)
        ]
        (averages_dir / f"fsc_class_{k:03d}.csv").write_text("\n".join(lines) + "\n")
        resolution = None if k == 3 else 40.0
        summary["classes"].append(
            {"class": k, "n_particles": int(members.sum()), "resolution_a": resolution}
        )
    (averages_dir / "summary.json").write_text(json.dumps(summary))

    tomogram = root / "tomoA.mrc"
    write_mrc(tomogram, rng.standard_normal(TOMO_SHAPE).astype(np.float32), 10.0)
    labels = np.zeros(TOMO_SHAPE, dtype=np.int16)
    zz, yy, xx = np.mgrid[: TOMO_SHAPE[0], : TOMO_SHAPE[1], : TOMO_SHAPE[2]]
    for centre, k in zip(centres_10a, predicted + 1, strict=True):
        inside = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= 9
        labels[inside] = k
    annotation = root / "annotation.mrc"
    write_mrc(annotation, labels.astype(np.float32), 10.0)
    labels_path = root / "annotation_labels.mrc"
    with mrcfile.new(labels_path) as handle:  # int16, as cryomine place writes its label map
        handle.set_data(labels)
        handle.voxel_size = 10.0
    return FakeRun(run_dir, particles_dir, averages_dir, tomogram, annotation, labels_path, n)


@pytest.fixture(scope="session")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> FakeRun:
    """A run with truth columns, averages, tomogram and label map."""
    return make_fake_run(tmp_path_factory.mktemp("report_run"))


@pytest.fixture(scope="session")
def fake_run_no_truth(tmp_path_factory: pytest.TempPathFactory) -> FakeRun:
    """The same run without truth columns."""
    return make_fake_run(tmp_path_factory.mktemp("report_run_nt"), with_truth=False, seed=1)


@pytest.fixture(scope="session")
def rendered_report(fake_run: FakeRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full report of ``fake_run`` (averages, tomogram, label map), written once."""
    from cryomine.report import write_report

    return write_report(
        tmp_path_factory.mktemp("rendered") / "report.html", fake_run.run_dir,
        averages_dir=fake_run.averages_dir, tomogram=fake_run.tomogram,
        annotation=fake_run.annotation,
    )  # fmt: skip
