import numpy as np
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cryomine.simulate import simulate_subtomograms
from cryomine.sorting import DISCA, fit_pca

sim = simulate_subtomograms(
    ["4v4r", "3j9i", "1bxn"], n_per_class=60, snr=0.1, mode="fourier", seed=0
)
vol = np.concatenate(list(sim.iter_subtomograms()))
truth = sim.table["cmTrueClass"].to_numpy()
for lp in ("auto", None):
    F = (
        DISCA(width=0.25, max_iter=1, k_range=(2, 3), device="cpu", random_state=0, lowpass_a=lp)
        .fit(vol)
        .features_
    )
    np.save(f"/tmp/disca_lowpass_F_{lp}.npy", F)
    red = fit_pca(F, 16).transform(F)
    print(lp, "pca var", np.round(red.var(0), 4))
    with threadpool_limits(1):
        for k in range(1, 11):
            g = GaussianMixture(k, covariance_type="full", reg_covar=1e-5, random_state=0).fit(red)
            sizes = np.bincount(g.predict(red), minlength=k)
            print(
                f"  K={k} bic={g.bic(red):.0f} loglik*N={g.score(red) * len(red):.0f} params={g._n_parameters()} sizes={sorted(sizes)}"
            )
np.save("/tmp/disca_lowpass_truth.npy", truth)
