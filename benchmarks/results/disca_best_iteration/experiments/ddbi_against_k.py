"""DDBI of one feature set partitioned at K = 2 … 10 (tuning structures only, issue #11).

Features of the shipped trunk (one DISCA E-step, no training), PCA to 16 dimensions as the loop
does, then k-means at each K (10 starts). If DDBI were comparable across K it would be lowest
near the true K; it is printed with the homogeneity against the truth.

    OMP_NUM_THREADS=1 .venv/bin/python \
        benchmarks/results/disca_best_iteration/experiments/ddbi_against_k.py tune5 100 0.03 0
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from sklearn.cluster import KMeans

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "results/disca_selection/experiments"))
from data import get, tuning_cell

from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA
from cryomine.sorting._ddbi import ddbi
from cryomine.sorting._mixture import fit_pca


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    volumes, truth = get(name, per_class, snr, seed)
    model = DISCA.from_preset("cryomine", random_state=seed, voxel_size_a=16.0, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(volumes)
    reduced = fit_pca(model.features_, 16).transform(model.features_)
    for k in range(2, 11):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(reduced)
        row = {"set": name, "per_class": per_class, "snr": snr, "seed": seed, "k": k,
               "ddbi": round(ddbi(reduced, labels), 4),
               "homogeneity": round(sorting_metrics(truth, labels).homogeneity, 4)}  # fmt: skip
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
