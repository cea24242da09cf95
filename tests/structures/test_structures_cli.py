"""``cryomine structures``: list, describe, write."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import read_mrc
from cryomine.structures import list_structures, structure_density, structure_path

runner = CliRunner()


def test_lists_every_builtin_with_mass_and_diameter() -> None:
    result = runner.invoke(app, ["structures"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["name", "mass", "kDa"]
    for info in list_structures():
        row = next(line for line in lines if line.split()[0] == info.name)
        assert float(row.split()[1]) == pytest.approx(info.mass_kda, abs=0.05)
        assert float(row.split()[2]) == pytest.approx(info.diameter_a, abs=0.5)
        assert info.kind in row


def test_describes_one_structure() -> None:
    result = runner.invoke(app, ["structures", "TRiC"])
    assert result.exit_code == 0, result.output
    assert (
        "4v94" in result.output and "Apache-2.0" in result.output and "provenance" in result.output
    )


def test_writes_a_map_with_run_record(tmp_path) -> None:
    out = tmp_path / "maps" / "rubisco.mrc"
    result = runner.invoke(
        app, ["structures", "1bxn", "--voxel-size", "12", "--box", "24", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data, voxel = read_mrc(out)
    assert voxel == pytest.approx(12.0)
    np.testing.assert_allclose(
        data, structure_density("1bxn", voxel_size_a=12.0, box_size=24), atol=1e-7
    )
    record = json.loads((tmp_path / "maps" / "rubisco.mrc.run.json").read_text())
    assert record["command"] == "structures" and record["results"]["shape_zyx"] == [24, 24, 24]
    # No silent overwrite.
    again = runner.invoke(app, ["structures", "1bxn", "--voxel-size", "12", "-o", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_writes_from_a_file_path_and_warns_on_a_small_box(tmp_path) -> None:
    out = tmp_path / "ribosome.mrc.gz"
    result = runner.invoke(
        app,
        [
            "structures",
            str(structure_path("4v4r")),
            "--voxel-size",
            "20",
            "--box",
            "8",
            "--mass",
            "1899",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "cut off" in result.output
    data, _ = read_mrc(out)
    assert data.shape == (8, 8, 8)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["structures", "nosuchthing"], "unknown structure"),
        (["structures", "1bxn", "-o", "x.mrc"], "--voxel-size"),
        (["structures", "1bxn", "--voxel-size", "-3", "-o", "x.mrc"], "voxel size"),
        (["structures", "-o", "x.mrc"], "NAME"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "x.mrc").exists()
