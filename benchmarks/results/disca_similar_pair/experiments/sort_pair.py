"""Whole DISCA sorts (cryomine preset) of a pair set, with and without the split test.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_similar_pair/experiments/sort_pair.py \
        BASE CUT PER_CLASS SNR SEED {split,nosplit}[+sqrt] [FEATURES.npy]

Sets with BASE ``none`` are the tuning five alone; ``+sqrt`` sorts with
``feature_transform="signed-sqrt"``. One JSON line per sort goes to stdout; with
FEATURES.npy the fitted model's features (``model.features_``) and the truth (``….truth.npy``)
are saved for :mod:`separability`.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import homogeneity_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_data import pair_set, tune5_set

from cryomine.sorting import DISCA


def main() -> None:
    base, cut, per_class, snr, seed, variant = sys.argv[1], float(sys.argv[2]), int(
        sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]  # fmt: skip
    torch.set_num_threads(1)
    if base == "none":
        volumes, truth = tune5_set(per_class, snr, seed)
    else:
        volumes, truth, _ = pair_set(base, cut, per_class, snr, seed)
    model = DISCA.from_preset("cryomine", k_range=(2, 10), max_iter=10, random_state=seed,
                              voxel_size_a=16.0, split_classes=variant.split("+")[0] == "split",
                              feature_transform="signed-sqrt" if variant.endswith("+sqrt") else "none")  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(volumes)
    print(json.dumps({
        "base": base, "cut": cut, "per_class": per_class, "snr": snr, "seed": seed,
        "variant": variant, "k": model.n_classes_,
        "homogeneity": homogeneity_score(truth, model.labels_),
        "wall_s": time.perf_counter() - start, "n_iter": model.n_iter_,
        "best_iteration": model.best_iteration_,
        "per_iteration": [(e["n_classes"], e["covariance_type"], e.get("splits"), e.get("steps"))
                          for e in model.history_],
        "warnings": [str(w.message)[:120] for w in caught if "Convergence" in type(w.message).__name__],
    }), flush=True)  # fmt: skip
    if len(sys.argv) > 7:
        np.save(sys.argv[7], model.features_)
        np.save(Path(sys.argv[7]).with_suffix(".truth.npy"), truth)


if __name__ == "__main__":
    main()
