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
(:func:`cryomine.reconstruct.backproject`, no further weighting) and each subtomogram is z-scored.
Images are padded to twice their size for the Fourier filters (:mod:`._filters`).

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

import numpy as np
import pandas as pd
import torch

from cryomine._device import resolve_device
from cryomine.errors import InputError
from cryomine.io import normalize_subtomograms, read_warp_tiltstacks
from cryomine.io._warp_tiltstacks import (
    origins_a,
    output_table,
    particle_positions_px,
    read_tiltstack_images,
)
from cryomine.reconstruct._filters import (
    CTF_MODES,
    CtfCorrection,
    ctf_filters,
    filtered_images,
    fit_box,
    ramp_filters,
    shift_phases,
)
from cryomine.reconstruct._projection import backproject
from cryomine.reconstruct._tilt_axis import tilt_axis_xyz

__all__ = ["reconstruct_tiltstack_particles"]

logger = logging.getLogger(__name__)


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
    if ctf_correction not in CTF_MODES:
        raise InputError(
            f"ctf correction {ctf_correction!r}: expected one of {', '.join(CTF_MODES)}"
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
            ctf_cache[key] = ctf_filters(
                geometry,
                np.arange(geometry.n_tilts),
                n_pad=n_pad,
                pixel_size_a=pixel,
                mode=ctf_correction,
                premultiplied=premultiplied,
                wiener_constant=wiener_constant,
            )
        filters = ramp_filters(rotations, axes[name], n_pad) * ctf_cache[key][tilts]
        if np.any(origins_px[index]):
            filters = filters * shift_phases(
                rotations[:, :2, :] @ (mirror @ origins_px[index]), n_pad
            )
        filtered = fit_box(filtered_images(images[tilts].astype(np.float64), filters), box)
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
