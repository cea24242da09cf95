"""Masks: missing wedge, spheres, frequency grids and Fourier shells."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.geometry import (
    fourier_shells,
    missing_wedge_mask,
    radial_frequency_grid,
    sphere_mask,
)


@pytest.mark.parametrize("half_range_deg", [60.0, 40.0])
@pytest.mark.parametrize("tilt_axis", ["y", "x"])
def test_wedge_observed_fraction_matches_tilt_span(
    half_range_deg: float, tilt_axis: Literal["y", "x"]
) -> None:
    shape = (64, 64, 64)
    mask = missing_wedge_mask(
        shape, tilt_range_deg=(-half_range_deg, half_range_deg), tilt_axis=tilt_axis
    )
    assert mask.shape == shape and mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, 1.0}
    within = radial_frequency_grid(shape) <= 0.5
    fraction = mask[within].mean()
    assert fraction == pytest.approx(2 * half_range_deg / 180.0, abs=0.02)


def test_wedge_central_xz_plane_is_observed_exactly_within_range() -> None:
    n = 32
    c = n // 2
    mask = missing_wedge_mask((n, n, n), tilt_range_deg=(-60.0, 60.0))
    plane = mask[:, c, :]  # k_y = 0: (k_z, k_x)
    kz, kx = np.mgrid[-c : n - c, -c : n - c]
    tan60 = np.tan(np.radians(60.0))
    np.testing.assert_array_equal(plane[kx != 0] == 1, (np.abs(kz) <= tan60 * np.abs(kx))[kx != 0])
    assert plane[c, c] == 1  # zero frequency
    assert not plane[kx == 0][kz[kx == 0] != 0].any()  # the k_z axis is in the wedge
    # Every Fourier voxel on the tilt axis (k_x = k_z = 0) lies on every central section.
    assert mask[c, :, c].all()
    # Lattice directions on the central section of a 45° tilt, and one at arctan(4) = 76°.
    for k in range(1, c):
        assert plane[c + k, c + k] == 1 and plane[c - k, c + k] == 1
    assert plane[c + 4, c + 1] == 0
    wide = missing_wedge_mask((n, n, n), tilt_range_deg=(-80.0, 80.0))
    assert wide[c + 4, c, c + 1] == 1


def test_wedge_is_the_same_on_every_kx_kz_plane_and_friedel_symmetric() -> None:
    shape = (17, 12, 15)
    mask = missing_wedge_mask(shape, tilt_range_deg=(-50.0, 65.0))
    assert (mask == mask[:, :1, :]).all()  # does not depend on k_y (the tilt axis)
    odd = mask[:, 6, :]
    # Asymmetric range: the line through -k is the line through k, so mask(k) == mask(-k).
    np.testing.assert_array_equal(odd, odd[::-1, ::-1])
    # θ > 0 opens towards +k_z for +k_x: a 62° direction is observed, a -62° one is not.
    kz, kx = 8 * np.sin(np.radians(62)), 8 * np.cos(np.radians(62))
    assert odd[8 + round(kz), 7 + round(kx)] == 1
    assert odd[8 - round(kz), 7 + round(kx)] == 0


def test_wedge_tilt_axis_x_is_axis_swap() -> None:
    mask_y = missing_wedge_mask((20, 16, 16), tilt_range_deg=(-45.0, 55.0), tilt_axis="y")
    mask_x = missing_wedge_mask((20, 16, 16), tilt_range_deg=(-45.0, 55.0), tilt_axis="x")
    np.testing.assert_array_equal(mask_x, mask_y.transpose(0, 2, 1))


@pytest.mark.parametrize("shape", [(16, 16, 16), (15, 14, 13)])
def test_rfft_layout_matches_fftshifted(shape: tuple[int, int, int]) -> None:
    full = missing_wedge_mask(shape, tilt_range_deg=(-55.0, 60.0))
    half = missing_wedge_mask(shape, tilt_range_deg=(-55.0, 60.0), rfft=True)
    expected = np.fft.ifftshift(full)[..., : shape[-1] // 2 + 1]
    assert half.shape == (*shape[:2], shape[-1] // 2 + 1)
    np.testing.assert_array_equal(half, expected)
    assert half[0, 0, 0] == 1
    radial_full = radial_frequency_grid(shape)
    radial_half = radial_frequency_grid(shape, rfft=True)
    np.testing.assert_array_equal(
        radial_half, np.fft.ifftshift(radial_full)[..., : shape[-1] // 2 + 1]
    )
    np.testing.assert_array_equal(
        fourier_shells(shape, rfft=True),
        np.fft.ifftshift(fourier_shells(shape))[..., : shape[-1] // 2 + 1],
    )


def test_wedge_applied_to_data_removes_wedge_power() -> None:
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(24, 24, 24))
    mask = missing_wedge_mask(volume.shape, rfft=True)
    filtered = np.fft.irfftn(np.fft.rfftn(volume) * mask, s=volume.shape, axes=(0, 1, 2))
    spectrum = np.fft.rfftn(filtered)
    assert np.abs(spectrum[mask == 0]).max() < 1e-9
    np.testing.assert_allclose(spectrum[mask == 1], np.fft.rfftn(volume)[mask == 1], atol=1e-9)


def test_radial_frequency_grid_values() -> None:
    grid = radial_frequency_grid((16, 10, 9))
    assert grid.shape == (16, 10, 9) and grid.dtype == np.float32
    assert grid[8, 5, 4] == 0
    assert grid[0, 5, 4] == pytest.approx(0.5)  # Nyquist along z
    assert grid[8, 5, 5] == pytest.approx(1 / 9)
    assert grid[8, 4, 4] == pytest.approx(1 / 10)


def test_fourier_shells_cubic() -> None:
    n = 32
    c = n // 2
    shells = fourier_shells((n, n, n))
    assert shells.dtype == np.int64 and shells[c, c, c] == 0
    for i in range(1, c):
        assert shells[c, c, c + i] == i and shells[c + i, c, c] == i
    cumulative = np.cumsum(np.bincount(shells.ravel()))
    for i in (10, 15):  # shells 0..i fill the ball of radius i + 1/2
        assert cumulative[i] == pytest.approx(4 / 3 * np.pi * (i + 0.5) ** 3, rel=0.03)


def test_sphere_mask() -> None:
    n = 40
    hard = sphere_mask((n, n, n), 10.0)
    assert hard.dtype == np.float32 and hard.shape == (n, n, n)
    assert hard.sum() == pytest.approx(4 / 3 * np.pi * 10.0**3, rel=0.03)
    assert hard[20, 20, 30] == 1 and hard[20, 20, 31] == 0  # centre n // 2 = 20
    soft = sphere_mask((n, n, n), 8.0, soft_edge_px=4.0)
    profile = soft[20, 20, 20:]
    np.testing.assert_allclose(profile[:9], 1.0)
    assert profile[10] == pytest.approx(0.5)  # half way through the edge
    assert np.all(np.diff(profile) <= 0) and (profile[12:] == 0).all()
    moved = sphere_mask((n, n, n), 3.0, center_zyx=(5.0, 6.5, 30.0))
    assert moved[5, 6, 30] == 1 and moved[5, 9, 30] == 1 and moved[5, 10, 30] == 0
    disc = sphere_mask((9, 9), 2.0)
    assert disc.sum() == 13


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: missing_wedge_mask((8, 8)), "shape_zyx: expected 3"),
        (lambda: missing_wedge_mask((8, 0, 8)), "shape_zyx"),
        (lambda: missing_wedge_mask((8, 8, 8), tilt_range_deg=(60.0, -60.0)), "tilt_range_deg"),
        (lambda: missing_wedge_mask((8, 8, 8), tilt_range_deg=(-95.0, 60.0)), "tilt_range_deg"),
        (lambda: missing_wedge_mask((8, 8, 8), tilt_axis="z"), "tilt_axis"),  # type: ignore[arg-type]
        (lambda: sphere_mask((8, 8, 8), -1.0), "radius_px"),
        (lambda: sphere_mask((8, 8, 8), 2.0, soft_edge_px=-1.0), "soft_edge_px"),
        (lambda: sphere_mask((8, 8, 8), 2.0, center_zyx=(1.0, 2.0)), "center_zyx"),
        (lambda: fourier_shells("abc"), "shape"),  # type: ignore[arg-type]
    ],
)
def test_mask_input_errors(call: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        call()  # type: ignore[operator]
