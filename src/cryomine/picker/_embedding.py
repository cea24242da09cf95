"""Embedding windows and whole tomograms with a :class:`~cryomine.picker.PickerNet`.

Input scaling (the same for training and use): the tomogram is z-scored over its whole volume
and made **protein dark** (``contrast="bright"`` tomograms are negated), and everything outside
it counts as 0 (the mean). The window of a centre voxel ``c`` (z, y, x) spans
``c − window // 2 … c − window // 2 + window − 1`` per axis, so ``c`` is the window's box centre
``n // 2``.

Dense embedding: output index ``i`` (per axis) is the embedding of the window centred on voxel
``i · stride``; the result has ``ceil(n / stride)`` entries per axis. The network is applied to
overlapping tiles of the zero-padded tomogram that are aligned to its native stride of 4 voxels,
so each output is computed from exactly its own window: tiled and untiled results are equal up to
float rounding, and memory is bounded by the tile size, not the tomogram's. Strides 1 and 2 run
``(4 / stride)³`` passes on shifted grids; strides that are multiples of 4 keep every
``stride / 4``-th native output.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.picker._network import NATIVE_STRIDE, PickerNet

__all__ = [
    "cut_windows",
    "embed_tomogram",
    "embed_windows",
    "normalize_tomogram",
    "tomogram_statistics",
]

logger = logging.getLogger(__name__)


def tomogram_statistics(tomogram: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of a tomogram (read slab by slab when memory-mapped)."""
    from cryomine.io import volume_statistics

    return volume_statistics(tomogram, slab=64)


def normalize_tomogram(
    tomogram: np.ndarray,
    *,
    contrast: str = "dark",
    statistics: tuple[float, float] | None = None,
) -> np.ndarray:
    """float32 copy z-scored by the tomogram's statistics, protein dark.

    Parameters
    ----------
    tomogram : ndarray, shape (z, y, x)
        A tomogram, or a subvolume cut from one (then pass that tomogram's ``statistics``).
    contrast
        ``"dark"`` (as reconstructed; kept) or ``"bright"`` (negated).
    statistics
        ``(mean, std)`` to use; default: :func:`tomogram_statistics` of ``tomogram`` itself.
    """
    if tomogram.ndim != 3:
        raise InputError(f"tomogram has shape {tomogram.shape}; expected a 3-D (z, y, x) volume")
    if contrast not in ("dark", "bright"):
        raise InputError(f"contrast {contrast!r}: expected 'dark' or 'bright'")
    mean, std = tomogram_statistics(tomogram) if statistics is None else statistics
    if std == 0:
        raise InputError("tomogram is constant; it cannot be embedded")
    sign = -1.0 if contrast == "bright" else 1.0
    return (sign * (np.asarray(tomogram, dtype=np.float32) - mean) / std).astype(np.float32)


def cut_windows(volume: np.ndarray, centres_zyx: np.ndarray, window: int) -> np.ndarray:
    """Windows ``(n, window, window, window)`` centred on integer voxels, 0 outside the volume.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x)
        A normalised tomogram (:func:`normalize_tomogram`).
    centres_zyx : ndarray, shape (n, 3)
        Window centres, voxels, z, y, x; rounded to the nearest voxel.
    window
        Window edge, voxels.
    """
    centres = np.rint(np.asarray(centres_zyx, dtype=np.float64).reshape(-1, 3)).astype(np.int64)
    out = np.zeros((len(centres), window, window, window), dtype=np.float32)
    shape = np.asarray(volume.shape)
    for i, centre in enumerate(centres):
        start = centre - window // 2
        low = np.maximum(start, 0)
        high = np.minimum(start + window, shape)
        if np.any(high <= low):
            continue
        source = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        target = tuple(slice(a - s, b - s) for a, b, s in zip(low, high, start, strict=True))
        out[(i, *target)] = volume[source]
    return out


