"""Particle sets: a directory holding a particle table and its stack of z-scored subtomograms.

Layout (``format_version`` 1)::

    <directory>/
        particles.star        canonical particle table (RELION 4 flavour); row i ↔ stack index i
        subtomograms.zarr     float32 Zarr array (N, S, S, S), axes (particle, z, y, x),
                              chunks of up to 16 particles; attrs: box_size, voxel_size_a,
                              normalized (true), format_version, n_particles

Subtomograms are protein-bright and each is z-scored (mean 0, sd 1 over its box) on writing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryomine.errors import InputError
from cryomine.io._atomic import atomic_directory
from cryomine.io._normalize import normalize_subtomograms
from cryomine.io._particle_table import COLUMNS
from cryomine.io._stack import as_subtomogram_stack
from cryomine.io._star import read_particles, write_particles

__all__ = [
    "FORMAT_VERSION",
    "ParticleSet",
    "merge_particle_sets",
    "write_particle_set",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_TABLE = "particles.star"
_STACK = "subtomograms.zarr"
_CHUNK = 16


def _batches(subtomograms: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    if isinstance(subtomograms, np.ndarray):
        if subtomograms.ndim != 4:
            raise InputError(f"subtomograms: expected shape (N, S, S, S), got {subtomograms.shape}")
        if len(subtomograms) == 0:
            yield subtomograms
        for start in range(0, len(subtomograms), _CHUNK):
            yield subtomograms[start : start + _CHUNK]
    else:
        yield from subtomograms


def _check_batch(batch: Any, box_size: int | None) -> np.ndarray:
    array = as_subtomogram_stack(batch, name="subtomograms (a batch)", dtype=None)
    if box_size is not None and array.shape[1] != box_size:
        raise InputError(
            f"subtomograms: box size {array.shape[1]} differs from the first batch's {box_size}"
        )
    return array


def write_particle_set(
    directory: Path | str,
    table: pd.DataFrame,
    subtomograms: np.ndarray | Iterable[np.ndarray],
    *,
    voxel_size_a: float,
    overwrite: bool = False,
) -> ParticleSet:
    """Write a particle set directory atomically and return it opened.

    Parameters
    ----------
    directory
        Output directory; it appears only once complete.
    table
        Particle table with one row per subtomogram, in stack order (validated to canonical form).
    subtomograms
        ndarray ``(N, S, S, S)`` (z, y, x per particle), or an iterable of batches
        ``(n_i, S, S, S)`` with ``Σ n_i = N``, so that large sets can be streamed. Each
        subtomogram is z-scored (:func:`normalize_subtomograms`) as it is written.
    voxel_size_a
        Å per voxel of the subtomograms.
    overwrite
        Replace an existing directory (after the new one is complete).

    Raises
    ------
    InputError
        Count mismatch with the table, non-cubic or inconsistent boxes, non-finite values, bad
        voxel size, existing output without ``overwrite``. Nothing is left behind.
    """
    import zarr

    directory = Path(directory)
    if not (math.isfinite(voxel_size_a) and voxel_size_a > 0):
        raise InputError(f"voxel size {voxel_size_a!r} Å: expected a positive number")
    n_particles = len(table)
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        write_particles(tmp / _TABLE, table)
        array: Any = None
        box_size: int | None = None
        done = 0
        for raw in _batches(subtomograms):
            batch = _check_batch(raw, box_size)
            if array is None:
                box_size = int(batch.shape[1])
                array = zarr.create_array(
                    store=str(tmp / _STACK),
                    shape=(n_particles, box_size, box_size, box_size),
                    chunks=(max(1, min(_CHUNK, n_particles)), box_size, box_size, box_size),
                    dtype="float32",
                    compressors=None,
                    dimension_names=("particle", "z", "y", "x"),
                )
            if done + len(batch) > n_particles:
                raise InputError(
                    f"subtomograms: more than the {n_particles} particles in the table"
                )
            array[done : done + len(batch)] = normalize_subtomograms(batch)
            done += len(batch)
        if array is None or done != n_particles:
            raise InputError(f"subtomograms: {done} given for a table of {n_particles} particles")
        array.attrs.update(
            {
                "format_version": FORMAT_VERSION,
                "box_size": box_size,
                "voxel_size_a": float(voxel_size_a),
                "normalized": True,
                "n_particles": n_particles,
                "axes": ["particle", "z", "y", "x"],
            }
        )
    logger.info(
        "wrote particle set %s: %d particles, box %s, %.4g Å",
        directory,
        n_particles,
        box_size,
        voxel_size_a,
    )
    return ParticleSet.open(directory)


class ParticleSet:
    """A particle set on disk: the table in memory, the subtomograms read on demand from Zarr.

    Open with :meth:`ParticleSet.open`. Subtomograms come back as float32 ``(n, S, S, S)``
    arrays, axes (particle, z, y, x), z-scored and protein-bright.
    """

    def __init__(
        self, directory: Path, table: pd.DataFrame, array: Any, rows: np.ndarray | None = None
    ) -> None:
        self._directory = directory
        self._table = table
        self._array = array
        self._rows = rows  # a subset's rows of the stored stack, None for the whole set

    @classmethod
    def open(cls, directory: Path | str) -> ParticleSet:
        """Open a particle set directory; :class:`InputError` if it is missing or incomplete."""
        import zarr

        directory = Path(directory)
        if not directory.is_dir():
            raise InputError(f"{directory}: particle set directory not found")
        for name in (_TABLE, _STACK):
            if not (directory / name).exists():
                raise InputError(f"{directory}: not a particle set (no {name})")
        try:
            array = zarr.open_array(str(directory / _STACK), mode="r")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{directory / _STACK}: not a readable Zarr array ({error})"
            ) from error
        attrs = array.attrs.asdict()
        version = attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise InputError(
                f"{directory}: particle set format_version {version!r}; expected {FORMAT_VERSION}"
            )
        table = read_particles(directory / _TABLE)
        if array.ndim != 4 or array.shape[0] != len(table) or len(set(array.shape[1:])) != 1:
            raise InputError(
                f"{directory}: subtomogram stack of shape {array.shape} does not match "
                f"{len(table)} table rows with a cubic box"
            )
        return cls(directory, table, array)

    @property
    def directory(self) -> Path:
        """The particle set's directory."""
        return self._directory

    @property
    def table(self) -> pd.DataFrame:
        """A copy of the canonical particle table; row i describes subtomogram i."""
        return self._table.copy()

    @property
    def n_particles(self) -> int:
        """Number of particles N."""
        return int(self._array.shape[0] if self._rows is None else self._rows.size)

    @property
    def box_size(self) -> int:
        """Edge length S of the cubic subtomograms, in voxels."""
        return int(self._array.shape[1])

    @property
    def voxel_size_a(self) -> float:
        """Å per voxel of the subtomograms."""
        return float(self._array.attrs["voxel_size_a"])

    @property
    def has_truth(self) -> bool:
        """Whether the table carries simulation truth (``cmTrueClass``)."""
        return COLUMNS.true_class in self._table.columns

    def __len__(self) -> int:
        return self.n_particles

    def subset(self, indices: Iterable[int] | np.ndarray) -> ParticleSet:
        """A view of the particles at ``indices`` (0-based, in that order), read from the same
        stack: its table rows are those particles' rows and its particle ``i`` is ``indices[i]``."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= self.n_particles):
            raise IndexError(
                f"particle indices must lie in [0, {self.n_particles}); "
                f"got {index.min()}..{index.max()}"
            )
        rows = index if self._rows is None else self._rows[index]
        table = self._table.iloc[index].reset_index(drop=True)
        return ParticleSet(self._directory, table, self._array, rows)

    def __repr__(self) -> str:
        return (
            f"ParticleSet({str(self._directory)!r}, n_particles={self.n_particles}, "
            f"box_size={self.box_size}, voxel_size_a={self.voxel_size_a:g})"
        )

    def read(self, indices: Iterable[int] | np.ndarray) -> np.ndarray:
        """Subtomograms at ``indices`` (any order, repeats allowed) as float32 ``(n, S, S, S)``."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= self.n_particles):
            raise IndexError(
                f"particle indices must lie in [0, {self.n_particles}); "
                f"got {index.min()}..{index.max()}"
            )
        size = self.box_size
        if index.size == 0:
            return np.empty((0, size, size, size), dtype=np.float32)
        if self._rows is not None:
            index = self._rows[index]
        if np.all(np.diff(index) == 1):
            data = self._array[int(index[0]) : int(index[-1]) + 1]
        else:
            data = self._array.oindex[index]
        return np.asarray(data, dtype=np.float32)

    def iter_batches(
        self, batch_size: int, *, indices: Iterable[int] | np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream ``(indices, subtomograms)`` batches of at most ``batch_size`` particles.

        Batches follow ``indices`` (default ``0..N-1``) in order; ``indices`` is an int64 array
        ``(n,)`` and ``subtomograms`` float32 ``(n, S, S, S)``.
        """
        if batch_size < 1:
            raise InputError(f"batch size {batch_size}: expected a positive number of particles")
        order = (
            np.arange(self.n_particles, dtype=np.int64)
            if indices is None
            else np.asarray(indices, dtype=np.int64).reshape(-1)
        )
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            yield chunk, self.read(chunk)


def merge_particle_sets(
    directories: Sequence[Path | str],
    output: Path | str,
    *,
    batch_size: int = 256,
    overwrite: bool = False,
) -> ParticleSet:
    """Concatenate particle sets (e.g. one per tomogram) into one, streaming the subtomograms.

    Rows keep their columns (``rlnTomoName`` tells the tomograms apart); ``cmParticleId`` is
    renumbered 1..N in the merged order, and the original id is kept as ``cmSourceParticleId``.
    All sets must share the box size and voxel size.
    """
    sets = [ParticleSet.open(d) for d in directories]
    if not sets:
        raise InputError("no particle sets to merge")
    first = sets[0]
    for other in sets[1:]:
        if other.box_size != first.box_size or not math.isclose(
            other.voxel_size_a, first.voxel_size_a, rel_tol=1e-6
        ):
            raise InputError(
                f"{other.directory}: box {other.box_size} at {other.voxel_size_a:.4g} Å differs from "
                f"{first.directory}: box {first.box_size} at {first.voxel_size_a:.4g} Å; extract all "
                "tomograms with the same --box, --bin and voxel size"
            )
    tables = []
    for particle_set in sets:
        table = particle_set.table
        table["cmSourceParticleId"] = table["cmParticleId"]
        tables.append(table)
    merged = pd.concat(tables, ignore_index=True)
    merged["cmParticleId"] = np.arange(1, len(merged) + 1)

    def batches() -> Iterator[np.ndarray]:
        for particle_set in sets:
            for _, batch in particle_set.iter_batches(batch_size):
                yield batch

    return write_particle_set(
        output, merged, batches(), voxel_size_a=first.voxel_size_a, overwrite=overwrite
    )
