"""MRC volumes: read (memory-mapped, gzip) and write (float32, atomic).

Arrays are indexed ``[z, y, x]`` (sections, rows, columns), as ``mrcfile`` returns them.
The voxel size is in Å and must be isotropic; ``voxel_size_a`` overrides the header.
"""

from __future__ import annotations

import gzip
import logging
import math
import warnings
from pathlib import Path

import mrcfile
import numpy as np

from cryomine.errors import InputError
from cryomine.io._atomic import atomic_path

__all__ = ["MRC_SUFFIXES", "read_mrc", "read_mrc_header", "write_mrc"]

logger = logging.getLogger(__name__)

MRC_SUFFIXES = (".mrc", ".rec", ".st", ".map", ".mrcs", ".ali")


def _check_suffix(path: Path) -> None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in MRC_SUFFIXES:
        raise InputError(
            f"{path}: not an MRC file name; "
            f"expected one of {', '.join(MRC_SUFFIXES)} (optionally .gz)"
        )


_MRC_MODES = (0, 1, 2, 3, 4, 6, 12, 101)


def _plausible_header(path: Path) -> bool:
    """Whether the first 1024 bytes could be an MRC header: known mode, positive sizes."""
    with open(path, "rb") as handle:
        raw = handle.read(1024)
    if len(raw) < 1024:
        return False
    for order in "<>":
        nx, ny, nz, mode = np.frombuffer(raw[:16], dtype=f"{order}i4").tolist()
        extended = int(np.frombuffer(raw[92:96], dtype=f"{order}i4")[0])
        if mode in _MRC_MODES and min(nx, ny, nz) > 0 and 0 <= extended <= path.stat().st_size:
            return True
    return False


def _open(path: Path, *, mmap: bool) -> mrcfile.mrcfile.MrcFile:
    """Open read-only: memory-mapped when possible, permissive as a fallback for sloppy headers."""
    gzipped = path.suffix.lower() == ".gz"
    try:
        if gzipped or not mmap:
            return mrcfile.open(path, mode="r")
        return mrcfile.mmap(path, mode="r")
    except (ValueError, OSError, EOFError, gzip.BadGzipFile) as strict_error:
        if not gzipped and not _plausible_header(path):
            # permissive mode can take many seconds on a large non-MRC file; refuse it at once
            raise InputError(f"{path}: not an MRC file ({strict_error})") from strict_error
        try:
            # permissive mode reports problems as warnings; log them instead of raising them
            # where warnings are errors (as in the tests), which would defeat the fallback
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                handle = mrcfile.open(path, mode="r", permissive=True)
        except Exception as error:  # mrcfile raises several types for garbage input
            raise InputError(f"{path}: not a readable MRC file ({strict_error})") from error
        if handle.data is None:
            handle.close()
            raise InputError(f"{path}: not a readable MRC file ({strict_error})") from strict_error
        details = "; ".join(str(w.message) for w in caught) or str(strict_error)
        logger.warning("%s: header is not standard (%s); read permissively", path, details)
        return handle


def _voxel_size_from_header(path: Path, handle: mrcfile.mrcfile.MrcFile) -> float:
    vs = handle.voxel_size
    sizes = np.array([float(vs.x), float(vs.y), float(vs.z)])
    if np.any(sizes <= 0) or not np.all(np.isfinite(sizes)):
        raise InputError(
            f"{path}: header voxel size is {tuple(sizes.tolist())} Å (x, y, z); "
            "pass the voxel size explicitly (--voxel-size)"
        )
    if not np.allclose(sizes, sizes[0], rtol=1e-3):
        raise InputError(
            f"{path}: anisotropic voxel size {tuple(sizes.tolist())} Å (x, y, z); "
            "cryomine needs isotropic voxels; pass --voxel-size to override"
        )
    return float(sizes[0])


def _resolve_voxel_size(
    path: Path, handle: mrcfile.mrcfile.MrcFile, override: float | None
) -> float:
    if override is not None:
        if not (math.isfinite(override) and override > 0):
            raise InputError(f"voxel size override {override!r} Å: expected a positive number")
        return float(override)
    return _voxel_size_from_header(path, handle)


