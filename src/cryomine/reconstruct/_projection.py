"""Tilt-series geometry: a real-space ray projector and a weighted back-projector (torch).

Both work for any volume shape ``(z, y, x)`` and any per-image rotation, so the back-projector
also serves real data whose tilt images carry arbitrary projection matrices (Warp, AreTomo).

Geometry (see ``docs/conventions.md``)
--------------------------------------
A rotation ``R`` is an active 3x3 matrix acting on **x, y, z** column vectors. Image ``t`` is the
projection of the volume *after* it has been rotated by ``R_t`` about its centre ``c`` (voxel
``n // 2`` on each axis), along the beam, the **z** axis:

    image_t[y, x] = ∫ volume(R_tᵀ · (x - cx, y - cy, s) + c) ds      (s in voxels)

so a tilt image at angle θ about the y axis uses ``R_t = R_y(θ)`` (:func:`tilt_rotations`). The
image centre is pixel ``(ny // 2, nx // 2)``. Samples are trilinear, one per voxel along each ray,
and zero outside the volume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

__all__ = ["backproject", "project", "tilt_angles", "tilt_rotations"]

#: Elements per chunk of sampling work; bounds the memory of one grid_sample call (~1 GiB).
_CHUNK_ELEMENTS = 1 << 25

#: Sparse y-tilt operators by geometry (a few, so repeated batches reuse them).
_MATRIX_CACHE: dict[tuple[object, ...], torch.Tensor] = {}
_MATRIX_CACHE_SIZE = 4


def tilt_angles(
    tilt_range_deg: tuple[float, float] = (-60.0, 60.0), tilt_step_deg: float = 3.0
) -> np.ndarray:
    """Tilt angles (degrees) from ``tilt_range_deg[0]`` to ``tilt_range_deg[1]`` inclusive.

    Returns
    -------
    numpy.ndarray
        float64 ``(n_tilts,)``, increasing, in steps of ``tilt_step_deg``.
    """
    low, high = float(tilt_range_deg[0]), float(tilt_range_deg[1])
    if not (-90.0 <= low < high <= 90.0):
        raise ValueError(
            f"tilt_range_deg must satisfy -90 <= low < high <= 90, got {tilt_range_deg}"
        )
    if tilt_step_deg <= 0:
        raise ValueError(f"tilt_step_deg must be positive, got {tilt_step_deg}")
    n = math.floor((high - low) / tilt_step_deg + 1e-9) + 1
    return low + tilt_step_deg * np.arange(n, dtype=np.float64)


def tilt_rotations(tilt_angles_deg: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation matrices of a single-axis tilt series about the **y** axis.

    Parameters
    ----------
    tilt_angles_deg
        ``(n_tilts,)`` tilt angles in degrees; 0 is the untilted view along z.

    Returns
    -------
    numpy.ndarray
        float64 ``(n_tilts, 3, 3)``, active rotations on x, y, z vectors (``R_y(θ)``).
    """
    angles = np.atleast_1d(np.asarray(tilt_angles_deg, dtype=np.float64))
    return Rotation.from_euler("y", angles[:, None], degrees=True).as_matrix()


