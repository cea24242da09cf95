"""Rotating and shifting batches of volumes (torch, CPU or CUDA).

Volumes are ``(B, Z, Y, X)`` tensors. A rotation acts on **x, y, z** vectors about the box centre
``c = (n // 2)`` per axis, and maps the reference onto the particle (``docs/conventions.md``):

    out(x) = in(R⁻¹ (x - c - t) + c)

with ``t`` the shift in voxels. The device and dtype of the work follow the input volumes.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError

__all__ = ["shift_volumes", "transform_volumes"]

logger = logging.getLogger(__name__)

FillMode = Literal["none", "noise"] | float

# Sources within this many voxels beyond the box edge still count as inside (rounding only).
_EDGE_TOLERANCE_PX = 1e-4


def _check_volumes(volumes: torch.Tensor) -> None:
    if not isinstance(volumes, torch.Tensor):
        raise InputError(f"volumes: expected a torch.Tensor, got {type(volumes).__name__}")
    if volumes.ndim != 4:
        raise InputError(f"volumes: expected shape (B, Z, Y, X), got shape {tuple(volumes.shape)}")
    if not volumes.is_floating_point():
        raise InputError(f"volumes: expected a floating-point tensor, got dtype {volumes.dtype}")


def _rotation_matrices_xyz(
    rotations: torch.Tensor | np.ndarray | Rotation, batch: int
) -> torch.Tensor:
    """``(B, 3, 3)`` float64 CPU tensor of matrices acting on x, y, z vectors."""
    if isinstance(rotations, Rotation):
        mats = torch.as_tensor(np.asarray(rotations.as_matrix(), dtype=np.float64))
    elif isinstance(rotations, torch.Tensor | np.ndarray):
        mats = torch.as_tensor(rotations).detach().to(device="cpu", dtype=torch.float64)
    else:
        raise InputError(
            "rotations: expected a (B, 3, 3) tensor or array or a scipy Rotation, "
            f"got {type(rotations).__name__}"
        )
    if mats.shape == (3, 3):
        mats = mats.expand(batch, 3, 3)
    if mats.ndim != 3 or mats.shape[1:] != (3, 3) or mats.shape[0] != batch:
        raise InputError(
            f"rotations: expected shape ({batch}, 3, 3) or (3, 3) to match {batch} volumes, "
            f"got shape {tuple(mats.shape)}"
        )
    if not torch.isfinite(mats).all():
        raise InputError("rotations: contains NaN or infinite values")
    eye = torch.eye(3, dtype=torch.float64)
    orth_error = (mats.transpose(1, 2) @ mats - eye).abs().amax().item() if batch else 0.0
    if orth_error > 1e-4 or (batch and (torch.linalg.det(mats) < 0).any()):
        raise InputError(
            "rotations: matrices are not proper rotations (R^T R = I and det R = +1 expected)"
        )
    return mats.contiguous()


def _shifts_xyz(shifts_zyx: torch.Tensor | np.ndarray | None, batch: int) -> torch.Tensor:
    """``(B, 3)`` float64 CPU tensor of shifts in x, y, z order."""
    if shifts_zyx is None:
        return torch.zeros(batch, 3, dtype=torch.float64)
    if not isinstance(shifts_zyx, torch.Tensor | np.ndarray):
        raise InputError(
            f"shifts_zyx: expected a (B, 3) tensor or array, got {type(shifts_zyx).__name__}"
        )
    shifts = torch.as_tensor(shifts_zyx).detach().to(device="cpu", dtype=torch.float64)
    if shifts.shape == (3,):
        shifts = shifts.expand(batch, 3)
    if shifts.ndim != 2 or shifts.shape != (batch, 3):
        raise InputError(
            f"shifts_zyx: expected shape ({batch}, 3) or (3,) in z, y, x voxels, "
            f"got shape {tuple(shifts.shape)}"
        )
    if not torch.isfinite(shifts).all():
        raise InputError("shifts_zyx: contains NaN or infinite values")
    return shifts.flip(-1).contiguous()


def _affine_theta(
    mats_xyz: torch.Tensor, shifts_xyz: torch.Tensor, size_xyz: tuple[int, int, int]
) -> torch.Tensor:
    """``(B, 3, 4)`` float64 map from normalised output to normalised input coordinates.

    In voxel indices the source of output voxel ``x`` is ``A x + b`` with ``A = R⁻¹`` and
    ``b = c - A (c + t)``. With ``align_corners=True`` index ``i`` sits at normalised
    ``u = i / s - 1``, ``s = (n - 1) / 2``, so ``theta = [S⁻¹ A S | S⁻¹ (A s + b) - 1]``.
    """
    half = torch.tensor([(n - 1) / 2.0 for n in size_xyz], dtype=torch.float64)
    centre = torch.tensor([float(n // 2) for n in size_xyz], dtype=torch.float64)
    a = mats_xyz.transpose(1, 2)  # R⁻¹ for a rotation
    b = centre - (a @ (centre + shifts_xyz).unsqueeze(-1)).squeeze(-1)
    linear = a * half[None, None, :] / half[None, :, None]
    offset = ((a @ half) + b) / half - 1.0
    return torch.cat([linear, offset.unsqueeze(-1)], dim=-1)


def transform_volumes(
    volumes: torch.Tensor,
    rotations: torch.Tensor | np.ndarray | Rotation,
    shifts_zyx: torch.Tensor | np.ndarray | None = None,
    *,
    fill: FillMode = "none",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate and shift a batch of volumes about the box centre (trilinear interpolation).

    ``out[b](x) = in[b](R_b⁻¹ (x - c - t_b) + c)`` for every output voxel ``x`` (x, y, z
    voxel coordinates), with ``c = (X // 2, Y // 2, Z // 2)`` the box centre and ``t_b`` the
    shift. So the density at reference position ``p`` (relative to ``c``) moves to
    ``R_b p + t_b``. Interpolation is trilinear (``grid_sample``, ``align_corners=True``).

    Parameters
    ----------
    volumes
        ``(B, Z, Y, X)`` float tensor, each axis of size ≥ 2. The work runs on its device and
        in its dtype.
    rotations
        ``(B, 3, 3)`` or ``(3, 3)`` active rotation matrices acting on **x, y, z** column
        vectors (torch tensor or numpy array), or a scipy ``Rotation`` of length ``B`` or a
        single one (shared by all volumes).
    shifts_zyx
        ``(B, 3)`` or ``(3,)`` shifts ``t`` in voxels, **z, y, x** order, applied after the
        rotation; ``None`` for no shift.
    fill
        Value of output voxels whose source lies outside the input box: ``"none"`` leaves the
        result of zero padding (0, blended with the volume within one voxel of its edge);
        ``"noise"`` draws N(0, 1) values (for z-scored data); a number sets that value.
    generator
        Random generator for ``fill="noise"`` (on any device); ``None`` uses torch's default.

    Notes
    -----
    Memory: the sampling grid holds ``3 · B · Z · Y · X`` values of the data dtype; split very
    large batches. Gradients flow to ``volumes`` (not to ``rotations`` or ``shifts_zyx``).

    Returns
    -------
    transformed : Tensor, shape (B, Z, Y, X)
        Same device and dtype as ``volumes``.
    outside : Tensor of bool, shape (B, Z, Y, X)
        True where the source position lies outside the input box ``[0, n - 1]`` on any axis.
    """
    _check_volumes(volumes)
    batch, nz, ny, nx = volumes.shape
    if min(nz, ny, nx) < 2:
        raise InputError(f"volumes: each axis needs at least 2 voxels, got shape {(nz, ny, nx)}")
    if not (fill in ("none", "noise") or (isinstance(fill, int | float) and math.isfinite(fill))):
        raise InputError(f"fill: expected 'none', 'noise' or a finite number, got {fill!r}")
    mats = _rotation_matrices_xyz(rotations, batch)
    shifts = _shifts_xyz(shifts_zyx, batch)
    if batch == 0:
        return volumes.clone(), torch.zeros_like(volumes, dtype=torch.bool)

    # theta is computed in float64 and rounded once to the data dtype (the grid is B·Z·Y·X·3).
    theta = _affine_theta(mats, shifts, (nx, ny, nz)).to(volumes.device, volumes.dtype)
    grid = F.affine_grid(theta, [batch, 1, nz, ny, nx], align_corners=True)
    tolerance = torch.tensor(
        [_EDGE_TOLERANCE_PX / ((n - 1) / 2.0) for n in (nx, ny, nz)],
        dtype=grid.dtype,
        device=grid.device,
    )
    outside = (grid.abs() > 1.0 + tolerance).any(dim=-1)
    out = F.grid_sample(
        volumes.unsqueeze(1),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    ).squeeze(1)
    if fill == "noise":
        n_out = int(outside.sum().item())
        if n_out:
            noise_device = generator.device if generator is not None else volumes.device
            noise = torch.randn(
                n_out, generator=generator, device=noise_device, dtype=volumes.dtype
            )
            out[outside] = noise.to(volumes.device)
    elif fill != "none":
        out[outside] = float(fill)
    return out, outside


