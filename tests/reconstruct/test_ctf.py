"""CTF: wavelength, sign at zero frequency, first zero against the analytic formula, layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryomine.reconstruct import ctf, ctf_2d, electron_wavelength_a


def test_wavelength_300kv() -> None:
    assert electron_wavelength_a(300.0) == pytest.approx(0.019687, abs=1e-5)
    assert electron_wavelength_a(200.0) == pytest.approx(0.025079, abs=1e-5)


def _first_zero_analytic(
    defocus_um: float, cs_mm: float, amplitude: float, voltage_kv: float = 300.0
) -> float:
    """k (1/Å) of the first zero: χ(k) + φ = π, with tan φ = A / √(1 - A²)."""
    lam = electron_wavelength_a(voltage_kv)
    df, cs = defocus_um * 1e4, cs_mm * 1e7
    phi = math.atan2(amplitude, math.sqrt(1 - amplitude**2))
    a, b, c = 0.5 * math.pi * cs * lam**3, -math.pi * lam * df, math.pi - phi
    u = c / -b if a == 0 else (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return math.sqrt(u)


@pytest.mark.parametrize(
    ("defocus_um", "cs_mm", "amplitude"), [(5.0, 2.7, 0.07), (2.0, 2.7, 0.1), (3.0, 0.0, 0.07)]
)
def test_first_zero_matches_analytic(defocus_um: float, cs_mm: float, amplitude: float) -> None:
    n, pixel = 1024, 2.0
    values = ctf_2d((n, n), pixel, defocus_um=defocus_um, cs_mm=cs_mm, amplitude_contrast=amplitude)
    row = values[0].double().numpy()  # k_y = 0, k_x = 0 .. Nyquist
    assert row[0] == pytest.approx(-amplitude, abs=1e-6)  # protein dark at low frequency
    crossing = int(np.argmax(row > 0))  # first sign change from negative
    k = np.arange(row.size) / (n * pixel)
    # linear interpolation between the two samples around the zero
    k_zero = k[crossing - 1] - row[crossing - 1] * (k[crossing] - k[crossing - 1]) / (
        row[crossing] - row[crossing - 1]
    )
    expected = _first_zero_analytic(defocus_um, cs_mm, amplitude)
    assert k_zero == pytest.approx(expected, rel=2e-3)


def test_b_factor_envelope() -> None:
    plain = ctf((64, 64), 4.0, defocus_um=3.0)
    damped = ctf((64, 64), 4.0, defocus_um=3.0, b_factor_a2=200.0)
    k2 = (
        torch.fft.fftfreq(64, d=4.0)[:, None] ** 2 + torch.fft.rfftfreq(64, d=4.0)[None, :] ** 2
    ).float()
    torch.testing.assert_close(damped, plain * torch.exp(-200.0 * k2 / 4.0), rtol=1e-4, atol=1e-6)


def test_layouts_agree_and_3d_is_radial() -> None:
    half = ctf((16, 20), 5.0, defocus_um=4.0, rfft=True)
    full = ctf((16, 20), 5.0, defocus_um=4.0, rfft=False)
    assert half.shape == (16, 11) and full.shape == (16, 20)
    unshifted = torch.fft.ifftshift(full)
    torch.testing.assert_close(unshifted[:, :11], half)
    volume = ctf((8, 16, 20), 5.0, defocus_um=4.0)
    torch.testing.assert_close(volume[0], half)  # the k_z = 0 plane of the radial 3-D CTF


def test_ctf_2d_rejects_3d_shape() -> None:
    with pytest.raises(ValueError, match="shape_yx"):
        ctf_2d((4, 4, 4), 1.0, defocus_um=1.0)
