"""K and homogeneity of the tuning CI case (4v4r, 3j9i, 1bxn × 60 at 13 Å, SNR 0.1; the
``three_classes`` data of tests/sorting/test_accuracy.py) for one seed and covariance family.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_ppca/experiments/ci_case_seeds.py \
        SEED diag,ppca
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests/sorting"))
from conftest import simulate
from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA


def main() -> None:
    seed, family = int(sys.argv[1]), tuple(sys.argv[2].split(","))
    torch.set_num_threads(1)
    volumes, truth = simulate(60, 0.1, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DISCA.from_preset(
            "cryomine", width=0.25, k_range=(2, 6), max_iter=8, device="cpu",
            random_state=seed, covariance_types=family,
        ).fit(volumes)  # fmt: skip
    homogeneity = sorting_metrics(truth, model.labels_).homogeneity
    models = [e["covariance_type"] for e in model.history_]
    print(seed, model.n_classes_, round(homogeneity, 3), models, flush=True)


if __name__ == "__main__":
    main()
