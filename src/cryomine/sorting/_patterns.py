"""The patterns of multi-pattern pursuit: half-map averages, their resolution and similarity.

A *pattern* is a structure the particles are classified against: two half maps built from
the two fixed halves of the particles assigned to it (wedge-weighted averages,
:func:`cryomine.averaging.accumulate_aligned`), in one common frame. This module holds what
is done to patterns, apart from the loop that uses them (:mod:`cryomine.sorting._mpp`):

* :func:`initial_pattern` builds a pattern from unaligned particles (the reference-free
  initial model of :func:`cryomine.averaging.average_class`: the blob of their average, then
  rounds of global alignment and re-averaging at a low band);
* :func:`half_maps` re-averages every pattern's halves from the particles' alignments;
* :func:`split_members` proposes a split of a pattern's members (two-means on the principal
  components of their wedge-masked differences from the pattern, Heumann et al. 2011, JSB
  175:288);
* :func:`half_correlation` and :func:`pattern_similarity` compare half maps within a pattern
  and across two patterns, the basis of the merge rule (``docs/mpp.md``).

Volumes are ``(z, y, x)`` torch tensors on the particles' device; rotations are active,
reference→particle, x, y, z vectors (``docs/conventions.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cryomine.averaging import (
    accumulate_aligned,
    align_maps,
    align_to_references,
    aligned_spectra,
    lowpass,
    map_from_sums,
)
from cryomine.geometry import transform_volumes

__all__ = [
    "Pattern",
    "half_correlation",
    "half_maps",
    "initial_pattern",
    "pattern_similarity",
    "split_members",
]


@dataclass
class Pattern:
    """Two half maps ``(2, S, S, S)`` and their Fourier weights ``(2, S, S, S)`` (``fftshift``ed,
    summed wedges: how many particles observed each frequency), in one frame; ``origin`` says
    where the pattern came from (for the history)."""

    maps: torch.Tensor
    weights: torch.Tensor
    origin: str


def initial_pattern(
    volumes: torch.Tensor,
    halves: np.ndarray,
    wedge: torch.Tensor,
    mask: torch.Tensor,
    *,
    origin: str,
    rounds: int,
    angular_step_deg: float,
    max_frequency: float,
    max_shift_px: float,
    wiener_constant: float,
) -> Pattern:
    """A pattern from unaligned particles ``(n, S, S, S)``: reference-free initial model.

    Start: the wedge-weighted average of the particles as they are (a near-spherical blob),
    low-passed to ``max_frequency`` (cycles per voxel). Each of ``rounds`` rounds aligns all
    of them globally to it (grid ``angular_step_deg``, no refinement) and re-averages. Both
    half maps of the result are this one model (both halves start from it, as in
    :func:`cryomine.averaging.average_class`); ``halves`` (1 or 2 per particle) only splits
    the Fourier weights.
    """
    rows = [np.flatnonzero(halves == h) for h in (1, 2)]
    rotations, shifts = Rotation.identity(len(volumes)), np.zeros((len(volumes), 3))

    def averaged() -> tuple[torch.Tensor, torch.Tensor]:
        """The low-passed model of both halves together and the two halves' weights."""
        sums = [accumulate_aligned(volumes[r], rotations[r], shifts[r], wedge) for r in rows]
        total = map_from_sums(sums[0][0] + sums[1][0], sums[0][1] + sums[1][1],
                              wiener_constant=wiener_constant)  # fmt: skip
        return lowpass(total, max_frequency), torch.stack([w for _, w in sums])

    model, weights = averaged()  # unaligned: the blob
    for _ in range(rounds):
        found = align_to_references(
            volumes, model * mask, angular_step_deg=angular_step_deg, refine_to_deg=None,
            max_shift_px=max_shift_px, max_frequency=max_frequency, wedges=wedge,
        )  # fmt: skip
        rotations, shifts = found.rotations(0), found.shifts_zyx[:, 0]
        model, weights = averaged()
    return Pattern(torch.stack([model, model]), weights, origin)


