"""DISCA on simulated data: finds the right K with high homogeneity; features are pose invariant.

Settings (CI-sized, stated in docs/disca.md): 3 clearly different structures (70S ribosome, 20S
proteasome, RuBisCO) x 60 subtomograms, 24³ at 13 Å, SNR 0.1, ±60° wedge, random pose and ±2
voxel shifts; DISCA width 0.25, candidate K 2..6, 2 iterations, the spec's 16 PCA components,
input low-pass at half Nyquist (52 Å at 13 Å voxels; ``lowpass_a="auto"``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA


@pytest.fixture(scope="module")
def sorted_three(three_classes: tuple[np.ndarray, np.ndarray]) -> DISCA:
    volumes, _ = three_classes
    # the spec's 16 PCA components and full covariances; the input low-pass at half Nyquist
    # (default) and the rule that no mixture component may hold fewer than 17 (= d + 1)
    # subtomograms make this robust: K = 3 and homogeneity >= 0.97 for simulation/DISCA seeds
    # 0-5 (docs/disca.md); without the low-pass BIC picks K = 2 here
    settings = {
        "width": 0.25, "k_range": (2, 6), "max_iter": 2, "pca_components": 16, "lowpass_a": "auto"
    }  # fmt: skip
    return DISCA(**settings, device="cpu", random_state=0).fit(volumes)


@pytest.mark.slow
def test_finds_three_structures_with_high_homogeneity(
    three_classes: tuple[np.ndarray, np.ndarray], sorted_three: DISCA
) -> None:
    _, truth = three_classes
    metrics = sorting_metrics(truth, sorted_three.labels_)
    assert sorted_three.n_clusters_ == 3
    assert metrics.homogeneity >= 0.9
    assert metrics.accuracy is not None and metrics.accuracy >= 0.9


@pytest.mark.slow
def test_transformed_copies_stay_together(
    three_classes: tuple[np.ndarray, np.ndarray], sorted_three: DISCA
) -> None:
    # Fig. 3B of the paper: randomly rotated and shifted copies of one subtomogram land closer
    # to each other than to the copies of subtomograms of the other structures
    from cryomine.geometry import random_rotations, transform_volumes

    volumes, truth = three_classes
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    n_copies = 10
    groups = []
    for k in range(3):
        first = int(np.flatnonzero(truth == k)[0])
        copies = torch.from_numpy(np.repeat(volumes[first : first + 1], n_copies, axis=0))
        moved, _ = transform_volumes(
            copies,
            random_rotations(n_copies, rng=rng).as_matrix(),
            torch.from_numpy(rng.uniform(-2, 2, (n_copies, 3))),
            fill="noise",
            generator=generator,
        )
        groups.append(sorted_three.pca_.transform(sorted_three.transform(moved.numpy())))

    def mean_distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a[:, None] - b[None], axis=-1).mean())

    intra = np.mean([mean_distance(g, g) * n_copies / (n_copies - 1) for g in groups])
    inter = np.mean(
        [mean_distance(groups[a], groups[b]) for a in range(3) for b in range(3) if a != b]
    )
    assert intra < inter
