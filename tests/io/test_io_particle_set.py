"""Particle sets: round trip, z-scoring, streaming order, atomicity, open errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryomine.errors import InputError
from cryomine.io import ParticleSet, normalize_subtomograms, write_particle_set, write_particles


@pytest.fixture
def stack(rng: np.random.Generator) -> np.ndarray:
    """30 subtomograms (30, 8, 8, 8) with different offsets and scales."""
    base = rng.normal(size=(30, 8, 8, 8))
    return base * rng.uniform(0.5, 3.0, (30, 1, 1, 1)) + rng.uniform(-5, 5, (30, 1, 1, 1))


def test_normalize_subtomograms(stack: np.ndarray) -> None:
    out = normalize_subtomograms(stack)
    assert out.dtype == np.float32 and out.shape == stack.shape
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1.0, atol=1e-5)
    # affine-invariant per subtomogram and idempotent
    np.testing.assert_allclose(normalize_subtomograms(stack * 7.0 + 3.0), out, atol=1e-5)
    np.testing.assert_allclose(normalize_subtomograms(out), out, atol=1e-5)
    np.testing.assert_allclose(normalize_subtomograms(stack[4]), out[4], atol=1e-6)


def test_normalize_guards_constant_volumes(caplog: pytest.LogCaptureFixture) -> None:
    batch = np.stack([np.full((4, 4, 4), 5.0), np.arange(64.0).reshape(4, 4, 4)])
    with caplog.at_level("WARNING"):
        out = normalize_subtomograms(batch)
    assert np.all(out[0] == 0)
    assert np.all(np.isfinite(out))
    assert "constant" in caplog.text


def test_normalize_can_zero_constant_volumes_silently(caplog: pytest.LogCaptureFixture) -> None:
    batch = np.stack([np.full((4, 4, 4), 0.1, dtype=np.float32), np.arange(64.0).reshape(4, 4, 4)])
    with caplog.at_level("WARNING"):
        out = normalize_subtomograms(batch, on_constant="ignore")
    assert caplog.text == ""
    assert np.all(out[0] == 0)
    np.testing.assert_array_equal(out, normalize_subtomograms(batch))
    with pytest.raises(ValueError, match="on_constant"):
        normalize_subtomograms(batch, on_constant="raise")  # type: ignore[arg-type]


def test_sorting_source_z_scores_with_the_io_implementation(
    stack: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    from cryomine.sorting._source import as_source

    volumes = stack.astype(np.float32)
    volumes[3] = 0.1  # constant: zeros, and no warning on every read
    with caplog.at_level("WARNING"):
        read = as_source(volumes).read(np.arange(len(volumes)))
    assert caplog.text == ""
    assert np.all(read[3] == 0)
    np.testing.assert_array_equal(read, normalize_subtomograms(volumes))


def test_round_trip(tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray) -> None:
    written = write_particle_set(tmp_path / "set", particle_table, stack, voxel_size_a=13.48)
    opened = ParticleSet.open(tmp_path / "set")
    for particle_set in (written, opened):
        assert len(particle_set) == particle_set.n_particles == 30
        assert particle_set.box_size == 8
        assert particle_set.voxel_size_a == 13.48
        assert particle_set.directory == tmp_path / "set"
        assert particle_set.has_truth
        pd.testing.assert_frame_equal(particle_set.table, particle_table, check_exact=True)
    expected = normalize_subtomograms(stack)
    np.testing.assert_array_equal(opened.read(np.arange(30)), expected)
    np.testing.assert_array_equal(opened.read([29, 3, 3, 0]), expected[[29, 3, 3, 0]])
    assert opened.read([]).shape == (0, 8, 8, 8)
    assert sorted(os.listdir(tmp_path / "set")) == ["particles.star", "subtomograms.zarr"]
    assert os.listdir(tmp_path) == ["set"]
    attrs = json.loads((tmp_path / "set" / "subtomograms.zarr" / "zarr.json").read_text())[
        "attributes"
    ]
    assert attrs["normalized"] is True and attrs["box_size"] == 8 and attrs["format_version"] == 1


def test_no_truth_without_truth_columns(
    tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray
) -> None:
    table = particle_table.drop(columns=["cmStructure", "cmTrueClass"])
    assert not write_particle_set(tmp_path / "s", table, stack, voxel_size_a=1.0).has_truth


def test_streamed_batches_equal_one_array(
    tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray
) -> None:
    def batches() -> Iterator[np.ndarray]:
        for start, stop in [(0, 7), (7, 8), (8, 25), (25, 30)]:
            yield stack[start:stop]

    streamed = write_particle_set(tmp_path / "a", particle_table, batches(), voxel_size_a=2.0)
    whole = write_particle_set(tmp_path / "b", particle_table, stack, voxel_size_a=2.0)
    np.testing.assert_array_equal(streamed.read(range(30)), whole.read(range(30)))


def test_iter_batches_order(
    tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray
) -> None:
    particle_set = write_particle_set(tmp_path / "s", particle_table, stack, voxel_size_a=2.0)
    expected = normalize_subtomograms(stack)
    got = list(particle_set.iter_batches(7))
    assert [len(i) for i, _ in got] == [7, 7, 7, 7, 2]
    np.testing.assert_array_equal(np.concatenate([i for i, _ in got]), np.arange(30))
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), expected)
    order = np.random.default_rng(5).permutation(30)[:11]
    got = list(particle_set.iter_batches(4, indices=order))
    np.testing.assert_array_equal(np.concatenate([i for i, _ in got]), order)
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), expected[order])
    assert all(b.dtype == np.float32 for _, b in got)
    with pytest.raises(InputError, match="batch size"):
        next(particle_set.iter_batches(0))
    with pytest.raises(IndexError):
        particle_set.read([30])


def test_failing_batch_iterator_leaves_nothing(
    tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray
) -> None:
    def batches() -> Iterator[np.ndarray]:
        yield stack[:16]
        raise RuntimeError("extraction failed")

    with pytest.raises(RuntimeError, match="extraction failed"):
        write_particle_set(tmp_path / "s", particle_table, batches(), voxel_size_a=1.0)
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_old_set(
    tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray
) -> None:
    write_particle_set(tmp_path / "s", particle_table, stack, voxel_size_a=1.0)
    with pytest.raises(InputError, match="already exists"):
        write_particle_set(tmp_path / "s", particle_table, stack, voxel_size_a=1.0)
    bad = stack.copy()
    bad[20, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN or Inf"):
        write_particle_set(tmp_path / "s", particle_table, bad, voxel_size_a=1.0, overwrite=True)
    assert os.listdir(tmp_path) == ["s"]
    np.testing.assert_array_equal(
        ParticleSet.open(tmp_path / "s").read([20]), normalize_subtomograms(stack[20:21])
    )
    write_particle_set(
        tmp_path / "s", particle_table.head(2), stack[5:7], voxel_size_a=1.0, overwrite=True
    )
    assert len(ParticleSet.open(tmp_path / "s")) == 2
    assert os.listdir(tmp_path) == ["s"]


@pytest.mark.parametrize(
    ("subtomograms", "message"),
    [
        (lambda s: s[:29], "29 given for a table of 30"),
        (lambda s: np.concatenate([s, s[:1]]), "more than the 30"),
        (lambda s: s[:, :, :, :7], "cubic box"),
        (lambda s: [s[:10], s[10:, :6, :6, :6]], "differs from the first batch"),
        (lambda s: s[0], r"\(N, S, S, S\)"),
        (lambda s: [], "0 given"),
    ],
)
def test_bad_subtomograms(
    tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray, subtomograms, message: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message):
        write_particle_set(tmp_path / "s", particle_table, subtomograms(stack), voxel_size_a=1.0)
    assert os.listdir(tmp_path) == []


def test_bad_table_or_voxel_size(
    tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray
) -> None:
    with pytest.raises(InputError, match="rlnCoordinateX"):
        write_particle_set(
            tmp_path / "s", particle_table.drop(columns=["rlnCoordinateX"]), stack, voxel_size_a=1.0
        )
    with pytest.raises(InputError, match="voxel size"):
        write_particle_set(tmp_path / "s", particle_table, stack, voxel_size_a=0.0)
    assert os.listdir(tmp_path) == []


def test_empty_set(tmp_path: Path, particle_table: pd.DataFrame) -> None:
    empty = write_particle_set(
        tmp_path / "e", particle_table.head(0), np.zeros((0, 6, 6, 6)), voxel_size_a=1.0
    )
    assert len(empty) == 0 and empty.box_size == 6
    assert list(empty.iter_batches(5)) == []


def test_open_errors(tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray) -> None:
    with pytest.raises(InputError, match="particle set directory not found"):
        ParticleSet.open(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    write_particles(tmp_path / "half" / "particles.star", particle_table)
    with pytest.raises(InputError, match=r"not a particle set \(no subtomograms.zarr\)"):
        ParticleSet.open(tmp_path / "half")
    write_particle_set(tmp_path / "s", particle_table, stack, voxel_size_a=1.0)
    write_particles(tmp_path / "s" / "particles.star", particle_table.head(5))
    with pytest.raises(InputError, match="does not match 5 table rows"):
        ParticleSet.open(tmp_path / "s")
    (tmp_path / "s" / "particles.star").unlink()
    with pytest.raises(InputError, match=r"no particles\.star"):
        ParticleSet.open(tmp_path / "s")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "particles.star").write_text("x")
    (tmp_path / "junk" / "subtomograms.zarr").mkdir()
    with pytest.raises(InputError, match="junk"):
        ParticleSet.open(tmp_path / "junk")


def test_table_is_a_copy(tmp_path: Path, particle_table: pd.DataFrame, stack: np.ndarray) -> None:
    particle_set = write_particle_set(tmp_path / "s", particle_table, stack, voxel_size_a=1.0)
    table = particle_set.table
    table["rlnClassNumber"] = 99
    assert (
        particle_set.table["rlnClassNumber"].tolist() == particle_table["rlnClassNumber"].tolist()
    )
    assert "n_particles=30" in repr(particle_set)