def read_mrc_header(
    path: Path | str, *, voxel_size_a: float | None = None
) -> tuple[tuple[int, ...], float]:
    """Return ``(shape, voxel_size_a)`` of an MRC file without reading its data.

    ``shape`` is in ``(z, y, x)`` order (``(y, x)`` for a single image).
    """
    path = Path(path)
    _check_exists(path)
    _check_suffix(path)
    try:
        handle = mrcfile.open(path, mode="r", header_only=True)
    except (ValueError, OSError, EOFError, gzip.BadGzipFile) as strict_error:
        if path.suffix.lower() == ".gz" or not _plausible_header(path):
            raise InputError(f"{path}: not an MRC file ({strict_error})") from strict_error
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the problem is logged below
            handle = mrcfile.open(path, mode="r", header_only=True, permissive=True)
        logger.warning("%s: header is not standard (%s); read permissively", path, strict_error)
    with handle:
        header = handle.header
        shape: tuple[int, ...] = (int(header.nz), int(header.ny), int(header.nx))
        voxel = _resolve_voxel_size(path, handle, voxel_size_a)
    if shape[0] == 1:
        shape = shape[1:]
    return shape, voxel


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")


def read_mrc(
    path: Path | str,
    *,
    voxel_size_a: float | None = None,
    mmap: bool = True,
    check_finite: bool = True,
) -> tuple[np.ndarray, float]:
    """Read an MRC volume.

    Parameters
    ----------
    path
        ``.mrc .rec .st .map .mrcs .ali``, optionally gzipped (``.gz`` is read into memory).
    voxel_size_a
        Voxel size in Å that overrides the header; required when the header holds 0 or an
        anisotropic size.
    mmap
        Memory-map the file (default) so that a large tomogram is not loaded into memory. The
        returned array is then read-only and backed by the file.
    check_finite
        Reject data containing NaN or Inf. For memory-mapped files this reads the data once,
        in slabs, without holding it in memory.

    Returns
    -------
    data : ndarray, shape (z, y, x) (or (y, x) for a single image)
        The voxel values as stored (not copied when memory-mapped).
    voxel_size_a : float
        Isotropic voxel size in Å.
    """
    path = Path(path)
    _check_exists(path)
    _check_suffix(path)
    handle = _open(path, mmap=mmap)
    try:
        voxel = _resolve_voxel_size(path, handle, voxel_size_a)
        data = handle.data
        if data is None or data.size == 0:
            raise InputError(f"{path}: MRC file holds no data")
        if not mmap or path.suffix.lower() == ".gz":
            data = np.array(data)  # detach from the file so it can be closed
    except BaseException:
        handle.close()
        raise
    if not mmap or path.suffix.lower() == ".gz":
        handle.close()
    if check_finite:
        _check_finite(path, data)
    logger.debug("read %s: shape (z, y, x) %s, voxel size %.4g Å", path, data.shape, voxel)
    return data, voxel


def _check_finite(path: Path, data: np.ndarray) -> None:
    slab = max(1, (64 * 1024 * 1024) // max(1, data[0].nbytes)) if data.ndim == 3 else data.shape[0]
    for start in range(0, data.shape[0], slab):
        if not np.all(np.isfinite(data[start : start + slab])):
            raise InputError(f"{path}: data contain NaN or Inf values; expected finite numbers")


def write_mrc(
    path: Path | str,
    data: np.ndarray,
    voxel_size_a: float,
    *,
    overwrite: bool = True,
) -> Path:
    """Write ``data`` (z, y, x) as float32 MRC with the voxel size (Å) set, atomically.

    The file appears under ``path`` only once complete. ``.gz`` names are written gzipped.
    Data containing NaN or Inf are refused (:class:`InputError`).
    """
    path = Path(path)
    _check_suffix(path)
    if not (math.isfinite(voxel_size_a) and voxel_size_a > 0):
        raise InputError(f"voxel size {voxel_size_a!r} Å for {path}: expected a positive number")
    array = np.asarray(data, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise InputError(f"{path}: can only write 2-D or 3-D arrays, got shape {array.shape}")
    _check_finite(path, array)
    with atomic_path(path, overwrite=overwrite) as tmp:
        compression = "gzip" if path.suffix.lower() == ".gz" else None
        with mrcfile.new(tmp, overwrite=True, compression=compression) as handle:
            handle.set_data(array)
            handle.voxel_size = float(voxel_size_a)
            if array.ndim == 3:
                handle.header.ispg = 1  # a volume, not an image stack
            handle.update_header_stats()
    return path
