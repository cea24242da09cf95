"""The alignment engine: many particles against many references, batched in torch (CPU or CUDA).

One implementation of subtomogram alignment, used by averaging (:mod:`._align`), the
template-matching baseline and multi-pattern pursuit. For every particle ``p`` and reference
``r`` it finds the rotation ``R`` and integer shift ``t`` that maximise the **constrained
cross-correlation** (Förster et al. 2008, JSB 161:276)

    cc(p, r; R, t) = Σ_k M Re[P(k) conj(B(k)) e^{2πi k·t}] / sqrt(Σ_k M |P|² · Σ_k M |B|²),
    M(k) = W_p(k) · S_R(k) · [0 < |k| ≤ f],

where ``P`` is the particle's transform, ``B(k) = F_r(R⁻¹ k)`` the transform of the reference
rotated by ``R``, ``W_p`` the particle's **own** missing-wedge mask, ``S_R`` the rotated
reference's support (its rotated Fourier weight above 10 % of the maximum; all ones for fully
observed references) and ``f`` the band limit. The reference spectrum is thus multiplied by the
particle's wedge before it is normalised, and both volumes are compared only where both observe.

How it is made fast (``docs/averaging.md``):

* Only the Fourier voxels of the band (half space of ``rfftn``, observed by some particle) are
  used: ``K`` numbers per volume instead of ``S³``.
* **References are rotated once per rotation** and shared by all particles: the rotated
  spectrum is read by nearest-neighbour look-up from the reference's Fourier transform
  zero-padded ``oversampling`` times (4× by default, so the look-up is within 0.11 of a
  Fourier voxel per axis).
* **The translation search is a matrix product**: with ``E_kt = e^{2πi k·t}`` for the ``T``
  integer shifts within ``max_shift_px``, the numerators of all particles, rotations and shifts
  are ``Re(A @ (conj(B)·S)[:, :, None] E)`` — one real GEMM of ``(N, 2K) × (2K, M·T)``;
  the norms are two ``(N, K) × (K, M)`` GEMMs.
* **Coarse to fine**: a global grid (``uniform_rotation_grid``) is scored at the band its step
  can resolve, ``min(f, 2.5 / (δ S))`` (``δ`` in radians); the best ``n_hits`` distinct grid
  rotations of each pair are refined on a local lattice at ``δ / 2``, the best of them on
  lattices with further halving steps (:func:`local_rotation_offsets`, band rising with
  ``1 / step``) and finally polished at half the finest step at the full band ``f``; the
  shift within ±1 voxel of the previous stage's.

Memory is bounded by chunking particles, rotations and candidates (``_CHUNK_ELEMENTS``).

Conventions (``docs/conventions.md``): volumes are ``(z, y, x)``; rotations are active, act on
x, y, z vectors about the box centre ``c = n // 2`` and map the reference onto the particle,
``particle(x) = reference(R⁻¹ (x − c − t) + c)``; shifts ``t`` are z, y, x voxels; Fourier
masks are ``fftshift``ed ``(S, S, S)`` volumes (zero frequency at ``n // 2``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import (
    matrices_zyx,
    missing_wedge_mask,
    relion_euler_from_rotations,
    uniform_rotation_grid,
)

__all__ = [
    "EngineResult",
    "align_to_references",
    "local_rotation_offsets",
    "refine_local",
    "search_global",
]

logger = logging.getLogger(__name__)

#: Floats held by the largest intermediate of one chunk (about 64 MiB of float32).
_CHUNK_ELEMENTS = 1 << 24
#: The rotated reference observes a frequency when its weight is above this fraction of the max.
_SUPPORT_FRACTION = 0.1
#: Band a rotation step can resolve: ``_BAND_PER_STEP / (step_rad · S)`` cycles per voxel.
_BAND_PER_STEP = 2.5


@dataclass(frozen=True)
class EngineResult:
    """Best orientation of every particle against every reference.

    Attributes
    ----------
    scores
        ``(N, R)`` float64 constrained cross-correlation at the optimum, in ``[-1, 1]``.
    quaternions
        ``(N, R, 4)`` float64 unit quaternions, scalar last, of the active reference→particle
        rotations (x, y, z vectors).
    shifts_zyx
        ``(N, R, 3)`` float64 shifts ``t`` in voxels, z, y, x order.
    n_rotations_scored
        Rotations scored per particle–reference pair (grid plus refinement candidates).
    """

    scores: np.ndarray
    quaternions: np.ndarray
    shifts_zyx: np.ndarray
    n_rotations_scored: int = 0

    def rotations(self, reference: int = 0) -> Rotation:
        """The ``N`` rotations found for reference ``reference`` (column of ``scores``)."""
        return Rotation.from_quat(self.quaternions[:, reference].reshape(-1, 4))

    @property
    def relion_euler_deg(self) -> np.ndarray:
        """``(N, R, 3)`` RELION ``[rot, tilt, psi]`` angles of the rotations, degrees."""
        n, r = self.scores.shape
        if n * r == 0:
            return np.zeros((n, r, 3))
        flat = Rotation.from_quat(self.quaternions.reshape(-1, 4))
        return relion_euler_from_rotations(flat).reshape(n, r, 3)


def local_rotation_offsets(step_deg: float, radius_deg: float) -> Rotation:
    """Small rotations on a cubic lattice of rotation vectors: spacing ``step_deg``, within
    ``radius_deg`` of the identity (which is included). Composed with a current orientation
    (``current * offsets``) they form a local search grid about it.
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


