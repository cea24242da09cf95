"""Per component of the E-step's choice: does a two-Gaussian split with one shared covariance pay
in BIC? Prints, per component, its true-class make-up and the BIC gain of the split.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_similar_pair/experiments/split_test.py \
        FEATURES.npy TRUTH.npy [PER_CLASS]
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from sklearn.metrics import homogeneity_score

sys.path.insert(0, "benchmarks/results/disca_selection/experiments")
from data import first_per_class

from cryomine.sorting._mixture import fit_pca, select_mixture
from cryomine.sorting._split import split_test


def main() -> None:
    warnings.filterwarnings("ignore")
    features, truth = np.load(sys.argv[1]), np.load(sys.argv[2])
    if len(sys.argv) > 3:
        keep = first_per_class(truth, int(sys.argv[3]))
        features, truth = features[keep], truth[keep]
    reduced = fit_pca(features, 16).transform(features)
    choice = select_mixture(reduced, k_candidates=range(2, 11), rng=np.random.default_rng(0),
                            covariance_types=("full", "diag", "tied", "spherical"), n_init=3)  # fmt: skip
    labels = choice.labels
    print(f"N {len(truth)}: K {choice.n_classes} {choice.covariance_type}, "
          f"homogeneity {homogeneity_score(truth, labels):.3f}")  # fmt: skip
    for c in range(choice.n_classes):
        members = reduced[labels == c]
        test = split_test(members, len(reduced), seed=c, reg_covar=1e-5)
        gain, icl = test.gain, test.gain - 2 * test.entropy
        precision = np.linalg.inv(test.covariance)
        distance = [
            np.einsum("ij,jk,ik->i", members - m, precision, members - m) for m in test.means
        ]
        halves = (
            distance[1] - 2 * np.log(test.weights[1]) < distance[0] - 2 * np.log(test.weights[0])
        ).astype(int)
        make_up = np.bincount(truth[labels == c], minlength=truth.max() + 1)
        split_h = (
            homogeneity_score(truth[labels == c], halves)
            if len(set(truth[labels == c])) > 1
            else float("nan")
        )
        print(f"  class {c}: n {len(members)}, truth {make_up.tolist()}, split BIC gain {gain:+.0f}, ICL gain {icl:+.0f}, "
              f"halves {np.bincount(halves).tolist()}, split homogeneity {split_h:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
