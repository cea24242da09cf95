"""Atomic writes: outputs appear complete under their final name, or not at all.

Every writer in cryomine goes through these helpers, so an interrupted or failed run never leaves
a half-written file in the user's output, and an existing output is never silently replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryomine.errors import InputError

__all__ = ["atomic_directory", "atomic_path", "atomic_write_text", "check_writable"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _permit(path: Path, *, directory: bool) -> None:
    """Give a temporary file or directory the mode a plain ``open``/``mkdir`` would have.

    ``mkstemp``/``mkdtemp`` create private (0600/0700) entries; outputs should follow the umask.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def check_writable(path: Path, *, overwrite: bool) -> None:
    """Raise :class:`InputError` if ``path`` exists and ``overwrite`` is false."""
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output already exists; choose another name or pass overwrite")


@contextmanager
def atomic_path(path: Path | str, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the final suffix so libraries that look at extensions still work.
    On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    _permit(tmp, directory=False)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(path: Path | str, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; move it to ``path`` if the block succeeds.

    With ``overwrite`` an existing directory is replaced only after the new one is complete.
    """
    path = Path(path)
    check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    _permit(tmp, directory=True)
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8), replacing any previous file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
