"""Missing-wedge-aware alignment of subtomograms to a reference (torch, CPU or CUDA).

Scoring is the constrained cross-correlation of Förster et al. (2008, JSB 161:276): the
correlation of particle and rotated reference is computed only over the Fourier voxels that
*both* observe — the particle's wedge ``W`` (fixed in the particle box), the region where the
rotated reference has support (its rotated Fourier weight above a fraction of its maximum) and
the current band ``0 < |k| ≤ f_max`` — and normalised by both maps' power inside that region.
For a rotation ``R`` the score of every translation ``t`` comes from one inverse FFT:

    cc(t) = Σ_k M(k) P(k) conj(R̂(k) e^{-2πi k·t}) / sqrt(Σ_k M |P|² · Σ_k M |R̂|²)

where ``R̂`` is the transform of the reference rotated by ``R``. Translations are integer
voxels within ``max_shift_px`` of the box centre. Rotations are searched either on one shared
grid (global search: the reference is rotated once per grid rotation) or per particle on a
local lattice around its current orientation (local refinement).

Conventions (``docs/conventions.md``): rotations are active, act on x, y, z vectors and map the
reference onto the particle, ``particle(x) = reference(R⁻¹ (x − c − t) + c)``; shifts ``t`` are
z, y, x voxels. Fourier weights are ``fftshift``ed volumes, centre ``n // 2``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import matrices_zyx, shift_volumes, transform_volumes, uniform_rotation_grid

__all__ = [
    "AlignmentResult",
    "accumulate_aligned",
    "align_global",
    "align_local",
    "align_maps",
    "compose_half_alignment",
    "local_rotation_offsets",
    "map_from_sums",
]

logger = logging.getLogger(__name__)

#: Voxels (particle × rotation × box) handled in one scoring chunk.
_CHUNK_VOXELS = 1 << 24
#: The rotated reference observes a frequency when its weight is above this fraction of the max.
_SUPPORT_FRACTION = 0.1


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


class _Scorer:
    """Precomputed Fourier-space tools for one box size, wedge, band and reference."""

    def __init__(
        self,
        reference: torch.Tensor,
        reference_weight: torch.Tensor,
        particle_wedge: torch.Tensor,
        *,
        max_frequency: float,
        max_shift_px: float,
    ) -> None:
        size = reference.shape[-1]
        device = reference.device
        self.size = size
        self.half = size // 2 + 1
        self.reference = reference
        self.reference_weight = reference_weight / reference_weight.max().clamp_min(1e-12)
        freqs = torch.fft.fftfreq(size, device=device, dtype=torch.float64)
        rfreqs = torch.fft.rfftfreq(size, device=device, dtype=torch.float64)
        radius = torch.sqrt(freqs[:, None, None] ** 2 + freqs[None, :, None] ** 2 + rfreqs**2)
        band = (radius > 0.5 / size) & (radius <= max_frequency + 1e-9)
        wedge = _to_rfft(particle_wedge, self.half)
        hermitian = torch.full((self.half,), 2.0, device=device, dtype=torch.float64)
        hermitian[0] = 1.0
        if size % 2 == 0:
            hermitian[-1] = 1.0
        self.particle_mask = (band * wedge).to(torch.float32)  # (S, S, H)
        self.hermitian = hermitian.to(torch.float32)
        # Circular shift offsets in fft order; the window keeps |t| <= max_shift_px.
        offsets = torch.fft.fftfreq(size, d=1.0 / size, device=device, dtype=torch.float64)
        distance = torch.sqrt(
            offsets[:, None, None] ** 2 + offsets[None, :, None] ** 2 + offsets**2
        )
        self.window = distance <= max_shift_px + 1e-9
        self.offsets = offsets

    def particle_transform(self, particles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(P, S, S, H)`` masked particle transforms and ``(P, S, S, H)`` masked power."""
        spectrum = torch.fft.rfftn(particles, dim=(-3, -2, -1)) * self.particle_mask
        return spectrum, spectrum.abs() ** 2 * self.hermitian

    def rotated_references(self, rotations_xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Transforms ``(M, S, S, H)`` of the reference rotated by each of ``M`` rotations, and
        the ``(M, S, S, H)`` 0/1 support of each rotated reference (band and wedge not applied).
        """
        count = rotations_xyz.shape[0]
        volumes = self.reference.expand(count, -1, -1, -1)
        rotated, _ = transform_volumes(volumes, rotations_xyz)
        weights = self.reference_weight.expand(count, -1, -1, -1)
        rotated_weight, _ = transform_volumes(weights, rotations_xyz)
        support = (_to_rfft(rotated_weight, self.half) > _SUPPORT_FRACTION).to(torch.float32)
        return torch.fft.rfftn(rotated, dim=(-3, -2, -1)), support

    def best(
        self,
        spectrum: torch.Tensor,
        references: torch.Tensor,
        support: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score ``(P, M)`` and flat shift index ``(P, M)`` of the best translation.

        ``spectrum`` is ``(P, 1, S, S, H)``, ``references`` and ``support`` broadcast to
        ``(P, M, S, S, H)``.
        """
        mask = support * self.particle_mask
        product = spectrum * torch.conj(references) * mask
        power_p = ((spectrum.abs() ** 2) * mask * self.hermitian).sum(dim=(-3, -2, -1))
        power_r = ((references.abs() ** 2) * mask * self.hermitian).sum(dim=(-3, -2, -1))
        cc = torch.fft.irfftn(product, s=(self.size,) * 3, dim=(-3, -2, -1)) * self.size**3
        norm = torch.sqrt(power_p * power_r).clamp_min(1e-20)
        cc = cc / norm[..., None, None, None]
        cc = cc.masked_fill(~self.window, -math.inf).flatten(-3)
        score, index = cc.max(dim=-1)
        return score, index

    def shift_from_index(self, index: torch.Tensor) -> torch.Tensor:
        """``(..., 3)`` z, y, x shifts in voxels for flat indices of the correlation map."""
        s = self.size
        z, rest = index // (s * s), index % (s * s)
        y, x = rest // s, rest % s
        return torch.stack([self.offsets[z], self.offsets[y], self.offsets[x]], dim=-1)


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


def _chunk(size: int, per_item: int) -> int:
    return max(1, _CHUNK_VOXELS // max(1, per_item * size**3))


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
        ``(S, S, S)`` ``fftshift``ed 0/1 mask of the frequencies each particle observes.
    rotations
        ``M`` candidate rotations (x, y, z vectors), e.g. ``uniform_rotation_grid(30)``.
    max_frequency
        Upper end of the scoring band, cycles per voxel (≤ 0.5·√3).
    max_shift_px
        Largest translation searched, voxels (radius).
    """
    _check_inputs(particles, reference)
    scorer = _Scorer(
        reference,
        reference_weight,
        particle_wedge,
        max_frequency=max_frequency,
        max_shift_px=max_shift_px,
    )
    n, size = particles.shape[0], scorer.size
    mats = _matrices(rotations, particles.device)
    best_score = torch.full((n,), -math.inf, device=particles.device)
    best_rot = torch.zeros(n, dtype=torch.long, device=particles.device)
    best_index = torch.zeros(n, dtype=torch.long, device=particles.device)
    spectra = [scorer.particle_transform(particles[i : i + 256])[0] for i in range(0, n, 256)]
    spectrum = torch.cat(spectra) if spectra else particles.new_zeros((0,))
    rot_chunk = min(len(mats), 256)
    for start in range(0, len(mats), rot_chunk):
        refs, support = scorer.rotated_references(mats[start : start + rot_chunk])
        m = refs.shape[0]
        p_chunk = max(1, _chunk(size, m))
        for p0 in range(0, n, p_chunk):
            score, index = scorer.best(spectrum[p0 : p0 + p_chunk, None], refs[None], support[None])
            value, which = score.max(dim=1)
            better = value > best_score[p0 : p0 + p_chunk]
            rows = torch.arange(p0, p0 + len(value), device=particles.device)
            best_score[rows[better]] = value[better]
            best_rot[rows[better]] = which[better] + start
            best_index[rows[better]] = index[torch.arange(len(value)), which][better]
        if progress is not None:
            progress(min(start + rot_chunk, len(mats)), len(mats))
    return AlignmentResult(
        rotations=rotations[best_rot.cpu().numpy()],
        shifts_zyx=scorer.shift_from_index(best_index).cpu().numpy().astype(np.float64),
        scores=best_score.cpu().numpy().astype(np.float64),
    )


def local_rotation_offsets(step_deg: float, radius_deg: float) -> Rotation:
    """Small rotations on a cubic lattice of rotation vectors: spacing ``step_deg``, within
    ``radius_deg`` of the identity (which is included). Composed with a current orientation
    they form a local search grid about it.
    """
    if not (0 < step_deg and 0 < radius_deg <= 180):
        raise InputError(
            f"local search: expected step > 0 and 0 < radius <= 180 degrees, "
            f"got {step_deg}, {radius_deg}"
        )
    n = math.floor(radius_deg / step_deg)
    axis = np.arange(-n, n + 1, dtype=np.float64) * step_deg
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    grid = grid[np.linalg.norm(grid, axis=1) <= radius_deg + 1e-9]
    return Rotation.from_rotvec(np.radians(grid))


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

    Arguments as :func:`align_global`; ``current`` holds ``N`` rotations, ``offsets`` the ``M``
    small rotations of :func:`local_rotation_offsets` (the identity keeps the current one).
    """
    _check_inputs(particles, reference)
    n = particles.shape[0]
    if len(current) != n:
        raise InputError(f"current: {len(current)} rotations for {n} particles")
    scorer = _Scorer(
        reference,
        reference_weight,
        particle_wedge,
        max_frequency=max_frequency,
        max_shift_px=max_shift_px,
    )
    m = len(offsets)
    p_chunk = max(1, _chunk(scorer.size, 2 * m))
    rotations: list[Rotation] = []
    shifts: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for p0 in range(0, n, p_chunk):
        rows = np.arange(p0, min(n, p0 + p_chunk))
        candidates = Rotation.concatenate([current[int(i)] * offsets for i in rows])
        refs, support = scorer.rotated_references(_matrices(candidates, particles.device))
        refs = refs.reshape(len(rows), m, *refs.shape[1:])
        support = support.reshape(len(rows), m, *support.shape[1:])
        spectrum, _ = scorer.particle_transform(particles[p0 : p0 + len(rows)])
        score, index = scorer.best(spectrum[:, None], refs, support)
        value, which = score.max(dim=1)
        which_np = which.cpu().numpy()
        rotations.append(candidates[np.arange(len(rows)) * m + which_np])
        shifts.append(scorer.shift_from_index(index[torch.arange(len(rows)), which]).cpu().numpy())
        scores.append(value.cpu().numpy())
        if progress is not None:
            progress(int(rows[-1]) + 1, n)
    if not rotations:
        return AlignmentResult(Rotation.from_quat(np.empty((0, 4))), np.zeros((0, 3)), np.zeros(0))
    return AlignmentResult(
        rotations=Rotation.concatenate(rotations),
        shifts_zyx=np.concatenate(shifts).astype(np.float64),
        scores=np.concatenate(scores).astype(np.float64),
    )


def accumulate_aligned(
    particles: torch.Tensor,
    rotations: Rotation,
    shifts_zyx: np.ndarray,
    particle_wedge: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Wedge-weighted sums of the particles brought into the reference frame.

    Each particle is shifted by ``-t`` and rotated by ``R⁻¹`` (so that it overlays the
    reference); its wedge is rotated the same way (``W_ref(k) = W(R k)``).

    Returns
    -------
    numerator : complex Tensor, shape (S, S, S // 2 + 1)
        ``Σ_p F[aligned_p] · W_p`` in ``rfftn`` layout.
    weight : Tensor, shape (S, S, S)
        ``Σ_p W_p``, ``fftshift``ed.
    """
    n, size = particles.shape[0], particles.shape[-1]
    half = size // 2 + 1
    numerator = torch.zeros((size, size, half), dtype=torch.complex64, device=particles.device)
    weight = torch.zeros((size, size, size), dtype=torch.float32, device=particles.device)
    inverse = _matrices(rotations.inv(), particles.device) if n else None
    chunk = max(1, _CHUNK_VOXELS // (4 * size**3))
    for p0 in range(0, n, chunk):
        batch = particles[p0 : p0 + chunk]
        mats = inverse[p0 : p0 + chunk]
        unshifted = shift_volumes(batch, -np.asarray(shifts_zyx[p0 : p0 + chunk]))
        aligned, _ = transform_volumes(unshifted, mats)
        wedges, _ = transform_volumes(particle_wedge.expand(len(batch), -1, -1, -1), mats)
        spectrum = torch.fft.rfftn(aligned, dim=(-3, -2, -1))
        numerator += (spectrum * _to_rfft(wedges, half)).sum(dim=0)
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