def half_maps(
    volumes: torch.Tensor,
    rotations: Rotation,
    shifts_zyx: np.ndarray,
    rows_by_half: tuple[np.ndarray, np.ndarray],
    wedge: torch.Tensor,
    *,
    wiener_constant: float,
    particle_weights: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(2, S, S, S)`` half maps and weights of the particles ``rows_by_half[h]`` of each half
    at their alignments (``rotations``, ``shifts_zyx`` and ``particle_weights``, the weight of
    each particle's term, default 1, indexed like ``volumes``)."""
    maps, weights = [], []
    for rows in rows_by_half:
        numerator, weight = accumulate_aligned(
            volumes[rows], rotations[rows], shifts_zyx[rows], wedge,
            None if particle_weights is None else particle_weights[rows],
        )  # fmt: skip
        maps.append(map_from_sums(numerator, weight, wiener_constant=wiener_constant))
        weights.append(weight)
    return torch.stack(maps), torch.stack(weights)


def _band_correlation(a: torch.Tensor, b: torch.Tensor, band: torch.Tensor) -> float:
    """Correlation of two real maps over the Fourier voxels of ``band`` (rfft layout)."""
    fa = torch.fft.rfftn(a, dim=(-3, -2, -1))[band]
    fb = torch.fft.rfftn(b, dim=(-3, -2, -1))[band]
    numerator = (fa * fb.conj()).real.sum()
    denominator = torch.sqrt((fa.abs() ** 2).sum() * (fb.abs() ** 2).sum())
    return float(numerator / denominator) if denominator > 0 else 0.0


def rfft_band(size: int, max_frequency: float, device: torch.device) -> torch.Tensor:
    """Boolean ``(S, S, S // 2 + 1)`` mask of the rfft voxels with ``0 < |k| ≤ max_frequency``."""
    k = torch.fft.fftfreq(size, device=device)
    kx = torch.fft.rfftfreq(size, device=device)
    radius = torch.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + kx[None, None, :] ** 2)
    return (radius > 0) & (radius <= max_frequency)


def half_correlation(pattern: Pattern, mask: torch.Tensor, max_frequency: float) -> float:
    """Correlation of a pattern's two soft-masked half maps in the band ``(0, max_frequency]``."""
    band = rfft_band(pattern.maps.shape[-1], max_frequency, pattern.maps.device)
    return _band_correlation(pattern.maps[0] * mask, pattern.maps[1] * mask, band)


def pattern_similarity(
    a: Pattern,
    b: Pattern,
    mask: torch.Tensor,
    *,
    max_frequency: float,
    angular_step_deg: float,
    max_shift_px: float,
) -> float:
    """Mean correlation of ``a``'s half maps with ``b``'s, after aligning ``b`` to ``a``.

    ``b``'s full map (sum of its halves) is aligned to ``a``'s (global search on
    ``uniform_rotation_grid(angular_step_deg)`` refined to 2°, band ``max_frequency``); the four
    correlations ``cc(a_i, R b_j)`` of the soft-masked half maps in the band are averaged.
    Two patterns of one structure score like ``sqrt(cc(a_1, a_2) · cc(b_1, b_2))``: each half
    is the same signal with its own noise.
    """
    full_a = a.maps.sum(dim=0) * mask
    full_b = b.maps.sum(dim=0) * mask
    rotation, shift = align_maps(full_b, full_a, angular_step_deg=angular_step_deg,
                                 max_frequency=max_frequency, max_shift_px=max_shift_px)  # fmt: skip
    # b(x) ≈ a(Q⁻¹(x − c − s) + c), so b'(y) = b(Q(y − c) + c + s) overlays a:
    # transform_volumes with R = Q⁻¹ and t = −Q⁻¹ s (x, y, z vectors; shifts z, y, x).
    back = rotation.inv()
    shift_zyx = -back.apply(np.asarray(shift)[::-1]).reshape(-1, 3)[:, ::-1]
    moved, _ = transform_volumes(b.maps, Rotation.concatenate([back, back]),
                                 np.repeat(shift_zyx, 2, axis=0))  # fmt: skip
    band = rfft_band(a.maps.shape[-1], max_frequency, a.maps.device)
    values = [
        _band_correlation(a.maps[i] * mask, moved[j] * mask, band) for i in (0, 1) for j in (0, 1)
    ]
    return float(np.mean(values))


#: Principal components of the wedge-masked differences that the split clusters on.
SPLIT_COMPONENTS = 3


def split_members(
    volumes: torch.Tensor,
    rotations: Rotation,
    shifts_zyx: np.ndarray,
    wedge: torch.Tensor,
    reference: torch.Tensor,
    *,
    max_frequency: float,
    seed: int,
) -> np.ndarray:
    """Split a pattern's ``n`` members in two; returns the ``(n,)`` bool mask of the smaller side.

    Each member is brought into the pattern's frame (``rotations``, ``shifts_zyx``); on the
    Fourier voxels of the band ``(0, max_frequency]`` that it observes (its rotated wedge
    above 1/2) its difference from the best-scaled ``reference`` is taken, zero elsewhere
    (the *wedge-masked difference*). Two-means on the first ``SPLIT_COMPONENTS`` principal
    components of these differences (real and imaginary parts) gives the two sides.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    spectra, weights = aligned_spectra(volumes, rotations, shifts_zyx, wedge)
    band = rfft_band(volumes.shape[-1], max_frequency, volumes.device)
    observed = (weights[:, band] > 0.5).to(spectra.real.dtype)
    x = spectra[:, band] * observed
    a = torch.fft.rfftn(reference, dim=(-3, -2, -1))[band][None, :] * observed
    power = (a.abs() ** 2).sum(dim=1, keepdim=True).clamp_min(1e-12)
    scale = (x * a.conj()).real.sum(dim=1, keepdim=True) / power
    difference = (x - scale * a).cpu().numpy()
    features = np.concatenate([difference.real, difference.imag], axis=1).astype(np.float64)
    n_components = min(SPLIT_COMPONENTS, len(features) - 1)
    components = PCA(n_components, random_state=seed).fit_transform(features)
    sides = KMeans(2, n_init=10, random_state=seed).fit_predict(components)
    smaller = int(np.argmin(np.bincount(sides, minlength=2)))
    return sides == smaller
