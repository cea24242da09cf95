"""``cryomine picker train`` → ``picker embed`` → ``pick --method embedding``, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

import cryomine.simulate
from cryomine.cli import app
from cryomine.io import read_coords, read_mrc, read_particles, write_mrc
from cryomine.simulate import simulate_tomogram

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, make_blob) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("picker_cli")
    densities = {f"blob{i}": 0.5 * make_blob(seed=10 + i, box=16, reach=3.0) for i in range(2)}
    paths = []
    for name, density in densities.items():
        paths.append(root / f"{name}.mrc")
        write_mrc(paths[-1], density, 10.0)
    simulated = simulate_tomogram(densities, shape_zyx=(32, 56, 56), n_particles=6, seed=5)
    tomogram = root / "tomo.mrc"
    write_mrc(tomogram, simulated.tomogram, 10.0)
    model = root / "model"
    argv = ["picker", "train", "-o", str(model), "--epochs", "2", "--steps-per-epoch", "2"]
    argv += ["--window", "20", "--shape", "32", "64", "64", "--seed", "1"]
    for path in paths:
        argv += ["--structures", str(path)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    first_xyz = simulated.table[["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"]].iloc[0]
    return {"root": root, "model": model, "tomogram": tomogram, "example": first_xyz.to_numpy()}


def test_train_writes_a_loadable_model_and_its_records(workspace: dict[str, Path]) -> None:
    model = workspace["model"]
    for name in ("model.pt", "config.json", "history.json", "run.json", "checkpoint.pt"):
        assert (model / name).is_file(), name
    config = json.loads((model / "config.json").read_text())
    assert config["class_names"] == ["blob0", "blob1", "membrane", "gold", "background"]
    history = json.loads((model / "history.json").read_text())
    assert [row["epoch"] for row in history] == [-1, 0, 1]
    record = json.loads((model / "run.json").read_text())
    assert record["seed"] == 1 and record["results"]["last"]["epoch"] == 1


def test_embed_writes_zarr_with_its_sampling(workspace: dict[str, Path]) -> None:
    out = workspace["root"] / "emb.zarr"
    argv = ["picker", "embed", str(workspace["tomogram"]), "-o", str(out), "--stride", "8"]
    result = runner.invoke(app, [*argv, "--model", str(workspace["model"]), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    array = zarr.open_array(str(out), mode="r")
    assert array.shape == (4, 7, 7, 32)
    assert array.attrs["stride"] == 8 and array.attrs["voxel_size_a"] == 10.0
    assert array.attrs["axes"] == ["z", "y", "x", "embedding"]
    np.testing.assert_allclose(np.linalg.norm(array[...], axis=-1), 1.0, atol=1e-5)


def test_pick_by_embedding_writes_picks_scores_and_similarity(workspace: dict[str, Path]) -> None:
    x, y, z = (f"{v:.1f}" for v in workspace["example"])
    for suffix in (".star", ".coords"):
        out = workspace["root"] / f"picks{suffix}"
        argv = ["pick", str(workspace["tomogram"]), "--method", "embedding", "-o", str(out)]
        argv += ["--model", str(workspace["model"]), "--particle-diameter", "100"]
        argv += ["--reference-coords", x, y, z, "--threshold", "-1", "--device", "cpu"]
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
    table = read_particles(workspace["root"] / "picks.star")
    assert len(table) >= 1 and table["rlnAutopickFigureOfMerit"].between(-1, 1).all()
    assert len(read_coords(workspace["root"] / "picks.coords")) == len(table)
    similarity, voxel = read_mrc(workspace["root"] / "picks.star.similarity.mrc")
    assert similarity.shape == (8, 14, 14) and voxel == pytest.approx(40.0)
    record = json.loads((workspace["root"] / "picks.star.run.json").read_text())
    assert record["results"]["threshold_method"] == "given"


@pytest.fixture
def simulation_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Keyword arguments of every ``cryomine.simulate.simulate_subtomograms`` call."""
    calls: list[dict[str, object]] = []
    original = cryomine.simulate.simulate_subtomograms

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cryomine.simulate, "simulate_subtomograms", spy)
    return calls


