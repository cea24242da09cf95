"""The DISCA paper's noise model (``noise_model="paper"``): noise added in 3-D, then band-passed.

A re-implementation from the protocol's description (``docs/simulation.md``), for like-for-like
comparisons with the paper's Table 1. Per subtomogram of edge ``n`` at voxel size ``v`` (Å), with
the rotated, shifted density ``d`` and ``F`` the 3-D DFT (all filters real and radially
symmetric unless said otherwise; radii in frequency voxels, ``r = n · |k|`` with ``k`` in
cycles/voxel):

1. ``B``, the band-pass: a raised sphere (:func:`raised_sphere`: 1 for ``r ≤ R``,
   ``exp(-((r - R) / 2)²)`` beyond, 0 where that falls below ``e⁻³``) of radius
   ``R = floor((n / 8) / Ny)``, ``Ny = 1 / (2 · v_nm)`` the Nyquist frequency in 1/nm (24³ at
   12 Å: R = 7; at 16 Å: R = 9);
2. ``C``, the 3-D CTF with **no amplitude contrast** (``A = 0``: ``-sin χ``);
3. ``W``, the missing-wedge mask of the tilt range times the sphere ``r ≤ n / 2``;
4. ``G``, the smooth low-pass of the second noise field: a raised sphere of radius 1 with
   smoothing ``s = 0.2 n`` (``exp(-((r - 1) / s)²)``, a Gaussian of standard deviation
   ``s / √2``, 0 beyond ``r = 1 + √3 s``);
5. ``σ²_s``: the variance of the density filtered by ``C · W``, divided by the fraction of
   white-noise variance ``C · W`` passes (``mean |C · W|²`` over the full DFT grid), so the
   structure's own signal level sets its noise level. By default it is computed from each
   subtomogram's own (rotated, shifted) density ``d``; ``signal_variance="structure"`` of the
   simulator takes it once per structure from its centred map instead (the two differ by the
   interpolation blur of the rotation, measured in ``docs/simulation.md``);
6. ``ε₁, ε₂`` independent white Gaussian fields of variance ``σ²_n = 0.5 · σ²_s / snr``;
7. ``x = F⁻¹[W · B · (C · (B · F d + F ε₁) + G · F ε₂)]``, contrast inverted (protein bright).

Every step is linear, so :func:`image_volumes_paper` returns the noise-free part and the noise
part separately, both at their absolute level: unlike ``noise_model="projection"`` the noise is
**not** rescaled to make each subtomogram's measured SNR equal ``snr``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.reconstruct import ctf
from cryomine.simulate._imaging import ImagingParameters

__all__ = [
    "NOISE_MODELS",
    "PAPER_LOWPASS_SMOOTHING_FRACTION",
    "PAPER_NOISE_FRACTION",
    "PAPER_SPHERE_SMOOTHING",
    "PaperFilters",
    "check_noise_model",
    "image_volumes_paper",
    "paper_bandpass_radius",
    "paper_filters",
    "paper_signal_variance",
    "raised_sphere",
]

#: The noise models of :func:`cryomine.simulate.simulate_subtomograms`.
NOISE_MODELS: tuple[str, ...] = ("projection", "paper")

#: Smoothing ``s`` (frequency voxels) of the band-pass sphere's edge, ``exp(-((r - R) / s)²)``.
PAPER_SPHERE_SMOOTHING = 2.0

#: Smoothing of the second noise field's low-pass (a raised sphere of radius 1), as a fraction of
#: the box edge (frequency voxels).
PAPER_LOWPASS_SMOOTHING_FRACTION = 0.2

#: Each noise field's variance is this fraction of ``σ²_s / snr``.
PAPER_NOISE_FRACTION = 0.5


def check_noise_model(noise_model: str) -> None:
    """Raise :class:`InputError` unless ``noise_model`` is one of :data:`NOISE_MODELS`."""
    if noise_model not in NOISE_MODELS:
        raise InputError(f"noise model {noise_model!r}: expected one of {', '.join(NOISE_MODELS)}")


def raised_sphere(radius_grid: torch.Tensor, radius: float, smoothing: float) -> torch.Tensor:
    """Smooth sphere on a grid of radii: 1 for ``r ≤ R``, ``exp(-((r - R) / s)²)`` beyond.

    Values below ``e⁻³`` (``r - R > √3 · s``) are set to 0. ``radius_grid``, ``radius`` and
    ``smoothing`` share one unit (frequency voxels here). Returns float32, the grid's shape.
    """
    beyond = torch.clamp(radius_grid - radius, min=0.0) / smoothing
    values = torch.exp(-(beyond**2))
    values[values < math.exp(-3.0)] = 0.0
    return values.to(torch.float32)


def paper_bandpass_radius(box_size: int, voxel_size_a: float) -> int:
    """Radius (frequency voxels) of the band-pass sphere: ``floor((n / 8) / Ny)``.

    ``Ny = 1 / (2 · voxel size in nm)`` is the Nyquist frequency in 1/nm. Raises
    :class:`InputError` when the radius is below 1 (voxels too small for the box).
    """
    nyquist_per_nm = 1.0 / (2.0 * voxel_size_a / 10.0)
    radius = math.floor((box_size / 8.0) / nyquist_per_nm + 1e-9)
    if radius < 1:
        raise InputError(
            f"voxel size {voxel_size_a} Å with box {box_size}: the paper model's band-pass "
            f"radius floor((box/8)/Ny) is {radius} frequency voxels; expected at least 1 "
            "(use a larger voxel size or box)"
        )
    return radius


def _frequency_radius(shape: Sequence[int], device: torch.device | str | None) -> torch.Tensor:
    """``r = n · |k|`` in frequency voxels on the cubic box's ``rfftn`` grid (float32)."""
    n = int(shape[0])
    kz = torch.fft.fftfreq(n, device=device) * n
    kx = torch.fft.rfftfreq(n, device=device) * n
    return torch.sqrt(kz[:, None, None] ** 2 + kz[None, :, None] ** 2 + kx[None, None, :] ** 2)


