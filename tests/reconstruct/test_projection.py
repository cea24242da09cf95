"""Projector and weighted back-projector: physics (reconstruction, missing wedge) and geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import cryomine.reconstruct._projection as projection
from cryomine.geometry import missing_wedge_mask, sphere_mask
from cryomine.reconstruct import backproject, project, tilt_angles, tilt_rotations


def test_tilt_angles_inclusive() -> None:
    angles = tilt_angles((-60.0, 60.0), 3.0)
    assert angles.shape == (41,) and angles[0] == -60.0 and angles[-1] == 60.0
    assert tilt_angles((-40.0, 40.0), 3.0)[-1] == pytest.approx(38.0)
    with pytest.raises(ValueError, match="tilt_range_deg"):
        tilt_angles((60.0, -60.0), 3.0)


def test_tilt_rotations_turn_about_y() -> None:
    rotations = tilt_rotations([-30.0, 0.0, 45.0])
    assert rotations.shape == (3, 3, 3)
    np.testing.assert_allclose(rotations[:, :, 1], np.tile([0.0, 1.0, 0.0], (3, 1)), atol=1e-12)
    np.testing.assert_allclose(rotations[1], np.eye(3), atol=1e-12)


def test_full_range_reconstructs_the_volume(make_blob) -> None:  # type: ignore[no-untyped-def]
    volume = torch.from_numpy(make_blob(3, box=32, reach=7.0))
    rotations = tilt_rotations(tilt_angles((-90.0, 89.0), 1.0))
    reconstruction = backproject(project(volume, rotations), rotations, (32, 32, 32)).numpy()
    inside = sphere_mask((32, 32, 32), radius_px=13.0) > 0.5
    correlation = np.corrcoef(reconstruction[inside], volume.numpy()[inside])[0, 1]
    assert correlation > 0.9
    # weighting scaled so that amplitudes are reproduced, not just the shape
    assert reconstruction[inside].std() / volume.numpy()[inside].std() == pytest.approx(
        1.0, abs=0.15
    )


def test_limited_range_leaves_the_missing_wedge_empty(make_blob) -> None:  # type: ignore[no-untyped-def]
    n = 32
    volume = torch.from_numpy(make_blob(4, box=n, reach=7.0))
    rotations = tilt_rotations(tilt_angles((-60.0, 60.0), 2.0))
    reconstruction = backproject(project(volume, rotations), rotations, (n, n, n)).numpy()
    power = np.abs(np.fft.fftshift(np.fft.fftn(reconstruction))) ** 2
    original = np.abs(np.fft.fftshift(np.fft.fftn(volume.numpy()))) ** 2
    wedge = missing_wedge_mask((n, n, n), tilt_range_deg=(-60.0, 60.0)) < 0.5
    kz, _, kx = np.mgrid[:n, :n, :n] - n // 2
    radius = np.sqrt(kz**2 + kx**2)
    angle_from_kz = np.degrees(np.arctan2(np.abs(kx), np.abs(kz)))
    core = wedge & (angle_from_kz < 20.0) & (radius >= 2) & (radius <= 10)
    observed = ~wedge & (angle_from_kz > 40.0) & (radius >= 2) & (radius <= 10)
    # relative to the original's spectrum: amplitudes kept where observed, ~nothing in the wedge
    assert power[core].sum() / original[core].sum() < 0.05
    assert 0.7 < power[observed].sum() / original[observed].sum() < 1.3


def test_projection_of_a_point_follows_the_rotation() -> None:
    volume = torch.zeros((16, 16, 16))
    volume[8, 8, 13] = 1.0  # x = +5 from the centre
    rotation = Rotation.from_euler("z", 90, degrees=True).as_matrix()[None]  # x → y: general path
    image = project(volume, rotation)[0].numpy()
    assert np.unravel_index(image.argmax(), image.shape) == (13, 8)
    tilted = project(volume, tilt_rotations([30.0]))[0].numpy()
    assert np.average(np.arange(16), weights=tilted.sum(axis=0)) == pytest.approx(
        8 + 5 * np.cos(np.radians(30)), abs=0.05
    )


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 55.0])
def test_line_integrals_conserve_mass(make_blob, angle_deg: float) -> None:  # type: ignore[no-untyped-def]
    volume = torch.from_numpy(make_blob(7, box=24, reach=4.0))
    for rotation in (
        tilt_rotations([angle_deg]),
        Rotation.from_euler("zyz", [20, angle_deg, 10], degrees=True).as_matrix()[None],
    ):
        image = project(volume, rotation)[0]
        assert float(image.sum()) == pytest.approx(float(volume.sum()), rel=1e-3)


def test_fast_y_path_equals_general_path(monkeypatch: pytest.MonkeyPatch, make_blob) -> None:  # type: ignore[no-untyped-def]
    volumes = torch.from_numpy(
        np.stack([make_blob(5, box=16, reach=3.0), make_blob(6, box=16, reach=3.0)])
    )
    volumes = torch.nn.functional.pad(volumes, (0, 4))  # non-cubic (16, 16, 20)
    rotations = tilt_rotations(tilt_angles((-60.0, 60.0), 15.0))
    fast_images = project(volumes, rotations)
    fast_volume = backproject(fast_images, rotations, (12, 16, 20))
    monkeypatch.setattr(projection, "_fast_y_path", lambda *args: False)
    torch.testing.assert_close(project(volumes, rotations), fast_images, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        backproject(fast_images, rotations, (12, 16, 20)), fast_volume, atol=1e-4, rtol=1e-4
    )


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="rotations"):
        project(torch.zeros((4, 4, 4)), np.eye(3))
    with pytest.raises(ValueError, match="weighting"):
        backproject(torch.zeros((1, 4, 4)), np.eye(3)[None], (4, 4, 4), weighting="shepp")  # type: ignore[arg-type]
