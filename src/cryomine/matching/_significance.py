"""The Monte Carlo significance test of one match: the template against pseudo-structures.

For a pick, the subtomogram around it is scored against the template exactly as in the search
(FLCF under the template's mask, the template rotated over a uniform grid and filtered by the
wedge and CTF, the best over rotations and over integer shifts within ``max_shift_px``). It is
scored the same way against ``n_null`` pseudo-structures drawn from the generative model of
:mod:`cryomine.matching._pseudo` (the template's size and power spectrum, random shape).

Structures differ in how high they score on pure noise (a structure that looks more different
under rotation has more independent tries and a higher best score), so every score is first
**centred** on the structure's own score level on noise: each structure ``j`` is also scored on
``n_reference`` phase-randomised copies of the windows (the same power spectrum, no structure),
giving a mean ``m_j``, and ``z_j = score_j - m_j``. (The spread of the scores on noise differs
much less between structures than their level, and dividing by an estimate from a few windows
would add more noise than it removes.) If the subtomogram holds no copy of the template, the
template's ``z`` is then close to exchangeable with the pseudo-structures', so

    p = (1 + #{null z ≥ template z}) / (1 + n_null)

is a valid p-value (uniform on noise up to the discreteness ``1 / (1 + n_null)``); a true match
scores above every pseudo-structure and gets the smallest value, ``1 / (1 + n_null)``.
The same pseudo-structures (and reference windows) are used for every pick of one call, so the
p-values of one call share a null and are correlated: on noise they are uniform over calls (over
draws of the null), while within one call they may all sit a little high or low
(``docs/matching.md``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.matching._flcf import (
    _FLAT_FRACTION,
    _corner_spectrum,
    _cropped_inverse,
    _local_std,
    prepare_rotated,
)
from cryomine.matching._pseudo import pseudo_structures
from cryomine.matching._template import Template

__all__ = ["SignificanceResult", "extract_windows", "template_p_values"]

logger = logging.getLogger(__name__)

_BATCH_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class SignificanceResult:
    """Outcome of the significance test.

    Attributes
    ----------
    p_values
        ``(N,)`` float64 Monte Carlo p-value of each subtomogram's template score.
    scores
        ``(N,)`` float64 best FLCF of each subtomogram against the template.
    null_scores
        ``(N, n_null)`` float64 best FLCF against each pseudo-structure.
    z_scores, null_z_scores
        The same less each structure's mean score on phase-randomised windows,
        ``(N,)`` and ``(N, n_null)``.
    """

    p_values: np.ndarray
    scores: np.ndarray
    null_scores: np.ndarray
    z_scores: np.ndarray
    null_z_scores: np.ndarray


def extract_windows(
    tomogram: np.ndarray, positions_zyx: np.ndarray, box_size: int, max_shift_px: int
) -> np.ndarray:
    """Windows around picks for :func:`template_p_values`, outside the tomogram its mean.

    Window ``i`` spans ``p_i - S // 2 - r`` to ``p_i - S // 2 - r + S + 2 r`` on every axis
    (``S`` the template box, ``r = max_shift_px``), so the template centred at ``p_i`` and
    shifted by up to ``r`` voxels lies inside it.

    Returns
    -------
    ndarray of float32, shape (N, W, W, W), ``W = S + 2 r``
    """
    positions = np.rint(np.asarray(positions_zyx, dtype=np.float64)).astype(np.int64).reshape(-1, 3)
    width = box_size + 2 * max_shift_px
    fill = float(np.mean(tomogram))
    out = np.full((len(positions), width, width, width), fill, dtype=np.float32)
    for i, p in enumerate(positions):
        low = p - box_size // 2 - max_shift_px
        src, dst = [], []
        for axis in range(3):
            a, b = max(low[axis], 0), min(low[axis] + width, tomogram.shape[axis])
            if a >= b:
                raise InputError(
                    f"position {p.tolist()} lies outside the tomogram {tomogram.shape}"
                )
            src.append(slice(a, b))
            dst.append(slice(a - low[axis], b - low[axis]))
        out[(i, *dst)] = tomogram[tuple(src)]
    return out


def phase_randomised(windows: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` copies of the windows (cycled) with their Fourier amplitudes and random phases.

    Returns
    -------
    ndarray of float32, shape (n, W, W, W)
    """
    shape = windows.shape[1:]
    out = np.empty((n, *shape), dtype=np.float32)
    for i in range(n):
        source = windows[i % len(windows)].astype(np.float64)
        spectrum = np.fft.rfftn(source)
        phases = np.fft.rfftn(rng.normal(size=shape))
        phases /= np.maximum(np.abs(phases), 1e-30)
        phases.flat[0] = 1.0  # keep the mean
        out[i] = np.fft.irfftn(np.abs(spectrum) * phases, s=shape, axes=(0, 1, 2))
    return out


