"""Similarity peaks: exclusion distance, sub-cell refinement, thresholds, mask, empty result."""

from __future__ import annotations

import numpy as np
import pytest

from cryomine.errors import InputError
from cryomine.picker import (
    AUTO_THRESHOLD_MADS,
    find_similarity_peaks,
    robust_threshold,
    similarity_map,
    target_embedding,
)


def _map_with_peaks(centres_cells: list[tuple[float, float, float]], shape=(20, 20, 20)):
    rng = np.random.default_rng(0)
    grid = np.indices(shape).astype(np.float64)
    sim = rng.normal(0.0, 0.02, shape)
    for c in centres_cells:
        r2 = sum((g - x) ** 2 for g, x in zip(grid, c, strict=True))
        sim += 0.9 * np.exp(-r2 / (2 * 1.2**2))
    return sim.astype(np.float32)


def test_peaks_are_found_refined_and_excluded() -> None:
    # two peaks 10 cells apart and one 2 cells from the first (inside the exclusion distance)
    sim = _map_with_peaks([(5.3, 6.0, 6.0), (15.0, 12.0, 10.0), (5.3, 8.0, 6.0)])
    picks = find_similarity_peaks(sim, stride=4, voxel_size_a=10.0, min_distance_a=160.0)
    assert len(picks) == 2
    assert picks.threshold == pytest.approx(robust_threshold(sim))
    assert "MAD" in picks.threshold_method and f"{AUTO_THRESHOLD_MADS:g}" in picks.threshold_method
    # positions are voxels of the tomogram (cell × stride), refined below one cell
    nearest = np.min(np.linalg.norm(picks.positions_zyx - np.array([15, 12, 10]) * 4, axis=1))
    assert nearest < 1.0
    assert np.all(np.diff(picks.scores) <= 0)


def test_threshold_override_mask_and_empty_result() -> None:
    sim = _map_with_peaks([(5.0, 6.0, 6.0), (15.0, 12.0, 10.0)])
    none = find_similarity_peaks(
        sim, stride=4, voxel_size_a=10.0, min_distance_a=100.0, threshold=2.0
    )
    assert none.positions_zyx.shape == (0, 3) and none.scores.shape == (0,)
    assert none.threshold_method == "given"
    mask = np.zeros((80, 80, 80), dtype=bool)
    mask[40:] = True  # keeps only the peak at z = 60 voxels
    kept = find_similarity_peaks(
        sim, stride=4, voxel_size_a=10.0, min_distance_a=100.0, mask=mask, tomogram_shape=(80,) * 3
    )
    assert len(kept) == 1 and kept.positions_zyx[0, 0] > 40
    with pytest.raises(InputError, match="mask shape"):
        find_similarity_peaks(sim, stride=4, voxel_size_a=10.0, min_distance_a=1.0, mask=mask[1:])


def test_target_and_similarity() -> None:
    e = np.zeros((2, 3, 4, 5), np.float32)
    e[..., 0] = 1.0
    target = target_embedding(np.array([[1.0, 0, 0, 0, 1.0], [1.0, 0, 0, 0, -1.0]]))
    np.testing.assert_allclose(target, [1, 0, 0, 0, 0])
    np.testing.assert_allclose(similarity_map(e, target), 1.0)
    with pytest.raises(InputError, match="cancel out"):
        target_embedding(np.array([[1.0, 0.0], [-1.0, 0.0]]))