def embed_windows(
    model: PickerNet,
    windows: np.ndarray,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Embeddings ``(n, D)`` float32 (unit norm) of windows ``(n, window, window, window)``."""
    model.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch_size]))
            parts.append(model.embed_windows(batch.to(device)).cpu().numpy())
    if not parts:
        return np.zeros((0, model.config.embedding_dim), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


def _check_stride(stride: int) -> None:
    if (
        isinstance(stride, bool)
        or not isinstance(stride, (int, np.integer))
        or stride < 1
        or (stride < NATIVE_STRIDE and NATIVE_STRIDE % stride)
        or (stride > NATIVE_STRIDE and stride % NATIVE_STRIDE)
    ):
        raise InputError(f"stride {stride!r}: expected 1, 2, 4 or a multiple of 4 voxels")


def embed_tomogram(
    model: PickerNet,
    tomogram: np.ndarray,
    *,
    stride: int = NATIVE_STRIDE,
    tile_size: int = 32,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Dense embedding of a normalised tomogram (module docstring for the sampling).

    Parameters
    ----------
    model
        The embedding network (evaluation mode is set here).
    tomogram : ndarray, shape (z, y, x)
        Output of :func:`normalize_tomogram`.
    stride
        Output spacing, voxels: 1, 2, 4 or a multiple of 4.
    tile_size
        Native outputs per tile edge (input tiles are ``4 · (tile_size − 1) + window`` voxels).
    device
        Torch device the network runs on.
    progress
        ``progress(n_done, n_total)`` after each tile.

    Returns
    -------
    ndarray, shape (ceil(z / stride), ceil(y / stride), ceil(x / stride), D), float32
        Unit-norm embeddings; ``[i, j, k]`` belongs to voxel ``(i, j, k) · stride``.
    """
    _check_stride(stride)
    if tomogram.ndim != 3:
        raise InputError(f"tomogram has shape {tomogram.shape}; expected a 3-D (z, y, x) volume")
    if tile_size < 1:
        raise InputError(f"tile size {tile_size}: expected at least 1")
    model.eval()
    window = model.config.window
    shape = tomogram.shape
    n_out = [math.ceil(n / stride) for n in shape]
    out = np.zeros((*n_out, model.config.embedding_dim), dtype=np.float32)
    half = window // 2
    padded = np.pad(np.asarray(tomogram, dtype=np.float32), [(half, half)] * 3)
    if stride < NATIVE_STRIDE:
        offsets = list(itertools.product(range(0, NATIVE_STRIDE, stride), repeat=3))
        n_native = [
            [math.ceil((n - o) / NATIVE_STRIDE) for o in range(0, 4, stride)] for n in shape
        ]
    else:
        offsets = [(0, 0, 0)]
        sub = stride // NATIVE_STRIDE
        n_native = [[sub * (m - 1) + 1] for m in n_out]
    jobs = []
    for offset in offsets:
        counts = [
            n_native[a][offset[a] // stride if stride < NATIVE_STRIDE else 0] for a in range(3)
        ]
        starts = [range(0, c, tile_size) for c in counts]
        for tile in itertools.product(*starts):
            jobs.append((offset, tile, counts))
    logger.info(
        "embedding %s at stride %d: %d tiles, output %s", shape, stride, len(jobs), tuple(n_out)
    )
    with torch.inference_mode():
        for i_job, (offset, tile, counts) in enumerate(jobs):
            stop = [min(t + tile_size, c) for t, c in zip(tile, counts, strict=True)]
            region = tuple(
                slice(NATIVE_STRIDE * a + o, NATIVE_STRIDE * (b - 1) + o + window)
                for a, b, o in zip(tile, stop, offset, strict=True)
            )
            block = torch.from_numpy(np.ascontiguousarray(padded[region]))[None, None]
            emb = model(block.to(device))[0].permute(1, 2, 3, 0).cpu().numpy()
            if stride < NATIVE_STRIDE:
                step = NATIVE_STRIDE // stride
                target = tuple(
                    slice((NATIVE_STRIDE * a + o) // stride, None, step)
                    for a, o in zip(tile, offset, strict=True)
                )
                target = tuple(
                    slice(t.start, t.start + step * (b - a), step)
                    for t, a, b in zip(target, tile, stop, strict=True)
                )
                out[target] = emb
            else:
                sub = stride // NATIVE_STRIDE
                first = [(-a) % sub for a in tile]
                kept = emb[first[0] :: sub, first[1] :: sub, first[2] :: sub]
                target = tuple(
                    slice((a + f) // sub, (a + f) // sub + k)
                    for a, f, k in zip(tile, first, kept.shape[:3], strict=True)
                )
                out[target] = kept
            if progress is not None:
                progress(i_job + 1, len(jobs))
    return out
