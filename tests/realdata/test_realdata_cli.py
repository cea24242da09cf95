"""``cryomine import warp`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import ParticleSet


def test_import_warp_writes_a_particle_set(tmp_path: Path, synthetic) -> None:
    out = tmp_path / "imported"
    result = CliRunner().invoke(
        app,
        [
            "-q",
            "import",
            "warp",
            str(synthetic.particles_star),
            "--tomograms",
            str(synthetic.tomograms_star),
            "-o",
            str(out),
            "--box",
            "20",
            "--flip-hand",
        ],
    )
    assert result.exit_code == 0, result.output
    particles = ParticleSet.open(out)
    table = particles.table
    assert len(particles) == 3 and particles.box_size == 20 and particles.voxel_size_a == 12.0
    subtomograms = particles.read(np.arange(3))
    assert subtomograms.shape == (3, 20, 20, 20) and np.all(np.isfinite(subtomograms))
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == "import warp"
    assert record["parameters"]["flip_hand"] is True and record["parameters"]["box_size"] == 20
    assert record["results"]["n_particles"] == 3
    # the tilt angle is kept, rot and psi turn by 180° for the mirrored hand
    np.testing.assert_allclose(
        np.cos(np.radians(table["rlnAngleRot"] - synthetic.angles_deg[:, 0])), -1.0
    )
    np.testing.assert_allclose(table["rlnAngleTilt"], synthetic.angles_deg[:, 1])


def test_import_warp_bad_input_exits_2(tmp_path: Path, synthetic) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["import", "warp", str(synthetic.particles_star), "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert "tomograms STAR must be given" in result.output
    result = runner.invoke(
        app,
        [
            "import",
            "warp",
            str(synthetic.particles_star),
            "-t",
            str(synthetic.tomograms_star),
            "-o",
            str(tmp_path / "y"),
            "--ctf",
            "sideways",
        ],
    )
    assert result.exit_code == 2 and "ctf correction" in result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
