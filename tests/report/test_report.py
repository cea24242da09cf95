"""The HTML report: structure, embedded images, truth-dependent parts, escaping, errors, CLI."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.report import (
    ISOSURFACE_AVAILABLE,
    build_report,
    embedding_2d,
    load_run,
    write_report,
)

FakeRun = Any  # tests/report/conftest.py: FakeRun (conftest modules are not imported)
N_PER_CLASS = 10

_IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def full_report(rendered_report: Path) -> str:
    return rendered_report.read_text(encoding="utf-8")


def _pngs(document: str) -> list[np.ndarray]:
    images = []
    for encoded in _IMG.findall(document):
        raw = base64.b64decode(encoded, validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        images.append(matplotlib.image.imread(io.BytesIO(raw), format="png"))
    return images


def test_report_has_every_part_and_only_decodable_embedded_pngs(full_report: str) -> None:
    assert full_report.count('class="class-card"') == 3
    for k in (1, 2, 3):
        assert f'id="class-{k}"' in full_report
    for anchor in ("run", "history", "embedding", "evaluation", "classes", "tomogram"):
        assert f'<section id="{anchor}"' in full_report
    assert 'class="metrics"' in full_report
    # every <img> is an embedded PNG that decodes to a non-blank picture
    n_img = full_report.count("<img ")
    images = _pngs(full_report)
    assert n_img == len(images) >= 1 + 1 + 1 + 3 * 4 + 1
    for image in images:
        assert image.ndim == 3 and min(image.shape[:2]) >= 40 and image.std() > 0.01
    # self-contained: no scripts, no network resources
    assert "<script" not in full_report.lower()
    assert not re.search(r'(src|href)="(https?:)?//', full_report)
    assert "(cryomine average)" in full_report and "FSC: " not in full_report  # titles are PNG


def test_report_states_class_sizes_metrics_and_resolutions(fake_run: FakeRun,
                                                           full_report: str) -> None:  # fmt: skip
    assert full_report.count(f"{N_PER_CLASS} particles (33.3 %)") == 3
    assert full_report.count("resolution 40.0 Å (FSC 0.143)") == 2
    assert full_report.count("not resolved (FSC below 0.143)") == 1
    # truth: 2 particles of 30 swapped between classes, so accuracy 28/30
    accuracy = re.search(r"<td>accuracy</td><td class=\"num\">([0-9.]+)</td>", full_report)
    assert accuracy is not None and float(accuracy.group(1)) == pytest.approx(28 / 30, abs=1e-3)
    assert "mostly dumbbell" in full_report and "mostly sphere" in full_report
    render = "isosurface at" if ISOSURFACE_AVAILABLE else "maximum-intensity projections ("
    assert full_report.lower().count(render) == 3
    assert "classes placed from annotation_labels.mrc" in full_report
    assert "30 of the run&#x27;s 30 particles" in full_report


def test_report_without_truth_or_averages_shows_unaligned_means(fake_run_no_truth: FakeRun) -> None:
    document = build_report(fake_run_no_truth.run_dir, max_points=20)
    assert document.count('class="class-card"') == 3
    assert 'class="metrics"' not in document and 'id="evaluation"' not in document
    assert document.count("unaligned") == 3
    assert "20 of 30 particles (random subsample)" in document
    assert "coloured by true structure" not in document  # alt texts only mention the map
    _pngs(document)


def test_report_of_a_bare_run_lists_what_is_missing(fake_run: FakeRun, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(fake_run.run_dir / "particles.star", run / "particles.star")
    document = build_report(run)
    assert 'id="notes"' in document
    for missing in ("run.json not found", "history.json not found", "features.npy not found",
                    "particle set of the run not found"):  # fmt: skip
        assert missing in document
    assert document.count('class="class-card"') == 3
    assert "<img " in document  # the confusion matrix (truth columns travel with the rows)


def test_text_from_files_is_escaped(fake_run: FakeRun, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(fake_run.run_dir, run)
    record = json.loads((run / "run.json").read_text())
    record["parameters"]["note"] = "<script>alert('x')</script> & <b>"
    (run / "run.json").write_text(json.dumps(record))
    document = build_report(run)
    assert "<script" not in document and "<b>" not in document
    assert "&lt;script&gt;" in document


def test_history_written_before_the_class_rename_still_reports(
    fake_run: FakeRun, tmp_path: Path
) -> None:
    from cryomine.report._figures import class_count, history_figure

    assert class_count({"n_classes": 4, "n_clusters": 4}) == 4
    assert class_count({"n_clusters": 3}) == 3 and class_count({}) is None
    run = tmp_path / "run"
    shutil.copytree(fake_run.run_dir, run)
    history = json.loads((run / "history.json").read_text())
    old = [{k: v for k, v in entry.items() if k != "n_classes"} for entry in history]
    (run / "history.json").write_text(json.dumps(old))
    assert history_figure(old)[:8] == b"\x89PNG\r\n\x1a\n"
    document = build_report(run)
    assert 'id="history"' in document and "history.json not found" not in document


def test_load_run_reads_classes_truth_and_averages(fake_run: FakeRun) -> None:
    data = load_run(fake_run.run_dir, averages_dir=fake_run.averages_dir)
    assert data.class_numbers == [1, 2, 3]
    assert data.particles is not None and data.voxel_size_a == 10.0
    assert data.truth_column == "cmStructure" and data.truth is not None
    assert data.features is not None and data.features.shape == (3 * N_PER_CLASS, 64)
    assert len(data.history) == 4
    assert data.averages[1].resolution_a == 40.0 and data.averages[3].resolution_a is None
    assert data.averages[1].fsc is not None and len(data.averages[1].fsc) == 8


def test_embedding_is_seeded_and_keeps_clusters_apart() -> None:
    rng = np.random.default_rng(3)
    truth = np.repeat(np.arange(3), 40)
    centres = rng.standard_normal((3, 50)) * 3
    features = centres[truth] + rng.standard_normal((120, 50))
    first = embedding_2d(features, seed=0)
    assert first.shape == (120, 2)
    np.testing.assert_array_equal(first, embedding_2d(features, seed=0))
    # nearest neighbour in the 2-D map belongs to the same cluster for (almost) every point
    distance = np.linalg.norm(first[:, None] - first[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    assert np.mean(truth[distance.argmin(axis=1)] == truth) > 0.95


def test_errors_name_the_problem(fake_run: FakeRun, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no particles\.star"):
        build_report(tmp_path)
    with pytest.raises(InputError, match="run directory not found"):
        build_report(tmp_path / "absent")
    with pytest.raises(InputError, match="needs --tomogram"):
        build_report(fake_run.run_dir, annotation=fake_run.labels)
    with pytest.raises(InputError, match=r"no class_NNN\.mrc"):
        build_report(fake_run.run_dir, averages_dir=tmp_path)
    float_map = tmp_path / "density.mrc"
    shutil.copy(fake_run.annotation, float_map)
    with pytest.raises(InputError, match="label map"):
        build_report(fake_run.run_dir, tomogram=fake_run.tomogram, annotation=float_map)


def test_write_report_and_cli(fake_run_no_truth: FakeRun, tmp_path: Path) -> None:
    target = write_report(tmp_path / "a.html", fake_run_no_truth.run_dir, max_points=10)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["a.html"]  # no temporary file left
    runner = CliRunner()
    out = tmp_path / "cli.html"
    result = runner.invoke(app, ["-q", "report", str(fake_run_no_truth.run_dir), "-o", str(out),
                                 "--max-points", "10", "--averages",
                                 str(fake_run_no_truth.averages_dir)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.is_file() and "wrote" in result.output
    assert out.read_text(encoding="utf-8").count("(cryomine average)") == 3
    bad = runner.invoke(app, ["report", str(tmp_path / "nowhere"), "-o", str(out)])
    assert bad.exit_code == 2 and "run directory not found" in bad.output
