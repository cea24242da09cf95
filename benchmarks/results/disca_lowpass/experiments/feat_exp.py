import sys
import time

import numpy as np
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.evaluate import sorting_metrics
from cryomine.simulate import simulate_subtomograms
from cryomine.sorting import DISCA, fit_pca

structures = sys.argv[1].split(",")
n = int(sys.argv[2])
snr = float(sys.argv[3])
seed = int(sys.argv[4])
sim = simulate_subtomograms(structures, n_per_class=n, snr=snr, mode="fourier", seed=seed)
vol = np.concatenate(list(sim.iter_subtomograms()))
truth = sim.table["cmTrueClass"].to_numpy()
out = {}
for lp in ("auto", None):
    t = time.perf_counter()
    m = DISCA(
        width=0.25, max_iter=1, k_range=(2, 3), device="cpu", random_state=0, lowpass_a=lp
    ).fit(vol)
    F = m.features_
    ft = time.perf_counter() - t
    for d in (2, 4, 8, 16):
        red = fit_pca(F, d).transform(F)
        for cov in ("full", "diag", "spherical"):
            bics = {}
            labs = {}
            with threadpool_limits(1):
                for k in range(2, 11):
                    g = GaussianMixture(
                        k, covariance_type=cov, reg_covar=1e-5, random_state=seed
                    ).fit(red)
                    bics[k] = g.bic(red)
                    labs[k] = g.predict(red)
            kb = min(bics, key=bics.get)
            h = sorting_metrics(truth, labs[kb]).homogeneity
            h3 = sorting_metrics(truth, labs[len(structures)]).homogeneity
            print(
                f"lowpass={lp} pca={d} cov={cov}: K_BIC={kb} hom={h:.3f} | hom@K=true {h3:.3f}",
                flush=True,
            )
    print(f"features {ft:.1f}s", flush=True)