def shift_volumes(volumes: torch.Tensor, shifts_zyx: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Shift a batch of volumes by (sub-)voxel amounts with the Fourier shift theorem.

    ``out[b](x) = in[b](x - t_b)`` with periodic wrap-around (content leaving one side enters
    the other), exact for band-limited volumes. For even sizes the Nyquist components cannot
    follow a fractional shift (the result is real), so only content below Nyquist is exact.

    Parameters
    ----------
    volumes
        ``(B, Z, Y, X)`` float tensor; the work runs on its device.
    shifts_zyx
        ``(B, 3)`` or ``(3,)`` shifts ``t`` in voxels, **z, y, x** order.

    Returns
    -------
    Tensor, shape (B, Z, Y, X)
        Same device and dtype as ``volumes``.
    """
    _check_volumes(volumes)
    batch = volumes.shape[0]
    if shifts_zyx is None:
        raise InputError("shifts_zyx: expected a (B, 3) tensor or array, got None")
    shifts = _shifts_xyz(shifts_zyx, batch).flip(-1).to(volumes.device)  # back to z, y, x
    if batch == 0:
        return volumes.clone()
    work_dtype = torch.float64 if volumes.dtype == torch.float64 else torch.float32
    spectrum = torch.fft.rfftn(volumes.to(work_dtype), dim=(-3, -2, -1))
    phase = torch.zeros(spectrum.shape, dtype=work_dtype, device=volumes.device)
    sizes = volumes.shape[-3:]
    for axis, n in enumerate(sizes):
        freqs = (
            torch.fft.rfftfreq(n, device=volumes.device, dtype=torch.float64)
            if axis == 2
            else torch.fft.fftfreq(n, device=volumes.device, dtype=torch.float64)
        )
        view = [1, 1, 1, 1]
        view[axis + 1] = freqs.numel()
        term = shifts[:, axis].reshape(batch, 1, 1, 1) * freqs.reshape(view)
        phase = phase + (-2.0 * math.pi * term).to(work_dtype)
    spectrum = spectrum * torch.polar(torch.ones_like(phase), phase)
    out = torch.fft.irfftn(spectrum, s=tuple(sizes), dim=(-3, -2, -1))
    return out.to(volumes.dtype)
