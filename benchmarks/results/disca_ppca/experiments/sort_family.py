"""The whole DISCA sort (preset cryomine) with a given family of covariance models, tuning sets.

Nested subsets (the first ``n`` particles of each structure) of one cached set, as
``disca_k_against_n/experiments/k_against_n.py``; one JSON line per subset: K, homogeneity,
and per iteration the chosen K and covariance model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_ppca/experiments/sort_family.py \
        tune5 400 0.1 0 100,200 ppca
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "disca_selection/experiments"))
from data import first_per_class, get, tuning_cell

from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA

FAMILIES = {
    "current": ("full", "diag", "tied", "spherical"),
    "ppca": ("spherical", *(f"ppca{q}" for q in range(1, 15)), "full"),
    "diag+ppca": ("diag", "ppca"),
}


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    sizes = [int(s) for s in sys.argv[5].split(",")]
    family = sys.argv[6]
    torch.set_num_threads(1)
    volumes, truth = get(name, per_class, snr, seed)
    for n in sizes:
        keep = first_per_class(truth, n)
        model = DISCA.from_preset(
            "cryomine", random_state=seed, voxel_size_a=16.0, covariance_types=FAMILIES[family]
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(volumes[keep])
        metrics = sorting_metrics(truth[keep], model.labels_)
        print(json.dumps({
            "set": name, "snr": snr, "seed": seed, "per_class": n, "n": int(keep.size),
            "family": family, "k": model.n_classes_, "homogeneity": round(metrics.homogeneity, 3),
            "best_iteration": model.best_iteration_, "wall_s": round(time.perf_counter() - start),
            "iterations": [(e["n_classes"], e["covariance_type"], round(e["ddbi"], 4),
                            round(sum(e["timings_s"].values()), 1)) for e in model.history_],
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
