"""Triplet loss on cosine distance with online semi-hard negative mining (FaceNet's rule).

For every anchor–positive pair ``(a, p)`` of a batch (same label, ``a ≠ p``) the negative is the
**semi-hard** one: the closest negative that is still farther from the anchor than the positive,
``n = argmin {d(a, n) : label(n) ≠ label(a), d(a, n) > d(a, p)}``. When no negative is farther
than the positive, the farthest negative is used instead (the mildest of the hard ones), so that
every pair contributes. Distances are cosine distances ``1 − cos`` of unit-norm embeddings, in
``[0, 2]``; the loss of a triplet is ``max(d(a, p) − d(a, n) + margin, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Triplets", "cosine_distances", "semi_hard_triplets", "triplet_loss"]


@dataclass(frozen=True)
class Triplets:
    """Index triplets into a batch, each ``(n_triplets,)`` int64: anchor, positive, negative."""

    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor

    def __len__(self) -> int:
        return int(self.anchor.numel())


def cosine_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` cosine distances ``1 − eᵢ·eⱼ`` of unit-norm embeddings ``(B, D)``."""
    return 1.0 - embeddings @ embeddings.T


def semi_hard_triplets(distances: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """Choose one negative per anchor–positive pair by the semi-hard rule (module docstring).

    Parameters
    ----------
    distances : Tensor, shape (B, B)
        Pairwise distances (any metric; smaller is closer).
    labels : Tensor, shape (B,)
        Integer class of each batch element.

    Returns
    -------
    Triplets
        All ordered anchor–positive pairs that have at least one negative in the batch.
    """
    distances = distances.detach()
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    anchor, positive = torch.nonzero(same & ~eye, as_tuple=True)
    negative_mask = ~same[anchor]  # (P, B): candidate negatives of each pair
    has_negative = negative_mask.any(dim=1)
    anchor, positive, negative_mask = (
        anchor[has_negative],
        positive[has_negative],
        negative_mask[has_negative],
    )
    d_an = distances[anchor]  # (P, B)
    d_ap = distances[anchor, positive][:, None]
    inf = torch.tensor(float("inf"), device=distances.device, dtype=distances.dtype)
    beyond = negative_mask & (d_an > d_ap)
    semi_hard = torch.where(beyond, d_an, inf).argmin(dim=1)
    farthest = torch.where(negative_mask, d_an, -inf).argmax(dim=1)
    negative = torch.where(beyond.any(dim=1), semi_hard, farthest)
    return Triplets(anchor, positive, negative)


def triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, *, margin: float = 0.5
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean semi-hard triplet loss of a batch and statistics of the mined triplets.

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Unit-norm embeddings.
    labels : Tensor, shape (B,)
        Integer classes; the batch needs at least one class with two members and one other class.
    margin
        Cosine-distance margin.

    Returns
    -------
    loss : Tensor, scalar
    stats : dict
        ``n_triplets``, ``fraction_active`` (triplets with positive loss), mean ``d_ap``, ``d_an``.
    """
    distances = cosine_distances(embeddings)
    triplets = semi_hard_triplets(distances, labels)
    if len(triplets) == 0:
        zero = embeddings.sum() * 0.0
        return zero, {"n_triplets": 0, "fraction_active": 0.0, "d_ap": 0.0, "d_an": 0.0}
    d_ap = distances[triplets.anchor, triplets.positive]
    d_an = distances[triplets.anchor, triplets.negative]
    losses = torch.relu(d_ap - d_an + margin)
    stats = {
        "n_triplets": len(triplets),
        "fraction_active": float((losses > 0).float().mean()),
        "d_ap": float(d_ap.detach().mean()),
        "d_an": float(d_an.detach().mean()),
    }
    return losses.mean(), stats
