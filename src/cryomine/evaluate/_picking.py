"""Picking metrics: precision, recall and F1 of picks against true particle positions.

A pick is a hit when it lies within ``radius_a`` of a true particle of the same tomogram that no
closer pick has claimed: picks and particles are matched one-to-one, greedily in order of
increasing distance. The DISCA paper uses an 8 nm radius; the CZII challenge uses half the particle
radius.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from cryomine.errors import InputError

__all__ = ["PickingScores", "evaluate_picking", "match_positions"]


@dataclass(frozen=True)
class PickingScores:
    """Counts and scores of one comparison (``beta`` weights recall as in F-beta)."""

    n_true: int
    n_picked: int
    n_hits: int
    precision: float
    recall: float
    f1: float
    f_beta: float
    beta: float

    @classmethod
    def from_counts(
        cls, n_true: int, n_picked: int, n_hits: int, beta: float = 1.0
    ) -> PickingScores:
        precision = n_hits / n_picked if n_picked else 0.0
        recall = n_hits / n_true if n_true else 0.0

        def f(b: float) -> float:
            denominator = b * b * precision + recall
            return (1 + b * b) * precision * recall / denominator if denominator > 0 else 0.0

        return cls(n_true, n_picked, n_hits, precision, recall, f(1.0), f(beta), beta)


def match_positions(
    true_positions: np.ndarray, picked_positions: np.ndarray, radius: float
) -> np.ndarray:
    """Match picks to true positions one-to-one within ``radius``, closest pairs first.

    Parameters
    ----------
    true_positions : ndarray, shape (n, 3)
    picked_positions : ndarray, shape (m, 3)
        Positions in the same units and axis order as ``radius``.

    Returns
    -------
    ndarray of int, shape (m,)
        For each pick, the index of the true position it hits, or -1.
    """
    true_positions = np.asarray(true_positions, dtype=np.float64).reshape(-1, 3)
    picked_positions = np.asarray(picked_positions, dtype=np.float64).reshape(-1, 3)
    match = np.full(len(picked_positions), -1, dtype=np.intp)
    if len(true_positions) == 0 or len(picked_positions) == 0:
        return match
    pairs = cKDTree(picked_positions).sparse_distance_matrix(
        cKDTree(true_positions), radius, output_type="ndarray"
    )
    taken = np.zeros(len(true_positions), dtype=bool)
    for i_pick, i_true, _ in sorted(pairs.tolist(), key=lambda row: row[2]):
        i_pick, i_true = int(i_pick), int(i_true)
        if match[i_pick] < 0 and not taken[i_true]:
            match[i_pick] = i_true
            taken[i_true] = True
    return match


def _positions_a(table: pd.DataFrame, name: str) -> np.ndarray:
    from cryomine.io import positions_zyx

    if "rlnImagePixelSize" not in table:
        raise InputError(
            f"{name}: no pixel size column rlnImagePixelSize; coordinates have no unit"
        )
    return positions_zyx(table) * table["rlnImagePixelSize"].to_numpy(dtype=np.float64)[:, None]


def evaluate_picking(
    truth: pd.DataFrame,
    picks: pd.DataFrame,
    *,
    radius_a: float,
    beta: float = 1.0,
    class_column: str = "cmStructure",
) -> dict[str, Any]:
    """Score picks against the truth, overall and per true class.

    Parameters
    ----------
    truth, picks
        Canonical particle tables (see :mod:`cryomine.io`); rows are matched only within the
        same ``rlnTomoName``. Positions are compared in Å.
    radius_a
        Hit radius in Å.
    beta
        F-beta weight of recall (CZII uses 4), reported beside F1.
    class_column
        Truth column naming each particle's class; per-class recall is reported for each value.
        Per-class precision needs picks that carry classes and is computed by the pipeline
        evaluation, not here.

    Returns
    -------
    dict
        ``{"radius_a", "overall": PickingScores as dict, "per_class": {class: {...}}}``.
    """
    if not radius_a > 0:
        raise InputError(f"radius {radius_a} Å: expected a positive distance")
    true_pos = _positions_a(truth, "truth table")
    pick_pos = _positions_a(picks, "picks table")
    hit_true = np.zeros(len(truth), dtype=bool)
    n_hits = 0
    for tomo in pd.unique(pd.concat([truth["rlnTomoName"], picks["rlnTomoName"]])):
        in_truth = np.flatnonzero(truth["rlnTomoName"].to_numpy() == tomo)
        in_picks = np.flatnonzero(picks["rlnTomoName"].to_numpy() == tomo)
        match = match_positions(true_pos[in_truth], pick_pos[in_picks], radius_a)
        hit = match[match >= 0]
        hit_true[in_truth[hit]] = True
        n_hits += len(hit)
    overall = PickingScores.from_counts(len(truth), len(picks), n_hits, beta)
    per_class: dict[str, Any] = {}
    if class_column in truth:
        labels = truth[class_column].astype(str).to_numpy()
        for label in sorted(set(labels)):
            members = labels == label
            n_true = int(members.sum())
            n_hit = int(hit_true[members].sum())
            per_class[label] = {"n_true": n_true, "n_hits": n_hit, "recall": n_hit / n_true}
    return {"radius_a": radius_a, "overall": asdict(overall), "per_class": per_class}
