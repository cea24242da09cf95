"""Iteration-0 features compared: BIC's choice with the split test, and k-means at the true K.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_similar_pair/experiments/compare_features.py \
        TAG[+sqrt],… SET:SNR,…

Each TAG names features written by :mod:`trunk_features` (``CACHE/F_{TAG}_{SET}_{SNR}.npy``);
``+sqrt`` applies the signed square root to them before the PCA. Per set and nested subset of
60 / 100 / 200 / 400 per class (the pair sets from 100): K and homogeneity of the cryomine
preset's E-step (16 PCA, four covariance models, 3 starts, K 2..10, split test), homogeneity of
k-means at the true K and, on the pair sets, the pair's Mahalanobis separation Δ (pooled
within-class covariance, 16 PCA).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import homogeneity_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "disca_selection" / "experiments"))
from data import first_per_class
from pair_data import CACHE
from separability import PAIRS, separation

from cryomine.sorting._disca import transform_features
from cryomine.sorting._mixture import COVARIANCE_TYPES, fit_pca, select_mixture


def main() -> None:
    warnings.filterwarnings("ignore")
    specs = sys.argv[1].split(",")
    for cell in sys.argv[2].split(","):
        name, snr = cell.split(":")
        truth_all = np.load(CACHE / f"T_{name}_{float(snr)}.npy")
        for per_class in (60, 100, 200, 400) if name == "tune5" else (100, 200, 400):
            keep = first_per_class(truth_all, per_class)
            truth = truth_all[keep]
            row = []
            for spec in specs:
                tag, _, transform = spec.partition("+")
                features = np.load(CACHE / f"F_{tag}_{name}_{float(snr)}.npy")[keep]
                features = transform_features(
                    features.astype(np.float64), "signed-sqrt" if transform == "sqrt" else "none"
                )
                reduced = fit_pca(features, 16).transform(features)
                choice = select_mixture(reduced, k_candidates=range(2, 11),
                                        rng=np.random.default_rng(0),
                                        covariance_types=COVARIANCE_TYPES, n_init=3, split=True)  # fmt: skip
                kmeans = KMeans(truth.max() + 1, n_init=5, random_state=0).fit_predict(reduced)
                text = (f"{spec}: K {choice.n_classes} h "
                        f"{homogeneity_score(truth, choice.labels):.3f} "
                        f"k-means {homogeneity_score(truth, kmeans):.3f}")  # fmt: skip
                if name in PAIRS:
                    text += f" Δ {separation(reduced, truth, *PAIRS[name]):.2f}"
                row.append(text)
            print(f"{name} SNR {snr} {per_class}/class | " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
