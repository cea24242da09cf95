"""Semi-hard triplet mining on constructed distances, and the triplet loss built on it."""

from __future__ import annotations

import math

import pytest
import torch

from cryomine.picker import cosine_distances, semi_hard_triplets, triplet_loss


def test_semi_hard_negative_is_the_closest_one_beyond_the_positive() -> None:
    # 0 and 1 share class 0; negatives 2, 3, 4 lie at distances 0.2, 0.6, 0.9 from anchor 0,
    # the positive at 0.5: the semi-hard negative of (0, 1) is 3 (0.6), not the harder 2
    # (0.2, closer than the positive) nor the easy 4.
    d = torch.full((5, 5), 1.5)
    d.fill_diagonal_(0.0)
    d[0, 1] = d[1, 0] = 0.5
    d[0, 2], d[0, 3], d[0, 4] = 0.2, 0.6, 0.9
    # anchor 1: every negative is closer than its positive (0.5) -> the farthest (4) is used
    d[1, 2], d[1, 3], d[1, 4] = 0.1, 0.2, 0.3
    labels = torch.tensor([0, 0, 1, 2, 3])
    triplets = semi_hard_triplets(d, labels)
    found = {
        (int(a), int(p)): int(n)
        for a, p, n in zip(triplets.anchor, triplets.positive, triplets.negative, strict=True)
    }
    assert found == {(0, 1): 3, (1, 0): 4}


def test_no_triplets_without_positives_or_negatives() -> None:
    d = torch.rand(4, 4)
    assert len(semi_hard_triplets(d, torch.tensor([0, 1, 2, 3]))) == 0  # no positives
    assert len(semi_hard_triplets(d, torch.tensor([5, 5, 5, 5]))) == 0  # no negatives


def test_triplet_loss_value_and_gradient_on_unit_vectors() -> None:
    angle = torch.tensor([0.0, 0.6, 1.0, 2.5])  # points on the unit circle
    e = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1).requires_grad_(True)
    labels = torch.tensor([0, 0, 1, 1])
    distances = cosine_distances(e)
    assert torch.allclose(distances[0, 1], torch.tensor(1 - math.cos(0.6)))
    loss, stats = triplet_loss(e, labels, margin=0.5)
    # expected: mean over the 4 ordered pairs of relu(d_ap - d_an + 0.5) with the mined negatives
    t = semi_hard_triplets(distances, labels)
    expected = torch.relu(
        distances[t.anchor, t.positive] - distances[t.anchor, t.negative] + 0.5
    ).mean()
    assert stats["n_triplets"] == 4
    assert float(loss.detach()) == pytest.approx(float(expected.detach()))
    loss.backward()
    assert e.grad is not None and float(e.grad.abs().sum()) > 0
