"""The fast local correlation function (FLCF, Roseman 2003) of one volume over many rotations.

For a template ``T`` rotated by ``R``, filtered (missing wedge, CTF), and normalised under its
mask ``M`` (``N = Σ M``), the score at position ``x`` of a volume ``f`` is

    C(x) = Σ_k M(k) T'(k) f(x + k) / (N · σ_f(x)),
    T'   = (T - μ_M(T)) / σ_M(T)  (mean and standard deviation under ``M``),
    σ_f(x)² = Σ_k M(k) f(x + k)² / N - (Σ_k M(k) f(x + k) / N)²,

with ``k`` running over the template box relative to its centre ``S // 2``. It is the Pearson
correlation of the template with the mask-weighted neighbourhood of ``x`` (in ``[-1, 1]`` for a
binary mask). The three sums are circular correlations computed with FFTs of the whole volume;
the caller passes a volume with a halo of ``S // 2`` voxels before and ``S - 1 - S // 2`` after
the core region it wants, so that no sum wraps around.

Conventions: volumes ``(z, y, x)``; rotations active on x, y, z vectors about the box centre
(:func:`cryomine.geometry.transform_volumes`), mapping the template onto the particle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.matching._template import Template

__all__ = ["TileScores", "flcf_max", "prepare_rotated", "score_tile"]

#: Positions whose local standard deviation is below this fraction of the volume's are scored 0.
_FLAT_FRACTION = 1e-3
#: Floats of one batch of rotated templates padded to the volume (about 8 MiB of float32).
_BATCH_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class TileScores:
    """The best score over rotations at every core position of one volume.

    Attributes
    ----------
    scores
        float32 ``core_shape`` (z, y, x): the best FLCF over the rotations.
    indices
        int64 ``core_shape``: the index (into the rotation list) of the best rotation.
    sum, sum_squares, count
        Sums of the scores and of their squares over every core position **and every
        rotation**, and the number of terms (positions × rotations): the search statistics.
    """

    scores: np.ndarray
    indices: np.ndarray
    sum: float
    sum_squares: float
    count: int


def _corner_spectrum(small: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``rfftn`` of ``(B, S, S, S)`` boxes zero-padded to ``shape`` at the corner (index 0).

    Pruned: each axis is transformed only over the lines that hold data (``torch.fft`` pads
    with zeros at the end when ``n`` is larger than the input).
    """
    out = torch.fft.rfft(small, n=shape[2], dim=-1)
    out = torch.fft.fft(out, n=shape[1], dim=-2)
    return torch.fft.fft(out, n=shape[0], dim=-3)


def _cropped_inverse(
    spectrum: torch.Tensor, shape: tuple[int, int, int], region: tuple[slice, ...]
) -> torch.Tensor:
    """``irfftn(spectrum, s=shape)[..., region]``, transforming only the lines that are kept."""
    out = torch.fft.ifft(spectrum, dim=-3)[..., region[0], :, :]
    out = torch.fft.ifft(out, dim=-2)[..., region[1], :]
    return torch.fft.irfft(out, n=shape[2], dim=-1)[..., region[2]]