def _as_rotations(rotations: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    r = torch.as_tensor(np.asarray(rotations) if not torch.is_tensor(rotations) else rotations)
    if r.ndim != 3 or r.shape[1:] != (3, 3):
        raise ValueError(f"rotations must have shape (n_images, 3, 3), got {tuple(r.shape)}")
    return r.to(device=device, dtype=torch.float64)


def _normalised(coords_xyz: torch.Tensor, shape_zyx: Sequence[int]) -> torch.Tensor:
    """Voxel coordinates (x, y, z in the last axis) → grid_sample's [-1, 1] (align_corners=True)."""
    sizes = torch.tensor(
        [shape_zyx[-1], shape_zyx[-2], shape_zyx[-3]][: coords_xyz.shape[-1]], dtype=torch.float64
    )
    sizes = sizes.to(coords_xyz.device)
    return (2.0 * coords_xyz / torch.clamp(sizes - 1, min=1) - 1.0).to(torch.float32)


def _is_y_tilt_series(rotations: torch.Tensor) -> bool:
    """True when every rotation turns about the y axis only (so rows y map onto rows y)."""
    e_y = torch.tensor([0.0, 1.0, 0.0], dtype=rotations.dtype, device=rotations.device)
    return bool(
        torch.allclose(rotations[:, 1, :], e_y.expand_as(rotations[:, 1, :]), atol=1e-9)
        and torch.allclose(rotations[:, :, 1], e_y.expand_as(rotations[:, :, 1]), atol=1e-9)
    )


def _cached_matrix(kind: str, rotations: torch.Tensor, nz: int, nx: int, ix: int) -> torch.Tensor:
    """The y-tilt operator of ``kind`` ("project"/"backproject"), built once per geometry."""
    key = (kind, rotations.cpu().numpy().tobytes(), nz, nx, ix, str(rotations.device))
    matrix = _MATRIX_CACHE.get(key)
    if matrix is None:
        build = _y_projection_matrix if kind == "project" else _y_backprojection_matrix
        matrix = build(rotations, nz, nx, ix)
        if len(_MATRIX_CACHE) >= _MATRIX_CACHE_SIZE:
            _MATRIX_CACHE.pop(next(iter(_MATRIX_CACHE)))
        _MATRIX_CACHE[key] = matrix
    return matrix


def _fast_y_path(rotations: torch.Tensor, image_rows: int, volume_rows: int) -> bool:
    """Whether the sparse y-tilt operators apply (rows of images and volume correspond)."""
    return image_rows == volume_rows and _is_y_tilt_series(rotations)


def _sparse(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    indices = torch.stack([rows, cols])
    return torch.sparse_coo_tensor(
        indices, values.to(torch.float32), size, check_invariants=False
    ).coalesce()


def _y_projection_matrix(rotations: torch.Tensor, nz: int, nx: int, ix: int) -> torch.Tensor:
    """Sparse ``(n_images · ix, nz · nx)`` ray-sampling operator of a tilt series about y.

    The same bilinear samples in the x-z plane that the general (trilinear) path takes, since
    every ray stays in its row ``y``.
    """
    device = rotations.device
    cx, cz = nx // 2, nz // 2
    xs = torch.arange(ix, dtype=torch.float64, device=device) - ix // 2
    rows, cols, values = [], [], []
    for t in range(rotations.shape[0]):
        inv = rotations[t].T
        half = 0.5 * float(abs(inv[0, 2]) * nx + abs(inv[2, 2]) * nz) + 1.0
        n_depth = 2 * math.ceil(half) + 1
        depth = torch.arange(n_depth, dtype=torch.float64, device=device) - n_depth // 2
        px = (inv[0, 0] * xs[:, None] + inv[0, 2] * depth[None, :] + cx).reshape(-1)
        pz = (inv[2, 0] * xs[:, None] + inv[2, 2] * depth[None, :] + cz).reshape(-1)
        row = (t * ix + torch.arange(ix, device=device)).repeat_interleave(n_depth)
        x0, z0 = torch.floor(px), torch.floor(pz)
        fx, fz = px - x0, pz - z0
        for dz, wz in ((0, 1.0 - fz), (1, fz)):
            for dx, wx in ((0, 1.0 - fx), (1, fx)):
                xx, zz = x0.long() + dx, z0.long() + dz
                keep = (xx >= 0) & (xx < nx) & (zz >= 0) & (zz < nz) & (wx * wz > 0)
                rows.append(row[keep])
                cols.append(zz[keep] * nx + xx[keep])
                values.append((wx * wz)[keep])
    return _sparse(
        torch.cat(rows), torch.cat(cols), torch.cat(values), (rotations.shape[0] * ix, nz * nx)
    )


def _y_backprojection_matrix(rotations: torch.Tensor, nz: int, nx: int, ix: int) -> torch.Tensor:
    """Sparse ``(nz · nx, n_images · ix)`` voxel-driven (linear along x) back-projector about y."""
    device = rotations.device
    z = torch.arange(nz, dtype=torch.float64, device=device) - nz // 2
    x = torch.arange(nx, dtype=torch.float64, device=device) - nx // 2
    voxel = (
        torch.arange(nz, device=device)[:, None] * nx + torch.arange(nx, device=device)[None, :]
    ).reshape(-1)
    rows, cols, values = [], [], []
    for t in range(rotations.shape[0]):
        u = (rotations[t, 0, 0] * x[None, :] + rotations[t, 0, 2] * z[:, None] + ix // 2).reshape(
            -1
        )
        u0 = torch.floor(u)
        fu = u - u0
        for du, w in ((0, 1.0 - fu), (1, fu)):
            uu = u0.long() + du
            keep = (uu >= 0) & (uu < ix) & (w > 0)
            rows.append(voxel[keep])
            cols.append(t * ix + uu[keep])
            values.append(w[keep])
    return _sparse(
        torch.cat(rows), torch.cat(cols), torch.cat(values), (nz * nx, rotations.shape[0] * ix)
    )


def project(
    volumes: torch.Tensor,
    rotations: np.ndarray | torch.Tensor,
    *,
    image_shape_yx: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Project volumes after rotating them: line integrals along z (one sample per voxel).

    Parameters
    ----------
    volumes
        ``(z, y, x)`` or a batch ``(n, z, y, x)``, float; all volumes share the rotations.
    rotations
        ``(n_images, 3, 3)`` active rotations on x, y, z vectors (see the module docstring).
    image_shape_yx
        Shape of the images; default the volume's ``(y, x)``.

    Returns
    -------
    torch.Tensor
        float32 ``(n_images, y, x)`` or ``(n, n_images, y, x)``; units: density x voxel length.
    """
    single = volumes.ndim == 3
    vol = volumes[None] if single else volumes
    if vol.ndim != 4:
        raise ValueError(
            f"volumes must have shape (z, y, x) or (n, z, y, x), got {tuple(volumes.shape)}"
        )
    device = vol.device
    n_batch, nz, ny, nx = vol.shape
    iy, ix = image_shape_yx if image_shape_yx is not None else (ny, nx)
    rot = _as_rotations(rotations, device)
    centre = torch.tensor([nx // 2, ny // 2, nz // 2], dtype=torch.float64, device=device)
    sizes = torch.tensor([nx, ny, nz], dtype=torch.float64, device=device)
    xs = torch.arange(ix, dtype=torch.float64, device=device) - ix // 2
    ys = torch.arange(iy, dtype=torch.float64, device=device) - iy // 2
    if _fast_y_path(rot, iy, ny):
        # Rows y are independent: one sparse matrix product for all tilts, rows and volumes.
        matrix = _cached_matrix("project", rot, nz, nx, ix)
        columns = vol.to(torch.float32).permute(1, 3, 0, 2).reshape(nz * nx, n_batch * ny)
        images = (
            torch.sparse.mm(matrix, columns)
            .reshape(rot.shape[0], ix, n_batch, ny)
            .permute(2, 0, 3, 1)
        )
        return images[0].contiguous() if single else images.contiguous()
    source = vol.to(torch.float32)[None]  # (1, n, z, y, x): the batch rides in the channels
    images = torch.empty((n_batch, rot.shape[0], iy, ix), dtype=torch.float32, device=device)
    for t in range(rot.shape[0]):
        inv = rot[t].T  # lab → volume
        half = 0.5 * float((inv[:, 2].abs() * sizes).sum()) + 1.0
        n_depth = 2 * math.ceil(half) + 1
        depth = torch.arange(n_depth, dtype=torch.float64, device=device) - n_depth // 2
        rows = max(1, min(iy, _CHUNK_ELEMENTS // max(1, n_depth * ix * max(n_batch, 3))))
        for start in range(0, iy, rows):
            y = ys[start : start + rows]
            grid = (
                depth[:, None, None, None] * inv[:, 2]
                + y[None, :, None, None] * inv[:, 1]
                + xs[None, None, :, None] * inv[:, 0]
                + centre
            )
            sampled = F.grid_sample(
                source,
                _normalised(grid, (nz, ny, nx))[None],
                mode="bilinear",
                padding_mode="zeros",
                align_corners=True,
            )  # (1, n, depth, rows, ix)
            images[:, t, start : start + rows] = sampled[0].sum(dim=1)
    return images[0] if single else images


def _angular_step_rad(rotations: torch.Tensor) -> float:
    """Median step (radians) between the sorted tilt angles of a tilt series about y."""
    angles = torch.sort(torch.atan2(rotations[:, 0, 2], rotations[:, 0, 0])).values
    return float(torch.median(torch.diff(angles)))


def _ramp_filter(images: torch.Tensor) -> torch.Tensor:
    """Filter along x with the Ram-Lak ramp (spatial-domain kernel, 2x zero padding)."""
    nx = images.shape[-1]
    n_pad = 2 * nx
    offsets = torch.arange(n_pad, device=images.device)
    offsets = torch.minimum(offsets, n_pad - offsets).to(torch.float64)
    kernel = torch.where(
        offsets % 2 == 1, -1.0 / (math.pi**2 * offsets.clamp(min=1) ** 2), torch.zeros_like(offsets)
    )
    kernel[0] = 0.25
    response = torch.fft.rfft(kernel).real.to(torch.float32)
    spectrum = torch.fft.rfft(images.to(torch.float32), n=n_pad, dim=-1) * response
    return torch.fft.irfft(spectrum, n=n_pad, dim=-1)[..., :nx]


def backproject(
    images: torch.Tensor,
    rotations: np.ndarray | torch.Tensor,
    shape_zyx: tuple[int, int, int],
    *,
    weighting: Literal["ramp", "none"] = "ramp",
) -> torch.Tensor:
    """Weighted back-projection of images taken with ``rotations`` (the inverse of :func:`project`).

    Parameters
    ----------
    images
        ``(n_images, y, x)`` or a batch ``(n, n_images, y, x)``; all share the rotations.
    rotations
        ``(n_images, 3, 3)`` active rotations on x, y, z vectors, as given to :func:`project`.
    shape_zyx
        Shape of the reconstructed volume.
    weighting
        ``"ramp"``: each image is filtered along its x axis with the Ram-Lak ramp ``|k_x|``
        (exact weighting for a single tilt axis along the image y axis, as :func:`tilt_rotations`
        gives) and the sum is scaled by the angular step: the median step between the tilt
        angles for a tilt series about y, ``π / n_images`` for other rotations. Observed Fourier
        components then keep their amplitude. ``"none"``: the plain mean of the back-projections.

    Returns
    -------
    torch.Tensor
        float32 ``shape_zyx`` or ``(n, *shape_zyx)``.
    """
    if weighting not in ("ramp", "none"):
        raise ValueError(f"weighting must be 'ramp' or 'none', got {weighting!r}")
    single = images.ndim == 3
    img = images[None] if single else images
    if img.ndim != 4:
        raise ValueError(
            "images must have shape (n_images, y, x) or (n, n_images, y, x), "
            f"got {tuple(images.shape)}"
        )
    device = img.device
    n_batch, n_images, iy, ix = img.shape
    rot = _as_rotations(rotations, device)
    if rot.shape[0] != n_images:
        raise ValueError(f"{rot.shape[0]} rotations for {n_images} images")
    nz, ny, nx = (int(s) for s in shape_zyx)
    if weighting == "ramp":
        img = _ramp_filter(img)
        scale = (
            _angular_step_rad(rot)
            if n_images > 1 and _is_y_tilt_series(rot)
            else math.pi / n_images
        )
    else:
        scale = 1.0 / n_images
    if _fast_y_path(rot, iy, ny):
        matrix = _cached_matrix("backproject", rot, nz, nx, ix)
        columns = img.to(torch.float32).permute(1, 3, 0, 2).reshape(n_images * ix, n_batch * ny)
        out = (
            torch.sparse.mm(matrix, columns)
            .reshape(nz, nx, n_batch, ny)
            .permute(2, 0, 3, 1)
            .contiguous()
            * scale
        )
        return out[0] if single else out
    source = img.to(torch.float32).transpose(0, 1).contiguous()  # (n_images, n, y, x)
    centre = torch.tensor([nx // 2, ny // 2, nz // 2], dtype=torch.float64, device=device)
    image_centre = torch.tensor([ix // 2, iy // 2], dtype=torch.float64, device=device)
    zs = torch.arange(nz, dtype=torch.float64, device=device)
    ys = torch.arange(ny, dtype=torch.float64, device=device)
    xs = torch.arange(nx, dtype=torch.float64, device=device)
    out = torch.zeros((n_batch, nz, ny, nx), dtype=torch.float32, device=device)
    slab = max(1, min(nz, _CHUNK_ELEMENTS // max(1, n_images * max(n_batch, 2) * ny * nx)))
    for start in range(0, nz, slab):
        z = zs[start : start + slab]
        points = torch.stack(
            torch.meshgrid(xs, ys, z, indexing="ij"), dim=-1
        )  # (x, y, z, 3) in xyz
        points = points.permute(2, 1, 0, 3) - centre  # (z, y, x, 3)
        lab = (
            torch.einsum("tij,zyxj->tzyxi", rot[:, :2, :], points) + image_centre
        )  # (t, z, y, x, 2)
        grid = _normalised(lab.reshape(n_images, -1, nx, 2), (1, iy, ix))
        sampled = F.grid_sample(
            source, grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )
        out[:, start : start + slab] = sampled.sum(dim=0).reshape(n_batch, -1, ny, nx)
    out *= scale
    return out[0] if single else out
