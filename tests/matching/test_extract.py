"""The false-alarm cut-off and peak extraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from cryomine.errors import InputError
from cryomine.matching import (
    extract_peaks,
    false_alarm_threshold,
    flcf_max,
    make_template,
    search_rotations,
)


def test_threshold_is_the_gaussian_tail_quantile():
    std, n_pos, n_rot = 0.05, 10**6, 4401
    for f in (0.5, 1.0, 10.0):
        expected = std * norm.isf(f / (n_pos * n_rot))
        assert false_alarm_threshold(std, n_pos, n_rot, f) == pytest.approx(expected, rel=1e-9)
    assert false_alarm_threshold(std, n_pos, n_rot, 1) > false_alarm_threshold(
        std, n_pos, n_rot, 10
    )
    for bad in ({"std": 0.0}, {"n_false_alarms": 0.0}, {"n_positions": 0}):
        kwargs = {"std": std, "n_positions": n_pos, "n_rotations": n_rot, "n_false_alarms": 1.0}
        kwargs.update(bad)
        with pytest.raises(InputError):
            false_alarm_threshold(**kwargs)


def test_false_peaks_on_noise_are_within_f_plus_minus_three_root_f(blob):
    """Pure-noise tomograms over seeds: chance peaks above the cut-off for F = 1."""
    template = make_template(blob, voxel_size_a=10.0, contrast="bright")
    matrices = search_rotations(45.0).as_matrix()
    f = 1.0
    counts = []
    for seed in range(6):
        volume = np.random.default_rng(100 + seed).normal(size=(30, 32, 30)).astype(np.float32)
        found = flcf_max(volume, template, matrices)
        mean = found.sum / found.count
        std = math.sqrt(found.sum_squares / found.count - mean**2)
        threshold = false_alarm_threshold(std, volume.size, len(matrices), f)
        peaks = extract_peaks(found.scores, threshold=threshold, exclusion_radius_px=6.0)
        counts.append(len(peaks))
        assert abs(len(peaks) - f) <= 3 * math.sqrt(f)
    total, expected = sum(counts), f * len(counts)
    assert abs(total - expected) <= 3 * math.sqrt(expected)


def test_peaks_are_best_first_and_apart():
    scores = np.zeros((20, 20, 20), dtype=np.float32)
    scores[5, 5, 5], scores[6, 6, 5], scores[15, 15, 15], scores[5, 5, 12] = 0.9, 0.8, 0.7, 0.6
    peaks = extract_peaks(scores, threshold=0.5, exclusion_radius_px=4.0)
    assert peaks.positions_zyx.tolist() == [[5, 5, 5], [15, 15, 15], [5, 5, 12]]
    np.testing.assert_allclose(peaks.scores, [0.9, 0.7, 0.6], rtol=1e-6)
    assert len(extract_peaks(scores, threshold=0.5, exclusion_radius_px=4.0, max_peaks=2)) == 2
    border = extract_peaks(scores, threshold=0.5, exclusion_radius_px=1.0, border_px=5)
    assert border.positions_zyx.tolist() == [[5, 5, 5], [6, 6, 5], [5, 5, 12]]
    empty = extract_peaks(scores, threshold=0.95, exclusion_radius_px=4.0)
    assert empty.positions_zyx.shape == (0, 3) and empty.scores.shape == (0,)
    with pytest.raises(InputError, match="exclusion"):
        extract_peaks(scores, threshold=0.5, exclusion_radius_px=-1.0)


def test_exclusion_is_a_sphere_not_a_cube():
    # Documented difference from pytom-match-pick 0.14.0, whose extractor removes the whole
    # (2r+1)^3 cube around a peak (benchmarks/results/template_matching_tomogram/peer_extract.md):
    # here a peak survives when its Euclidean distance to a better one is at least r.
    scores = np.zeros((30, 30, 30), dtype=np.float32)
    scores[10, 10, 10] = 0.9
    scores[14, 14, 10] = 0.8  # distance 5.66 < 6: dropped
    scores[10, 15, 15] = 0.7  # distance 7.07, Chebyshev 5 <= 6: kept (a cube would drop it)
    scores[16, 10, 10] = 0.6  # distance exactly 6: kept (only closer than r is dropped)
    peaks = extract_peaks(scores, threshold=0.5, exclusion_radius_px=6.0)
    assert peaks.positions_zyx.tolist() == [[10, 10, 10], [10, 15, 15], [16, 10, 10]]