def band_for_step(step_deg: float, size: int, max_frequency: float) -> float:
    """Band (cycles per voxel) scored for rotations spaced ``step_deg`` in an ``S``-box."""
    return min(max_frequency, _BAND_PER_STEP / (math.radians(step_deg) * size))


# --------------------------------------------------------------------------------------------
# Inputs


def _float_tensor(values: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    """``values`` as float32 on ``device``; numpy views of any stride (e.g. ``a[::-1]``) too."""
    if isinstance(values, np.ndarray):
        values = np.ascontiguousarray(values)
    return torch.as_tensor(values).to(device=device, dtype=torch.float32)


def _particle_tensor(particles: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    volumes = _float_tensor(particles, device)
    if volumes.ndim != 4 or len(set(volumes.shape[1:])) != 1 or volumes.shape[1] < 4:
        raise InputError(
            f"particles: expected (N, S, S, S) cubic boxes with S >= 4, got {tuple(volumes.shape)}"
        )
    return volumes


def _reference_tensor(
    references: torch.Tensor | np.ndarray, size: int, device: torch.device
) -> torch.Tensor:
    maps = _float_tensor(references, device)
    if maps.ndim == 3:
        maps = maps[None]
    if maps.ndim != 4 or tuple(maps.shape[1:]) != (size,) * 3 or maps.shape[0] < 1:
        raise InputError(
            f"reference: expected (R, {size}, {size}, {size}) maps on the particle box, "
            f"got shape {tuple(maps.shape)}"
        )
    return maps


def _wedge_table(
    n: int,
    size: int,
    device: torch.device,
    wedges: torch.Tensor | np.ndarray | None,
    tilt_range_deg: Sequence[float] | np.ndarray | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct wedges ``(U, S, S, H)`` (float32, ``rfftn`` layout) and each particle's
    ``(N,)`` index into them."""
    half = size // 2 + 1
    if wedges is not None and tilt_range_deg is not None:
        raise InputError("wedges, tilt_range_deg: give one of the two, not both")
    if wedges is not None:
        masks = _float_tensor(wedges, device)
        if masks.ndim == 3:
            masks = masks[None]
        if masks.ndim != 4 or tuple(masks.shape[1:]) != (size,) * 3 or masks.shape[0] not in (1, n):
            raise InputError(
                f"wedges: expected (S, S, S) or (N, S, S, S) fftshifted masks with S = {size}, "
                f"N = {n}, got shape {tuple(masks.shape)}"
            )
        rfft = torch.fft.ifftshift(masks, dim=(-3, -2, -1))[..., :half].contiguous()
        index = torch.arange(n, device=device) if len(rfft) == n else torch.zeros(n)
        return rfft, index.to(device=device, dtype=torch.long)
    if tilt_range_deg is None:
        ones = torch.ones((1, size, size, half), device=device)
        return ones, torch.zeros(n, dtype=torch.long, device=device)
    ranges = np.asarray(tilt_range_deg, dtype=np.float64)
    if ranges.shape == (2,):
        ranges = np.broadcast_to(ranges, (n, 2))
    if ranges.shape != (n, 2):
        raise InputError(
            f"tilt_range_deg: expected (min, max) or (N, 2) degrees for N = {n}, "
            f"got shape {ranges.shape}"
        )
    unique, inverse = np.unique(ranges, axis=0, return_inverse=True)
    masks_np = np.stack(
        [missing_wedge_mask((size,) * 3, tilt_range_deg=(lo, hi), rfft=True) for lo, hi in unique]
    )
    index = torch.as_tensor(inverse.reshape(-1), device=device, dtype=torch.long)
    return torch.as_tensor(masks_np, device=device), index


# --------------------------------------------------------------------------------------------
# Fourier-space building blocks


@dataclass(frozen=True)
class _Band:
    """The ``K`` Fourier voxels scored: flat ``rfftn`` index, frequency, Hermitian weight."""

    flat: torch.Tensor  # (K,) long, into (S, S, H)
    k_zyx: torch.Tensor  # (K, 3) float32, cycles per voxel
    hermitian: torch.Tensor  # (K,) float32, 2 or 1


def _band(size: int, max_frequency: float, observed: torch.Tensor) -> _Band:
    """Voxels with ``0.5 / S < |k| ≤ max_frequency`` that ``observed`` ``(S, S, H)`` marks."""
    device = observed.device
    f = torch.fft.fftfreq(size, device=device)
    rf = torch.fft.rfftfreq(size, device=device)
    kz, ky, kx = torch.meshgrid(f, f, rf, indexing="ij")
    radius = torch.sqrt(kz**2 + ky**2 + kx**2)
    keep = (radius > 0.5 / size) & (radius <= max_frequency + 1e-6) & (observed > 0)
    flat = torch.nonzero(keep.flatten()).flatten()
    k_zyx = torch.stack([kz.flatten(), ky.flatten(), kx.flatten()], dim=1)[flat]
    edge = (kx == 0) | ((size % 2 == 0) & (kx == rf[-1]))
    hermitian = torch.where(edge.flatten()[flat], 1.0, 2.0).to(torch.float32)
    return _Band(flat, k_zyx.to(torch.float32), hermitian)


@dataclass(frozen=True)
class _Particles:
    """Masked band spectra of a chunk of particles."""

    spectrum: torch.Tensor  # (N, K) complex64: h · W · P
    weight: torch.Tensor  # (N, K) float32: h · W
    power: torch.Tensor  # (N, K) float32: h · W · |P|²


@dataclass(frozen=True)
class _Table:
    """An ``fftshift``ed cube of side ``n`` embedded in a zero border, read at frequencies."""

    values: torch.Tensor  # (D³,) flat
    scale: float  # voxels per cycle per voxel: n
    strides: torch.Tensor  # (3,) float (D², D, 1)
    offset: float  # flat index of the zero frequency
    exact: bool  # flat indices below 2**24 (float32 exact)


def _table(cube: torch.Tensor, max_frequency: float) -> _Table:
    """Embed ``(n, n, n)`` (zero frequency at ``n // 2``) so that every frequency up to
    ``max_frequency`` (cycles per voxel, in any direction) rounds to a voxel of the table."""
    n = cube.shape[-1]
    pad = math.ceil(max(0.0, max_frequency * n - n // 2 + 1)) + 1
    side = n + 2 * pad
    values = cube.new_zeros((side,) * 3)
    values[pad : pad + n, pad : pad + n, pad : pad + n] = cube
    centre = n // 2 + pad
    strides = torch.tensor([side * side, side, 1], dtype=torch.float32, device=cube.device)
    return _Table(
        values.flatten(), float(n), strides, float(centre * (side * side + side + 1)),
        side**3 < 2**24,
    )  # fmt: skip


def _indices(table: _Table, inverse_zyx: torch.Tensor, band: _Band) -> torch.Tensor:
    """``(C, K)`` flat table indices of ``R⁻¹ k`` (nearest voxel) for ``(C, 3, 3)`` ``R⁻¹``."""
    source = torch.einsum("cij,kj->cki", inverse_zyx * table.scale, band.k_zyx).round_()
    if table.exact:
        return (source @ table.strides).add_(table.offset).long()
    strides = table.strides.to(torch.long)
    return (source.long() * strides).sum(-1) + int(table.offset)


@dataclass(frozen=True)
class _Reference:
    """One reference's oversampled centred Fourier transform (and weight) for look-ups."""

    spectrum: _Table  # complex64, oversampled ``oversampling`` times
    weight: _Table | None  # float32 Fourier weight (normalised to max 1) on the box grid


def _reference(
    volume: torch.Tensor, weight: torch.Tensor | None, oversampling: int, max_frequency: float
) -> _Reference:
    size = volume.shape[-1]
    length = size * oversampling
    padded = volume.new_zeros((length,) * 3)
    lo = length // 2 - size // 2
    padded[lo : lo + size, lo : lo + size, lo : lo + size] = volume
    spectrum = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(padded)))
    weight_table = None
    if weight is not None:
        normalised = (weight / weight.max().clamp_min(1e-12)).to(torch.float32)
        weight_table = _table(normalised, max_frequency)
    return _Reference(_table(spectrum.to(torch.complex64), max_frequency), weight_table)


def _look_up(
    reference: _Reference, inverse_zyx: torch.Tensor, band: _Band
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rotated reference spectra ``(C, K)`` and supports ``(C, K)`` (``None``: all observed).

    ``inverse_zyx`` holds ``(C, 3, 3)`` matrices of ``R⁻¹`` acting on z, y, x vectors; the
    value at ``k`` is the reference's transform at ``R⁻¹ k`` (nearest oversampled voxel).
    """
    values = reference.spectrum.values[_indices(reference.spectrum, inverse_zyx, band)]
    if reference.weight is None:
        return values, None
    weight = reference.weight.values[_indices(reference.weight, inverse_zyx, band)]
    support = (weight > _SUPPORT_FRACTION).to(torch.float32)
    return values * support, support


def _integer_shifts(radius_px: float, device: torch.device) -> torch.Tensor:
    """``(T, 3)`` float32 integer shifts (z, y, x) within ``radius_px``, zero first."""
    n = math.floor(radius_px + 1e-9)
    axis = torch.arange(-n, n + 1, dtype=torch.float32, device=device)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    grid = grid[grid.norm(dim=1) <= radius_px + 1e-6]
    order = torch.argsort(grid.norm(dim=1), stable=True)
    return grid[order]


def _phases(band: _Band, shifts: torch.Tensor) -> torch.Tensor:
    """``(K, T)`` complex ``E_kt = e^{2πi k·t}``."""
    angle = 2.0 * math.pi * (band.k_zyx @ shifts.T)
    return torch.polar(torch.ones_like(angle), angle)


def _interleaved(phases: torch.Tensor) -> torch.Tensor:
    """``(2K, T)`` real rows ``Re E_k, -Im E_k`` per ``k``: ``view_as_real(X) @ it = Re(X E)``."""
    k, t = phases.shape
    return torch.stack([phases.real, -phases.imag], dim=1).reshape(2 * k, t)


def _score_shared(
    particles: _Particles,
    rotated: torch.Tensor,
    support: torch.Tensor | None,
    phases: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best score ``(N, M)`` and shift index ``(N, M)`` over all shifts, shared rotations."""
    n, k = particles.spectrum.shape
    m, t = rotated.shape[0], phases.shape[1]
    if n < t:  # per particle and rotation the product A conj(B), then all shifts at once
        product = particles.spectrum[:, None] * rotated.conj()[None]  # (N, M, K)
        numerator = torch.view_as_real(product).reshape(n * m, 2 * k) @ _interleaved(phases)
    else:  # per rotation and shift conj(B) E, then all particles at once
        # Re Σ_k A_k G_kmt with G = conj(B) E: the interleaved (re, im) particle spectra
        # against [Re G; -Im G] = view_as_real(conj G).
        conj_g = rotated.T[:, :, None] * phases.conj()[:, None, :]  # (K, M, T)
        right = torch.view_as_real(conj_g).permute(0, 3, 1, 2).reshape(2 * k, m * t)
        numerator = torch.view_as_real(particles.spectrum).reshape(n, 2 * k) @ right
    value, index = numerator.reshape(n, m, t).max(dim=-1)
    power_r = particles.weight @ (rotated.abs() ** 2).T
    if support is None:
        power_p = particles.power.sum(dim=1, keepdim=True)
    else:
        power_p = particles.power @ support.T
    return value / torch.sqrt(power_p * power_r).clamp_min(1e-20), index


def _distinct_hits(
    scores: torch.Tensor, quats: torch.Tensor, n_hits: int, separation_deg: float
) -> torch.Tensor:
    """``(N, H)`` grid indices of the best ``n_hits`` rotations at least ``separation_deg``
    apart (repeating the best when fewer exist)."""
    work = scores.clone()
    cos_half = math.cos(math.radians(separation_deg) / 2.0)
    hits = []
    for _ in range(n_hits):
        best = work.argmax(dim=1)
        hits.append(best)
        near = (quats[best] @ quats.T).abs() >= cos_half  # (N, M)
        work = work.masked_fill(near, -math.inf)
    hits_t = torch.stack(hits, dim=1)
    first = hits_t[:, :1].expand_as(hits_t)
    valid = torch.isfinite(scores.gather(1, hits_t))
    return torch.where(valid, hits_t, first)


def _global(
    parts: _Particles,
    ref: _Reference,
    band: _Band,
    grid_inverse: torch.Tensor,
    shifts: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``(N, M)`` and shift indices ``(N, M)`` of every grid rotation."""
    n, k = parts.spectrum.shape
    m_all, t = grid_inverse.shape[0], shifts.shape[0]
    phases = _phases(band, shifts)
    m_chunk = max(1, _CHUNK_ELEMENTS // max(1, 2 * t * max(2 * k, n)))
    scores, indices = [], []
    for m0 in range(0, m_all, m_chunk):
        rotated, support = _look_up(ref, grid_inverse[m0 : m0 + m_chunk], band)
        value, index = _score_shared(parts, rotated, support, phases)
        scores.append(value)
        indices.append(index)
    return torch.cat(scores, dim=1), torch.cat(indices, dim=1)


def _local(
    parts: _Particles,
    ref: _Reference,
    band: _Band,
    current_inverse: torch.Tensor,
    centre_shifts: torch.Tensor,
    offsets_inverse: torch.Tensor,
    window: torch.Tensor,
    max_shift_px: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refine ``Q`` pair-hits of the particle chunk (``Q = N · H``, particle ``q // H``).

    Candidates are ``current ∘ offset``; shifts ``centre + δ`` for ``δ`` in ``window``
    ``(T, 3)``, only within ``max_shift_px``. Returns best score ``(Q,)``, offset index
    ``(Q,)`` and shift ``(Q, 3)``.
    """
    q_all = current_inverse.shape[0]
    n, k = parts.spectrum.shape
    hits = q_all // n
    m, t = offsets_inverse.shape[0], window.shape[0]
    stacked = _interleaved(_phases(band, window))
    q_chunk = max(1, _CHUNK_ELEMENTS // (2 * k * max(m, t)))
    best_score, best_offset, best_shift = [], [], []
    for q0 in range(0, q_all, q_chunk):
        rows = torch.arange(q0, min(q_all, q0 + q_chunk), device=current_inverse.device)
        q, owner = len(rows), rows // hits
        inverse = offsets_inverse[None] @ current_inverse[rows, None]  # (Q, M, 3, 3)
        rotated, support = _look_up(ref, inverse.reshape(-1, 3, 3), band)
        rotated = rotated.reshape(q, m, k)
        centre = centre_shifts[rows]  # (Q, 3)
        angle = 2.0 * math.pi * (centre @ band.k_zyx.T)
        shifted = parts.spectrum[owner] * torch.polar(torch.ones_like(angle), angle)
        product = shifted[:, None] * rotated.conj()  # (Q, M, K)
        numerator = torch.view_as_real(product).reshape(q * m, 2 * k) @ stacked
        numerator = numerator.reshape(q, m, t)
        total = centre[:, None] + window[None]  # (Q, T, 3)
        allowed = total.norm(dim=-1) <= max_shift_px + 1e-6
        numerator = numerator.masked_fill(~allowed[:, None], -math.inf)
        weight = parts.weight[owner, :, None]
        power_r = torch.bmm(torch.view_as_real(rotated).square().sum(-1), weight)[..., 0]
        if support is None:
            power_p = parts.power[owner].sum(-1, keepdim=True)
        else:
            support = support.reshape(q, m, k)
            power_p = torch.bmm(support, parts.power[owner, :, None])[..., 0]
        value, shift_index = numerator.max(dim=-1)
        score = value / torch.sqrt(power_p * power_r).clamp_min(1e-20)
        score_best, offset = score.max(dim=1)
        chosen = shift_index.gather(1, offset[:, None])[:, 0]
        best_score.append(score_best)
        best_offset.append(offset)
        best_shift.append(total[torch.arange(q, device=total.device), chosen])
    return torch.cat(best_score), torch.cat(best_offset), torch.cat(best_shift)


# --------------------------------------------------------------------------------------------
# Public entry points


@dataclass
class _Setup:
    particles: torch.Tensor  # (N, S, S, S) on the device
    references: list[_Reference]
    wedge_table: torch.Tensor  # (U, S, S, H)
    wedge_index: torch.Tensor  # (N,)
    observed: torch.Tensor  # (S, S, H) union of the wedges
    size: int
    chunk: int  # particles per chunk

    def chunks(self) -> list[tuple[int, int, torch.Tensor, torch.Tensor]]:
        """``(start, stop, spectra (n, S, S, H), wedges (n, S, S, H))`` per particle chunk."""
        out = []
        n = self.particles.shape[0]
        for p0 in range(0, n, self.chunk):
            p1 = min(n, p0 + self.chunk)
            centred = torch.fft.ifftshift(self.particles[p0:p1], dim=(-3, -2, -1))
            spectra = torch.fft.rfftn(centred, dim=(-3, -2, -1))
            out.append((p0, p1, spectra, self.wedge_table[self.wedge_index[p0:p1]]))
        return out


def _masked(spectra: torch.Tensor, wedges: torch.Tensor, band: _Band) -> _Particles:
    spectrum = spectra.flatten(1)[:, band.flat]
    weight = wedges.flatten(1)[:, band.flat] * band.hermitian
    return _Particles(spectrum * weight, weight, weight * spectrum.abs() ** 2)


def _setup(
    particles: torch.Tensor | np.ndarray,
    references: torch.Tensor | np.ndarray,
    *,
    wedges: torch.Tensor | np.ndarray | None,
    tilt_range_deg: Sequence[float] | np.ndarray | None,
    reference_weights: torch.Tensor | np.ndarray | None,
    max_frequency: float,
    max_shift_px: float,
    oversampling: int,
    device: str | torch.device | None,
) -> _Setup:
    from cryomine._device import resolve_device

    if device is None:
        dev = particles.device if isinstance(particles, torch.Tensor) else torch.device("cpu")
    else:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
    volumes = _particle_tensor(particles, dev)
    n, size = volumes.shape[0], volumes.shape[-1]
    maps = _reference_tensor(references, size, dev)
    if not (math.isfinite(max_frequency) and 0 < max_frequency <= 0.5 * math.sqrt(3.0) + 1e-9):
        raise InputError(
            f"max_frequency: expected (0, 0.866] cycles per voxel, got {max_frequency!r}"
        )
    if not (math.isfinite(max_shift_px) and 0 <= max_shift_px <= size / 2):
        raise InputError(f"max_shift_px: expected 0 to box/2 voxels, got {max_shift_px!r}")
    if isinstance(oversampling, bool) or not isinstance(oversampling, int) or oversampling < 1:
        raise InputError(f"oversampling: expected a positive integer, got {oversampling!r}")
    weights: list[torch.Tensor | None] = [None] * len(maps)
    if reference_weights is not None:
        w = _float_tensor(reference_weights, dev)
        if w.ndim == 3:
            w = w[None].expand(len(maps), -1, -1, -1)
        if tuple(w.shape) != tuple(maps.shape):
            raise InputError(
                f"reference_weights: expected shape {tuple(maps.shape)} (fftshifted), "
                f"got {tuple(w.shape)}"
            )
        weights = list(w)
    table, index = _wedge_table(n, size, dev, wedges, tilt_range_deg)
    refs = [
        _reference(m, w, oversampling, max_frequency) for m, w in zip(maps, weights, strict=True)
    ]
    chunk = max(1, min(512, _CHUNK_ELEMENTS // (4 * size**3)))
    return _Setup(volumes, refs, table, index, table.amax(dim=0), size, chunk)


def _inverse_zyx(rotations: Rotation, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(matrices_zyx(rotations.inv()), dtype=torch.float32, device=device)


def search_global(
    particles: torch.Tensor | np.ndarray,
    references: torch.Tensor | np.ndarray,
    rotations: Rotation,
    *,
    max_frequency: float,
    max_shift_px: float,
    wedges: torch.Tensor | np.ndarray | None = None,
    tilt_range_deg: Sequence[float] | np.ndarray | None = None,
    reference_weights: torch.Tensor | np.ndarray | None = None,
    oversampling: int = 4,
    device: str | torch.device | None = None,
) -> EngineResult:
    """Best rotation of a shared grid, and best integer shift, of every particle–reference pair.

    Parameters
    ----------
    particles
        ``(N, S, S, S)`` subtomograms (z, y, x), protein bright.
    references
        ``(R, S, S, S)`` (or one ``(S, S, S)``) reference maps on the particle grid.
    rotations
        ``M`` candidate rotations (active, reference→particle, x, y, z vectors), e.g.
        :func:`cryomine.geometry.uniform_rotation_grid`. Each reference is rotated once per
        rotation and scored against all particles.
    max_frequency
        Band ``0 < |k| ≤ max_frequency`` scored, cycles per voxel (≤ 0.5·√3).
    max_shift_px
        Largest translation searched (radius), voxels; every integer shift within it is tried.
    wedges
        ``(S, S, S)`` or ``(N, S, S, S)`` ``fftshift``ed 0/1 masks of the frequencies each
        particle observes; or give ``tilt_range_deg``; neither: fully observed.
    tilt_range_deg
        ``(min, max)`` or ``(N, 2)`` per-particle tilt ranges, degrees (tilt axis y; see
        :func:`cryomine.geometry.missing_wedge_mask`).
    reference_weights
        ``(S, S, S)`` or ``(R, S, S, S)`` ``fftshift``ed Fourier weights of the references (how
        often each frequency was observed); their rotated support constrains the score.
        ``None``: references fully observed.
    oversampling
        Zero-padding factor of the reference transforms the rotated spectra are read from.
    device
        Torch device or name (``"cpu"``, ``"cuda"``, ``"auto"``); default: the particles'.

    Returns
    -------
    EngineResult
        ``(N, R)`` scores, rotations and shifts.
    """
    setup = _setup(
        particles, references, wedges=wedges, tilt_range_deg=tilt_range_deg,
        reference_weights=reference_weights, max_frequency=max_frequency,
        max_shift_px=max_shift_px, oversampling=oversampling, device=device,
    )  # fmt: skip
    n, n_refs = setup.particles.shape[0], len(setup.references)
    dev = setup.particles.device
    grid_inverse = _inverse_zyx(rotations, dev)
    grid_quats = np.asarray(rotations.as_quat(), dtype=np.float64).reshape(-1, 4)
    shifts = _integer_shifts(max_shift_px, dev)
    band = _band(setup.size, max_frequency, setup.observed)
    scores = np.zeros((n, n_refs))
    quats = np.zeros((n, n_refs, 4))
    found_shifts = np.zeros((n, n_refs, 3))
    for p0, p1, spectra, wedge in setup.chunks():
        parts = _masked(spectra, wedge, band)
        for r, ref in enumerate(setup.references):
            table, shift_index = _global(parts, ref, band, grid_inverse, shifts)
            value, which = table.max(dim=1)
            chosen = shift_index.gather(1, which[:, None])[:, 0]
            scores[p0:p1, r] = value.cpu().numpy()
            quats[p0:p1, r] = grid_quats[which.cpu().numpy()]
            found_shifts[p0:p1, r] = shifts[chosen].cpu().numpy()
    return EngineResult(scores, quats, found_shifts, len(rotations))


def _as_pair_quaternions(current: Rotation | np.ndarray, n: int, n_refs: int) -> np.ndarray:
    if isinstance(current, Rotation):
        quats = np.asarray(current.as_quat(), dtype=np.float64).reshape(-1, 4)
        if len(quats) != n:
            raise InputError(f"current: {len(quats)} rotations for {n} particles")
        return np.repeat(quats[:, None], n_refs, axis=1)
    quats = np.asarray(current, dtype=np.float64)
    if quats.shape != (n, n_refs, 4):
        raise InputError(
            f"current: expected {n} rotations or ({n}, {n_refs}, 4) quaternions, "
            f"got shape {quats.shape}"
        )
    return quats


def _refine_pairs(
    setup: _Setup,
    quats: np.ndarray,
    shifts: np.ndarray,
    offsets: Rotation,
    *,
    max_frequency: float,
    max_shift_px: float,
    shift_radius_px: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refine ``(N, R, H)`` pair-hits over ``current ∘ offsets``; returns the same shapes."""
    n, n_refs, hits = quats.shape[:3]
    dev = setup.particles.device
    band = _band(setup.size, max_frequency, setup.observed)
    offsets_inverse = _inverse_zyx(offsets, dev)
    offset_rot = offsets
    if shift_radius_px is None:
        window = _integer_shifts(max_shift_px, dev)
        shifts = np.zeros_like(shifts)
    else:
        n_axis = math.floor(shift_radius_px + 1e-9)
        axis = torch.arange(-n_axis, n_axis + 1, dtype=torch.float32, device=dev)
        window = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    out_scores = np.zeros((n, n_refs, hits))
    out_quats = np.zeros_like(quats)
    out_shifts = np.zeros_like(shifts)
    for p0, p1, spectra, wedge in setup.chunks():
        parts = _masked(spectra, wedge, band)
        for r, ref in enumerate(setup.references):
            current = Rotation.from_quat(quats[p0:p1, r].reshape(-1, 4))
            centre = torch.as_tensor(
                shifts[p0:p1, r].reshape(-1, 3), dtype=torch.float32, device=dev
            )
            score, offset, shift = _local(
                parts, ref, band, _inverse_zyx(current, dev), centre, offsets_inverse, window,
                max_shift_px,
            )  # fmt: skip
            chosen = current * offset_rot[offset.cpu().numpy()]
            out_scores[p0:p1, r] = score.cpu().numpy().reshape(p1 - p0, hits)
            out_quats[p0:p1, r] = chosen.as_quat().reshape(p1 - p0, hits, 4)
            out_shifts[p0:p1, r] = shift.cpu().numpy().reshape(p1 - p0, hits, 3)
    return out_scores, out_quats, out_shifts


def refine_local(
    particles: torch.Tensor | np.ndarray,
    references: torch.Tensor | np.ndarray,
    current: Rotation | np.ndarray,
    offsets: Rotation,
    *,
    max_frequency: float,
    max_shift_px: float,
    current_shifts_zyx: np.ndarray | None = None,
    shift_radius_px: float | None = None,
    wedges: torch.Tensor | np.ndarray | None = None,
    tilt_range_deg: Sequence[float] | np.ndarray | None = None,
    reference_weights: torch.Tensor | np.ndarray | None = None,
    oversampling: int = 4,
    device: str | torch.device | None = None,
) -> EngineResult:
    """Refine every pair's rotation over ``current * offsets`` and its integer shift.

    Arguments as :func:`search_global`, and:

    current
        ``N`` rotations (the same for every reference) or ``(N, R, 4)`` scalar-last
        quaternions, one per pair.
    offsets
        ``M`` small rotations (:func:`local_rotation_offsets`; include the identity to keep the
        current rotation as a candidate). Candidate ``j`` of a pair is ``current ∘ offsets[j]``.
    current_shifts_zyx
        ``(N, 3)`` or ``(N, R, 3)`` current shifts, voxels (z, y, x); default zero.
    shift_radius_px
        ``None``: search every integer shift within ``max_shift_px`` (``current_shifts_zyx``
        ignored). A number: only the integer cube of that half-width about the current shift
        (still within ``max_shift_px``).
    """
    setup = _setup(
        particles, references, wedges=wedges, tilt_range_deg=tilt_range_deg,
        reference_weights=reference_weights, max_frequency=max_frequency,
        max_shift_px=max_shift_px, oversampling=oversampling, device=device,
    )  # fmt: skip
    n, n_refs = setup.particles.shape[0], len(setup.references)
    quats = _as_pair_quaternions(current, n, n_refs)[:, :, None]
    shifts = np.zeros((n, n_refs, 3))
    if current_shifts_zyx is not None:
        given = np.asarray(current_shifts_zyx, dtype=np.float64)
        if given.shape not in ((n, 3), (n, n_refs, 3)):
            raise InputError(
                f"current_shifts_zyx: expected ({n}, 3) or ({n}, {n_refs}, 3), got {given.shape}"
            )
        shifts = np.broadcast_to(given.reshape(n, -1, 3), (n, n_refs, 3)).copy()
    scores, quats, shifts = _refine_pairs(
        setup, quats, shifts[:, :, None], offsets, max_frequency=max_frequency,
        max_shift_px=max_shift_px, shift_radius_px=shift_radius_px,
    )  # fmt: skip
    return EngineResult(scores[..., 0], quats[:, :, 0], shifts[:, :, 0], len(offsets))


def check_rotation_steps(angular_step_deg: float, refine_to_deg: float | None) -> None:
    """Raise :class:`InputError` unless the global grid step is in ``(0, 180]`` degrees and the
    finest refinement step (``None``: no refinement) is positive, degrees."""
    if not 0.0 < angular_step_deg <= 180.0:
        raise InputError(f"angular step {angular_step_deg}°: expected a value in (0, 180]")
    if refine_to_deg is not None and not 0.0 < refine_to_deg:
        raise InputError(f"refinement step {refine_to_deg}°: expected a positive number")


def refinement_steps(angular_step_deg: float, refine_to_deg: float | None) -> list[float]:
    """Local refinement steps ``angular_step / 2, / 4, …`` not below ``refine_to_deg``."""
    steps: list[float] = []
    if refine_to_deg is None:
        return steps
    step = angular_step_deg / 2.0
    while step >= refine_to_deg - 1e-9:
        steps.append(step)
        step /= 2.0
    return steps


#: Offsets of the final polishing stage, in units of half the finest lattice step: the cube
#: of rotation vectors within this radius (19 rotations at √2).
_POLISH_RADIUS = math.sqrt(2.0)


def _stages(steps: list[float], size: int, max_frequency: float) -> list[tuple[Rotation, float]]:
    """``(offsets, band)`` of each refinement stage: one lattice per step, then a polish at
    half the finest step at ``max_frequency`` (the identity alone without steps)."""
    if not steps:
        return [(Rotation.identity(1), max_frequency)]
    stages = [
        (local_rotation_offsets(step, 2.0 * step), band_for_step(step, size, max_frequency))
        for step in steps
    ]
    polish = steps[-1] / 2.0
    stages.append((local_rotation_offsets(polish, _POLISH_RADIUS * polish), max_frequency))
    return stages


def align_to_references(
    particles: torch.Tensor | np.ndarray,
    references: torch.Tensor | np.ndarray,
    *,
    angular_step_deg: float = 30.0,
    refine_to_deg: float | None = 7.5,
    max_shift_px: float = 3.0,
    max_frequency: float = 0.5,
    n_hits: int = 2,
    wedges: torch.Tensor | np.ndarray | None = None,
    tilt_range_deg: Sequence[float] | np.ndarray | None = None,
    reference_weights: torch.Tensor | np.ndarray | None = None,
    oversampling: int = 4,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EngineResult:
    """Coarse-to-fine alignment of every particle to every reference.

    1. Global: ``uniform_rotation_grid(angular_step_deg)``, band
       ``min(max_frequency, 2.5 / (δ S))``, every integer shift within ``max_shift_px``.
    2. The ``n_hits`` best grid rotations of each pair at least ``1.5 δ`` apart are refined
       over ``current * local_rotation_offsets(δ / 2, δ)``; the best of them then level by
       level over ``local_rotation_offsets(s, 2 s)`` for ``s = δ / 4, …`` down to
       ``refine_to_deg`` (band ``min(max_frequency, 2.5 / (s S))``), and finally over the
       19 rotations ``local_rotation_offsets(s / 2, s / √2)`` about it at ``max_frequency``
       (``s`` the finest step). Each stage searches the shift within ±1 voxel of the
       previous one's (and within ``max_shift_px``).
    3. Without refinement levels (``refine_to_deg`` None or above ``δ / 2``) the best grid
       hit is rescored at ``max_frequency``.

    Arguments as :func:`search_global` (volumes z, y, x; rotations reference→particle, x, y, z
    vectors; shifts z, y, x voxels); ``progress(done, total)`` is called after each stage.

    Returns
    -------
    EngineResult
        ``(N, R)`` scores (constrained correlation in the band ``max_frequency``), rotations
        and shifts; ``relion_euler_deg`` gives RELION ZYZ angles.
    """
    check_rotation_steps(angular_step_deg, refine_to_deg)
    if isinstance(n_hits, bool) or not isinstance(n_hits, int) or n_hits < 1:
        raise InputError(f"n_hits: expected a positive integer, got {n_hits!r}")
    setup = _setup(
        particles, references, wedges=wedges, tilt_range_deg=tilt_range_deg,
        reference_weights=reference_weights, max_frequency=max_frequency,
        max_shift_px=max_shift_px, oversampling=oversampling, device=device,
    )  # fmt: skip
    n, n_refs, size = setup.particles.shape[0], len(setup.references), setup.size
    dev = setup.particles.device
    grid = uniform_rotation_grid(angular_step_deg)
    steps = refinement_steps(angular_step_deg, refine_to_deg)
    hits = min(n_hits, len(grid))
    total, done = 1 + len(steps) + 1, 0
    grid_inverse = _inverse_zyx(grid, dev)
    grid_quats_t = torch.as_tensor(grid.as_quat(), dtype=torch.float32, device=dev)
    grid_quats = np.asarray(grid.as_quat(), dtype=np.float64)
    shifts_all = _integer_shifts(max_shift_px, dev)
    band = _band(size, band_for_step(angular_step_deg, size, max_frequency), setup.observed)
    quats = np.zeros((n, n_refs, hits, 4))
    shifts = np.zeros((n, n_refs, hits, 3))
    for p0, p1, spectra, wedge in setup.chunks():
        parts = _masked(spectra, wedge, band)
        for r, ref in enumerate(setup.references):
            table, shift_index = _global(parts, ref, band, grid_inverse, shifts_all)
            chosen = _distinct_hits(table, grid_quats_t, hits, 1.5 * angular_step_deg)
            quats[p0:p1, r] = grid_quats[chosen.cpu().numpy()]
            shifts[p0:p1, r] = shifts_all[shift_index.gather(1, chosen)].cpu().numpy()
    done += 1
    if progress is not None:
        progress(done, total)
    stages = _stages(steps, size, max_frequency)
    scores = np.zeros((n, n_refs, hits))
    n_scored = len(grid)
    for stage, (offsets, frequency) in enumerate(stages):
        scores, quats, shifts = _refine_pairs(
            setup, quats, shifts, offsets, max_frequency=frequency,
            max_shift_px=max_shift_px, shift_radius_px=1.0,
        )  # fmt: skip
        n_scored += quats.shape[2] * len(offsets)
        if stage == 0 and quats.shape[2] > 1:  # later stages refine the best hit only
            pick = (*np.indices(scores.shape[:2]), scores.argmax(axis=2))
            scores, quats, shifts = (a[pick][:, :, None] for a in (scores, quats, shifts))
        done += 1
        if progress is not None:
            progress(done, total)
    pick = (*np.indices(scores.shape[:2]), scores.argmax(axis=2))
    return EngineResult(scores[pick], quats[pick], shifts[pick], n_scored)
