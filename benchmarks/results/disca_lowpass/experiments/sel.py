import numpy as np

from cryomine.evaluate import sorting_metrics
from cryomine.sorting import fit_pca, select_mixture

truth = np.load("/tmp/disca_lowpass_truth.npy")
for lp in ("auto", "None"):
    F = np.load(f"/tmp/disca_lowpass_F_{lp}.npy")
    for seed in range(4):
        red = fit_pca(F, 16).transform(F)
        s = select_mixture(red, k_candidates=range(2, 11), rng=np.random.default_rng(seed))
        print(
            lp,
            seed,
            s.n_clusters,
            round(sorting_metrics(truth, s.labels).homogeneity, 3),
            s.rejected,
        )
