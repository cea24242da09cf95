"""Reconstruct Warp/RELION 5 2-D tilt-stack particles as subtomograms (weighted back-projection).

Each particle's tilt stack ``(T, S, S)`` (see :mod:`cryomine.io._warp_tiltstacks`) becomes one
subtomogram ``(b, b, b)`` in the **tomogram frame** (x, y, z of the tomogram; beam along z at zero
tilt), as if it had been cut out of a reconstructed tomogram: it carries the tilt series' missing
wedge, and the particle's RELION angles still map the reference onto it. Per tilt image:

1. the 3-D origin shift ``rlnOriginX/Y/ZAngst`` (if any) is projected into the image and applied
   (Fourier shift), so that the particle sits at the box centre;
2. CTF correction with that tilt's defocus (mean of ``rlnDefocusU/V``): ``"phase-flip"`` flips
   the sign where the CTF's sign differs from its sign at zero frequency (which keeps the input's
   contrast: Warp/RELION stacks are protein-bright); stacks exported CTF-premultiplied
   (``rlnCtfDataAreCtfPremultiplied 1``, e.g. WarpTools) carry CTF² ≥ 0 already and are left as
   they are. ``"wiener"`` divides by ``CTF² + wiener_constant`` (premultiplied) or multiplies by
   ``CTF / (CTF² + wiener_constant)``. ``"none"`` does nothing;
3. R-weighting: a ramp ``|k · n_t|`` across the tilt axis (``n_t`` the in-image direction
   perpendicular to the tilt axis, which is estimated from all tilts' beam directions);

then the visible images are back-projected with their projection matrices' rotations
(:func:`cryomine.simulate.backproject`, no further weighting) and each subtomogram is z-scored.
Images are padded to twice their size for the Fourier filters.

Handedness: the files are read as written (``flip_hand=False``). ``flip_hand=True`` reconstructs
the mirror image through the tomogram's x-y plane (z → −z about the box centre) and turns the
angles into ``(rot + 180°, tilt, psi + 180°)`` so that they still map the (now mirrored) reference
onto each particle; this is the "flip handedness" other packages offer. The shipped M. pneumoniae
set needs it: with it the average matches the reconstruction shipped with the data and the 70S
ribosome's hand (see ``docs/real_data.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from cryomine._device import resolve_device
from cryomine.errors import InputError
from cryomine.io._particle_set import normalize_subtomograms
from cryomine.io._warp_tiltstacks import (
    TiltSeriesGeometry,
    origins_a,
    output_table,
    particle_positions_px,
    read_tiltstack_images,
    read_warp_tiltstacks,
)
from cryomine.simulate._ctf import ctf_2d
from cryomine.simulate._tilt_series import backproject

__all__ = [
    "CtfCorrection",
    "import_warp_tiltstacks",
    "observed_tilt_range_deg",
    "reconstruct_tiltstack_particles",
    "tilt_axis_xyz",
]

logger = logging.getLogger(__name__)

CtfCorrection = Literal["phase-flip", "wiener", "none"]
_CTF_MODES = ("phase-flip", "wiener", "none")


def tilt_axis_xyz(rotations: np.ndarray) -> np.ndarray:
    """Unit tilt axis (x, y, z, tomogram frame) of a single-axis series: ⟂ to every beam direction.

    Parameters
    ----------
    rotations : ndarray, shape (T, 3, 3)
        Per-tilt rotations; row 2 of each is that tilt's beam direction in the tomogram frame.

    Returns
    -------
    ndarray, shape (3,)
        The eigenvector of ``Σ_t z_t z_tᵀ`` with the smallest eigenvalue (sign: positive largest
        component).
    """
    beams = np.asarray(rotations, dtype=np.float64)[:, 2, :]
    _, vectors = np.linalg.eigh(beams.T @ beams)
    axis = vectors[:, 0]
    return axis * np.sign(axis[np.argmax(np.abs(axis))])


def observed_tilt_range_deg(rotations: np.ndarray) -> tuple[float, float]:
    """Tilt range about the tomogram y axis, as ``missing_wedge_mask`` takes it.

    Parameters
    ----------
    rotations : ndarray, shape (T, 3, 3)
        Per-tilt rotations (projection matrices' linear parts) of the tilts used.

    Returns
    -------
    (theta_min, theta_max) : tuple of float
        Degrees; tilt ``θ`` has its beam along ``(−sin θ, 0, cos θ)`` (x, y, z).

    Raises
    ------
    InputError
        If the tilt axis is more than 10° away from the y axis.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    axis = tilt_axis_xyz(rotations)
    if abs(axis[1]) < np.cos(np.radians(10.0)):
        raise InputError(
            f"tilt axis {np.round(axis, 3).tolist()} (x, y, z) is not within 10° of the y axis"
        )
    beams = rotations[:, 2, :]
    thetas = np.degrees(np.arctan2(-beams[:, 0], beams[:, 2]))
    return float(thetas.min()), float(thetas.max())


def _frequencies(n_pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ky, kx)`` grids in cycles per pixel, rfft layout ``(n_pad, n_pad // 2 + 1)``."""
    ky = np.fft.fftfreq(n_pad)[:, None]
    kx = np.fft.rfftfreq(n_pad)[None, :]
    return np.broadcast_to(ky, (n_pad, kx.shape[1])), np.broadcast_to(kx, (n_pad, kx.shape[1]))


def _ramp_filters(rotations: np.ndarray, axis_xyz: np.ndarray, n_pad: int) -> np.ndarray:
    """``(T, n_pad, n_pad // 2 + 1)`` ramps ``|k · n_t|`` across each image's projected tilt axis.

    Where the tilt axis is nearly along the beam (its image projection shorter than 0.5), the
    radial ramp ``|k|`` is used instead.
    """
    ky, kx = _frequencies(n_pad)
    filters = np.empty((len(rotations), *ky.shape), dtype=np.float64)
    for t, rotation in enumerate(rotations):
        along = rotation[:2] @ axis_xyz  # (u, v) = (x, y) direction of the axis in image t
        length = float(np.hypot(*along))
        if length < 0.5:
            filters[t] = np.hypot(kx, ky)
        else:
            normal = np.array([-along[1], along[0]]) / length
            filters[t] = np.abs(kx * normal[0] + ky * normal[1])
    return filters


def _ctf_filters(
    geometry: TiltSeriesGeometry,
    tilts: np.ndarray,
    *,
    n_pad: int,
    pixel_size_a: float,
    mode: CtfCorrection,
    premultiplied: bool,
    wiener_constant: float,
) -> np.ndarray:
    """``(len(tilts), n_pad, n_pad // 2 + 1)`` multiplicative CTF corrections (see module doc)."""
    shape = (len(tilts), n_pad, n_pad // 2 + 1)
    if mode == "none" or (mode == "phase-flip" and premultiplied):
        return np.ones(shape)
    out = np.empty(shape)
    for i, t in enumerate(tilts):
        values = (
            ctf_2d(
                (n_pad, n_pad),
                pixel_size_a,
                defocus_um=float(geometry.defocus_um[t]),
                voltage_kv=geometry.voltage_kv,
                cs_mm=geometry.cs_mm,
                amplitude_contrast=geometry.amplitude_contrast,
                rfft=True,
            )
            .numpy()
            .astype(np.float64)
        )
        values = values * np.sign(values[0, 0] if values[0, 0] != 0 else 1.0)  # positive at k = 0
        if mode == "phase-flip":
            out[i] = np.where(values < 0, -1.0, 1.0)
        elif premultiplied:
            out[i] = 1.0 / (values**2 + wiener_constant)
        else:
            out[i] = values / (values**2 + wiener_constant)
    return out


def _shift_phases(shifts_xy: np.ndarray, n_pad: int) -> np.ndarray:
    """``(T, n_pad, n_pad // 2 + 1)`` phase factors that move image content by ``shifts_xy`` px."""
    ky, kx = _frequencies(n_pad)
    return np.exp(
        -2j
        * np.pi
        * (kx[None] * shifts_xy[:, 0, None, None] + ky[None] * shifts_xy[:, 1, None, None])
    )


def _filtered_images(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Apply rfft-layout ``filters`` to mean-free images zero-padded to ``n_pad``; crop back."""
    n_images, size, _ = images.shape
    n_pad = filters.shape[1]
    start = n_pad // 2 - size // 2
    padded = np.zeros((n_images, n_pad, n_pad))
    padded[:, start : start + size, start : start + size] = images - images.mean(
        axis=(1, 2), keepdims=True
    )
    spectrum = np.fft.rfft2(padded) * filters
    return np.fft.irfft2(spectrum, s=(n_pad, n_pad))[:, start : start + size, start : start + size]


def _fit_box(images: np.ndarray, box_size: int) -> np.ndarray:
    """Crop/pad ``(T, S, S)`` images to ``(T, b, b)``; pixel ``S // 2`` goes to ``b // 2``."""
    size = images.shape[-1]
    if box_size == size:
        return images
    out = np.zeros((images.shape[0], box_size, box_size), dtype=images.dtype)
    src0, dst0 = max(0, size // 2 - box_size // 2), max(0, box_size // 2 - size // 2)
    n = min(size - src0, box_size - dst0)
    out[:, dst0 : dst0 + n, dst0 : dst0 + n] = images[:, src0 : src0 + n, src0 : src0 + n]
    return out


def _backproject_batch(
    images: list[np.ndarray], rotations: np.ndarray, box: int, device: torch.device
) -> np.ndarray:
    """Back-project ``(T, b, b)`` stacks sharing ``rotations``; z-scored ``(n, b, b, b)``."""
    stack = torch.from_numpy(np.stack(images).astype(np.float32)).to(device)
    volumes = backproject(stack, rotations, (box, box, box), weighting="none")
    return normalize_subtomograms(volumes.cpu().numpy())


def reconstruct_tiltstack_particles(
    particles_star: Path | str,
    tomograms_star: Path | str | None = None,
    *,
    box_size: int | None = None,
    ctf_correction: CtfCorrection = "phase-flip",
    wiener_constant: float = 0.1,
    flip_hand: bool = False,
    batch_size: int = 64,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, pd.DataFrame, float]:
    """Reconstruct every particle of a Warp/RELION 5 2-D tilt-stack export as a subtomogram.

    Parameters
    ----------
    particles_star
        Particle STAR file, or an optimisation-set STAR naming both STAR files.
    tomograms_star
        Tomograms STAR with the per-tilt projection matrices (optional for an optimisation set).
    box_size
        Edge of the output boxes, voxels; default the stacks' image size. Images are cropped or
        zero-padded about their centre pixel ``S // 2``.
    ctf_correction
        ``"phase-flip"`` (default), ``"wiener"`` or ``"none"``; see the module docstring.
    wiener_constant
        Added to CTF² (which is 1 at its peaks) in ``"wiener"`` mode.
    flip_hand
        Mirror every subtomogram through the tomogram's x-y plane and adapt the angles (module
        docstring); coordinates are kept as they are.
    batch_size
        Particles back-projected together (those of one tomogram with the same visible tilts).
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:i]"`` for the back-projection.
    progress
        Called as ``progress(n_done, n_total)`` after each batch.

    Returns
    -------
    subtomograms : ndarray, shape (N, b, b, b), float32
        Axes (particle, z, y, x), tomogram frame, protein-bright (as the stacks are), each
        z-scored; centre voxel ``b // 2`` is the particle centre.
    table : DataFrame
        Canonical particle table: ``rlnTomoName``, ``rlnCoordinateX/Y/Z`` (pixels of the stacks'
        pixel size, origin shifts folded in), ``rlnImagePixelSize``, the RELION angles,
        ``rlnTomoParticleName`` / ``rlnTomoParticleId`` when present, ``cmParticleId`` 1..N.
    voxel_size_a : float
        Voxel size of the subtomograms, Å (the stacks' pixel size).

    Raises
    ------
    InputError
        Bad files (see :func:`cryomine.io.read_warp_tiltstacks`), a bad ``box_size``,
        ``ctf_correction`` or ``wiener_constant``, or a particle with no visible tilt.
    """
    if ctf_correction not in _CTF_MODES:
        raise InputError(
            f"ctf correction {ctf_correction!r}: expected one of {', '.join(_CTF_MODES)}"
        )
    if not (np.isfinite(wiener_constant) and wiener_constant > 0):
        raise InputError(f"wiener constant {wiener_constant!r}: expected a positive number")
    if box_size is not None and (
        isinstance(box_size, bool) or not isinstance(box_size, (int, np.integer)) or box_size < 4
    ):
        raise InputError(f"box size {box_size!r}: expected a whole number of voxels ≥ 4")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InputError(
            f"batch size {batch_size!r}: expected a positive whole number of particles"
        )
    stacks = read_warp_tiltstacks(particles_star, tomograms_star)
    source = str(particles_star)
    pixel = stacks.image_pixel_size_a
    particles = stacks.particles
    mirror = np.diag([1.0, 1.0, -1.0]) if flip_hand else np.eye(3)
    tilt_rotations = {
        name: geometry.rotations @ mirror for name, geometry in stacks.tomograms.items()
    }
    axes = {name: tilt_axis_xyz(rotations) for name, rotations in tilt_rotations.items()}
    origins_px = origins_a(particles) / pixel
    n_total = len(particles)
    torch_device = resolve_device(device)
    box = 0
    out: np.ndarray | None = None
    ctf_cache: dict[tuple[str, int, bool], np.ndarray] = {}
    batch: list[int] = []
    batch_images: list[np.ndarray] = []
    batch_key: tuple[str, bytes] = ("", b"")
    batch_tilts = np.zeros(0, dtype=np.int64)
    for index in range(n_total):
        name = str(particles["rlnTomoName"].iloc[index])
        geometry = stacks.tomograms[name]
        images = read_tiltstack_images(
            stacks.image_paths[index], n_tilts=geometry.n_tilts, pixel_size_a=pixel
        )
        size = images.shape[-1]
        if out is None:
            box = size if box_size is None else int(box_size)
            out = np.empty((n_total, box, box, box), dtype=np.float32)
        tilts = np.flatnonzero(stacks.visible[index])
        if len(tilts) == 0:
            raise InputError(
                f"{source}: particle {index + 1} has no visible tilt (rlnTomoVisibleFrames all 0)"
            )
        rotations = tilt_rotations[name][tilts]
        n_pad = 2 * size
        premultiplied = bool(particles["rlnCtfDataAreCtfPremultiplied"].iloc[index])
        key = (name, n_pad, premultiplied)
        if key not in ctf_cache:  # the same for every particle of a tomogram
            ctf_cache[key] = _ctf_filters(
                geometry,
                np.arange(geometry.n_tilts),
                n_pad=n_pad,
                pixel_size_a=pixel,
                mode=ctf_correction,
                premultiplied=premultiplied,
                wiener_constant=wiener_constant,
            )
        filters = _ramp_filters(rotations, axes[name], n_pad) * ctf_cache[key][tilts]
        if np.any(origins_px[index]):
            filters = filters * _shift_phases(
                rotations[:, :2, :] @ (mirror @ origins_px[index]), n_pad
            )
        filtered = _fit_box(_filtered_images(images[tilts].astype(np.float64), filters), box)
        # Particles of one tomogram with the same visible tilts share the rotations: one batch.
        group = (name, tilts.tobytes())
        if batch and (group != batch_key or len(batch) >= batch_size):
            out[batch] = _backproject_batch(
                batch_images, tilt_rotations[batch_key[0]][batch_tilts], box, torch_device
            )
            batch, batch_images = [], []
            if progress is not None:
                progress(index, n_total)
        batch_key, batch_tilts = group, tilts
        batch.append(index)
        batch_images.append(filtered)
    if out is not None and batch:
        out[batch] = _backproject_batch(
            batch_images, tilt_rotations[batch_key[0]][batch_tilts], box, torch_device
        )
        if progress is not None:
            progress(n_total, n_total)
    assert out is not None  # at least one particle (read_warp_tiltstacks guarantees it)
    table = output_table(
        particles, particle_positions_px(particles, stacks.tomograms, pixel, source), pixel, source
    )
    if flip_hand and {"rlnAngleRot", "rlnAnglePsi"} <= set(table.columns):
        for name in ("rlnAngleRot", "rlnAnglePsi"):
            table[name] = (table[name] + 360.0) % 360.0 - 180.0  # +180°, wrapped to [-180, 180)
    logger.info(
        "reconstructed %d subtomograms of %d³ voxels at %.4g Å", n_total, out.shape[1], pixel
    )
    return out, table, pixel


def import_warp_tiltstacks(
    out_dir: Path | str,
    particles_star: Path | str,
    tomograms_star: Path | str | None = None,
    *,
    box_size: int | None = None,
    ctf_correction: CtfCorrection = "phase-flip",
    wiener_constant: float = 0.1,
    flip_hand: bool = False,
    batch_size: int = 64,
    device: str = "auto",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Reconstruct a tilt-stack export (:func:`reconstruct_tiltstack_particles`) as a particle set.

    ``out_dir`` becomes a particle set (``particles.star`` + subtomogram stack, readable with
    :meth:`cryomine.io.ParticleSet.open`) with a run record; it appears only once complete.
    The other parameters are those of :func:`reconstruct_tiltstack_particles`; ``overwrite``
    replaces an existing ``out_dir``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from cryomine._runrecord import recording_run
    from cryomine.io import atomic_directory, write_particle_set

    out_dir = Path(out_dir)
    parameters = {
        "particles_star": str(particles_star),
        "tomograms_star": None if tomograms_star is None else str(tomograms_star),
        "box_size": box_size,
        "ctf_correction": ctf_correction,
        "wiener_constant": wiener_constant,
        "flip_hand": flip_hand,
        "batch_size": batch_size,
        "device": device,
    }
    inputs = [Path(particles_star)] + ([] if tomograms_star is None else [Path(tomograms_star)])
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with recording_run(tmp, "import warp", parameters, inputs=inputs) as record:
            with record.timed("reconstruct"):
                subtomograms, table, voxel_size_a = reconstruct_tiltstack_particles(
                    particles_star,
                    tomograms_star,
                    box_size=box_size,
                    ctf_correction=ctf_correction,
                    wiener_constant=wiener_constant,
                    flip_hand=flip_hand,
                    batch_size=batch_size,
                    device=device,
                    progress=progress,
                )
            with record.timed("write"):
                # The empty temporary directory is replaced by the complete particle set.
                write_particle_set(
                    tmp, table, subtomograms, voxel_size_a=voxel_size_a, overwrite=True
                )
            record.results.update(
                {
                    "n_subtomograms": len(table),
                    "box_size": int(subtomograms.shape[1]),
                    "voxel_size_a": voxel_size_a,
                }
            )
    return out_dir
