import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import COLUMNS, new_particle_table, read_mrc, write_mrc, write_particles

runner = CliRunner()


@pytest.fixture()
def average_dir(tmp_path, two_blob_average):
    """A sort run directory and an average directory: class 1 (2 particles in TS_01, 1 in TS_02)
    and class 2 (1 particle in TS_01); averages at 20 Å, tomogram coordinates at 10 Å."""
    positions = np.array(
        [[20.0, 20.0, 20.0], [30.0, 50.0, 40.0], [40.0, 55.0, 10.0], [30.0, 25.0, 60.0]]
    )
    table = new_particle_table(
        positions,
        tomo_name=["TS_01", "TS_01", "TS_02", "TS_01"],
        pixel_size_a=10.0,
        rotations=Rotation.random(4, random_state=1),
    )
    table[COLUMNS.class_number] = [1, 1, 1, 2]
    run = tmp_path / "run"
    run.mkdir()
    write_particles(run / "particles.star", table)
    averages = tmp_path / "averages"
    averages.mkdir()
    write_particles(averages / "particles.star", table)
    write_mrc(averages / "class_001.mrc", two_blob_average, 20.0)
    write_mrc(averages / "class_002.mrc", 0.8 * two_blob_average, 20.0)
    write_mrc(tmp_path / "rec_TS_01.mrc", np.zeros((48, 64, 80), dtype=np.float32), 10.0)
    return tmp_path, positions


def test_place_writes_density_and_labels_for_the_tomogram_only(average_dir):
    root, positions = average_dir
    result = runner.invoke(
        app,
        [
            "place",
            str(root / "run"),
            str(root / "averages"),
            "--tomogram",
            str(root / "rec_TS_01.mrc"),
            "-o",
            str(root / "annotation.mrc"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "placed 3 particles" in result.output
    density, voxel = read_mrc(root / "annotation.mrc")
    labels, label_voxel = read_mrc(root / "annotation_labels.mrc")
    assert density.shape == labels.shape == (48, 64, 80) and voxel == label_voxel == pytest.approx(
        10.0
    )
    assert density.dtype == np.float32 and labels.dtype == np.int16
    assert set(np.unique(labels)) == {0, 1, 2}
    z, y, x = positions[2].astype(int)  # the TS_02 particle is not placed
    assert np.abs(density[z - 3 : z + 4, y - 3 : y + 4, x - 3 : x + 4]).max() < 1e-6
    for (z, y, x), k in zip(positions[[0, 1, 3]].astype(int), [1, 1, 2], strict=True):
        assert np.any(labels[z - 10 : z + 11, y - 10 : y + 11, x - 10 : x + 11] == k)
    assert json.loads((root / "annotation_run.json").read_text())["results"]["n_placed"] == 3


def test_embed_alias_refuses_a_tomogram_without_particles(average_dir):
    """``embed`` (the deprecated former name of ``place``) still runs the same command."""
    root, _ = average_dir
    write_mrc(root / "TS_09.mrc", np.zeros((8, 8, 8), dtype=np.float32), 10.0)
    result = runner.invoke(
        app,
        [
            "embed",
            str(root / "run"),
            str(root / "averages"),
            "--tomogram",
            str(root / "TS_09.mrc"),
            "-o",
            str(root / "out.mrc"),
            "--labels",
            str(root / "lab.mrc"),
        ],
    )
    assert result.exit_code == 2
    assert "TS_09" in result.output
    assert not (root / "out.mrc").exists() and not (root / "lab.mrc").exists()