def prepare_rotated(
    template: Template, matrices_xyz: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate, filter and normalise the template for a batch of rotations.

    Parameters
    ----------
    template
        The template.
    matrices_xyz
        ``(B, 3, 3)`` active rotation matrices acting on x, y, z vectors.
    device
        Where to work.

    Returns
    -------
    normalised : Tensor, shape (B, S, S, S)
        ``M · T'`` per rotation (float32): filtered, zero mean and unit variance under the mask.
    masks : Tensor, shape (B, S, S, S) or (1, S, S, S)
        The mask per rotation (one shared mask when it is spherical).
    """
    from cryomine.geometry import transform_volumes

    batch = len(matrices_xyz)
    box = template.box_size
    density = torch.as_tensor(template.density, device=device)[None].expand(batch, -1, -1, -1)
    rotated, _ = transform_volumes(density.contiguous(), matrices_xyz)
    weights = torch.as_tensor(template.fourier_filter, device=device)
    dims = (-3, -2, -1)
    filtered = torch.fft.irfftn(
        torch.fft.rfftn(rotated, dim=dims) * weights, s=(box,) * 3, dim=dims
    )
    mask = torch.as_tensor(template.mask, device=device)[None]
    if not template.mask_is_spherical:
        mask, _ = transform_volumes(mask.expand(batch, -1, -1, -1).contiguous(), matrices_xyz)
        mask = mask.clamp(0.0, 1.0)
    n_mask = mask.sum(dim=dims, keepdim=True)
    mean = (filtered * mask).sum(dim=dims, keepdim=True) / n_mask
    centred = filtered - mean
    variance = (centred**2 * mask).sum(dim=dims, keepdim=True) / n_mask
    normalised = centred * mask / torch.sqrt(variance.clamp_min(1e-30))
    return normalised, mask


def _local_std(
    spectrum: torch.Tensor,
    spectrum_sq: torch.Tensor,
    masks: torch.Tensor,
    shape: tuple[int, int, int],
    region: tuple[slice, ...],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``N · σ_f(x)`` over ``region`` for each mask and ``N`` per mask (``(B, 1, 1, 1)``)."""
    dims = (-3, -2, -1)
    mask_spectrum = _corner_spectrum(masks, shape)
    n_mask = masks.sum(dim=dims).reshape(-1, 1, 1, 1)
    mean = _cropped_inverse(spectrum * mask_spectrum.conj(), shape, region) / n_mask
    mean_sq = _cropped_inverse(spectrum_sq * mask_spectrum.conj(), shape, region) / n_mask
    variance = (mean_sq - mean**2).clamp_min(0.0)
    return n_mask * torch.sqrt(variance), n_mask


def score_tile(
    volume: np.ndarray | torch.Tensor,
    template: Template,
    matrices_xyz: np.ndarray,
    core_start: tuple[int, int, int],
    core_shape: tuple[int, int, int],
    *,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TileScores:
    """Best FLCF over rotations at every position of a core region of ``volume``.

    Parameters
    ----------
    volume
        ``(Z, Y, X)`` float array holding the core region and its halo: positions ``x`` of the
        core need ``volume[x - S // 2 : x + S - S // 2]`` on every axis (no wrap-around).
    template
        The template (box ``S``).
    matrices_xyz
        ``(R, 3, 3)`` active rotation matrices (x, y, z vectors), reference → particle.
    core_start, core_shape
        Corner (voxel index in ``volume``) and shape of the region scored, z, y, x.
    device
        Torch device of the work.
    batch_size
        Rotations per batch; default from a memory bound of about 8 MiB per intermediate.
    progress
        ``progress(n_done, n_total)`` over the rotations.

    Returns
    -------
    TileScores
    """
    device = torch.device(device)
    f = torch.as_tensor(np.asarray(volume, dtype=np.float32), device=device)
    if f.ndim != 3:
        raise InputError(f"volume: expected a (Z, Y, X) array, got shape {tuple(f.shape)}")
    shape = tuple(int(n) for n in f.shape)
    box = template.box_size
    start = tuple(int(a) for a in core_start)
    core = tuple(int(a) for a in core_shape)
    centre = box // 2
    for axis in range(3):
        if start[axis] < centre or start[axis] + core[axis] + box - 1 - centre > shape[axis]:
            raise InputError(
                f"core region {start}+{core} of a volume of shape {shape}: needs a halo of "
                f"{centre} voxels before and {box - 1 - centre} after on every axis"
            )
    mats = np.asarray(matrices_xyz, dtype=np.float64).reshape(-1, 3, 3)
    n_rot = len(mats)
    if n_rot == 0:
        raise InputError("matrices_xyz: no rotations to search")
    if batch_size is None:
        batch_size = max(1, min(n_rot, _BATCH_ELEMENTS // math.prod(shape)))
    dims = (-3, -2, -1)
    spectrum = torch.fft.rfftn(f, dim=dims)[None]
    spectrum_sq = torch.fft.rfftn(f * f, dim=dims)[None]
    # a box placed at the corner scores position x at index x - S // 2
    region = tuple(slice(a - centre, a - centre + n) for a, n in zip(start, core, strict=True))
    flat = _FLAT_FRACTION * float(f.std()) if f.numel() > 1 else 0.0

    denominator = None
    best = torch.full(core, -torch.inf, device=device)
    best_index = torch.zeros(core, dtype=torch.int64, device=device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    total_sq = torch.zeros((), dtype=torch.float64, device=device)
    for first in range(0, n_rot, batch_size):
        chunk = mats[first : first + batch_size]
        normalised, masks = prepare_rotated(template, chunk, device)
        if denominator is None or not template.mask_is_spherical:
            std_n, n_mask = _local_std(spectrum, spectrum_sq, masks, shape, region)
            flat_n = flat * n_mask
            denominator = torch.where(std_n > flat_n, std_n, torch.full_like(std_n, torch.inf))
        template_spectrum = _corner_spectrum(normalised, shape)
        numerator = _cropped_inverse(spectrum * template_spectrum.conj(), shape, region)
        scores = numerator / denominator
        total += scores.sum(dtype=torch.float64)
        total_sq += (scores.double() ** 2).sum()
        value, index = scores.max(dim=0)
        better = value > best
        best = torch.where(better, value, best)
        best_index = torch.where(better, index + first, best_index)
        if progress is not None:
            progress(min(first + batch_size, n_rot), n_rot)
    return TileScores(
        scores=best.cpu().numpy().astype(np.float32),
        indices=best_index.cpu().numpy(),
        sum=float(total),
        sum_squares=float(total_sq),
        count=int(math.prod(core) * n_rot),
    )


def flcf_max(
    volume: np.ndarray,
    template: Template,
    matrices_xyz: np.ndarray,
    *,
    device: torch.device | str = "cpu",
) -> TileScores:
    """FLCF of a whole volume, positions outside it read as the volume's mean (untiled search).

    Parameters
    ----------
    volume
        ``(Z, Y, X)`` float array.
    template, matrices_xyz, device
        As for :func:`score_tile`.

    Returns
    -------
    TileScores
        Scores of shape ``(Z, Y, X)``.
    """
    array = np.asarray(volume, dtype=np.float32)
    box = template.box_size
    before, after = box // 2, box - 1 - box // 2
    padded = np.pad(array, [(before, after)] * 3, constant_values=float(array.mean()))
    return score_tile(padded, template, matrices_xyz, (before,) * 3, array.shape, device=device)
