"""``cryomine view``: the layers it would show (pure data) and the missing-napari message."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.io import positions_zyx, read_particles
from cryomine.report import class_color, viewer_layers


def test_layers_overlay_tomogram_picks_and_labels(fake_run: Any) -> None:
    layers = viewer_layers(fake_run.run_dir, tomogram=fake_run.tomogram,
                           annotation=fake_run.labels, point_size_a=50.0)  # fmt: skip
    assert [layer.kind for layer in layers] == ["image", "points", "labels"]
    image, points, labels = layers
    assert image.data.shape == labels.data.shape == (20, 48, 64)
    assert image.options["scale"] == points.options["scale"] == labels.options["scale"]
    assert image.options["scale"] == (10.0, 10.0, 10.0)
    table = read_particles(fake_run.run_dir / "particles.star")
    # the table is in 5 Å pixels, the tomogram in 10 Å voxels: positions are halved
    np.testing.assert_allclose(points.data, positions_zyx(table) / 2)
    classes = table["rlnClassNumber"].to_numpy()
    assert points.options["face_color"] == [class_color(k) for k in classes]
    assert points.options["size"] == pytest.approx(5.0)
    # every pick sits on its own class in the label map
    centre = np.round(points.data).astype(int)
    assert np.array_equal(np.asarray(labels.data)[tuple(centre.T)], classes)


def test_layers_without_tomogram_use_table_coordinates(fake_run: Any) -> None:
    layers = viewer_layers(fake_run.run_dir)
    assert [layer.kind for layer in layers] == ["points"]
    assert layers[0].options["name"] == "picks tomoA"
    assert layers[0].options["scale"] == (5.0, 5.0, 5.0)
    table = read_particles(fake_run.run_dir / "particles.star")
    np.testing.assert_allclose(layers[0].data, positions_zyx(table))


def test_layer_errors(fake_run: Any, tmp_path: Any) -> None:
    with pytest.raises(InputError, match=r"no particles\.star"):
        viewer_layers(tmp_path)
    with pytest.raises(InputError, match="integer label map"):
        viewer_layers(fake_run.run_dir, tomogram=fake_run.tomogram, annotation=fake_run.annotation)
    other = tmp_path / "other.mrc"
    other.write_bytes(fake_run.tomogram.read_bytes())
    with pytest.raises(InputError, match="no particles with rlnTomoName 'other'"):
        viewer_layers(fake_run.run_dir, tomogram=other)


@pytest.mark.skipif(importlib.util.find_spec("napari") is not None, reason="napari is installed")
def test_view_without_napari_says_how_to_install(fake_run: Any) -> None:
    result = CliRunner().invoke(app, ["view", str(fake_run.run_dir)])
    assert result.exit_code == 2
    assert "pip install 'cryomine[viewer]'" in result.output
