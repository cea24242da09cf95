"""Which criterion would split the similar pair: the split test's BIC and ICL gains, true classes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/disca_similar_pair/experiments/split_criterion.py \
        TAG SET SNR

Features from :mod:`trunk_features` (``CACHE/F_{TAG}_{SET}_{SNR}.npy``). In the 16-component PCA
of all features, :func:`cryomine.sorting._split.split_test` is run on each true class alone and on
the similar pair's two classes together (what the sort's merged class holds), with the whole
set's N, as the sort runs it. Printed per group: the BIC gain, the entropy, the ICL gain, and for
the pair the accuracy against the truth of its members' assignment to the halves (the
shared-covariance posterior). Then the BIC gain's null distribution under one Gaussian: the
test on ``NULL_DRAWS`` samples of the group's size from the group's own mean and covariance
(median and largest) — a parametric bootstrap, to see whether it would tell the pair from a
true class.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_data import CACHE
from separability import PAIRS

from cryomine.sorting._mixture import REG_COVAR, fit_pca
from cryomine.sorting._split import split_test

#: Samples of the one-Gaussian null per group.
NULL_DRAWS = 20


def main() -> None:
    warnings.filterwarnings("ignore")
    tag, name, snr = sys.argv[1], sys.argv[2], float(sys.argv[3])
    features = np.load(CACHE / f"F_{tag}_{name}_{snr}.npy").astype(np.float64)
    truth = np.load(CACHE / f"T_{name}_{snr}.npy")
    reduced = fit_pca(features, 16).transform(features)
    first, second = PAIRS[name]
    groups = {f"class {c}": [c] for c in np.unique(truth) if c not in (first, second)}
    groups |= {f"class {first}": [first], f"class {second}": [second]}
    groups[f"pair {first}+{second}"] = [first, second]
    for label, classes in groups.items():
        inside = np.isin(truth, classes)
        members = reduced[inside]
        test = split_test(members, len(reduced), seed=0, reg_covar=REG_COVAR)
        line = (f"{tag} {name} SNR {snr:g} {label}: n {len(members)}, BIC gain {test.gain:+.0f}, "
                f"entropy {test.entropy:.0f}, ICL gain {test.icl_gain:+.0f}")  # fmt: skip
        if len(classes) == 2:
            precision = np.linalg.inv(test.covariance)
            offsets = members[:, None, :] - test.means[None]
            score = np.log(test.weights) - 0.5 * np.einsum(
                "nkd,de,nke->nk", offsets, precision, offsets
            )
            halves = score.argmax(axis=1)
            hit = np.mean(halves == (truth[inside] == second))
            line += f", halves' accuracy {max(hit, 1 - hit):.3f}"
        rng = np.random.default_rng(0)
        mean, covariance = members.mean(axis=0), np.cov(members, rowvar=False)
        null = [
            split_test(
                rng.multivariate_normal(mean, covariance, len(members)),
                len(reduced),
                seed=0,
                reg_covar=REG_COVAR,
            ).gain
            for _ in range(NULL_DRAWS)
        ]
        line += f"; one-Gaussian null BIC gain median {np.median(null):+.0f}, max {max(null):+.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
