"""Single-reference alignment for averaging, and the wedge-weighted sums it averages with.

:func:`align_global` and :func:`align_local` are the single-reference forms of the alignment
engine (:mod:`cryomine.averaging._engine`: constrained cross-correlation of Förster et al. 2008,
references rotated once per rotation, the translation search as one matrix product):
``align_global`` scores one shared rotation grid, ``align_local`` refines each particle about
its own orientation. :func:`align_maps` aligns two maps with them; :func:`accumulate_aligned`
and :func:`map_from_sums` build the wedge-weighted average.

Conventions (``docs/conventions.md``): rotations are active, act on x, y, z vectors and map the
reference onto the particle, ``particle(x) = reference(R⁻¹ (x − c − t) + c)``; shifts ``t`` are
z, y, x voxels. Fourier weights are ``fftshift``ed volumes, centre ``n // 2``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cryomine.averaging._engine import (
    EngineResult,
    local_rotation_offsets,
    refine_local,
    search_global,
)
from cryomine.errors import InputError
from cryomine.geometry import matrices_zyx, shift_volumes, transform_volumes, uniform_rotation_grid

__all__ = [
    "AlignmentResult",
    "accumulate_aligned",
    "align_global",
    "align_local",
    "align_maps",
    "aligned_spectra",
    "compose_half_alignment",
    "map_from_sums",
]

logger = logging.getLogger(__name__)

#: Voxels (particle × box) handled in one accumulation chunk.
_CHUNK_VOXELS = 1 << 24


@dataclass(frozen=True)
class AlignmentResult:
    """Best orientation of each particle.

    Attributes
    ----------
    rotations
        ``N`` active reference→particle rotations (x, y, z vectors).
    shifts_zyx
        ``(N, 3)`` float64 shifts ``t`` in voxels, z, y, x order.
    scores
        ``(N,)`` float64 constrained cross-correlation at the optimum, in ``[-1, 1]``.
    """

    rotations: Rotation
    shifts_zyx: np.ndarray
    scores: np.ndarray


def _to_rfft(shifted: torch.Tensor, half: int) -> torch.Tensor:
    """``fftshift``ed full volumes ``(..., S, S, S)`` → ``rfftn`` layout ``(..., S, S, H)``."""
    return torch.fft.ifftshift(shifted, dim=(-3, -2, -1))[..., :half]


def _matrices(rotations: Rotation, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(rotations.as_matrix(), dtype=torch.float64).reshape(-1, 3, 3)


def _check_inputs(particles: torch.Tensor, reference: torch.Tensor) -> None:
    if particles.ndim != 4 or len(set(particles.shape[1:])) != 1:
        raise InputError(
            f"particles: expected (N, S, S, S) cubic boxes, got {tuple(particles.shape)}"
        )
    if tuple(reference.shape) != tuple(particles.shape[1:]):
        raise InputError(
            f"reference: shape {tuple(reference.shape)} differs from the particle box "
            f"{tuple(particles.shape[1:])}"
        )


def _weights_or_none(reference_weight: torch.Tensor) -> torch.Tensor | None:
    """``None`` (fully observed, no support constraint) for an all-positive weight."""
    return None if bool((reference_weight > 0).all()) else reference_weight


def _single(found: EngineResult) -> AlignmentResult:
    return AlignmentResult(
        rotations=found.rotations(0), shifts_zyx=found.shifts_zyx[:, 0].copy(),
        scores=found.scores[:, 0].copy(),
    )  # fmt: skip


def align_global(
    particles: torch.Tensor,
    reference: torch.Tensor,
    reference_weight: torch.Tensor,
    particle_wedge: torch.Tensor,
    rotations: Rotation,
    *,
    max_frequency: float,
    max_shift_px: float,
    progress: Callable[[int, int], None] | None = None,
) -> AlignmentResult:
    """Best rotation from a shared grid, and best shift, of every particle.

    :func:`cryomine.averaging.search_global` for one reference.

    Parameters
    ----------
    particles
        ``(N, S, S, S)`` float32 subtomograms (z, y, x), protein bright.
    reference
        ``(S, S, S)`` reference map (masked as wanted by the caller).
    reference_weight
        ``(S, S, S)`` ``fftshift``ed Fourier weight of the reference (how often each frequency
        was observed); its support constrains the score.
    particle_wedge
        ``(S, S, S)`` or ``(N, S, S, S)`` ``fftshift``ed 0/1 mask of the frequencies each
        particle observes.
    rotations
        ``M`` candidate rotations (x, y, z vectors), e.g. ``uniform_rotation_grid(30)``.
    max_frequency
        Upper end of the scoring band, cycles per voxel (≤ 0.5·√3).
    max_shift_px
        Largest translation searched, voxels (radius).
    progress
        ``callback(done, total)``, called once when the search is done.
    """
    _check_inputs(particles, reference)
    found = search_global(
        particles, reference, rotations, max_frequency=max_frequency,
        max_shift_px=max_shift_px, wedges=particle_wedge,
        reference_weights=_weights_or_none(reference_weight),
    )  # fmt: skip
    if progress is not None:
        progress(len(rotations), len(rotations))
    return _single(found)


def align_local(
    particles: torch.Tensor,
    reference: torch.Tensor,
    reference_weight: torch.Tensor,
    particle_wedge: torch.Tensor,
    current: Rotation,
    offsets: Rotation,
    *,
    max_frequency: float,
    max_shift_px: float,
    progress: Callable[[int, int], None] | None = None,
) -> AlignmentResult:
    """Refine each particle's rotation over ``current[i] * offsets`` (and its shift).

    :func:`cryomine.averaging.refine_local` for one reference, every shift within
    ``max_shift_px`` searched. Arguments as :func:`align_global`; ``current`` holds ``N``
    rotations, ``offsets`` the ``M`` small rotations of :func:`local_rotation_offsets` (the
    identity keeps the current one).
    """
    _check_inputs(particles, reference)
    n = particles.shape[0]
    if len(current) != n:
        raise InputError(f"current: {len(current)} rotations for {n} particles")
    if n == 0:
        return AlignmentResult(Rotation.from_quat(np.empty((0, 4))), np.zeros((0, 3)), np.zeros(0))
    found = refine_local(
        particles, reference, current, offsets, max_frequency=max_frequency,
        max_shift_px=max_shift_px, wedges=particle_wedge,
        reference_weights=_weights_or_none(reference_weight),
    )  # fmt: skip
    if progress is not None:
        progress(n, n)
    return _single(found)


def _aligned_chunks(
    particles: torch.Tensor,
    rotations: Rotation,
    shifts_zyx: np.ndarray,
    particle_wedge: torch.Tensor,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Chunks of ``(spectra, wedges_rfft, wedges)`` of the particles brought into the reference
    frame (shifted by ``-t``, rotated by ``R⁻¹``; wedges rotated alike)."""
    n, size = particles.shape[0], particles.shape[-1]
    if n == 0:
        return
    half = size // 2 + 1
    inverse = _matrices(rotations.inv(), particles.device)
    chunk = max(1, _CHUNK_VOXELS // (4 * size**3))
    for p0 in range(0, n, chunk):
        batch = particles[p0 : p0 + chunk]
        mats = inverse[p0 : p0 + chunk]
        unshifted = shift_volumes(batch, -np.asarray(shifts_zyx[p0 : p0 + chunk]))
        aligned, _ = transform_volumes(unshifted, mats)
        wedges, _ = transform_volumes(particle_wedge.expand(len(batch), -1, -1, -1), mats)
        yield torch.fft.rfftn(aligned, dim=(-3, -2, -1)), _to_rfft(wedges, half), wedges


def aligned_spectra(
    particles: torch.Tensor,
    rotations: Rotation,
    shifts_zyx: np.ndarray,
    particle_wedge: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The particles' transforms in the reference frame and their rotated wedges.

    Returns ``(N, S, S, S // 2 + 1)`` complex ``rfftn`` spectra of the aligned particles and
    ``(N, S, S, S // 2 + 1)`` rotated wedge weights (``rfftn`` layout, in [0, 1]).
    """
    size = particles.shape[-1]
    parts = list(_aligned_chunks(particles, rotations, shifts_zyx, particle_wedge))
    if not parts:
        empty = (0, size, size, size // 2 + 1)
        return (torch.zeros(empty, dtype=torch.complex64, device=particles.device),
                torch.zeros(empty, device=particles.device))  # fmt: skip
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def accumulate_aligned(
    particles: torch.Tensor,
    rotations: Rotation,
    shifts_zyx: np.ndarray,
    particle_wedge: torch.Tensor,
    particle_weights: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Wedge-weighted sums of the particles brought into the reference frame.

    Each particle is shifted by ``-t`` and rotated by ``R⁻¹`` (so that it overlays the
    reference); its wedge is rotated the same way (``W_ref(k) = W(R k)``). ``particle_weights``
    ``(N,)`` (default all 1) scales each particle's term in both sums: a soft assignment.

    Returns
    -------
    numerator : complex Tensor, shape (S, S, S // 2 + 1)
        ``Σ_p F[aligned_p] · W_p`` in ``rfftn`` layout.
    weight : Tensor, shape (S, S, S)
        ``Σ_p W_p``, ``fftshift``ed.
    """
    size = particles.shape[-1]
    half = size // 2 + 1
    numerator = torch.zeros((size, size, half), dtype=torch.complex64, device=particles.device)
    weight = torch.zeros((size, size, size), dtype=torch.float32, device=particles.device)
    scale = None
    if particle_weights is not None:
        scale = torch.as_tensor(np.asarray(particle_weights), dtype=torch.float32,
                                device=particles.device)  # fmt: skip
    p0 = 0
    for spectrum, wedges_rfft, wedges in _aligned_chunks(
        particles, rotations, shifts_zyx, particle_wedge
    ):
        if scale is not None:
            w = scale[p0 : p0 + len(wedges)].view(-1, 1, 1, 1)
            p0 += len(wedges)
            wedges_rfft, wedges = wedges_rfft * w, wedges * w
        numerator += (spectrum * wedges_rfft).sum(dim=0)
        weight += wedges.sum(dim=0)
    return numerator, weight


def map_from_sums(
    numerator: torch.Tensor, weight: torch.Tensor, *, wiener_constant: float
) -> torch.Tensor:
    """``(S, S, S)`` map ``F⁻¹[numerator / (weight + wiener_constant)]``."""
    size = weight.shape[-1]
    denominator = _to_rfft(weight, size // 2 + 1) + wiener_constant
    return torch.fft.irfftn(numerator / denominator, s=(size,) * 3, dim=(-3, -2, -1))


def compose_half_alignment(
    rotations: Rotation, shifts_zyx: np.ndarray, rotation: Rotation, shift_zyx: np.ndarray
) -> tuple[Rotation, np.ndarray]:
    """Re-express particle orientations after their map was found to be ``map1`` rotated by
    ``Q`` and shifted by ``s``: ``R_p → R_p Q`` and ``t_p → t_p + R_p s``."""
    new_shifts = shifts_zyx + np.einsum("nij,j->ni", matrices_zyx(rotations), shift_zyx)
    return rotations * rotation, new_shifts


def align_maps(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    *,
    angular_step_deg: float,
    max_frequency: float,
    max_shift_px: float,
    global_search: bool = True,
) -> tuple[Rotation, np.ndarray]:
    """Rotation ``Q`` and shift ``s`` with ``moving(x) ≈ fixed(Q⁻¹ (x − c − s) + c)``.

    Both ``(S, S, S)`` maps are taken as fully observed (no wedge). A global search on
    ``uniform_rotation_grid(angular_step_deg)`` is refined locally with halving steps down to
    2°; ``max_frequency`` (cycles per voxel) bounds the scoring band, ``max_shift_px`` the shift.
    With ``global_search=False`` only the local refinement about the identity is done.
    """
    ones = torch.ones_like(fixed)
    stack = moving[None]
    grid = uniform_rotation_grid(angular_step_deg) if global_search else Rotation.identity(1)
    found = align_global(
        stack, fixed, ones, ones, grid, max_frequency=max_frequency, max_shift_px=max_shift_px
    )
    step = angular_step_deg / 2.0
    while step >= 2.0:
        found = align_local(
            stack,
            fixed,
            ones,
            ones,
            found.rotations,
            local_rotation_offsets(step, 2.0 * step),
            max_frequency=max_frequency,
            max_shift_px=max_shift_px,
        )
        step /= 2.0
    return found.rotations, found.shifts_zyx[0]
