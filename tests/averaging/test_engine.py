"""The alignment engine: planted poses, the score against a brute-force definition, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryomine.averaging import (
    EngineResult,
    align_to_references,
    local_rotation_offsets,
    refine_local,
    search_global,
)
from cryomine.errors import InputError
from cryomine.geometry import (
    missing_wedge_mask,
    rotation_angles_deg,
    rotations_from_relion_euler,
    sphere_mask,
    transform_volumes,
)

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


def _planted(truth_map: np.ndarray, rotation: Rotation, shift: np.ndarray, wedge_filter):
    moved, _ = transform_volumes(torch.as_tensor(truth_map)[None], rotation.as_matrix(), shift)
    return wedge_filter(moved.numpy().astype(np.float64)).astype(np.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_a_planted_rotation_and_shift_are_recovered(truth_map, helpers, device):
    truth = Rotation.from_euler("ZYZ", [[40, 70, -100], [-150, 120, 30]], degrees=True)
    shifts = np.array([[1.0, -2.0, 1.0], [0.0, 2.0, -1.0]])
    particles = np.concatenate(
        [_planted(truth_map, truth[i], shifts[i], helpers["wedge_filter"]) for i in range(2)]
    )
    found = align_to_references(
        particles, truth_map, angular_step_deg=30.0, refine_to_deg=7.5, max_shift_px=3.0,
        max_frequency=0.45, tilt_range_deg=(-60.0, 60.0), device=device,
    )  # fmt: skip
    assert found.scores.shape == (2, 1) and found.quaternions.shape == (2, 1, 4)
    errors = rotation_angles_deg(found.rotations(0) * truth.inv())
    assert np.all(errors < 7.5), errors
    np.testing.assert_allclose(found.shifts_zyx[:, 0], shifts, atol=1.0)
    assert np.all(found.scores > 0.9)
    # RELION angles describe the same rotations.
    back = rotations_from_relion_euler(found.relion_euler_deg[:, 0])
    assert np.all(rotation_angles_deg(back * found.rotations(0).inv()) < 1e-6)


def _brute_force_scores(particle, reference, rotation, wedge, weight, max_frequency):
    """Constrained correlation for every circular shift, from its definition (numpy FFTs of
    the reference rotated in real space; an exact rotation is used, so no interpolation)."""
    size = particle.shape[-1]
    rotated, _ = transform_volumes(
        torch.as_tensor(reference, dtype=torch.float64)[None], rotation.as_matrix()
    )
    spectrum_p = np.fft.fftn(particle.astype(np.float64))
    spectrum_r = np.fft.fftn(rotated[0].numpy())
    k = np.fft.fftfreq(size)
    radius = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    mask = np.fft.ifftshift(wedge) * ((radius > 0.5 / size) & (radius <= max_frequency + 1e-6))
    if weight is not None:
        rotated_weight, _ = transform_volumes(
            torch.as_tensor(weight, dtype=torch.float64)[None], rotation.as_matrix()
        )
        mask = mask * np.fft.ifftshift(rotated_weight[0].numpy() / weight.max() > 0.1)
    numerator = np.fft.ifftn(mask * spectrum_p * np.conj(spectrum_r)).real * size**3
    norm = np.sqrt((mask * np.abs(spectrum_p) ** 2).sum() * (mask * np.abs(spectrum_r) ** 2).sum())
    return numerator / norm  # indexed by the shift modulo the box


@pytest.mark.parametrize(("size", "weighted"), [(9, True), (8, False)])
@pytest.mark.parametrize("max_shift", [2.0, 0.0])  # fewer shifts than particles: other GEMM
def test_the_score_is_the_brute_force_constrained_correlation(size, weighted, max_shift):
    rng = np.random.default_rng(0)
    ball = sphere_mask((size,) * 3, size / 2 - 1.5)  # nothing on the outer shell
    reference = (rng.normal(size=(size,) * 3) * ball).astype(np.float32)
    particles = rng.normal(size=(2, *(size,) * 3)).astype(np.float32)
    tilts = np.array([[-60.0, 60.0], [-45.0, 30.0]])  # each particle its own wedge
    # Quarter turns map the grid onto itself: the rotated reference is exact both ways.
    rotation = Rotation.from_euler("xz", [[90, -90]], degrees=True)
    weight = None
    if weighted:
        weight = 1.0 + 3.0 * missing_wedge_mask((size,) * 3, tilt_range_deg=(-50.0, 50.0))
        weight = weight * missing_wedge_mask((size,) * 3, tilt_range_deg=(-70.0, 70.0))
    found = search_global(
        particles, reference, rotation,
        max_frequency=0.45, max_shift_px=max_shift, tilt_range_deg=tilts,
        reference_weights=weight,
    )  # fmt: skip
    shifts = np.stack(np.meshgrid(*(np.arange(-2, 3),) * 3, indexing="ij"), -1).reshape(-1, 3)
    shifts = shifts[np.linalg.norm(shifts, axis=1) <= max_shift]
    for i in range(2):
        wedge = missing_wedge_mask((size,) * 3, tilt_range_deg=tuple(tilts[i]))
        table = _brute_force_scores(particles[i], reference, rotation, wedge, weight, 0.45)
        values = table[tuple((shifts % size).T)]
        assert found.scores[i, 0] == pytest.approx(values.max(), abs=1e-5)
        np.testing.assert_array_equal(found.shifts_zyx[i, 0], shifts[values.argmax()])
    refined = refine_local(
        particles, reference, Rotation.concatenate([rotation, rotation]), Rotation.identity(1),
        max_frequency=0.45, max_shift_px=max_shift, tilt_range_deg=tilts,
        reference_weights=weight,
    )  # fmt: skip
    np.testing.assert_allclose(refined.scores, found.scores, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_batched_equals_one_by_one(truth_map, helpers, device):
    particles, _, _ = helpers["simulate"](truth_map, 4, snr=5.0, seed=7)
    second = np.ascontiguousarray(np.flip(truth_map, axis=0))  # a different reference
    references = np.stack([truth_map, second])
    tilts = np.array([[-60.0, 60.0], [-50.0, 50.0], [-60.0, 40.0], [-60.0, 60.0]])
    options = {"angular_step_deg": 40.0, "refine_to_deg": 10.0, "max_shift_px": 2.0,
               "max_frequency": 0.4, "device": device}  # fmt: skip
    together = align_to_references(particles, references, tilt_range_deg=tilts, **options)
    for i in range(len(particles)):
        for r in range(2):
            alone = align_to_references(
                particles[i : i + 1], references[r], tilt_range_deg=tilts[i], **options
            )
            assert together.scores[i, r] == pytest.approx(alone.scores[0, 0], abs=1e-5)
            angle = rotation_angles_deg(
                Rotation.from_quat(together.quaternions[i, r])
                * Rotation.from_quat(alone.quaternions[0, 0]).inv()
            )
            assert angle < 1e-3
            np.testing.assert_array_equal(together.shifts_zyx[i, r], alone.shifts_zyx[0, 0])


def test_result_shapes_and_input_checks(truth_map):
    particles = np.zeros((3, 16, 16, 16), dtype=np.float32)
    particles[:, 8, 8, 8] = 1.0
    found = refine_local(
        particles, np.stack([truth_map] * 2), Rotation.identity(3), local_rotation_offsets(10, 10),
        max_frequency=0.3, max_shift_px=1.0,
    )  # fmt: skip
    assert isinstance(found, EngineResult)
    assert found.scores.shape == (3, 2) and found.shifts_zyx.shape == (3, 2, 3)
    assert found.relion_euler_deg.shape == (3, 2, 3)
    with pytest.raises(InputError, match="reference"):
        search_global(particles, np.zeros((8, 8, 8)), Rotation.identity(1),
                      max_frequency=0.3, max_shift_px=1.0)  # fmt: skip
    with pytest.raises(InputError, match="tilt_range_deg"):
        search_global(particles, truth_map, Rotation.identity(1), max_frequency=0.3,
                      max_shift_px=1.0, tilt_range_deg=np.zeros((2, 2)))  # fmt: skip
    with pytest.raises(InputError, match="not both"):
        search_global(particles, truth_map, Rotation.identity(1), max_frequency=0.3,
                      max_shift_px=1.0, tilt_range_deg=(-60, 60),
                      wedges=np.ones((16, 16, 16)))  # fmt: skip
    with pytest.raises(InputError, match="n_hits"):
        align_to_references(particles, truth_map, n_hits=0)
