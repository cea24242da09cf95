"""``cryomine simulate subtomograms|tomogram`` in-process, with built-in structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import COLUMNS, ParticleSet, positions_zyx, read_particles


def test_simulate_subtomograms_cli(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = CliRunner().invoke(
        app,
        [
            "-q",
            "simulate",
            "subtomograms",
            "-s",
            "3j9i",
            "-s",
            "4v94",
            "--per-class",
            "3",
            "--snr",
            "0.05",
            "--tilt-range",
            "40",
            "--box",
            "24",
            "--voxel-size",
            "13",
            "--seed",
            "4",
            "--device",
            "cpu",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    particles = ParticleSet.open(out)
    assert sorted(particles.table[COLUMNS.structure]) == ["3j9i"] * 3 + ["4v94"] * 3
    assert (out / "references" / "4v94.mrc").is_file()
    assert '"tilt_range_deg": [\n      -40.0,\n      40.0\n    ]' in (out / "run.json").read_text()


def test_simulate_tomogram_cli(tmp_path: Path) -> None:
    out = tmp_path / "tomo"
    result = CliRunner().invoke(
        app,
        [
            "-q",
            "simulate",
            "tomogram",
            "-s",
            "3j9i",
            "--shape",
            "16",
            "48",
            "48",
            "--voxel-size",
            "20",
            "--particles",
            "3",
            "--gold",
            "1",
            "--snr",
            "1",
            "--tilt-range",
            "60",
            "--seed",
            "1",
            "--device",
            "cpu",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = read_particles(out / "truth.star")
    assert len(table) == 3 and set(table[COLUMNS.structure]) == {"3j9i"}
    assert np.all(positions_zyx(table) < np.array([16, 48, 48]))


def test_bad_options_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for extra in (["--tilt-range", "100"], ["--defocus", "-5"], ["--snr", "0"]):
        result = runner.invoke(
            app,
            [
                "simulate",
                "subtomograms",
                "-s",
                "3j9i",
                "--per-class",
                "1",
                "-o",
                str(tmp_path / "x"),
                *extra,
            ],
        )
        assert result.exit_code == 2, (extra, result.output)
        assert "error:" in result.output
        assert not (tmp_path / "x").exists()
