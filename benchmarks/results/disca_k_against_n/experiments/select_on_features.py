"""BIC and ICL on the features ``k_against_n.py`` saved (its answer's iteration), per covariance model.

ICL (Biernacki, Celeux & Govaert 2000) adds twice the entropy of the soft assignment to BIC, so
it charges overlapping components, which is how one structure split in two would look. Fits of
K = 2 … 15, three k-means starts each; fits with a class under d + 1 = 17 particles are left
out, as in DISCA. Tuning structures only.

    OMP_NUM_THREADS=1 .venv/bin/python \
        benchmarks/results/disca_k_against_n/experiments/select_on_features.py tune5 400 0.1 0 60,100,200
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "results/disca_selection/experiments"))
from data import first_per_class, get, tuning_cell

from cryomine.sorting._mixture import fit_pca

COVARIANCES = ("full", "diag", "tied", "spherical")


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    warnings.filterwarnings("ignore")
    _, truth_all = get(name, per_class, snr, seed)
    true_k = int(truth_all.max()) + 1
    for n in [int(s) for s in sys.argv[5].split(",")]:
        keep = first_per_class(truth_all, n)
        truth = truth_all[keep]
        features = np.load(f"/tmp/cryomine_exp_cache/kn_F_{name}_{n}_{snr}_{seed}.npy")
        reduced = fit_pca(features, 16).transform(features)
        rows = []
        with threadpool_limits(1):
            for cov in COVARIANCES:
                for k in range(2, 16):
                    gmm = GaussianMixture(k, covariance_type=cov, reg_covar=1e-5, n_init=3,
                                          random_state=0).fit(reduced)  # fmt: skip
                    resp = gmm.predict_proba(reduced)
                    labels = resp.argmax(1)
                    if np.bincount(labels, minlength=k).min() < 17:
                        continue
                    entropy = -np.sum(resp * np.log(np.clip(resp, 1e-300, 1.0)))
                    bic = gmm.bic(reduced)
                    rows.append((cov, k, bic, bic + 2 * entropy, homogeneity_score(truth, labels)))
        for criterion, column in (("BIC", 2), ("ICL", 3)):
            best = min(rows, key=lambda r: r[column])
            per_cov = {c: min((r for r in rows if r[0] == c), key=lambda r: r[column])[1]
                       for c in COVARIANCES}  # fmt: skip
            print(f"N {true_k * n}: {criterion} {best[0]} K {best[1]} homogeneity {best[4]:.3f}; "
                  f"K per covariance model {per_cov}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