def _mean_power(transfer: torch.Tensor, n_last: int) -> float:
    """``mean |H|²`` over the full DFT grid of a real filter given on its ``rfftn`` half grid."""
    weights = torch.full((transfer.shape[-1],), 2.0, dtype=torch.float64, device=transfer.device)
    weights[0] = 1.0
    if n_last % 2 == 0:
        weights[-1] = 1.0
    power = (transfer.to(torch.float64) ** 2 * weights).sum()
    return float(power) / (transfer[..., 0].numel() * n_last)


@dataclass(frozen=True)
class PaperFilters:
    """The Fourier filters of the paper model on the ``rfftn`` grid of an ``(n, n, n)`` box.

    Attributes
    ----------
    bandpass
        ``B`` ``(n, n, n // 2 + 1)``: raised sphere of radius :attr:`bandpass_radius`.
    ctf
        ``C``: the CTF without amplitude contrast (protein dark at low frequency).
    wedge_sphere
        ``W``: missing-wedge mask times the sphere ``r ≤ n / 2``.
    noise_lowpass
        ``G``: raised sphere of radius 1 and smoothing 0.2 n frequency voxels.
    bandpass_radius
        ``R`` in frequency voxels.
    white_fraction
        ``mean |C · W|²``: the fraction of white-noise variance that ``C · W`` passes.
    """

    bandpass: torch.Tensor
    ctf: torch.Tensor
    wedge_sphere: torch.Tensor
    noise_lowpass: torch.Tensor
    bandpass_radius: int
    white_fraction: float


def paper_filters(
    box_size: int,
    voxel_size_a: float,
    imaging: ImagingParameters,
    *,
    device: torch.device | str | None = None,
) -> PaperFilters:
    """The filters ``B, C, W, G`` of the paper model (module docstring) for one box and sampling.

    The amplitude contrast of ``imaging`` is ignored (the paper's CTF has none); its defocus,
    voltage, Cs, B-factor and tilt range are used.
    """
    from cryomine.geometry import missing_wedge_mask

    shape = (int(box_size),) * 3
    radius_grid = _frequency_radius(shape, device)
    radius = paper_bandpass_radius(box_size, voxel_size_a)
    bandpass = raised_sphere(radius_grid, radius, PAPER_SPHERE_SMOOTHING)
    kwargs = {**imaging.ctf_kwargs(), "amplitude_contrast": 0.0}
    transfer = ctf(shape, voxel_size_a, **kwargs, device=device)
    wedge = torch.from_numpy(
        missing_wedge_mask(shape, tilt_range_deg=imaging.tilt_range_deg, tilt_axis="y", rfft=True)
    ).to(device)
    wedge_sphere = wedge * (radius_grid <= box_size / 2).to(torch.float32)
    lowpass = raised_sphere(radius_grid, 1.0, PAPER_LOWPASS_SMOOTHING_FRACTION * box_size)
    fraction = _mean_power(transfer * wedge_sphere, box_size)
    return PaperFilters(
        bandpass=bandpass.to(torch.float32),
        ctf=transfer,
        wedge_sphere=wedge_sphere,
        noise_lowpass=lowpass.to(torch.float32),
        bandpass_radius=radius,
        white_fraction=fraction,
    )


