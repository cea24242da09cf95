"""Iteration-0 features (shipped trunk, DISCA's input transform) of a cached set, saved to .npy.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_ppca/experiments/features0.py \
        SET PER_CLASS SNR SEED
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "disca_selection/experiments"))
from data import CACHE, get, tuning_cell

from cryomine.sorting import DISCA


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    torch.set_num_threads(1)
    volumes, truth = get(name, per_class, snr, seed)
    model = DISCA.from_preset("cryomine", max_iter=1, random_state=seed, voxel_size_a=16.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(volumes)
    out = CACHE / f"F0_{name}_{per_class}_{snr}_{seed}.npy"
    np.save(out, model.features_)
    np.save(CACHE / f"T_{name}_{per_class}_{snr}_{seed}.npy", truth)
    print(out, model.features_.shape, "K at iteration 0:", model.n_classes_, flush=True)


if __name__ == "__main__":
    main()
