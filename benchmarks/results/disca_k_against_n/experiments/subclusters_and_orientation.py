"""Are DISCA's over-split sub-classes orientation groups? Tuning structures only (issue #11).

Refits the over-split mixture (tied covariance, ``K`` components) on the features
``k_against_n.py`` saved for ``SET`` × ``N_PER_CLASS``, and for each true structure split into
several sub-classes prints the normalised mutual information between its sub-classes and (a)
k-means groups of the beam axis seen in the structure's frame (``z zᵀ``, so that the wedge's
z → −z symmetry is respected), (b) quantile bins of each true orientation angle and shift.
``null``: the 95th percentile of the NMI of the orientation groups permuted at random.

    OMP_NUM_THREADS=1 .venv/bin/python \
        benchmarks/results/disca_k_against_n/experiments/subclusters_and_orientation.py tune5 400 0.1 0 100 13
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score as nmi
from sklearn.mixture import GaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "results/disca_selection/experiments"))
from data import SETS, first_per_class, tuning_cell

from cryomine.geometry import rotations_from_relion_euler
from cryomine.simulate import simulate_subtomograms
from cryomine.sorting._mixture import fit_pca

TRUTH_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi",
                 "cmTrueShiftX", "cmTrueShiftY", "cmTrueShiftZ")  # fmt: skip


def main() -> None:
    name, per_class, snr, seed = tuning_cell(sys.argv)
    n, n_components = int(sys.argv[5]), int(sys.argv[6])
    warnings.filterwarnings("ignore")
    # the same particles as data.get (same call); only the table is needed here
    table = simulate_subtomograms(list(SETS[name]), n_per_class=per_class, snr=snr,
                                  mode="fourier", seed=seed, voxel_size_a=16.0).table  # fmt: skip
    truth_all = table["cmTrueClass"].to_numpy() - 1
    true_k = int(truth_all.max()) + 1
    keep = first_per_class(truth_all, n)
    truth = truth_all[keep]
    angles = table[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()[keep]
    beam_in_frame = rotations_from_relion_euler(angles).as_matrix()[:, 2, :]
    features = np.load(f"/tmp/cryomine_exp_cache/kn_F_{name}_{n}_{snr}_{seed}.npy")
    reduced = fit_pca(features, 16).transform(features)
    labels = GaussianMixture(n_components, covariance_type="tied", reg_covar=1e-5, n_init=3,
                             random_state=0).fit(reduced).predict(reduced)  # fmt: skip
    rng = np.random.default_rng(0)
    for c in range(true_k):
        mine = truth == c
        sub = labels[mine]
        k = len(np.unique(sub))
        if k < 2:
            print(f"structure {SETS[name][c]}: one class")
            continue
        z = beam_in_frame[mine]
        zz = np.stack([z[:, 0] ** 2, z[:, 1] ** 2, z[:, 2] ** 2,
                       z[:, 0] * z[:, 1], z[:, 0] * z[:, 2], z[:, 1] * z[:, 2]], axis=1)  # fmt: skip
        groups = KMeans(k, n_init=5, random_state=0).fit_predict(zz)
        null = np.quantile([nmi(sub, rng.permutation(groups)) for _ in range(200)], 0.95)
        scores = {"beam axis": nmi(sub, groups)}
        for column in TRUTH_COLUMNS:
            values = table[column].to_numpy()[keep][mine]
            scores[column] = nmi(
                sub, np.digitize(values, np.quantile(values, np.linspace(0, 1, k + 1)[1:-1]))
            )
        sizes = np.bincount(sub)[np.unique(sub)].tolist()
        print(f"structure {SETS[name][c]}: sub-classes {sizes}; NMI "
              + ", ".join(f"{key} {value:.3f}" for key, value in scores.items())
              + f"; null {null:.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
