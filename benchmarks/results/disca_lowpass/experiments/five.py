import sys
import time

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.evaluate import sorting_metrics
from cryomine.simulate import simulate_subtomograms
from cryomine.sorting import DISCA, fit_pca, select_mixture

torch.set_num_threads(1)
S = ["6v8o", "3j9i", "4v94", "4v4r", "1bxn"]
max_iter = int(sys.argv[1])
for snr in [float(x) for x in sys.argv[2].split(",")]:
    sim = simulate_subtomograms(S, n_per_class=100, snr=snr, mode="fourier", seed=0)
    vol = np.concatenate(list(sim.iter_subtomograms()))
    truth = sim.table["cmTrueClass"].to_numpy()
    for lp in [None if x == "none" else x for x in sys.argv[3].split(",")]:
        t = time.perf_counter()
        m = DISCA(
            width=0.25,
            max_iter=max_iter,
            k_range=(2, 10),
            device="cpu",
            random_state=0,
            lowpass_a=lp,
        ).fit(vol)
        dt = time.perf_counter() - t
        met = sorting_metrics(truth, m.labels_)
        print(
            f"snr={snr} lowpass={lp} max_iter={max_iter}: K={m.n_clusters_} hom={met.homogeneity:.3f} "
            f"K/it={[e['n_clusters'] for e in m.history_]} rejected={[e['rejected_k'] for e in m.history_]} "
            f"fchange={[e['feature_change'] for e in m.history_]} fit_s={dt:.0f}",
            flush=True,
        )
        F = m.features_
        np.save(f"/tmp/disca_lowpass_F5_{snr}_{lp}_{max_iter}.npy", F)
        np.save("/tmp/disca_lowpass_truth5.npy", truth)
        for d in (4, 8, 16):
            red = fit_pca(F, d).transform(F)
            s = select_mixture(red, k_candidates=range(2, 11), rng=np.random.default_rng(0))
            s1 = select_mixture(
                red, k_candidates=range(2, 11), rng=np.random.default_rng(0), min_cluster_size=1
            )
            res = []
            for cov in ("diag", "spherical"):
                with threadpool_limits(1):
                    gs = {
                        k: GaussianMixture(
                            k, covariance_type=cov, reg_covar=1e-5, random_state=0
                        ).fit(red)
                        for k in range(2, 11)
                    }
                kb = min(gs, key=lambda k: gs[k].bic(red))
                res.append(
                    f"{cov}: K={kb} hom={sorting_metrics(truth, gs[kb].predict(red)).homogeneity:.3f}"
                )
            with threadpool_limits(1):
                g5 = GaussianMixture(5, covariance_type="full", reg_covar=1e-5, random_state=0).fit(
                    red
                )
            print(
                f"   pca={d} full+rule: K={s.n_clusters} hom={sorting_metrics(truth, s.labels).homogeneity:.3f} | "
                f"full no rule: K={s1.n_clusters} hom={sorting_metrics(truth, s1.labels).homogeneity:.3f} | "
                + " | ".join(res)
                + f" | full@K=5 hom={sorting_metrics(truth, g5.predict(red)).homogeneity:.3f}",
                flush=True,
            )