def test_pick_with_a_structure_name_simulates_it_at_the_tomograms_voxel_size(
    workspace: dict[str, Path], simulation_calls: list[dict[str, object]]
) -> None:
    out = workspace["root"] / "by_name.star"
    argv = ["pick", str(workspace["tomogram"]), "--method", "embedding", "-o", str(out)]
    argv += ["--model", str(workspace["model"]), "--particle-diameter", "100", "--device", "cpu"]
    # 11 Å: neither the header's nor the model's 10 Å nor the simulator's default 13 Å
    argv += ["--reference", "3J9I", "--threshold", "-1", "--voxel-size", "11"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert len(simulation_calls) == 1
    assert simulation_calls[0]["voxel_size_a"] == 11.0
    assert simulation_calls[0]["box_size"] >= 20  # type: ignore[operator]  # the model's window
    record = json.loads((workspace["root"] / "by_name.star.run.json").read_text())
    parameters = record["parameters"]
    assert parameters["reference"] == "3J9I" and parameters["reference_kind"] == "structure"
    simulation = parameters["reference_simulation"]
    assert simulation["voxel_size_a"] == 11.0 and simulation["window"] == 20
    assert simulation["n_orientations"] == 32 and simulation["snr"] is None
    assert simulation["tilt_range_deg"] == [-60.0, 60.0] and simulation["defocus_um"] == 5.0
    assert record["results"]["n_examples"] == 32 and "reference" in record["timings_s"]
    assert len(read_particles(out)) >= 1


def test_pick_with_an_mrc_subvolume_uses_its_central_window(
    workspace: dict[str, Path], simulation_calls: list[dict[str, object]]
) -> None:
    # a subvolume cut around voxel (16, 28, 28) (z, y, x; on the stride-4 grid): the map cell
    # of that voxel embeds exactly the example's window, so its similarity is 1
    tomogram, _ = read_mrc(workspace["tomogram"])
    subvolume = workspace["root"] / "subvolume.mrc"
    write_mrc(subvolume, np.array(tomogram[4:28, 16:40, 16:40]), 10.0)
    out = workspace["root"] / "by_subvolume.star"
    argv = ["pick", str(workspace["tomogram"]), "--method", "embedding", "-o", str(out)]
    argv += ["--model", str(workspace["model"]), "--particle-diameter", "100", "--device", "cpu"]
    result = runner.invoke(app, [*argv, "--reference", str(subvolume), "--threshold", "-1"])
    assert result.exit_code == 0, result.output
    assert simulation_calls == []
    record = json.loads((workspace["root"] / "by_subvolume.star.run.json").read_text())
    assert record["parameters"]["reference_kind"] == "subvolume"
    assert record["parameters"]["reference_simulation"] is None
    assert record["results"]["n_examples"] == 1
    similarity, _ = read_mrc(workspace["root"] / "by_subvolume.star.similarity.mrc")
    assert similarity[4, 7, 7] == pytest.approx(1.0, abs=1e-4)


def test_bad_inputs_give_one_line_errors(workspace: dict[str, Path]) -> None:
    small = workspace["root"] / "small_ref.mrc"
    write_mrc(small, np.zeros((12, 12, 12), np.float32), 10.0)
    base = ["pick", str(workspace["tomogram"]), "--particle-diameter", "100"]
    base += ["--model", str(workspace["model"]), "--device", "cpu"]
    cases = [
        (["--method", "embedding", "--reference", str(small)], "small_ref.mrc: reference of shape"),
        (
            ["--method", "embedding", "--reference", "no_such_structure"],
            "--reference 'no_such_structure': expected an MRC subvolume file",
        ),
        (["--method", "embedding", "--reference", "gone.mrc"], "'gone.mrc': MRC subvolume file"),
        (["--method", "embedding", "--reference-coords", "500", "1", "1"], "outside"),
        (["--method", "embedding"], "needs --reference"),
        (["--method", "cnn"], "--method 'cnn'"),
    ]
    for extra, message in cases:
        out = workspace["root"] / "bad.star"
        result = runner.invoke(app, [*base, *extra, "-o", str(out)])
        assert result.exit_code == 2, result.output
        assert message in result.output, result.output
        assert not out.exists()
    result = runner.invoke(app, [*base[:4], "--threshold", "0.5", "-o", str(out)])
    assert result.exit_code == 2 and "only with --method embedding" in result.output
