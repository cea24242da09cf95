"""Contrast transfer function of a transmission electron microscope (weak-phase approximation).

Sign conventions
----------------
``defocus_um`` is positive for **underfocus** (as in CTFFIND, RELION and Warp). The "defocus of
-5 µm" quoted by the DISCA paper and many simulators uses the opposite sign and is
``defocus_um=5.0`` here.

The CTF is

    CTF(k) = -[√(1 - A²) · sin χ(k) + A · cos χ(k)] · exp(-B k² / 4)
    χ(k)   = π λ Δf k² - (π / 2) C_s λ³ k⁴

with ``k`` the spatial frequency in 1/Å, ``λ`` the relativistic electron wavelength, ``Δf`` the
defocus (underfocus positive), ``A`` the amplitude contrast and ``B`` the B-factor (Å²). The
overall minus sign makes a positive (protein) potential appear **dark** at low frequency, as in
a raw image or a tomogram; subtomogram simulators flip it to bring protein to bright.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["ctf", "ctf_2d", "electron_wavelength_a", "spatial_frequency_squared"]


def electron_wavelength_a(voltage_kv: float) -> float:
    """Relativistic wavelength of an electron accelerated through ``voltage_kv`` kV, in Å."""
    volts = voltage_kv * 1e3
    return 12.2643 / math.sqrt(volts * (1.0 + 0.97845e-6 * volts))


def spatial_frequency_squared(
    shape: Sequence[int],
    pixel_size_a: float,
    *,
    rfft: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Squared spatial frequency ``|k|²`` (1/Å²) on the DFT grid of an array of ``shape``.

    Parameters
    ----------
    shape
        Real-space shape, any dimensionality (``(y, x)`` or ``(z, y, x)``).
    pixel_size_a
        Pixel (voxel) size in Å.
    rfft
        ``True``: the half-space layout of ``torch.fft.rfftn`` (last axis ``n // 2 + 1``),
        unshifted. ``False``: the full grid, ``fftshift``-ed (zero frequency at ``n // 2``).

    Returns
    -------
    torch.Tensor
        float64 array of the Fourier-space shape.
    """
    axes = []
    for i, n in enumerate(shape):
        if rfft and i == len(shape) - 1:
            freq = torch.fft.rfftfreq(n, d=pixel_size_a, dtype=torch.float64, device=device)
        else:
            freq = torch.fft.fftfreq(n, d=pixel_size_a, dtype=torch.float64, device=device)
            if not rfft:
                freq = torch.fft.fftshift(freq)
        axes.append(freq)
    grids = torch.meshgrid(*axes, indexing="ij")
    return sum(g**2 for g in grids)  # type: ignore[return-value]


def ctf(
    shape: Sequence[int],
    pixel_size_a: float,
    *,
    defocus_um: float,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    b_factor_a2: float = 0.0,
    rfft: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Isotropic CTF on the DFT grid of a 2-D image or (radially, as simulators do) a 3-D volume.

    Parameters
    ----------
    shape
        Real-space shape ``(y, x)`` or ``(z, y, x)``.
    pixel_size_a
        Pixel size in Å.
    defocus_um
        Defocus in µm, **underfocus positive** (the paper's "-5 µm" is ``5.0``).
    voltage_kv, cs_mm, amplitude_contrast
        Acceleration voltage (kV), spherical aberration (mm), amplitude contrast fraction.
    b_factor_a2
        B-factor of the Gaussian envelope ``exp(-B k² / 4)``, Å² (0: no envelope).
    rfft
        Half-space ``rfftn`` layout (unshifted) if true, else the full ``fftshift``-ed grid.

    Returns
    -------
    torch.Tensor
        float32 CTF values, shape ``(..., n_last // 2 + 1)`` (``rfft``) or ``shape``.
    """
    k2 = spatial_frequency_squared(shape, pixel_size_a, rfft=rfft, device=device)
    wavelength = electron_wavelength_a(voltage_kv)
    defocus_a = defocus_um * 1e4
    cs_a = cs_mm * 1e7
    chi = math.pi * wavelength * defocus_a * k2 - 0.5 * math.pi * cs_a * wavelength**3 * k2**2
    values = -(
        math.sqrt(1.0 - amplitude_contrast**2) * torch.sin(chi)
        + amplitude_contrast * torch.cos(chi)
    )
    if b_factor_a2:
        values = values * torch.exp(-b_factor_a2 * k2 / 4.0)
    return values.to(torch.float32)


def ctf_2d(shape_yx: Sequence[int], pixel_size_a: float, **options: Any) -> torch.Tensor:
    """CTF of one (tilt) image of shape ``(y, x)``: :func:`ctf` on a 2-D shape.

    Parameters
    ----------
    shape_yx
        Real-space image shape ``(y, x)``.
    pixel_size_a
        Pixel size in Å.
    **options
        The keyword options of :func:`ctf` (``defocus_um`` required; ``voltage_kv``, ``cs_mm``,
        ``amplitude_contrast``, ``b_factor_a2``, ``rfft``, ``device``), with its defaults.

    Returns
    -------
    torch.Tensor
        float32, shape ``(y, x // 2 + 1)`` with ``rfft`` (unshifted), else ``(y, x)``
        ``fftshift``-ed.
    """
    if len(shape_yx) != 2:
        raise ValueError(f"shape_yx must have 2 entries (y, x), got {tuple(shape_yx)}")
    return ctf(shape_yx, pixel_size_a, **options)
