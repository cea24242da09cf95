"""MRC reading and writing: round trips, gzip, memory mapping, voxel sizes, errors, atomicity."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.io import MRC_SUFFIXES, read_mrc, read_mrc_header, write_mrc


def _raw_mrc(path: Path, data: np.ndarray, voxel_size: float | tuple[float, float, float]) -> Path:
    """Write with mrcfile directly, to control header fields cryomine would not write."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns about NaN in header stats
        with mrcfile.new(path, overwrite=True) as handle:
            handle.set_data(data)
            handle.voxel_size = voxel_size
    return path


def _leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip_keeps_data_axes_and_voxel_size(
    tmp_path: Path, volume: np.ndarray, mmap: bool
) -> None:
    path = write_mrc(tmp_path / "v.mrc", volume, 7.31)
    data, voxel = read_mrc(path, mmap=mmap)
    assert data.shape == (6, 7, 8)
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, volume)
    assert voxel == pytest.approx(7.31, rel=1e-6)
    assert read_mrc_header(path) == ((6, 7, 8), pytest.approx(7.31, rel=1e-6))
    with mrcfile.open(path) as handle:  # on disk: nx is the last (x) axis
        assert (int(handle.header.nx), int(handle.header.ny), int(handle.header.nz)) == (8, 7, 6)


def test_write_converts_to_float32_and_accepts_2d(tmp_path: Path) -> None:
    image = np.arange(12, dtype=np.int64).reshape(3, 4)
    data, _ = read_mrc(write_mrc(tmp_path / "i.mrc", image, 2.0), mmap=False)
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, image.astype(np.float32))
    assert read_mrc_header(tmp_path / "i.mrc")[0] == (3, 4)