def _best_scores(
    windows: torch.Tensor,
    template: Template,
    matrices: np.ndarray,
    max_shift_px: int,
    device: torch.device,
) -> torch.Tensor:
    """``(N,)`` best FLCF over rotations and shifts of every window against ``template``."""
    n, width = windows.shape[0], windows.shape[-1]
    shape = (width, width, width)
    box = template.box_size
    start = box // 2  # the core (the pick and its shifts) begins after a halo of S // 2
    core = 2 * max_shift_px + 1
    # a box placed at the corner scores position x at index x - S // 2
    region = tuple(slice(start - box // 2, start - box // 2 + core) for _ in range(3))
    dims = (-3, -2, -1)
    spectrum = torch.fft.rfftn(windows, dim=dims)
    spectrum_sq = torch.fft.rfftn(windows * windows, dim=dims)
    flat = _FLAT_FRACTION * windows.reshape(n, -1).std(dim=1).reshape(n, 1, 1, 1, 1)
    batch = max(1, _BATCH_ELEMENTS // (n * math.prod(shape)))
    best = torch.full((n,), -torch.inf, device=device)
    denominator = None
    for first in range(0, len(matrices), batch):
        normalised, masks = prepare_rotated(template, matrices[first : first + batch], device)
        if denominator is None or not template.mask_is_spherical:
            std_n, n_mask = _local_std(
                spectrum[:, None], spectrum_sq[:, None], masks, shape, region
            )
            denominator = torch.where(
                std_n > flat * n_mask, std_n, torch.full_like(std_n, torch.inf)
            )
        t_spec = _corner_spectrum(normalised, shape)
        scores = _cropped_inverse(spectrum[:, None] * t_spec.conj()[None], shape, region)
        scores = scores / denominator
        best = torch.maximum(best, scores.reshape(n, -1).amax(dim=1))
    return best


def template_p_values(
    windows: np.ndarray,
    template: Template,
    matrices_xyz: np.ndarray,
    *,
    n_null: int = 99,
    n_reference: int = 48,
    max_shift_px: int = 2,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> SignificanceResult:
    """p-values of the template's scores against pseudo-structure scores (module docstring).

    Parameters
    ----------
    windows
        ``(N, W, W, W)`` subtomograms around the picks, ``W = S + 2 max_shift_px``
        (:func:`extract_windows`).
    template
        The search template (box ``S``).
    matrices_xyz
        ``(R, 3, 3)`` rotations searched (x, y, z vectors), e.g. the search's grid or a coarser
        one.
    n_null
        Number of pseudo-structures, ``>= 1``; the smallest p-value is ``1 / (1 + n_null)``.
    n_reference
        Phase-randomised windows that standardise each structure's scores, ``>= 2``.
    max_shift_px
        Shifts searched about each pick, voxels (integer, ``>= 0``).
    rng
        Draws the pseudo-structures.
    device
        Torch device.
    progress
        ``progress(n_done, n_total)`` over the template and the pseudo-structures.

    Returns
    -------
    SignificanceResult
    """
    device = torch.device(device)
    if isinstance(n_null, bool) or not isinstance(n_null, int | np.integer) or n_null < 1:
        raise InputError(f"n_null: expected a positive number of pseudo-structures, got {n_null!r}")
    if (
        isinstance(n_reference, bool)
        or not isinstance(n_reference, int | np.integer)
        or (n_reference < 2)
    ):
        raise InputError(f"n_reference: expected an integer >= 2, got {n_reference!r}")
    if (
        isinstance(max_shift_px, bool)
        or not isinstance(max_shift_px, int | np.integer)
        or (max_shift_px < 0)
    ):
        raise InputError(f"max_shift_px: expected a non-negative integer, got {max_shift_px!r}")
    array = np.asarray(windows, dtype=np.float32)
    width = template.box_size + 2 * int(max_shift_px)
    if array.ndim != 4 or array.shape[1:] != (width,) * 3:
        raise InputError(
            f"windows: expected (N, {width}, {width}, {width}) for a box of "
            f"{template.box_size} and shifts of {max_shift_px}, got {array.shape}"
        )
    mats = np.asarray(matrices_xyz, dtype=np.float64).reshape(-1, 3, 3)
    if len(array) == 0:
        empty = np.zeros(0)
        nothing = np.zeros((0, n_null))
        return SignificanceResult(empty, empty, nothing, empty, nothing)
    n_windows = len(array)
    references = phase_randomised(array, int(n_reference), rng=rng)
    tensor = torch.as_tensor(np.concatenate([array, references]), device=device)
    nulls = pseudo_structures(template.density, int(n_null), rng=rng)
    total = int(n_null) + 1
    raw = np.empty((n_windows, total))
    z = np.empty((n_windows, total))
    for j in range(total):
        structure = template
        if j > 0:
            structure = dataclasses.replace(template, density=nulls[j - 1], name=f"pseudo-{j}")
        found = _best_scores(tensor, structure, mats, int(max_shift_px), device)
        found_np = found.cpu().numpy().astype(np.float64)
        on_noise = found_np[n_windows:]
        raw[:, j] = found_np[:n_windows]
        z[:, j] = raw[:, j] - on_noise.mean()
        if progress is not None:
            progress(j + 1, total)
    scores, null_scores = raw[:, 0], raw[:, 1:]
    exceed = (z[:, 1:] >= z[:, :1]).sum(axis=1)
    p_values = (1.0 + exceed) / (1.0 + n_null)
    logger.info(
        "significance: %d picks, %d pseudo-structures, median p %.3g",
        len(array),
        n_null,
        float(np.median(p_values)),
    )
    return SignificanceResult(
        p_values=p_values,
        scores=scores,
        null_scores=null_scores,
        z_scores=z[:, 0].copy(),
        null_z_scores=z[:, 1:].copy(),
    )
