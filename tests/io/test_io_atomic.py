"""Atomic writers: complete outputs or none, no clobbering, umask-conform permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cryomine.errors import InputError
from cryomine.io import atomic_directory, atomic_path, atomic_write_text


def test_atomic_path_renames_on_success_and_cleans_up_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt" and tmp != target
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    with pytest.raises(ValueError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise ValueError("boom")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]
    with (
        pytest.raises(InputError, match=r"out\.txt: output already exists"),
        atomic_path(target, overwrite=False),
    ):
        pass


def test_atomic_directory_replaces_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "set"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(InputError, match="already exists"), atomic_directory(target):
        pass
    with pytest.raises(KeyError), atomic_directory(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
        raise KeyError("stop")
    assert os.listdir(target) == ["a"]
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert os.listdir(target) == ["b"]
    assert os.listdir(tmp_path) == ["set"]


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
        with atomic_directory(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