def test_gzip_round_trip(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_mrc(tmp_path / "v.mrc.gz", volume, 4.2)
    with open(path, "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b"  # really gzipped
    data, voxel = read_mrc(path)  # mmap is impossible for gzip: read into memory
    np.testing.assert_array_equal(data, volume)
    assert voxel == pytest.approx(4.2, rel=1e-6)
    assert data.flags.writeable
    assert read_mrc_header(path) == ((6, 7, 8), pytest.approx(4.2, rel=1e-6))


def test_large_file_is_memory_mapped(tmp_path: Path, rng: np.random.Generator) -> None:
    big = rng.normal(size=(40, 256, 256)).astype(np.float32)  # 10 MiB
    path = write_mrc(tmp_path / "tomo.rec", big, 10.0)
    data, _ = read_mrc(path)
    assert isinstance(data, np.memmap) or isinstance(data.base, np.memmap)
    assert not data.flags.writeable
    np.testing.assert_array_equal(data[17, 100:110, 3], big[17, 100:110, 3])


@pytest.mark.parametrize("suffix", [".rec", ".st", ".map", ".mrcs", ".ali", ".MRC", ".map.gz"])
def test_accepted_suffixes(tmp_path: Path, volume: np.ndarray, suffix: str) -> None:
    path = write_mrc(tmp_path / f"v{suffix}", volume, 3.0)
    np.testing.assert_array_equal(read_mrc(path)[0], volume)


def test_suffix_list_is_the_documented_one() -> None:
    assert {".mrc", ".rec", ".st", ".map", ".mrcs"} <= set(MRC_SUFFIXES)


@pytest.mark.parametrize("name", ["v.txt", "v.npy", "v", "v.gz"])
def test_other_suffixes_are_refused(tmp_path: Path, volume: np.ndarray, name: str) -> None:
    with pytest.raises(InputError, match="not an MRC file name"):
        write_mrc(tmp_path / name, volume, 3.0)
    (tmp_path / name).write_bytes(b"x" * 2048)
    with pytest.raises(InputError, match="not an MRC file name"):
        read_mrc(tmp_path / name)


def test_zero_voxel_size_needs_an_override(tmp_path: Path, volume: np.ndarray) -> None:
    path = _raw_mrc(tmp_path / "zero.mrc", volume, 0.0)
    with pytest.raises(InputError, match=r"zero\.mrc: header voxel size"):
        read_mrc(path)
    with pytest.raises(InputError, match="voxel size"):
        read_mrc_header(path)
    data, voxel = read_mrc(path, voxel_size_a=5.5)
    assert voxel == 5.5
    np.testing.assert_array_equal(data, volume)
    assert read_mrc_header(path, voxel_size_a=5.5) == ((6, 7, 8), 5.5)


def test_anisotropic_voxel_size_needs_an_override(tmp_path: Path, volume: np.ndarray) -> None:
    path = _raw_mrc(tmp_path / "aniso.mrc", volume, (4.0, 4.0, 8.0))
    with pytest.raises(InputError, match="anisotropic"):
        read_mrc(path)
    assert read_mrc(path, voxel_size_a=4.0)[1] == 4.0


def test_override_replaces_a_valid_header(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_mrc(tmp_path / "v.mrc", volume, 3.0)
    assert read_mrc(path, voxel_size_a=6.0)[1] == 6.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_voxel_sizes_are_refused(tmp_path: Path, volume: np.ndarray, bad: float) -> None:
    path = write_mrc(tmp_path / "v.mrc", volume, 3.0)
    with pytest.raises(InputError, match="voxel size"):
        read_mrc(path, voxel_size_a=bad)
    with pytest.raises(InputError, match="voxel size"):
        write_mrc(tmp_path / "w.mrc", volume, bad)
    assert not (tmp_path / "w.mrc").exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.mrc: file not found"):
        read_mrc(tmp_path / "nothere.mrc")
    with pytest.raises(InputError, match="file not found"):
        read_mrc_header(tmp_path / "nothere.mrc")
    (tmp_path / "dir.mrc").mkdir()
    with pytest.raises(InputError, match="not a file"):
        read_mrc(tmp_path / "dir.mrc")


@pytest.mark.parametrize("content", [b"", b"hello, not a volume\n" * 200])
def test_non_mrc_content_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.mrc"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"fake\.mrc"):
        read_mrc(path)
    with pytest.raises(InputError, match=r"fake\.mrc"):
        read_mrc_header(path)


def test_truncated_file_is_refused(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_mrc(tmp_path / "v.mrc", volume, 3.0)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"v\.mrc"):
        read_mrc(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("mmap", [True, False])
def test_non_finite_data_is_refused(
    tmp_path: Path, volume: np.ndarray, bad: float, mmap: bool
) -> None:
    volume = volume.copy()
    volume[5, 6, 7] = bad
    path = _raw_mrc(tmp_path / "nan.mrc", volume, 2.0)
    with pytest.raises(InputError, match="NaN or Inf"):
        read_mrc(path, mmap=mmap)
    data, _ = read_mrc(path, mmap=mmap, check_finite=False)
    assert not np.isfinite(data[5, 6, 7])


def test_write_refuses_non_finite_data(tmp_path: Path, volume: np.ndarray) -> None:
    volume = volume.copy()
    volume[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN or Inf"):
        write_mrc(tmp_path / "v.mrc", volume, 1.0)
    assert os.listdir(tmp_path) == []


def test_write_refuses_wrong_dimensions(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="2-D or 3-D"):
        write_mrc(tmp_path / "v.mrc", np.zeros((2, 2, 2, 2)), 1.0)
    assert os.listdir(tmp_path) == []


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path, volume: np.ndarray) -> None:
    write_mrc(tmp_path / "v.mrc", volume, 3.0)
    write_mrc(tmp_path / "v.mrc", volume * 2, 3.0)  # overwrite by default
    assert os.listdir(tmp_path) == ["v.mrc"]
    np.testing.assert_array_equal(read_mrc(tmp_path / "v.mrc")[0], volume * 2)


def test_existing_file_kept_without_overwrite(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_mrc(tmp_path / "v.mrc", volume, 3.0)
    with pytest.raises(InputError, match="already exists"):
        write_mrc(path, volume * 2, 3.0, overwrite=False)
    np.testing.assert_array_equal(read_mrc(path)[0], volume)


def test_failed_write_does_not_clobber(
    tmp_path: Path, volume: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_mrc(tmp_path / "v.mrc", volume, 3.0)
    before = path.read_bytes()

    def fail(self: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(mrcfile.mrcfile.MrcFile, "update_header_stats", fail)
    with pytest.raises(OSError, match="disk full"):
        write_mrc(path, volume * 2, 3.0)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    assert os.listdir(tmp_path) == ["v.mrc"]


def test_written_files_follow_the_umask(tmp_path: Path, volume: np.ndarray) -> None:
    old = os.umask(0o022)
    try:
        path = write_mrc(tmp_path / "v.mrc", volume, 3.0)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_sloppy_header_is_read_permissively_with_a_log_warning(
    tmp_path: Path, volume: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_mrc(tmp_path / "sloppy.mrc", volume, 3.0)
    raw = bytearray(path.read_bytes())
    raw[208:212] = b"XXXX"  # the 'MAP ' identifier that strict readers insist on
    path.write_bytes(bytes(raw))
    with caplog.at_level("WARNING", logger="cryomine.io._mrc"):
        data, voxel = read_mrc(path)
    np.testing.assert_array_equal(data, volume)
    assert voxel == pytest.approx(3.0)
    assert "read permissively" in caplog.text
    assert read_mrc_header(path) == ((6, 7, 8), pytest.approx(3.0))
