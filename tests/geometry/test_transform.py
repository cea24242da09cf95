"""transform_volumes / shift_volumes: the rotation and shift conventions, pinned physically."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import (
    random_rotations,
    rotations_from_relion_euler,
    shift_volumes,
    sphere_mask,
    transform_volumes,
)

ComFn = Callable[[np.ndarray], np.ndarray]


def _tensor(volumes: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(volumes, dtype=np.float32), device=device)


def test_blobs_move_to_rotated_positions(
    device: torch.device, gaussian_blob: Callable, com_xyz: ComFn
) -> None:
    n = 32
    positions = np.array([[8.0, 0, 0], [0, 8.0, 0], [0, 0, 8.0]])
    sigmas = [2.0, 1.5, 1.0]
    single = np.stack([gaussian_blob(n, p, s) for p, s in zip(positions, sigmas, strict=True)])
    for rotation in random_rotations(4, rng=np.random.default_rng(21)):
        out, outside = transform_volumes(_tensor(single, device), rotation)
        assert out.device.type == device.type and out.shape == (3, n, n, n)
        core = slice(n // 2 - 8, n // 2 + 8)
        assert not outside[:, core, core, core].any()
        for volume, position in zip(out.cpu().numpy(), positions, strict=True):
            np.testing.assert_allclose(com_xyz(volume), rotation.apply(position), atol=0.1)


def test_asymmetric_volume_blob_identities(
    device: torch.device, three_blobs: Callable, gaussian_blob: Callable
) -> None:
    # +90 deg about z: the big +x blob goes to +y, the medium +y blob to -x, +z stays.
    n = 32
    d = n // 4
    rotation = Rotation.from_euler("z", 90, degrees=True)
    out, _ = transform_volumes(_tensor(three_blobs(n)[None], device), rotation)
    expected = (
        gaussian_blob(n, (0, d, 0), 2.0)
        + gaussian_blob(n, (-d, 0, 0), 1.5)
        + gaussian_blob(n, (0, 0, d), 1.0)
    )
    np.testing.assert_allclose(out[0].cpu().numpy(), expected, atol=1e-5)


def test_relion_angles_agree_with_matrices(device: torch.device, three_blobs: Callable) -> None:
    n = 24
    volumes = _tensor(np.stack([three_blobs(n)] * 3), device)
    angles = np.array([[30.0, 60.0, -45.0], [90.0, 0.0, 0.0], [-120.0, 150.0, 10.0]])
    rotations = rotations_from_relion_euler(angles)
    by_rotation, _ = transform_volumes(volumes, rotations)
    matrices = torch.as_tensor(rotations.as_matrix(), dtype=torch.float32, device=device)
    by_matrix, _ = transform_volumes(volumes, matrices)
    by_numpy, _ = transform_volumes(volumes, rotations.as_matrix())
    torch.testing.assert_close(by_rotation, by_matrix)
    torch.testing.assert_close(by_rotation, by_numpy)
    # rot = 90 is the active rotation by -90 deg about z: the big +x blob goes to -y.
    d = n // 4
    second = by_rotation[1].cpu().numpy()
    assert second[n // 2, n // 2 - d, n // 2] > 0.99
    assert second[n // 2, n // 2 + d, n // 2] < 0.01  # nothing turns onto +y


def test_rotate_and_back_restores_volume(device: torch.device, gaussian_blob: Callable) -> None:
    n = 32
    volume = (
        gaussian_blob(n, (6, 0, 0), 3.0)
        + gaussian_blob(n, (0, 6, 0), 2.5)
        + gaussian_blob(n, (0, 0, 6), 2.0)
    )
    rotations = random_rotations(3, rng=np.random.default_rng(5))
    forward, _ = transform_volumes(_tensor(np.stack([volume] * 3), device), rotations)
    back, _ = transform_volumes(forward, rotations.inv())
    inside = sphere_mask((n, n, n), n // 2 - 2) > 0
    error = (back.cpu().numpy() - volume[None])[:, inside]
    assert np.abs(error).max() < 0.15  # two trilinear passes blur a little (measured 0.11)
    assert np.sqrt((error**2).mean()) < 0.015  # measured 0.0074


@pytest.mark.parametrize("n", [15, 16])
@pytest.mark.parametrize(("axis", "rot90_axes"), [("z", (2, 1)), ("x", (1, 0)), ("y", (0, 2))])
def test_quarter_turns_match_rot90(
    device: torch.device, n: int, axis: str, rot90_axes: tuple[int, int]
) -> None:
    volume = np.random.default_rng(1).normal(size=(n, n, n)).astype(np.float32)
    rotation = Rotation.from_euler(axis, 90, degrees=True)
    out, outside = transform_volumes(_tensor(volume[None], device), rotation)
    expected = np.rot90(volume, k=1, axes=rot90_axes)
    got = out[0].cpu().numpy()
    if n % 2:
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert not outside.any()
    else:
        # np.rot90 turns about (n - 1) / 2; cryomine about n // 2, half a voxel further on each
        # axis. The difference is a one-voxel shift along the axis that +90° turns e_a + e_b
        # (the two in-plane unit vectors) away from: +1 along the first rot90 axis.
        first = rot90_axes[0]
        shifted = np.roll(expected, 1, axis=first)
        valid = [slice(None)] * 3
        valid[first] = slice(1, None)
        np.testing.assert_allclose(got[tuple(valid)], shifted[tuple(valid)], atol=1e-5)
        assert outside[0].cpu().numpy().sum() == n * n  # the wrapped-in slab has no source


def test_shift_moves_centre_of_mass(
    device: torch.device, gaussian_blob: Callable, com_xyz: ComFn
) -> None:
    n = 32
    volume = gaussian_blob(n, (1.0, -2.0, 0.5), 2.0)
    shifts_zyx = np.array([[1.5, -2.25, 0.75], [0.0, 3.0, -4.5]])
    batch = _tensor(np.stack([volume] * 2), device)
    moved, _ = transform_volumes(batch, np.eye(3), torch.as_tensor(shifts_zyx))
    fourier = shift_volumes(batch, shifts_zyx)
    for shift, a, b in zip(shifts_zyx, moved.cpu().numpy(), fourier.cpu().numpy(), strict=True):
        expected = np.array([1.0, -2.0, 0.5]) + shift[::-1]
        np.testing.assert_allclose(com_xyz(a), expected, atol=0.03)
        np.testing.assert_allclose(com_xyz(b), expected, atol=1e-3)


def test_rotation_then_shift_order(
    device: torch.device, gaussian_blob: Callable, com_xyz: ComFn
) -> None:
    n = 32
    rotation = Rotation.from_euler("x", 90, degrees=True)  # +y -> +z
    out, _ = transform_volumes(
        _tensor(gaussian_blob(n, (0, 6, 0), 1.5)[None], device), rotation, np.array([0.0, 2.0, 1.0])
    )
    np.testing.assert_allclose(com_xyz(out[0].cpu().numpy()), [1.0, 2.0, 6.0], atol=0.02)


def test_fourier_shift_round_trip(device: torch.device) -> None:
    volumes = torch.randn(2, 12, 10, 9, generator=torch.Generator().manual_seed(0)).to(device)
    shifts = torch.tensor([[0.3, -1.7, 2.2], [5.0, 0.0, -0.5]])
    there = shift_volumes(volumes, shifts)
    back = shift_volumes(there, -shifts)
    # Exact up to the Nyquist terms of the even axes (made real by the shift).
    spectrum = torch.fft.rfftn(volumes.double().cpu(), dim=(-3, -2, -1))
    spectrum[:, 6] = 0
    spectrum[:, :, 5] = 0
    band_limited = torch.fft.irfftn(spectrum, s=(12, 10, 9), dim=(-3, -2, -1)).float().to(device)
    torch.testing.assert_close(
        shift_volumes(shift_volumes(band_limited, shifts), -shifts), band_limited, atol=1e-5, rtol=0
    )
    integer = shift_volumes(volumes, torch.tensor([1.0, -2.0, 3.0]))
    torch.testing.assert_close(
        integer, torch.roll(volumes, (1, -2, 3), dims=(1, 2, 3)), atol=1e-5, rtol=0
    )
    assert back.shape == volumes.shape


def _outside_reference(n: int, rotation: Rotation) -> np.ndarray:
    z, y, x = np.mgrid[:n, :n, :n]
    c = n // 2
    xyz = np.stack([x, y, z], axis=-1).reshape(-1, 3) - c
    source = rotation.inv().apply(xyz) + c
    return ((source < -1e-6) | (source > n - 1 + 1e-6)).any(axis=1).reshape(n, n, n)


@pytest.mark.parametrize("n", [16, 17])
def test_outside_mask(device: torch.device, n: int) -> None:
    volume = _tensor(np.ones((1, n, n, n)), device)
    _, outside = transform_volumes(volume, np.eye(3))
    assert outside.dtype == torch.bool and not outside.any()
    rotation = Rotation.from_euler("z", 45, degrees=True)
    out, outside = transform_volumes(volume, rotation)
    mask = outside[0].cpu().numpy()
    np.testing.assert_array_equal(mask, _outside_reference(n, rotation))
    assert mask[:, 0, 0].all() and mask[:, -1, -1].all() and not mask[:, n // 2, n // 2].any()
    values = out[0].cpu().numpy()
    np.testing.assert_allclose(values[~mask], 1.0, atol=1e-5)  # sources inside: no zero padding


def test_fill_modes(device: torch.device) -> None:
    n = 24
    volume = _tensor(np.full((2, n, n, n), 3.0), device)
    rotation = Rotation.from_euler("y", 45, degrees=True)
    zero, outside = transform_volumes(volume, rotation)
    far = outside & (torch.as_tensor(sphere_mask((n, n, n), n * 0.8), device=device) == 0)
    assert far.any() and (zero[far] == 0).all()
    constant, _ = transform_volumes(volume, rotation, fill=-1.5)
    assert (constant[outside] == -1.5).all() and (constant[~outside] == zero[~outside]).all()
    noisy_a, _ = transform_volumes(
        volume, rotation, fill="noise", generator=torch.Generator().manual_seed(7)
    )
    noisy_b, _ = transform_volumes(
        volume, rotation, fill="noise", generator=torch.Generator().manual_seed(7)
    )
    torch.testing.assert_close(noisy_a, noisy_b)
    noise = noisy_a[outside].double()
    assert noise.numel() > 1000
    assert abs(noise.mean().item()) < 0.1 and abs(noise.std().item() - 1.0) < 0.1
    assert (noisy_a[~outside] == zero[~outside]).all()


def test_batch_matches_one_by_one_and_float64(device: torch.device, three_blobs: Callable) -> None:
    n = 16
    volumes = torch.as_tensor(
        np.stack([three_blobs(n), three_blobs(n)[::-1].copy()]), dtype=torch.float64, device=device
    )
    rotations = random_rotations(2, rng=np.random.default_rng(9))
    shifts = np.array([[0.5, 1.0, -1.0], [0.0, -0.25, 2.0]])
    batch, _ = transform_volumes(volumes, rotations, shifts)
    assert batch.dtype == torch.float64
    for i in range(2):
        one, _ = transform_volumes(volumes[i : i + 1], rotations[i], shifts[i])
        torch.testing.assert_close(batch[i : i + 1], one)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"volumes": torch.zeros(4, 4, 4)}, "volumes: expected shape"),
        ({"volumes": torch.zeros(1, 4, 4, 4, dtype=torch.int32)}, "floating-point"),
        ({"volumes": torch.zeros(1, 1, 4, 4)}, "at least 2 voxels"),
        ({"rotations": np.eye(3)[None].repeat(3, axis=0)}, r"expected shape \(2, 3, 3\)"),
        ({"rotations": 2 * np.eye(3)}, "not proper rotations"),
        ({"rotations": -np.eye(3)}, "not proper rotations"),
        ({"rotations": "identity"}, "rotations: expected"),
        ({"shifts_zyx": np.zeros((2, 2))}, "shifts_zyx: expected shape"),
        ({"fill": "zero"}, "fill: expected"),
    ],
)
def test_transform_input_errors(kwargs: dict, match: str) -> None:
    arguments = {"volumes": torch.zeros(2, 4, 4, 4), "rotations": np.eye(3), **kwargs}
    with pytest.raises(InputError, match=match):
        transform_volumes(**arguments)
