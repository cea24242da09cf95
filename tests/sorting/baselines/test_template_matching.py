"""Template-matching classification: assignments, pose recovery, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryomine.errors import InputError
from cryomine.geometry import missing_wedge_mask, transform_volumes
from cryomine.sorting.baselines import template_matching_classify


def test_assigns_each_subtomogram_to_its_structure(baseline_set) -> None:
    result = template_matching_classify(
        baseline_set.volumes, baseline_set.references_ctf, angular_step_deg=60.0, refine_to_deg=30.0,
        max_shift_px=2.0, device="cpu",
    )  # fmt: skip
    np.testing.assert_array_equal(result.labels, baseline_set.truth)
    assert result.scores.shape == (len(baseline_set.truth), 3)
    assert result.reference_names == list(baseline_set.references_ctf)
    # The assigned reference wins clearly at this SNR.
    runner_up = np.sort(result.scores, axis=1)[:, -2]
    assert np.all(result.best_scores - runner_up > 0.05)
    assert result.n_classes == 3
    with pytest.warns(FutureWarning, match="n_clusters is deprecated; use n_classes"):
        assert result.n_clusters == 3
    # 60° grid, one 30° lattice about 2 hits, a 15° polish of the best
    assert result.n_rotations_scored == 69 + 2 * 33 + 19


def test_recovers_a_known_rotation_and_shift_within_the_grid_step(baseline_set) -> None:
    """An asymmetric map, rotated, shifted and cut by the missing wedge, is found back."""
    reference = baseline_set.references_ctf["4v4r"]
    truth = Rotation.from_rotvec([0.9, -1.7, 0.6])
    shift = np.array([1.0, -2.0, 0.0])
    moved, _ = transform_volumes(
        torch.from_numpy(reference)[None], truth.as_matrix()[None], shift[None]
    )
    wedge = torch.from_numpy(missing_wedge_mask((24,) * 3, tilt_range_deg=(-60.0, 60.0)))
    spectrum = torch.fft.fftshift(torch.fft.fftn(moved[0])) * wedge
    particle = torch.fft.ifftn(torch.fft.ifftshift(spectrum)).real.numpy()[None]
    result = template_matching_classify(
        particle, [reference], angular_step_deg=30.0, refine_to_deg=7.5, device="cpu"
    )
    error_deg = np.degrees((result.rotations[0].inv() * truth).magnitude())
    assert error_deg < 7.5
    np.testing.assert_allclose(result.shifts_zyx[0], shift, atol=1.0)
    assert result.scores[0, 0] > 0.8


def test_refuses_references_of_another_box(baseline_set) -> None:
    with pytest.raises(InputError, match="reference"):
        template_matching_classify(baseline_set.volumes, [np.ones((20, 20, 20))], device="cpu")
    with pytest.raises(InputError, match="angular step"):
        template_matching_classify(
            baseline_set.volumes, baseline_set.references_ctf, angular_step_deg=0.0, device="cpu"
        )
    with pytest.raises(InputError, match="stack of cubic boxes"):
        template_matching_classify(np.zeros((2, 24, 24, 20)), [np.ones((24,) * 3)], device="cpu")
