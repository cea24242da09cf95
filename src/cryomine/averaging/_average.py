"""Reference-free, gold-standard subtomogram averaging of one class.

Procedure (:func:`average_class`):

1. **Initial model** (``global_iterations`` rounds, all particles). Start: the wedge-weighted
   average of all particles as they are (unrotated, unshifted), low-passed to
   ``initial_lowpass_a``; for one class in random orientations this is a near-spherical blob
   that favours no orientation. Each round searches ``uniform_rotation_grid(angular_step_deg)``
   globally for every particle and re-averages, still low-passed to ``initial_lowpass_a``: the
   search breaks the symmetry on the particles' own signal. With ``initial_rotations`` (e.g.
   MPP's) the initial model is instead the average at those orientations, low-passed alike,
   and no global search runs.
2. **Halves.** The particles are split into two random halves (seeded). Both start from the
   initial model (low-passed to ``initial_lowpass_a``, so the halves share nothing beyond that
   resolution — the RELION convention for a common initial reference) and from the initial
   orientations, and are refined independently from then on.
3. Each iteration first tests, for every particle, its orientation composed with the 180°
   rotations about the three principal axes of its half's reference (the pseudo-symmetries of
   elongated or flat particles at low resolution, which a local search cannot leave), then
   refines every particle against its half's reference (soft-sphere masked, its
   Fourier weight constraining the score; :mod:`cryomine.averaging._align`) locally around its
   orientation, on a lattice of step ``angular_step_deg / 2^(i+1)`` (not below
   ``min_step_deg``) within twice that step. Each half map is then the wedge-weighted average
   ``F⁻¹[Σ F_p W_p / (Σ W_p + λ)]`` of its rotated particles, so particles in different
   orientations fill each other's missing wedge.
4. Half map 2 is aligned to half map 1 (local search, no wedge) and half 2's particle
   orientations are re-expressed in half 1's frame; the FSC of the soft-masked half maps gives
   the resolution at 0.143; the next iteration's references are low-passed to it.
5. The final map is the wedge-weighted average of both halves together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cryomine._device import resolve_device
from cryomine.averaging._align import (
    accumulate_aligned,
    align_global,
    align_local,
    align_maps,
    compose_half_alignment,
    map_from_sums,
)
from cryomine.averaging._engine import local_rotation_offsets
from cryomine.averaging._fsc import fourier_shell_correlation, resolution_at
from cryomine.errors import InputError
from cryomine.geometry import missing_wedge_mask, sphere_mask, uniform_rotation_grid
from cryomine.io import as_subtomogram_stack

__all__ = ["ClassAverage", "average_class", "lowpass", "particle_mask", "principal_axis_flips"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassAverage:
    """Result of :func:`average_class` (maps are ``(S, S, S)`` float32, z, y, x, protein bright).

    Attributes
    ----------
    average
        Wedge-weighted average of all particles (both halves, in half 1's frame).
    half_maps
        ``(2, S, S, S)`` the two independent half maps (half 2 aligned to half 1).
    fsc_frequencies_per_a, fsc
        ``(S // 2 + 1,)`` FSC curve of the soft-masked half maps (1/Å, correlation).
    resolution_a
        Resolution at FSC 0.143, Å (``inf`` when nothing is resolved).
    rotations
        ``N`` active reference→particle rotations (x, y, z vectors) in the frame of ``average``.
    shifts_zyx
        ``(N, 3)`` particle shifts ``t`` in voxels of the subtomograms (z, y, x):
        ``particle(x) = average(R⁻¹ (x − c − t) + c)``.
    half
        ``(N,)`` int, 1 or 2: the half each particle was refined in.
    scores
        ``(N,)`` constrained cross-correlation of each particle at its final orientation.
    resolution_history_a
        Resolution after each iteration, Å.
    """

    average: np.ndarray
    half_maps: np.ndarray
    fsc_frequencies_per_a: np.ndarray
    fsc: np.ndarray
    resolution_a: float
    rotations: Rotation
    shifts_zyx: np.ndarray
    half: np.ndarray
    scores: np.ndarray
    resolution_history_a: list[float] = field(default_factory=list)


def particle_mask(size: int) -> np.ndarray:
    """The soft sphere that averaging, MPP and their FSCs mask maps with: ``(S, S, S)`` float32,
    edge ``max(1, S / 16)`` voxels wide, ending one voxel inside the box."""
    edge = max(1.0, size / 16)
    return sphere_mask((size,) * 3, size / 2 - 1 - edge, soft_edge_px=edge)


def lowpass(volume: torch.Tensor, max_frequency: float, *, edge: float = 0.05) -> torch.Tensor:
    """Low-pass ``(..., S, S, S)`` volumes: 1 up to ``max_frequency`` (cycles per voxel), cosine
    fall-off to 0 over ``edge`` cycles per voxel."""
    size = volume.shape[-1]
    f = torch.fft.fftfreq(size, device=volume.device, dtype=torch.float64)
    rf = torch.fft.rfftfreq(size, device=volume.device, dtype=torch.float64)
    radius = torch.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + rf**2)
    ramp = ((radius - max_frequency) / edge).clamp(0.0, 1.0)
    filt = (0.5 * (1.0 + torch.cos(math.pi * ramp))).to(volume.dtype)
    spectrum = torch.fft.rfftn(volume, dim=(-3, -2, -1)) * filt
    return torch.fft.irfftn(spectrum, s=(size,) * 3, dim=(-3, -2, -1))


def _check_particles(particles: np.ndarray) -> np.ndarray:
    array = as_subtomogram_stack(particles, name="particles", min_box=4)
    if len(array) < 2:
        raise InputError(
            f"particles: need at least 2 particles for two half sets, got {len(array)}"
        )
    return array


def average_class(
    particles: np.ndarray,
    *,
    voxel_size_a: float,
    tilt_range_deg: tuple[float, float] = (-60.0, 60.0),
    tilt_axis: str = "y",
    iterations: int = 5,
    global_iterations: int = 2,
    angular_step_deg: float = 30.0,
    min_step_deg: float = 3.0,
    max_shift_px: float | None = None,
    initial_lowpass_a: float | None = None,
    wiener_constant: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    initial_rotations: Rotation | None = None,
    initial_shifts_zyx: np.ndarray | None = None,
) -> ClassAverage:
    """Reference-free gold-standard averaging of one class (see the module docstring).

    Parameters
    ----------
    particles
        ``(N, S, S, S)`` subtomograms (z, y, x), protein bright, ``N ≥ 2``.
    voxel_size_a
        Å per subtomogram voxel.
    tilt_range_deg, tilt_axis
        Missing wedge shared by all particles (:func:`cryomine.geometry.missing_wedge_mask`).
    iterations
        Number of gold-standard (two-half) local refinement iterations (≥ 1).
    global_iterations
        Rounds of global search on all particles that build the initial model (at least 1).
    angular_step_deg
        Step of the global rotation grid, degrees; local steps halve each iteration down to
        ``min_step_deg``.
    max_shift_px
        Largest particle shift searched, voxels (default ``S / 6``).
    initial_lowpass_a
        Resolution of the initial reference and of the first iteration's scoring band, Å
        (default ``5 · voxel_size_a``).
    wiener_constant
        ``λ`` added to the summed wedge weights (in particles): frequencies observed by fewer
        than about ``λ`` particles are damped rather than amplified.
    seed
        Seeds the half split.
    device
        Torch device (or name for :func:`cryomine._device.resolve_device`).
    progress
        ``callback(iterations_done, iterations)``.
    initial_rotations, initial_shifts_zyx
        Orientations found before (e.g. by MPP; active, reference→particle) and shifts (voxels,
        z, y, x; default 0) of the ``N`` particles. Given, they replace the global search of
        step 1: the initial model is the particles' average at these orientations, low-passed
        to ``initial_lowpass_a``, and the halves refine locally from them.
    """
    data = _check_particles(particles)
    global_iterations = max(1, int(global_iterations))
    if iterations < 1:
        raise InputError(f"iterations: expected at least 1, got {iterations}")
    if not (0 < angular_step_deg <= 180):
        raise InputError(f"angular step: expected 0 < step <= 180 degrees, got {angular_step_deg}")
    if not (math.isfinite(voxel_size_a) and voxel_size_a > 0):
        raise InputError(f"voxel_size_a: expected a positive number of Å, got {voxel_size_a!r}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    n, size = data.shape[0], data.shape[1]
    shift_limit = float(size) / 6.0 if max_shift_px is None else float(max_shift_px)
    nyquist = 0.5
    frequency = min(nyquist, voxel_size_a / (initial_lowpass_a or 5.0 * voxel_size_a))
    rng = np.random.default_rng(seed)
    half = np.ones(n, dtype=np.int64)
    half[rng.permutation(n)[n // 2 :]] = 2
    volumes = torch.as_tensor(data, device=dev)
    wedge = torch.as_tensor(
        missing_wedge_mask((size,) * 3, tilt_range_deg=tilt_range_deg, tilt_axis=tilt_axis),  # type: ignore[arg-type]
        device=dev,
    )
    mask = torch.as_tensor(particle_mask(size), device=dev)
    rotations, shifts = Rotation.identity(n), np.zeros((n, 3))
    if initial_rotations is not None:
        rotations, shifts, global_iterations = _initial_orientations(
            initial_rotations, initial_shifts_zyx, n
        )
    scores = np.zeros(n)
    numerator, weight = accumulate_aligned(volumes, rotations, shifts, wedge)
    start = lowpass(map_from_sums(numerator, weight, wiener_constant=wiener_constant), frequency)
    grid = uniform_rotation_grid(angular_step_deg)
    for _ in range(global_iterations):  # initial model: all particles, low resolution
        found = align_global(
            volumes, start * mask, weight, wedge, grid, max_frequency=frequency,
            max_shift_px=shift_limit,
        )  # fmt: skip
        rotations, shifts, scores = found.rotations, found.shifts_zyx.copy(), found.scores.copy()
        numerator, weight = accumulate_aligned(volumes, rotations, shifts, wedge)
        start = lowpass(
            map_from_sums(numerator, weight, wiener_constant=wiener_constant), frequency
        )
    references = [start, start]
    weights = [weight, weight]
    sums: list[tuple[torch.Tensor, torch.Tensor]] = []
    history: list[float] = []
    freqs = fsc = np.zeros(0)
    resolution = math.inf
    for iteration in range(iterations):
        step = max(min_step_deg, angular_step_deg / 2.0 ** (iteration + 1))
        sums = []
        for h in (1, 2):
            rows = np.flatnonzero(half == h)
            subset = volumes[rows]
            flipped = align_local(
                subset, references[h - 1] * mask, weights[h - 1], wedge, rotations[rows],
                principal_axis_flips(references[h - 1] * mask), max_frequency=frequency,
                max_shift_px=shift_limit,
            )  # fmt: skip
            rotations = _replace(rotations, rows, flipped.rotations)
            found = align_local(
                subset, references[h - 1] * mask, weights[h - 1], wedge, rotations[rows],
                local_rotation_offsets(step, 2.0 * step), max_frequency=frequency,
                max_shift_px=shift_limit,
            )  # fmt: skip
            rotations = _replace(rotations, rows, found.rotations)
            shifts[rows] = found.shifts_zyx
            scores[rows] = found.scores
            sums.append(accumulate_aligned(subset, found.rotations, found.shifts_zyx, wedge))
        maps = [map_from_sums(num, w, wiener_constant=wiener_constant) for num, w in sums]
        q, s = align_maps(
            maps[1] * mask,
            maps[0] * mask,
            angular_step_deg=angular_step_deg,
            max_frequency=max(frequency, 0.25),
            max_shift_px=shift_limit,
            global_search=False,
        )
        rows2 = np.flatnonzero(half == 2)
        new_rot, new_shift = compose_half_alignment(rotations[rows2], shifts[rows2], q, s)
        rotations = _replace(rotations, rows2, new_rot)
        shifts[rows2] = new_shift
        sums[1] = accumulate_aligned(volumes[rows2], new_rot, new_shift, wedge)
        maps[1] = map_from_sums(*sums[1], wiener_constant=wiener_constant)
        masked = [(m * mask).cpu().numpy() for m in maps]
        freqs, fsc = fourier_shell_correlation(masked[0], masked[1], voxel_size_a=voxel_size_a)
        resolution = resolution_at(freqs, fsc)
        history.append(resolution)
        logger.info(
            "iteration %d/%d: resolution %.1f Å (step %.1f deg)",
            iteration + 1,
            iterations,
            resolution,
            step,
        )
        frequency = float(np.clip(voxel_size_a / resolution, 2.0 / size, nyquist))
        references = [lowpass(m, frequency) for m in maps]
        weights = [w for _, w in sums]
        if progress is not None:
            progress(iteration + 1, iterations)
    numerator = sums[0][0] + sums[1][0]
    weight = sums[0][1] + sums[1][1]
    average = map_from_sums(numerator, weight, wiener_constant=wiener_constant)
    half_maps = torch.stack(
        [map_from_sums(num, w, wiener_constant=wiener_constant) for num, w in sums]
    )
    return ClassAverage(
        average=average.cpu().numpy().astype(np.float32),
        half_maps=half_maps.cpu().numpy().astype(np.float32),
        fsc_frequencies_per_a=freqs,
        fsc=fsc,
        resolution_a=float(resolution),
        rotations=rotations,
        shifts_zyx=shifts.copy(),
        half=half,
        scores=scores.copy(),
        resolution_history_a=history,
    )


def _initial_orientations(
    rotations: Rotation, shifts_zyx: np.ndarray | None, n: int
) -> tuple[Rotation, np.ndarray, int]:
    """Checked given start orientations and shifts, and no rounds of global search."""
    if rotations.single or len(rotations) != n:
        raise InputError(f"initial_rotations: expected {n} rotations, one per particle")
    shifts = np.zeros((n, 3)) if shifts_zyx is None else np.array(shifts_zyx, dtype=np.float64)
    if shifts.shape != (n, 3) or not np.all(np.isfinite(shifts)):
        raise InputError(f"initial_shifts_zyx: expected finite shape ({n}, 3), got "
                         f"{shifts.shape}")  # fmt: skip
    return rotations, shifts, 0


def principal_axis_flips(volume: torch.Tensor) -> Rotation:
    """The identity and the 180° rotations about the three principal axes of ``volume``'s
    positive density (x, y, z vectors, about the box centre): the pseudo-symmetries an
    elongated or flat particle shows at low resolution."""
    density = volume.detach().clamp_min(0).cpu().numpy().astype(np.float64)
    size = density.shape
    grids = np.meshgrid(*(np.arange(n) - n // 2 for n in size), indexing="ij")
    xyz = np.stack([g.ravel() for g in grids[::-1]], axis=1)
    weights = density.ravel()
    if weights.sum() <= 0:
        return Rotation.identity(1)
    centred = xyz - (weights @ xyz) / weights.sum()
    _, axes = np.linalg.eigh((centred * weights[:, None]).T @ centred)
    return Rotation.concatenate([Rotation.identity(1), Rotation.from_rotvec(np.pi * axes.T)])


def _replace(rotations: Rotation, rows: np.ndarray, new: Rotation) -> Rotation:
    quats = rotations.as_quat()
    quats[rows] = new.as_quat().reshape(-1, 4)
    return Rotation.from_quat(quats)
