"""Iteration-0 features of a pair set and the E-step's choice on them (tuning structures only).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_similar_pair/experiments/features0.py \
        BASE CUT PER_CLASS SNR SEED
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_data import CACHE, pair_set

from cryomine.sorting import DISCA
from cryomine.sorting._mixture import fit_pca, select_mixture


def main() -> None:
    base, cut, per_class, snr, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(
        sys.argv[4]), int(sys.argv[5])  # fmt: skip
    torch.set_num_threads(1)
    volumes, truth, names = pair_set(base, cut, per_class, snr, seed)
    tag = f"{base}_{cut}_{per_class}_{snr}_{seed}"
    out = CACHE / f"F0pair_{tag}.npy"
    if not out.exists():
        model = DISCA.from_preset("cryomine", max_iter=1, random_state=seed, voxel_size_a=16.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(volumes)
        np.save(out, model.features_)
    np.save(CACHE / f"Tpair_{tag}.npy", truth)
    features = np.load(out)
    reduced = fit_pca(features, 16).transform(features)
    choice = select_mixture(reduced, k_candidates=range(2, 11), rng=np.random.default_rng(seed),
                            covariance_types=("full", "diag", "tied", "spherical"), n_init=3)  # fmt: skip
    labels = choice.labels
    pair = np.isin(truth, [names.index(base), len(names) - 1])
    pair_h = homogeneity_score(truth[pair], labels[pair])
    print(f"{tag}: chosen K {choice.n_classes} {choice.covariance_type} "
          f"homogeneity {homogeneity_score(truth, labels):.3f}; pair-only homogeneity {pair_h:.3f}")  # fmt: skip
    for cov in ("full", "diag"):
        gm = GaussianMixture(6, covariance_type=cov, n_init=3, random_state=0, reg_covar=1e-5)
        lab = gm.fit(reduced).predict(reduced)
        print(f"  GMM K=6 {cov}: homogeneity {homogeneity_score(truth, lab):.3f}, "
              f"pair {homogeneity_score(truth[pair], lab[pair]):.3f}, BIC {gm.bic(reduced):.0f}")  # fmt: skip
    best = {}
    for r in choice.candidates:
        key = (r["covariance"], r["k"])
        if r["eligible"] and (key not in best or r["bic"] < best[key]):
            best[key] = r["bic"]
    for cov in ("full", "diag", "tied", "spherical"):
        print(
            "  ",
            cov,
            " ".join(f"K{k}:{best.get((cov, k), float('nan')):.0f}" for k in range(2, 11)),
        )


if __name__ == "__main__":
    main()
