"""The clustering workflow: ``cluster_embeddings``, ``locate_targets``, ``picker cluster`` /
``picker locate`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cryomine.cli import app
from cryomine.errors import InputError
from cryomine.io import read_particles, write_coords, write_mrc
from cryomine.picker import cluster_embeddings, inner_cells, locate_targets
from cryomine.simulate import simulate_tomogram

runner = CliRunner()


def _groups(n_per_group: int = 120, dim: int = 32, spread: float = 0.08) -> tuple[np.ndarray, ...]:
    """Unit vectors scattered around three orthogonal directions, and each one's group."""
    rng = np.random.default_rng(0)
    centres = np.eye(dim, dtype=np.float32)[:3]
    vectors = np.concatenate(
        [c + spread * rng.normal(size=(n_per_group, dim)).astype(np.float32) for c in centres]
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, np.repeat(np.arange(3), n_per_group)


def test_inner_cells_keep_whole_windows_only() -> None:
    cells = inner_cells((5, 6, 7), stride=4, window=8, tomogram_shape=(20, 24, 28))
    voxels = cells * 4
    assert voxels.min(axis=0).tolist() == [4, 4, 4]  # window // 2
    assert (voxels.max(axis=0) <= np.array([20, 24, 28]) - 1 - 3).all()  # (window - 1) // 2
    assert len(cells) == 4 * 5 * 6
    with pytest.raises(InputError, match="no window of 30"):
        inner_cells((5, 6, 7), stride=4, window=30, tomogram_shape=(20, 24, 28))


@pytest.mark.parametrize("selection", ["eom", "leaf"])
def test_clusters_are_pure_and_their_targets_are_medoids(selection: str) -> None:
    vectors, group = _groups()
    clusters = cluster_embeddings(vectors, min_cluster_size=20, selection=selection, seed=0)
    assert clusters.coordinates.shape == (len(vectors), 2)
    assert clusters.n_clusters >= 3 and clusters.sizes.sum() == (clusters.labels >= 0).sum()
    if selection == "eom":
        assert clusters.n_clusters == 3
    found = set()
    for c in range(clusters.n_clusters):
        members = clusters.labels == c
        assert len(set(group[members])) == 1  # pure
        found.add(int(group[members][0]))
        # the medoid maximises the summed cosine similarity to its cluster
        total = vectors[members] @ vectors[members].sum(axis=0)
        np.testing.assert_array_equal(clusters.targets[c], vectors[members][np.argmax(total)])
        assert clusters.labels[clusters.medoids[c]] == c
    assert found == {0, 1, 2}
    again = cluster_embeddings(vectors, min_cluster_size=20, selection=selection, seed=0)
    np.testing.assert_array_equal(again.labels, clusters.labels)  # seeded


def test_cluster_embeddings_refuses_bad_settings() -> None:
    vectors, _ = _groups(n_per_group=10)
    with pytest.raises(InputError, match="sample more cells"):
        cluster_embeddings(vectors, min_cluster_size=50)
    with pytest.raises(InputError, match="expected 'leaf' or 'eom'"):
        cluster_embeddings(vectors, min_cluster_size=5, selection="best")


def _planted_grid() -> tuple[np.ndarray, np.ndarray]:
    """A (12, 12, 12, 4) embedding of background direction e3 with two targets planted."""
    embeddings = np.zeros((12, 12, 12, 4), np.float32)
    embeddings[..., 3] = 1.0
    targets = np.eye(4, dtype=np.float32)[:2]
    embeddings[3, 3, 3] = targets[0]
    embeddings[8, 8, 8] = targets[1]
    # a cell like target 0, but closer still to target 1
    embeddings[3, 8, 5] = np.array([0.6, 0.8, 0, 0], np.float32)
    return embeddings, targets


@pytest.mark.parametrize("exclusive", [True, False])
def test_locate_targets_finds_each_planted_target(exclusive: bool) -> None:
    embeddings, targets = _planted_grid()
    picks = locate_targets(
        embeddings,
        targets,
        stride=2,
        voxel_size_a=10.0,
        diameter_a=30.0,
        tomogram_shape=(24, 24, 24),
        threshold=0.5,
        exclusive=exclusive,
    )
    first = {tuple(np.rint(p / 2).astype(int)) for p in picks[0].positions_zyx}
    second = {tuple(np.rint(p / 2).astype(int)) for p in picks[1].positions_zyx}
    assert (3, 3, 3) in first and (8, 8, 8) in second and (3, 8, 5) in second
    assert ((3, 8, 5) in first) is not exclusive  # 0.6 passes target 0, but target 1 is closer
    with pytest.raises(InputError, match="expected \\(k, 4\\)"):
        locate_targets(
            embeddings,
            targets[:, :3],
            stride=2,
            voxel_size_a=10.0,
            diameter_a=30.0,
            tomogram_shape=(24, 24, 24),
        )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small tomogram of two built-in structures, its DoG picks and its shipped embedding."""
    root = tmp_path_factory.mktemp("picker_cluster")
    simulated = simulate_tomogram(
        ["3j9i", "4v4r"], shape_zyx=(48, 128, 128), n_particles=10, snr=1.0, seed=3
    )
    tomogram = root / "tomo.mrc"
    write_mrc(tomogram, simulated.tomogram, 10.0)
    truth = simulated.table[["rlnCoordinateZ", "rlnCoordinateY", "rlnCoordinateX"]].to_numpy()
    candidates = root / "candidates.coords"
    write_coords(candidates, truth)
    emb = root / "emb.zarr"
    result = runner.invoke(
        app, ["picker", "embed", str(tomogram), "-o", str(emb), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    return {"root": root, "tomogram": tomogram, "embeddings": emb, "candidates": candidates}


def test_cluster_then_locate_from_the_command_line(embedded: dict[str, Path]) -> None:
    out = embedded["root"] / "clusters"
    argv = ["picker", "cluster", str(embedded["embeddings"]), "-o", str(out)]
    result = runner.invoke(app, [*argv, "--sample", "2000", "--min-cluster-size", "15"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "clusters.json").read_text())
    targets = np.load(out / "targets.npy")
    assert targets.shape == (summary["n_clusters"], 32) and summary["n_clusters"] >= 1
    np.testing.assert_allclose(np.linalg.norm(targets, axis=1), 1.0, atol=1e-5)
    sample = np.load(out / "sample.npz")
    assert sample["coordinates"].shape == (summary["n_sampled"], 2)
    assert sum(c["size"] for c in summary["clusters"]) == (sample["labels"] >= 0).sum()
    assert (out / "clusters.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 0 and record["parameters"]["selection"] == "leaf"

    picks = embedded["root"] / "picks"
    argv = ["picker", "locate", str(embedded["embeddings"]), "--targets", str(out / "targets.npy")]
    result = runner.invoke(app, [*argv, "-o", str(picks), "--particle-diameter", "200"])
    assert result.exit_code == 0, result.output
    located = json.loads((picks / "run.json").read_text())["results"]["targets"]
    assert [e["target"] for e in located] == list(range(summary["n_clusters"]))
    for entry in located:
        table = read_particles(picks / f"target_{entry['target']}.star")
        assert len(table) == entry["n_picks"]
        assert table["rlnAutopickFigureOfMerit"].ge(entry["threshold"]).all()
    result = runner.invoke(app, [*argv, "-o", str(picks), "--particle-diameter", "200"])
    assert result.exit_code == 2 and "exists" in result.output  # nothing overwritten


def test_cluster_on_candidates_samples_their_cells(embedded: dict[str, Path]) -> None:
    out = embedded["root"] / "clusters_at_candidates"
    argv = ["picker", "cluster", str(embedded["embeddings"]), "-o", str(out)]
    argv += ["--candidates", str(embedded["candidates"]), "--min-cluster-size", "3"]
    argv += ["--neighbors", "5"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    cells = np.load(out / "sample.npz")["cells_zyx"]
    record = json.loads((out / "run.json").read_text())
    n_candidates = len(np.loadtxt(embedded["candidates"], ndmin=2))
    assert record["results"]["n_candidates"] == n_candidates
    assert 1 <= len(cells) <= n_candidates  # one cell per candidate with a whole window inside


def test_cluster_at_dog_picks_of_a_given_diameter(embedded: dict[str, Path]) -> None:
    out = embedded["root"] / "clusters_at_dog"
    argv = ["picker", "cluster", str(embedded["embeddings"]), "-o", str(out)]
    argv += ["--particle-diameter", "150", "--min-cluster-size", "3", "--neighbors", "4"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    n_cells = len(np.load(out / "sample.npz")["cells_zyx"])
    assert 3 < n_cells <= record["results"]["n_candidates"]
    assert record["parameters"]["particle_diameter_a"] == 150.0


def test_cluster_and_locate_refuse_bad_input(embedded: dict[str, Path]) -> None:
    root = embedded["root"]
    bad_targets = root / "bad_targets.npy"
    np.save(bad_targets, np.ones((2, 5), np.float32))
    emb, targets = str(embedded["embeddings"]), str(bad_targets)
    locate = ["picker", "locate", emb, "--targets", targets, "--particle-diameter", "200"]
    cases = [
        (["picker", "cluster", str(root / "none.zarr"), "-o", str(root / "c1")], "not a zarr"),
        (
            [
                "picker",
                "cluster",
                emb,
                "-o",
                str(root / "c2"),
                "--tomogram",
                str(root / "gone.mrc"),
            ],
            "gone.mrc: not found",
        ),
        (
            [
                "picker",
                "cluster",
                emb,
                "-o",
                str(root / "c3"),
                "--particle-diameter",
                "200",
                "--candidates",
                str(embedded["candidates"]),
            ],
            "give one",
        ),
        ([*locate, "-o", str(root / "l1")], "expected (k, 32)"),
        ([*locate, "-o", str(root / "l2"), "--select", "7"], "holds targets 0..1"),
    ]
    for argv, message in cases:
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert message in result.output, result.output
        assert not Path(argv[argv.index("-o") + 1]).exists()
