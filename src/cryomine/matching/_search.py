"""Template matching over a whole tomogram, tile by tile, with bounded memory.

The tomogram is cut into core tiles; each is scored with its halo (``S // 2`` voxels before and
``S - 1 - S // 2`` after, ``S`` the template box) so that every core position sees its whole
template window, and positions outside the tomogram read as the tomogram's mean. A tiled search
therefore gives the same scores as one FFT over the padded tomogram. The tomogram may be a
memory-mapped array: only one tile (with halo) is read at a time.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.matching._flcf import TileScores, score_tile
from cryomine.matching._template import Template

__all__ = ["Tile", "plan_tiles", "read_tile", "search_tiles", "tomogram_mean"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tile:
    """One core region of the tomogram: its corner and shape, z, y, x voxels."""

    index: int
    start: tuple[int, int, int]
    shape: tuple[int, int, int]


def _fft_size(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are 2, 3 and 5 (fast FFT sizes)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def plan_tiles(
    shape_zyx: Sequence[int], tile_shape: Sequence[int] | None, box_size: int
) -> list[Tile]:
    """Split a tomogram into core tiles of at most ``tile_shape`` voxels (the last ones smaller).

    Parameters
    ----------
    shape_zyx
        Tomogram shape, z, y, x.
    tile_shape
        Largest core tile, z, y, x; ``None``: the whole tomogram in one tile.
    box_size
        Template box ``S`` (each tile is scored with ``S - 1`` more voxels per axis).
    """
    shape = tuple(int(n) for n in shape_zyx)
    if tile_shape is None:
        tile = shape
    else:
        tile = tuple(int(n) for n in tile_shape)
        if len(tile) != 3 or min(tile) < 1:
            raise InputError(
                f"tile_shape: expected three positive sizes z, y, x, got {tile_shape!r}"
            )
        tile = tuple(min(t, n) for t, n in zip(tile, shape, strict=True))
    starts = [range(0, n, t) for n, t in zip(shape, tile, strict=True)]
    tiles = []
    for index, corner in enumerate(itertools.product(*starts)):
        size = tuple(min(t, n - c) for c, t, n in zip(corner, tile, shape, strict=True))
        tiles.append(Tile(index, tuple(int(c) for c in corner), size))  # type: ignore[arg-type]
    logger.debug("%d tiles of at most %s voxels (box %d)", len(tiles), tile, box_size)
    return tiles


def tomogram_mean(tomogram: np.ndarray, *, slab_bytes: int = 64 << 20) -> float:
    """Mean of a (memory-mapped) tomogram, read in slabs of z sections."""
    step = max(1, slab_bytes // max(1, tomogram[0].nbytes))
    total = 0.0
    for z in range(0, tomogram.shape[0], step):
        total += float(np.asarray(tomogram[z : z + step], dtype=np.float64).sum())
    return total / tomogram.size


def read_tile(
    tomogram: np.ndarray, tile: Tile, box_size: int, fill: float
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The tile with its halo, padded to a fast FFT size; outside the tomogram ``fill``.

    Returns
    -------
    volume : ndarray of float32
        The region to score, halo included.
    core_start : tuple of int
        Where the core begins in ``volume``.
    """
    before = box_size // 2
    after = box_size - 1 - before
    sizes = [_fft_size(n + before + after) for n in tile.shape]
    out = np.full(sizes, fill, dtype=np.float32)
    source, target = [], []
    for axis in range(3):
        low = tile.start[axis] - before
        high = low + sizes[axis]
        a, b = max(low, 0), min(high, tomogram.shape[axis])
        source.append(slice(a, b))
        target.append(slice(a - low, b - low))
    out[tuple(target)] = tomogram[tuple(source)]
    return out, (before, before, before)


def search_tiles(
    tomogram: np.ndarray,
    template: Template,
    matrices_xyz: np.ndarray,
    tiles: Sequence[Tile],
    *,
    fill: float | None = None,
    device: torch.device | str = "cpu",
    skip: Callable[[Tile], bool] | None = None,
    on_tile: Callable[[Tile, TileScores], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[Tile, TileScores]]:
    """Score every tile (those ``skip`` does not exclude) against all rotations.

    Parameters
    ----------
    tomogram
        ``(Z, Y, X)`` array (a memory map is fine).
    template
        The template.
    matrices_xyz
        ``(R, 3, 3)`` active rotation matrices (x, y, z vectors).
    tiles
        From :func:`plan_tiles`.
    fill
        Value of positions outside the tomogram; default its mean.
    device
        Torch device.
    skip
        ``skip(tile)`` true: the tile is done already (resuming), not scored.
    on_tile
        Called with each finished tile and its scores (to store them), so the caller need not
        keep them: then the returned list is empty.
    progress
        ``progress(n_done, n_total)`` over tiles × rotations.

    Returns
    -------
    list of (Tile, TileScores)
        The tiles scored, when ``on_tile`` is None.
    """
    if tomogram.ndim != 3:
        raise InputError(f"tomogram: expected a (Z, Y, X) volume, got shape {tomogram.shape}")
    fill = tomogram_mean(tomogram) if fill is None else float(fill)
    todo = [tile for tile in tiles if skip is None or not skip(tile)]
    n_rot = len(matrices_xyz)
    results: list[tuple[Tile, TileScores]] = []
    for number, tile in enumerate(todo):
        volume, core_start = read_tile(tomogram, tile, template.box_size, fill)
        report = None
        if progress is not None:

            def report(done: int, total: int, offset: int = number * n_rot) -> None:
                progress(offset + done, len(todo) * n_rot)

        scores = score_tile(
            volume, template, matrices_xyz, core_start, tile.shape, device=device, progress=report
        )
        logger.info(
            "tile %d %s+%s: max score %.4f", tile.index, tile.start, tile.shape, scores.scores.max()
        )
        if on_tile is not None:
            on_tile(tile, scores)
        else:
            results.append((tile, scores))
    return results


def score_statistics(sum_: float, sum_squares: float, count: int) -> tuple[float, float]:
    """Mean and standard deviation of the scores over positions × rotations."""
    if count < 2:
        raise InputError("score statistics need at least two scores")
    mean = sum_ / count
    variance = max(sum_squares / count - mean**2, 0.0)
    return mean, math.sqrt(variance)
