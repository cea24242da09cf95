"""The whole workflow on a small simulated tomogram: pick → extract → sort → average → place → report."""

import json

import numpy as np
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.io import read_mrc, read_particles
from cryomine.simulate import write_simulated_tomogram

runner = CliRunner()


def test_pipeline_end_to_end_with_picking_scored_and_resume(tmp_path):
    tomo_dir = tmp_path / "tomo"
    write_simulated_tomogram(
        tomo_dir, ["4v4r", "3j9i"], shape_zyx=(48, 128, 128), voxel_size_a=12.0, n_particles=14,
        snr=0.5, tilt_range_deg=(-60.0, 60.0), seed=3,
    )  # fmt: skip
    out = tmp_path / "out"
    args = [
        "pipeline", str(tomo_dir / "tomogram.mrc"), "--particle-diameter", "200", "--max-picks", "20",
        "--box", "24", "--k-range", "2", "3", "--max-iter", "1", "--width", "0.125",
        "--average-iterations", "1", "--device", "cpu", "-o", str(out),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for path in ("picks/tomogram.star", "particles/all/particles.star", "sort/particles.star",
                 "averages/summary.json", "annotation/tomogram.mrc", "annotation/tomogram_labels.mrc",
                 "report.html"):  # fmt: skip
        assert (out / path).exists(), path

    # Picking recall floor against the truth (8 nm, the DISCA paper's criterion).
    scored = runner.invoke(app, ["evaluate", "picking", "--truth", str(tomo_dir / "truth.star"),
                                 "--pred", str(out / "picks/tomogram.star"), "--radius", "80",
                                 "-o", str(tmp_path / "picking.json")])  # fmt: skip
    assert scored.exit_code == 0, scored.output
    picking = json.loads((tmp_path / "picking.json").read_text())
    assert picking["per_class"]["4v4r"]["recall"] >= 0.85
    assert picking["overall"]["f1"] >= 0.75

    # End-to-end scores: per-structure F1 after sorting and FSC of the averages against true maps.
    scored = runner.invoke(app, ["evaluate", "pipeline", "--truth", str(tomo_dir / "truth.star"),
                                 "--sorted", str(out / "sort/particles.star"), "--averages", str(out / "averages"),
                                 "-o", str(tmp_path / "pipeline.json")])  # fmt: skip
    assert scored.exit_code == 0, scored.output
    end_to_end = json.loads((tmp_path / "pipeline.json").read_text())
    assert set(end_to_end["per_structure"]) == {"4v4r", "3j9i"}
    assert set(end_to_end["class_to_structure"].values()) <= {"4v4r", "3j9i", "(no particle)"}
    assert all(0.0 <= row["f1"] <= 1.0 for row in end_to_end["per_structure"].values())
    assert end_to_end["class_average_fsc"], "no class average was scored against its true map"

    # The annotation has the tomogram's shape and labels only where particles were sorted.
    labels, _ = read_mrc(out / "annotation/tomogram_labels.mrc", mmap=False)
    tomogram, _ = read_mrc(tomo_dir / "tomogram.mrc", mmap=False)
    assert labels.shape == tomogram.shape
    classes = set(read_particles(out / "sort/particles.star")["rlnClassNumber"])
    assert set(np.unique(labels)) - {0} <= classes

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (
        again.output.count("already done, skipped") == 6
    )  # pick, extract, sort, average, place, report
