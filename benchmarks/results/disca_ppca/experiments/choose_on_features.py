"""K chosen by BIC per covariance model, PPCA mixtures included, on saved iteration-0 features.

For nested subsets (the first ``n`` particles of each structure) of a set whose features
``features0.py`` saved: PCA to 16, then for each covariance model the eligible fit (every
component >= 17 particles) of lowest BIC over K 2..15 and three starts; its K and homogeneity.
Tuning sets only.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_ppca/experiments/choose_on_features.py \
        tune5 400 0.1 0 60,100,200,400
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "disca_selection/experiments"))
from data import CACHE, first_per_class, tuning_cell

from cryomine.sorting._mixture import fit_pca
from cryomine.sorting._ppca import PPCAMixture

MODELS = ("full", "diag", "tied", "spherical", *(f"ppca{q}" for q in range(1, 15)))
#: Families of models a rule may choose from (the lowest BIC over the family's models and K).
RULES = {
    "current (full, diag, tied, spherical)": ("full", "diag", "tied", "spherical"),
    "current + ppca 1-8": (
        "full",
        "diag",
        "tied",
        "spherical",
        *(f"ppca{q}" for q in (1, 2, 3, 4, 6, 8)),
    ),
    "ppca 0-15 (spherical ... full)": ("spherical", *(f"ppca{q}" for q in range(1, 15)), "full"),
    "full only": ("full",),
}


def fit(model: str, reduced: np.ndarray, k: int, seed: int):
    if model.startswith("ppca"):
        return PPCAMixture(k, int(model[4:]), random_state=seed).fit(reduced)
    return GaussianMixture(k, covariance_type=model, reg_covar=1e-5, random_state=seed).fit(reduced)


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    warnings.filterwarnings("ignore")
    features_all = np.load(CACHE / f"F0_{name}_{per_class}_{snr}_{seed}.npy")
    truth_all = np.load(CACHE / f"T_{name}_{per_class}_{snr}_{seed}.npy")
    fits: list[dict] = []
    for n in [int(s) for s in sys.argv[5].split(",")]:
        keep = first_per_class(truth_all, n)
        truth, features = truth_all[keep], features_all[keep]
        reduced = fit_pca(features, 16).transform(features)
        out = {}
        with threadpool_limits(1):
            for model in MODELS:
                best = None
                for k in range(2, 16):
                    for start in range(3):
                        m = fit(model, reduced, k, 1000 * k + start)
                        labels = m.predict_proba(reduced).argmax(1)
                        smallest = float(m.weights_.min() * len(reduced))
                        bic = m.bic(reduced)
                        fits.append({"n": len(keep), "model": model, "k": k, "start": start,
                                     "bic": float(bic), "smallest": smallest,
                                     "homogeneity": float(homogeneity_score(truth, labels))})  # fmt: skip
                        if smallest < 17:
                            continue
                        if best is None or bic < best[0]:
                            best = (bic, k, homogeneity_score(truth, labels))
                out[model] = best
        text = ", ".join(f"{m} K{b[1]} {b[2]:.3f} ({b[0]:.0f})" for m, b in out.items() if b)
        print(f"{name} SNR {snr} N {len(keep)}: {text}", flush=True)
        for rule, family in RULES.items():
            model = min((m for m in family if out.get(m)), key=lambda m: out[m][0])
            print(f"    {rule}: {model} K{out[model][1]} {out[model][2]:.3f}", flush=True)
    fits_path = Path(__file__).resolve().parents[1] / "logs" / f"fits_{name}_snr{snr}.json"
    fits_path.write_text(json.dumps(fits) + "\n")


if __name__ == "__main__":
    main()
