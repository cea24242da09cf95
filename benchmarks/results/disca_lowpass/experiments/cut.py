import sys

import torch

sys.path.insert(
    0, str(__import__("pathlib").Path(__file__).resolve().parents[4] / "tests" / "sorting")
)
from conftest import simulate
from cryomine.evaluate import sorting_metrics
from cryomine.sorting import DISCA, fit_pca

torch.set_num_threads(1)
seed = int(sys.argv[1])
vol, truth = simulate(60, 0.1, seed=seed)
for lp in [None if x == "none" else float(x) for x in sys.argv[2].split(",")]:
    m = DISCA(
        width=0.25,
        k_range=(2, 6),
        max_iter=1,
        device="cpu",
        random_state=seed,
        lowpass_a=lp,
        voxel_size_a=13.0,
    ).fit(vol)
    red = fit_pca(m.features_, 16).transform(m.features_)
    from sklearn.mixture import GaussianMixture

    g = GaussianMixture(3, covariance_type="full", reg_covar=1e-5, random_state=0).fit(red)
    print(
        f"seed={seed} lowpass_a={lp}: K={m.n_clusters_} hom={sorting_metrics(truth, m.labels_).homogeneity:.3f} hom@K=3={sorting_metrics(truth, g.predict(red)).homogeneity:.3f}",
        flush=True,
    )
