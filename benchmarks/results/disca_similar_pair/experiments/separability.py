"""How separable is a pair set's similar pair in the features, with and without labels?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_similar_pair/experiments/separability.py \
        TAG[+sqrt] SET SNR

Features from :mod:`trunk_features` (``CACHE/F_{TAG}_{SET}_{SNR}.npy``; ``+sqrt``: signed square
root first), or TAG a ``FEATURES.npy`` that :mod:`sort_pair` wrote (its truth beside it). For the pair alone (the base structure and its cut copy), in the PCA of all the
features: the Mahalanobis separation Δ of the two means under the pooled within-class
covariance (16, 32, 64 components); the 5-fold accuracy of a logistic regression on the 16
components (what the labels can get); and without labels, the homogeneity of two Gaussians with
one shared covariance fitted to the pair's members from k-means starts and from the true means,
with the split test's ICL gain (:func:`cryomine.sorting._split.split_test`).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import homogeneity_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_data import CACHE

from cryomine.sorting._disca import transform_features
from cryomine.sorting._mixture import fit_pca
from cryomine.sorting._split import split_test

#: 0-based truth classes of each pair set's similar pair: (the base structure, its cut copy).
PAIRS = {"4v94": (3, 5), "3j9i": (2, 5)}


def separation(reduced: np.ndarray, truth: np.ndarray, first: int, second: int) -> float:
    """Mahalanobis distance of the two classes' means under their pooled covariance."""
    a, b = reduced[truth == first], reduced[truth == second]
    pooled = (np.cov(a, rowvar=False) + np.cov(b, rowvar=False)) / 2
    difference = a.mean(axis=0) - b.mean(axis=0)
    return float(np.sqrt(difference @ np.linalg.solve(pooled, difference)))


def main() -> None:
    warnings.filterwarnings("ignore")
    spec, name, snr = sys.argv[1], sys.argv[2], float(sys.argv[3])
    tag, _, transform = spec.partition("+")
    if tag.endswith(".npy"):
        features, truth = np.load(tag), np.load(Path(tag).with_suffix(".truth.npy"))
    else:
        features = np.load(CACHE / f"F_{tag}_{name}_{snr}.npy")
        truth = np.load(CACHE / f"T_{name}_{snr}.npy")
    features = transform_features(
        features.astype(np.float64), "signed-sqrt" if transform == "sqrt" else "none"
    )
    first, second = PAIRS[name]
    pair = np.isin(truth, [first, second])
    deltas = {d: separation(fit_pca(features, d).transform(features), truth, first, second)
              for d in (16, 32, 64)}  # fmt: skip
    reduced = fit_pca(features, 16).transform(features)
    members, labels = reduced[pair], (truth[pair] == second).astype(int)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    accuracy = cross_val_score(probe, members, labels, cv=5).mean()
    starts = {
        "k-means": {"n_init": 3},
        "true means": {"means_init": np.stack([members[labels == c].mean(0) for c in (0, 1)])},
    }
    unsupervised = []
    for start, options in starts.items():
        model = GaussianMixture(2, covariance_type="tied", random_state=0, reg_covar=1e-5,
                                **options).fit(members)  # fmt: skip
        unsupervised.append(f"{start} {homogeneity_score(labels, model.predict(members)):.3f}")
    test = split_test(members, len(reduced), seed=0, reg_covar=1e-5)
    print(f"{spec} {name} SNR {snr:g}: Δ " + " / ".join(f"{v:.2f}" for v in deltas.values())
          + f" (16 / 32 / 64 PCA); logistic regression {accuracy:.3f}; shared-covariance pair "
          + ", ".join(unsupervised) + f"; split-test ICL gain {test.icl_gain:+.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
