"""Placing class averages, in each particle's orientation, into a tomogram-sized map.

For every particle the average of its class is rotated and shifted as the particle table says and
added at the particle's position (``docs/conventions.md``: the density at tomogram voxel ``x`` is
``average(R⁻¹ (x − p) + c)`` with ``p`` the particle centre from :func:`cryomine.io.positions_zyx`,
origin shifts included, and ``c`` the centre ``m // 2`` of the resampled average box). Averages
are first resampled from their voxel size to the tomogram's (trilinear) and multiplied by a soft
sphere that fills their box, so box corners do not leave edges in the map.

Two maps come out: the *density* (float32, the sum of all placed averages, protein bright), and
the *labels* (int16): the class number wherever that class's placed average exceeds
``threshold_fraction`` times the maximum of the (resampled, masked) average, 0 elsewhere.
Classes are placed in increasing class number, so where particles of different classes overlap
above their thresholds the higher class number wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from cryomine.errors import InputError
from cryomine.geometry import sphere_mask, transform_volumes
from cryomine.io import COLUMNS, positions_zyx, rotations_from_table
from cryomine.io._atomic import atomic_path

__all__ = ["place_averages", "place_run", "resample_average", "write_placement"]

logger = logging.getLogger(__name__)

_BATCH = 32


def resample_average(volume: np.ndarray, *, from_voxel_a: float, to_voxel_a: float) -> np.ndarray:
    """Resample a cubic ``(S, S, S)`` map to another voxel size about its centre ``S // 2``.

    The output box has ``m = max(2, round(S · from_voxel_a / to_voxel_a))`` voxels per edge and
    its centre ``m // 2`` holds the same physical point as the input centre (trilinear, zero
    outside). Returns float32 ``(m, m, m)``; the input itself (as float32) when the sizes match.
    """
    array = np.asarray(volume, dtype=np.float32)
    if array.ndim != 3 or len(set(array.shape)) != 1:
        raise InputError(f"average: expected a cubic (S, S, S) map, got shape {array.shape}")
    for name, value in (("from_voxel_a", from_voxel_a), ("to_voxel_a", to_voxel_a)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{name}: expected a positive voxel size in Å, got {value!r}")
    ratio = float(from_voxel_a) / float(to_voxel_a)
    if abs(ratio - 1.0) < 1e-6:
        return array.copy()
    size = array.shape[0]
    m = max(2, round(size * ratio))
    step = 1.0 / ratio
    coords = (np.arange(m, dtype=np.float64) - m // 2) * step + size // 2
    grid = np.meshgrid(coords, coords, coords, indexing="ij")
    return ndimage.map_coordinates(array, grid, order=1, mode="constant", cval=0.0).astype(
        np.float32
    )


def _prepare(average: np.ndarray, from_voxel_a: float, to_voxel_a: float) -> np.ndarray:
    resampled = resample_average(average, from_voxel_a=from_voxel_a, to_voxel_a=to_voxel_a)
    m = resampled.shape[0]
    edge = max(1.0, m / 16.0)
    return resampled * sphere_mask(
        resampled.shape, max(0.0, m / 2.0 - 1.0 - edge), soft_edge_px=edge
    )


def place_averages(
    table: pd.DataFrame,
    averages: Mapping[int, np.ndarray],
    *,
    average_voxel_size_a: float,
    tomogram_voxel_size_a: float,
    density: np.ndarray,
    labels: np.ndarray | None = None,
    threshold_fraction: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Add each particle's class average, rotated and shifted, into ``density`` (and ``labels``).

    Parameters
    ----------
    table
        Particle table (canonical) with ``rlnClassNumber``; all rows are placed (filter by
        tomogram first). Positions (z, y, x tomogram voxels) come from
        :func:`cryomine.io.positions_zyx` after rescaling to ``tomogram_voxel_size_a``,
        orientations from :func:`cryomine.io.rotations_from_table`. Rows whose class has no
        average are skipped.
    averages
        Class number (1-based) → ``(S, S, S)`` average, protein bright.
    average_voxel_size_a, tomogram_voxel_size_a
        Å per voxel of the averages and of the output maps.
    density
        Writable float32 ``(Z, Y, X)`` array (e.g. a memory map), added to in place.
    labels
        Optional writable int ``(Z, Y, X)`` array of the same shape, overwritten with class
        numbers where the placed average is above threshold.
    threshold_fraction
        Label threshold as a fraction of each average's maximum, in ``(0, 1]``.
    progress
        ``callback(particles_done, particles_total)``.

    Returns
    -------
    int
        Number of particles placed.
    """
    if density.ndim != 3:
        raise InputError(f"density: expected a (Z, Y, X) array, got shape {density.shape}")
    if labels is not None and labels.shape != density.shape:
        raise InputError(f"labels: shape {labels.shape} differs from the density's {density.shape}")
    if not (0 < threshold_fraction <= 1):
        raise InputError(
            f"threshold_fraction: expected a number in (0, 1], got {threshold_fraction!r}"
        )
    if COLUMNS.class_number not in table.columns:
        raise InputError(
            f"particle table: no {COLUMNS.class_number} column; expected sorted particles"
        )
    table = table.reset_index(drop=True)
    pixel = table[COLUMNS.pixel_size].to_numpy(dtype=np.float64)
    centres = positions_zyx(table) * (pixel / float(tomogram_voxel_size_a))[:, None]
    rotations = rotations_from_table(table)
    classes = table[COLUMNS.class_number].to_numpy()
    prepared = {
        int(k): _prepare(v, average_voxel_size_a, tomogram_voxel_size_a)
        for k, v in sorted(averages.items())
    }
    rows = np.flatnonzero(np.isin(classes, list(prepared)))
    shape = np.array(density.shape)
    done = 0
    for k, box in prepared.items():
        members = rows[classes[rows] == k]
        m = box.shape[0]
        threshold = threshold_fraction * float(box.max())
        for start in range(0, len(members), _BATCH):
            batch = members[start : start + _BATCH]
            whole = np.rint(centres[batch])
            placed, _ = transform_volumes(
                torch.as_tensor(box)[None].expand(len(batch), -1, -1, -1),
                rotations[batch].as_matrix(),
                centres[batch] - whole,
            )
            placed_np = placed.numpy()
            for i, corner in enumerate(whole.astype(np.int64) - m // 2):
                _add(density, labels, placed_np[i], corner, shape, k, threshold)
            done += len(batch)
            if progress is not None:
                progress(done, len(rows))
    logger.info("placed %d particles of %d classes", done, len(prepared))
    return done


def _add(
    density: np.ndarray,
    labels: np.ndarray | None,
    box: np.ndarray,
    corner: np.ndarray,
    shape: np.ndarray,
    label: int,
    threshold: float,
) -> None:
    lo = np.maximum(corner, 0)
    hi = np.minimum(corner + np.array(box.shape), shape)
    if np.any(hi <= lo):
        return
    target = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    source = tuple(slice(a - c, b - c) for a, b, c in zip(lo, hi, corner, strict=True))
    piece = box[source]
    density[target] += piece
    if labels is not None:
        region = labels[target]
        region[piece > threshold] = label
        labels[target] = region


def write_placement(
    table: pd.DataFrame,
    averages: Mapping[int, np.ndarray],
    *,
    average_voxel_size_a: float,
    tomogram_shape_zyx: tuple[int, int, int],
    tomogram_voxel_size_a: float,
    density_path: Path,
    labels_path: Path | None = None,
    threshold_fraction: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Place into new MRC files written through memory maps (atomically); return the count.

    ``density_path`` gets float32, ``labels_path`` int16 maps of ``tomogram_shape_zyx`` with
    the voxel size set; see :func:`place_averages` for the rest.
    """
    shape = tuple(int(n) for n in tomogram_shape_zyx)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"tomogram shape: expected (Z, Y, X), got {tomogram_shape_zyx!r}")
    with ExitStack() as stack:
        density_tmp = stack.enter_context(atomic_path(density_path))
        out = stack.enter_context(
            mrcfile.new_mmap(density_tmp, shape, mrc_mode=2, fill=0, overwrite=True)
        )
        label_out = None
        if labels_path is not None:
            labels_tmp = stack.enter_context(atomic_path(labels_path))
            label_out = stack.enter_context(
                mrcfile.new_mmap(labels_tmp, shape, mrc_mode=1, fill=0, overwrite=True)
            )
        count = place_averages(
            table,
            averages,
            average_voxel_size_a=average_voxel_size_a,
            tomogram_voxel_size_a=tomogram_voxel_size_a,
            density=out.data,
            labels=None if label_out is None else label_out.data,
            threshold_fraction=threshold_fraction,
            progress=progress,
        )
        for handle in (out, label_out):
            if handle is not None:
                _finish(handle, tomogram_voxel_size_a)
    return count


def _finish(handle: mrcfile.mrcmemmap.MrcMemmap, voxel_size_a: float) -> None:
    handle.voxel_size = float(voxel_size_a)
    handle.header.ispg = 1
    handle.update_header_stats()


def place_run(
    run_dir: Path | str,
    average_dir: Path | str,
    *,
    tomogram: Path | str,
    density_path: Path | str,
    labels_path: Path | str | None = None,
    threshold_fraction: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Place the averages of ``average_dir`` for the particles of one tomogram (``cryomine place``).

    Reads ``average_dir/particles.star`` (orientations, origins, classes) and every
    ``average_dir/class_NNN.mrc``; keeps the rows whose ``rlnTomoName`` equals
    :func:`cryomine.io.tomogram_name` of ``tomogram``; takes shape and voxel size from the
    tomogram's header. ``run_dir`` must be the sort run directory (checked to exist).
    Returns the number of particles placed.
    """
    from cryomine.io import read_mrc, read_mrc_header, read_particles, tomogram_name

    run_dir, average_dir, tomogram = Path(run_dir), Path(average_dir), Path(tomogram)
    if not (run_dir / "particles.star").is_file():
        raise InputError(f"{run_dir}: no particles.star; expected a cryomine sort run directory")
    if not (average_dir / "particles.star").is_file():
        raise InputError(f"{average_dir}: no particles.star; expected a cryomine average directory")
    shape, tomo_voxel = read_mrc_header(tomogram)
    if len(shape) != 3:
        raise InputError(f"{tomogram}: expected a 3-D tomogram, got shape {shape}")
    table = read_particles(average_dir / "particles.star")
    name = tomogram_name(tomogram)
    table = table[table[COLUMNS.tomo_name] == name].reset_index(drop=True)
    if table.empty:
        raise InputError(
            f"{average_dir / 'particles.star'}: no particles with {COLUMNS.tomo_name} {name!r}"
        )
    averages: dict[int, np.ndarray] = {}
    voxels: set[float] = set()
    for path in sorted(average_dir.glob("class_[0-9][0-9][0-9].mrc")):
        data, voxel = read_mrc(path, mmap=False)
        averages[int(path.stem.split("_")[1])] = np.asarray(data, dtype=np.float32)
        voxels.add(round(float(voxel), 4))
    if not averages:
        raise InputError(f"{average_dir}: no class_NNN.mrc averages found")
    if len(voxels) != 1:
        raise InputError(
            f"{average_dir}: class averages have different voxel sizes {sorted(voxels)} Å"
        )
    return write_placement(
        table,
        averages,
        average_voxel_size_a=voxels.pop(),
        tomogram_shape_zyx=shape,  # type: ignore[arg-type]
        tomogram_voxel_size_a=tomo_voxel,
        density_path=Path(density_path),
        labels_path=None if labels_path is None else Path(labels_path),
        threshold_fraction=threshold_fraction,
        progress=progress,
    )
