"""The imaging model of the simulators: tilt series + CTF + noise + WBP, or its Fourier shortcut.

Both modes are linear, so each returns the noise-free reconstruction and the noise-only
reconstruction separately; the simulators scale the noise so that the ratio of their variances is
the requested SNR and add them (see ``docs/simulation.md``).

``mode="tilt-series"``
    The (rotated, shifted) density is projected along z at every tilt about the y axis
    (:func:`~cryomine.reconstruct.project`), each projection is multiplied by the 2-D CTF in
    Fourier space, **white Gaussian noise is added to the projections** (independent per pixel
    and tilt), and the volume is reconstructed by weighted back-projection (Ram-Lak ramp along x).
    The defocus is the same for every tilt and across each image (no defocus gradient).
``mode="fourier"``
    The density's 3-D DFT is multiplied by the radially symmetric 3-D CTF and by the
    missing-wedge mask (:func:`cryomine.geometry.missing_wedge_mask`); the noise is white Gaussian
    noise drawn **in real space**, then restricted to the same observed wedge and coloured with
    amplitude ``sqrt(|k_⊥|)`` (``k_⊥`` the frequency perpendicular to the tilt axis), which is the
    noise spectrum weighted back-projection gives. Much faster; no interpolation blur.

Contrast is physical: protein (positive density) comes out **dark** at low frequency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.reconstruct import backproject, ctf, ctf_2d, project, tilt_angles, tilt_rotations

__all__ = ["IMAGING_MODES", "ImagingMode", "ImagingParameters", "add_noise_at_snr", "image_volumes"]

ImagingMode = Literal["tilt-series", "fourier"]
IMAGING_MODES: tuple[str, ...] = ("tilt-series", "fourier")


@dataclass(frozen=True)
class ImagingParameters:
    """Microscope and acquisition settings of a simulated single-axis (y) tilt series.

    Attributes
    ----------
    tilt_range_deg
        ``(min, max)`` tilt angles in degrees (``(-60, 60)`` is ±60°).
    tilt_step_deg
        Tilt increment in degrees.
    defocus_um
        Defocus in µm, **underfocus positive** (the DISCA paper's "-5 µm" is ``5.0``).
    voltage_kv, cs_mm, amplitude_contrast
        Acceleration voltage (kV), spherical aberration (mm), amplitude contrast fraction.
    b_factor_a2
        B-factor envelope in Å² (0: none).
    """

    tilt_range_deg: tuple[float, float] = (-60.0, 60.0)
    tilt_step_deg: float = 3.0
    defocus_um: float = 5.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    b_factor_a2: float = 0.0

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.tilt_range_deg)
        if not (-90.0 <= low < high <= 90.0):
            raise InputError(
                f"tilt range {self.tilt_range_deg}: expected -90 <= min < max <= 90 degrees"
            )
        if not 0.0 < self.tilt_step_deg <= high - low:
            raise InputError(
                f"tilt step {self.tilt_step_deg}: expected 0 < step <= {high - low} degrees"
            )
        if self.defocus_um <= 0:
            raise InputError(
                f"defocus {self.defocus_um} µm: give the underfocus as a positive number "
                "(the paper's '-5 µm' is 5)"
            )
        if self.voltage_kv <= 0 or self.cs_mm < 0 or not 0.0 <= self.amplitude_contrast < 1.0:
            raise InputError(
                f"voltage {self.voltage_kv} kV / Cs {self.cs_mm} mm / amplitude contrast "
                f"{self.amplitude_contrast}: expected voltage > 0, Cs >= 0, "
                "0 <= amplitude contrast < 1"
            )
        if self.b_factor_a2 < 0:
            raise InputError(f"B-factor {self.b_factor_a2} Å²: expected >= 0")
        object.__setattr__(self, "tilt_range_deg", (low, high))

    @property
    def tilt_angles_deg(self) -> np.ndarray:
        """``(n_tilts,)`` tilt angles in degrees."""
        return tilt_angles(self.tilt_range_deg, self.tilt_step_deg)

    def ctf_kwargs(self) -> dict[str, Any]:
        """The CTF options (:func:`~cryomine.reconstruct.ctf`) of these settings."""
        return {
            "defocus_um": self.defocus_um,
            "voltage_kv": self.voltage_kv,
            "cs_mm": self.cs_mm,
            "amplitude_contrast": self.amplitude_contrast,
            "b_factor_a2": self.b_factor_a2,
        }


def _wbp_noise_colour(shape_zyx: Sequence[int], device: torch.device) -> torch.Tensor:
    """``sqrt(|k_⊥|)`` on the rfftn grid, k_⊥ = (k_z, k_x) in cycles/voxel (tilt axis y)."""
    kz = torch.fft.fftfreq(shape_zyx[0], device=device)
    kx = torch.fft.rfftfreq(shape_zyx[2], device=device)
    k_perp = torch.sqrt(kz[:, None, None] ** 2 + kx[None, None, :] ** 2)
    return torch.sqrt(k_perp).expand(shape_zyx[0], shape_zyx[1], shape_zyx[2] // 2 + 1)


def check_imaging_mode(mode: str) -> None:
    """Raise :class:`InputError` unless ``mode`` is one of :data:`IMAGING_MODES`."""
    if mode not in IMAGING_MODES:
        raise InputError(f"imaging mode {mode!r}: expected one of {', '.join(IMAGING_MODES)}")


def check_simulation_options(*, snr: float, voxel_size_a: float, mode: str) -> None:
    """The checks every simulator makes first: SNR and voxel size (Å) positive, mode known."""
    if not (np.isfinite(snr) and snr > 0):
        raise InputError(f"SNR {snr!r}: expected a positive number")
    if not voxel_size_a > 0:
        raise InputError(f"voxel size {voxel_size_a} Å: expected a positive number")
    check_imaging_mode(mode)


def image_volumes(
    volumes: torch.Tensor,
    noise_rngs: Sequence[np.random.Generator],
    *,
    voxel_size_a: float,
    imaging: ImagingParameters,
    mode: ImagingMode = "tilt-series",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image a batch of clean densities; return the noise-free and the unit noise reconstructions.

    Parameters
    ----------
    volumes
        ``(n, z, y, x)`` clean densities (protein positive), float32, on the working device.
    noise_rngs
        One generator per volume; volume ``i``'s noise is drawn from ``noise_rngs[i]`` only, so
        the result does not depend on how volumes are batched.
    voxel_size_a
        Voxel size in Å.
    imaging
        Microscope and tilt settings.
    mode
        ``"tilt-series"`` or ``"fourier"`` (module docstring).

    Returns
    -------
    signal, noise : torch.Tensor
        float32 ``(n, z, y, x)`` each: the noise-free reconstruction (protein dark) and the
        reconstruction of the noise alone, at an arbitrary noise level (scale it to the SNR).
    """
    check_imaging_mode(mode)
    if len(noise_rngs) != volumes.shape[0]:
        raise ValueError(f"{len(noise_rngs)} noise generators for {volumes.shape[0]} volumes")
    device = volumes.device
    shape = (int(volumes.shape[1]), int(volumes.shape[2]), int(volumes.shape[3]))
    if mode == "tilt-series":
        rotations = tilt_rotations(imaging.tilt_angles_deg)
        n_tilts = rotations.shape[0]
        projections = project(volumes, rotations)  # (n, t, y, x)
        transfer = ctf_2d(shape[1:], voxel_size_a, **imaging.ctf_kwargs(), device=device)
        projections = torch.fft.irfft2(torch.fft.rfft2(projections) * transfer, s=shape[1:])
        signal = backproject(projections, rotations, shape)
        noise_images = np.stack(
            [rng.standard_normal((n_tilts, *shape[1:]), dtype=np.float32) for rng in noise_rngs]
        )
        noise = backproject(torch.from_numpy(noise_images).to(device), rotations, shape)
        return signal, noise
    from cryomine.geometry import missing_wedge_mask

    wedge = torch.from_numpy(
        missing_wedge_mask(shape, tilt_range_deg=imaging.tilt_range_deg, tilt_axis="y", rfft=True)
    ).to(device)
    transfer = ctf(shape, voxel_size_a, **imaging.ctf_kwargs(), device=device) * wedge
    signal = torch.fft.irfftn(
        torch.fft.rfftn(volumes.to(torch.float32), dim=(-3, -2, -1)) * transfer, s=shape
    )
    white = np.stack([rng.standard_normal(shape, dtype=np.float32) for rng in noise_rngs])
    colour = wedge * _wbp_noise_colour(shape, device)
    noise = torch.fft.irfftn(
        torch.fft.rfftn(torch.from_numpy(white).to(device), dim=(-3, -2, -1)) * colour, s=shape
    )
    return signal, noise


def add_noise_at_snr(signal: torch.Tensor, noise: torch.Tensor, snr: float) -> torch.Tensor:
    """``signal + sigma·noise`` per volume; sigma makes ``var(signal) / var(sigma·noise) = snr``.

    Parameters
    ----------
    signal, noise
        ``(n, z, y, x)``; variances are taken over each whole volume.
    snr
        Target signal-to-noise ratio (> 0).

    Returns
    -------
    torch.Tensor
        ``(n, z, y, x)`` noisy volumes.
    """
    dims = tuple(range(1, signal.ndim))
    sigma = torch.sqrt(
        signal.var(dim=dims, keepdim=True) / (snr * noise.var(dim=dims, keepdim=True))
    )
    return signal + sigma * noise
