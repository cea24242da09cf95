"""Iteration-0 features of a tuning set from a given trunk (tuning structures only).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_similar_pair/experiments/trunk_features.py \
        SET SNR TAG TRUNK [FEATURE_ROTATIONS]

SET is ``tune5`` (the tuning five × 400) or ``4v94`` / ``3j9i`` (the pair sets of
:func:`pair_data.pair_set` at cut 15 % / 20 %, × 400); TRUNK is ``builtin`` or a pretrained trunk
directory. Writes ``CACHE/F_{TAG}_{SET}_{SNR}.npy`` and the truth ``CACHE/T_{SET}_{SNR}.npy``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_data import CACHE, pair_set, tune5_set

from cryomine.sorting import DISCA

#: The cut of each pair set's copy (README).
CUTS = {"4v94": 0.15, "3j9i": 0.2}


def main() -> None:
    name, snr, tag, trunk = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    rotations = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    torch.set_num_threads(1)
    if name == "tune5":
        volumes, truth = tune5_set(400, snr, 0)
    else:
        volumes, truth, _ = pair_set(name, CUTS[name], 400, snr, 0)
    model = DISCA.from_preset("cryomine", max_iter=1, random_state=0, voxel_size_a=16.0,
                              pretrained=trunk, feature_rotations=rotations)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(volumes)
    np.save(CACHE / f"F_{tag}_{name}_{snr}.npy", model.features_)
    np.save(CACHE / f"T_{name}_{snr}.npy", truth)


if __name__ == "__main__":
    main()
