"""End-to-end scores of a workflow run on simulated tomograms (the DISCA paper's Tables 2/3).

Sorted particles (picks with ``rlnClassNumber``) are matched one-to-one to true particles within a
radius (:func:`cryomine.evaluate.match_positions`). Each class is mapped to the structure most of
its matched members truly are; a structure's predicted particles are the members of the classes
mapped to it. Per structure: precision (predicted particles that hit a true particle of that
structure), recall (true particles of that structure found so) and F1. Optionally each class
average is aligned to its structure's true map and their FSC measured.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryomine.errors import InputError
from cryomine.evaluate._picking import _positions_a, match_positions

__all__ = ["class_average_fsc", "evaluate_pipeline"]

_UNMATCHED = "(no particle)"


def evaluate_pipeline(
    truth: pd.DataFrame, sorted_particles: pd.DataFrame, *, radius_a: float
) -> dict[str, Any]:
    """Per-structure precision/recall/F1 of sorted picks and the class → structure mapping.

    Parameters
    ----------
    truth
        Canonical table of true particles with ``cmStructure``.
    sorted_particles
        Canonical table of sorted picks with ``rlnClassNumber`` (1-based).
    radius_a
        Hit radius in Å.
    """
    if "cmStructure" not in truth:
        raise InputError(
            "truth table: no cmStructure column (is it a simulated tomogram's truth.star?)"
        )
    if "rlnClassNumber" not in sorted_particles:
        raise InputError(
            "sorted particles: no rlnClassNumber column (use a sort run's particles.star)"
        )
    if not radius_a > 0:
        raise InputError(f"radius {radius_a} Å: expected a positive distance")
    true_pos = _positions_a(truth, "truth table")
    pick_pos = _positions_a(sorted_particles, "sorted particles")
    structures = truth["cmStructure"].astype(str).to_numpy()
    hit_structure = np.full(len(sorted_particles), _UNMATCHED, dtype=object)
    for tomo in pd.unique(sorted_particles["rlnTomoName"]):
        in_truth = np.flatnonzero(truth["rlnTomoName"].to_numpy() == tomo)
        in_picks = np.flatnonzero(sorted_particles["rlnTomoName"].to_numpy() == tomo)
        match = match_positions(true_pos[in_truth], pick_pos[in_picks], radius_a)
        hits = match >= 0
        hit_structure[in_picks[hits]] = structures[in_truth[match[hits]]]
    classes = sorted_particles["rlnClassNumber"].to_numpy(dtype=int)
    mapping: dict[int, str] = {}
    for c in sorted(set(classes.tolist())):
        members = Counter(s for s in hit_structure[classes == c] if s != _UNMATCHED)
        mapping[c] = members.most_common(1)[0][0] if members else _UNMATCHED
    predicted = np.array([mapping[c] for c in classes], dtype=object)
    per_structure = {}
    for name in sorted(set(structures.tolist())):
        n_predicted = int((predicted == name).sum())
        n_true = int((structures == name).sum())
        n_hits = int(((predicted == name) & (hit_structure == name)).sum())
        precision = n_hits / n_predicted if n_predicted else 0.0
        recall = n_hits / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        per_structure[name] = {
            "n_true": n_true, "n_predicted": n_predicted, "n_hits": n_hits,
            "precision": precision, "recall": recall, "f1": f1,
        }  # fmt: skip
    return {
        "radius_a": radius_a,
        "class_to_structure": {str(c): s for c, s in mapping.items()},
        "per_structure": per_structure,
    }


def class_average_fsc(
    average_path: Path, structure: str, *, threshold: float = 0.5
) -> dict[str, float]:
    """FSC resolution (Å, at ``threshold``) of a class average against the structure's true map.

    The true map is made at the average's voxel size and box, then aligned to the average
    (rotation grid refined to 2°, shifts up to a quarter box) before the FSC.
    """
    import torch

    from cryomine.averaging import align_maps, fourier_shell_correlation, resolution_at
    from cryomine.geometry import transform_volumes
    from cryomine.io import read_mrc
    from cryomine.structures import StructureCroppedWarning, structure_density

    average, voxel_size_a = read_mrc(average_path, mmap=False)
    box = average.shape[0]
    with warnings.catch_warnings():
        # The box is the average's; a large structure cut at its faces is compared as cut.
        warnings.simplefilter("ignore", StructureCroppedWarning)
        truth = structure_density(structure, voxel_size_a=voxel_size_a, box_size=box)
    fixed = torch.as_tensor(((average - average.mean()) / average.std()).astype(np.float32))
    moving = torch.as_tensor(((truth - truth.mean()) / truth.std()).astype(np.float32))
    rotation, shift = align_maps(
        moving, fixed, angular_step_deg=20, max_frequency=0.25, max_shift_px=box / 4
    )
    moved, _ = transform_volumes(
        moving[None], rotation, torch.as_tensor(np.asarray(shift, np.float32))[None]
    )
    frequencies, fsc = fourier_shell_correlation(
        moved[0].numpy(), average, voxel_size_a=voxel_size_a
    )
    return {"resolution_a": resolution_at(frequencies, fsc, threshold), "threshold": threshold}