def paper_signal_variance(volumes: torch.Tensor, filters: PaperFilters) -> torch.Tensor:
    """``σ²_s = var(F⁻¹[C · W · F d]) / mean |C · W|²`` of each density.

    Parameters
    ----------
    volumes
        ``(m, n, n, n)`` clean densities (protein positive), on the filters' device.
    filters
        From :func:`paper_filters` for the same box.

    Returns
    -------
    torch.Tensor
        float64 ``(m,)``: white-noise-equivalent signal variances (density units squared).

    Raises
    ------
    InputError
        A density of which nothing passes the CTF and wedge (an empty map).
    """
    shape = tuple(int(v) for v in volumes.shape[1:])
    filtered = torch.fft.irfftn(
        torch.fft.rfftn(volumes.to(torch.float32), dim=(-3, -2, -1))
        * (filters.ctf * filters.wedge_sphere),
        s=shape,
    )
    variance = filtered.to(torch.float64).var(dim=(1, 2, 3), correction=0)
    if not bool(torch.all(torch.isfinite(variance) & (variance > 0))):
        raise InputError("structure density: no signal passes the CTF and wedge (empty map?)")
    return variance / filters.white_fraction


def image_volumes_paper(
    volumes: torch.Tensor,
    noise_rngs: Sequence[np.random.Generator],
    signal_variances: torch.Tensor | None = None,
    *,
    snr: float,
    filters: PaperFilters,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image a batch of densities with the paper model; noise-free and noise parts, at scale.

    Parameters
    ----------
    volumes
        ``(m, n, n, n)`` clean densities (protein positive), float32, on the filters' device.
    noise_rngs
        One generator per volume (its two noise fields, ``ε₁`` then ``ε₂``).
    signal_variances
        ``(m,)`` ``σ²_s`` per volume; ``None``: each volume's own (:func:`paper_signal_variance`).
    snr
        Nominal SNR: each noise field has variance ``0.5 · σ²_s / snr``.
    filters
        :func:`paper_filters` for this box.

    Returns
    -------
    signal, noise : torch.Tensor
        float32 ``(m, n, n, n)`` each, **protein bright**: the noise-free volume and the noise
        alone; the simulated subtomogram is their sum.
    """
    if len(noise_rngs) != volumes.shape[0]:
        raise ValueError(f"{len(noise_rngs)} noise generators for {volumes.shape[0]} volumes")
    shape = tuple(int(s) for s in volumes.shape[1:])
    device = volumes.device
    dims = (-3, -2, -1)
    outer = -filters.wedge_sphere * filters.bandpass  # minus: protein bright
    if signal_variances is None:
        signal_variances = paper_signal_variance(volumes, filters)
    spectrum = torch.fft.rfftn(volumes.to(torch.float32), dim=dims)
    signal = torch.fft.irfftn(spectrum * (outer * filters.ctf * filters.bandpass), s=shape)
    fields = np.stack([rng.standard_normal((2, *shape), dtype=np.float32) for rng in noise_rngs])
    sigma = torch.sqrt(PAPER_NOISE_FRACTION * signal_variances.to(torch.float64) / snr)
    sigma = sigma.to(device, torch.float32)[:, None, None, None, None]
    fields_t = torch.from_numpy(fields).to(device) * sigma
    noise_spectra = torch.fft.rfftn(fields_t, dim=dims)
    combined = noise_spectra[:, 0] * filters.ctf + noise_spectra[:, 1] * filters.noise_lowpass
    noise = torch.fft.irfftn(combined * outer, s=shape)
    return signal, noise
